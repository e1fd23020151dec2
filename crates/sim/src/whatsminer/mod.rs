//! A simulated MicroBT Whatsminer (PROTOCOLS.md §4): API v2 on one port (4028 on hardware)
//! for older firmware, or API v3 with length-prefixed frames (4433) plus the degraded v2
//! service newer firmware keeps on 4028.
//!
//! Writes are authenticated as on the device: v2 `get_token` + MD5-crypt + AES-256-ECB
//! envelopes with token expiry (135) and a 16-token limit (136); v3 SHA-256 tokens with a
//! salt and encrypted pool parameters. The write API is off by default (as shipped): every
//! write answers "can't access write cmd" until [`WhatsminerConfig::write_api_enabled`].
//!
//! The physics (hashrate, power, temperatures, reboots) is the shared model in
//! [`crate::model`]; only the wire and the authentication are Whatsminer's own.

pub mod auth;
mod v2;
mod v3;

use crate::device::{DeviceConfig, mac_for, now_ms};
use crate::family::Family;
use crate::faults::{Fault, FaultSet};
use crate::model::{DeviceState, Pool, Reading, mix};
use crate::nameplate::{self, Nameplate};
use hashmesh_core::{
    BoardSnapshot, MinerSnapshot, MinerStatus, PoolSnapshot, PoolStatus, PowerSource, VendorError,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Which Whatsminer API the simulated firmware speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhatsminerApi {
    /// Firmware before 2024-11: API v2 on 4028.
    V2,
    /// Firmware from 2024-11: API v3 on 4433, degraded v2 on 4028.
    V3,
}

/// How to build one simulated Whatsminer.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsminerConfig {
    /// Model, seed, faults, timing, MAC, serial and pools (its `family` is not used).
    pub device: DeviceConfig,
    /// The API the firmware speaks.
    pub api: WhatsminerApi,
    /// The v2 admin password, or the v3 `super` account's password.
    pub password: String,
    /// The API write switch (off on a factory-fresh device).
    pub write_api_enabled: bool,
    /// How long a v2 token stays valid.
    pub token_lifetime: Duration,
    /// Port of the v3 service when the device is bound at a fixed port (4433 on hardware);
    /// with port 0 in the spawn address both services take free ports.
    pub v3_port: u16,
    /// The v3 service closes each connection after one reply (the framing allows several
    /// requests per connection; this tests clients that rely on that).
    pub v3_one_request_per_connection: bool,
}

impl WhatsminerConfig {
    /// A device of `model` (e.g. `Whatsminer M30S++`) on `api`, with the vendor's default
    /// password (`admin` for v2, `super` for v3) and the write API off.
    pub fn new(api: WhatsminerApi, model: &str) -> Self {
        let mut device = DeviceConfig::new(Family::Cgminer, model);
        device.serial = serial_for(device.seed);
        WhatsminerConfig {
            device,
            api,
            password: match api {
                WhatsminerApi::V2 => "admin".into(),
                WhatsminerApi::V3 => "super".into(),
            },
            write_api_enabled: false,
            token_lifetime: Duration::from_secs(30 * 60),
            v3_port: 4433,
            v3_one_request_per_connection: false,
        }
    }

    /// The same device with another seed (MAC, serial and pools follow it).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.device = self.device.with_seed(seed);
        self.device.mac = mac_for(seed);
        self.device.serial = serial_for(seed);
        self
    }
}

/// A Whatsminer-style serial number derived from a seed.
pub fn serial_for(seed: u64) -> String {
    format!("HEM{:013X}", mix(seed, 53, 0) & 0xf_ffff_ffff_ffff)
}

/// One v2 write token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) sign: String,
    pub(crate) issued_ms: u64,
}

/// What both services share.
pub(crate) struct Shared {
    pub(crate) cfg: WhatsminerConfig,
    pub(crate) np: &'static Nameplate,
    pub(crate) inner: Mutex<Inner>,
    /// Tells the accept loops to look again at whether they should be listening.
    pub(crate) wake: tokio::sync::watch::Sender<u64>,
}

/// The mutable part.
pub(crate) struct Inner {
    pub(crate) st: DeviceState,
    pub(crate) faults: FaultSet,
    pub(crate) tokens: Vec<Token>,
    pub(crate) tokens_issued: u64,
    pub(crate) write_api_enabled: bool,
    /// The power limit the firmware reports and tunes to, W.
    pub(crate) power_limit_w: u32,
}

impl Shared {
    /// Wakes the accept loops (after a reboot started or the faults changed).
    pub(crate) fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Takes the device down for `d` from now (reboot or mining restart).
    pub(crate) fn go_down(&self, d: Duration) {
        let now = now_ms();
        self.lock(now).st.go_down(now, d);
        self.wake();
    }

    pub(crate) fn lock(&self, now: u64) -> MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let faults = g.faults;
        g.st.advance_to(
            now,
            self.np,
            Family::Cgminer,
            self.cfg.device.seed,
            faults,
            &self.cfg.device.timing,
        );
        g
    }

    /// The fixed salt of the v2 password key and of v3 tokens.
    pub(crate) fn salt(&self) -> String {
        salt_chars(mix(self.cfg.device.seed, 54, 0), 8)
    }

    /// The model string the firmware reports (`M30S++_VH30`).
    pub(crate) fn model_code(&self) -> String {
        let short = self.np.short_name();
        let variant = match self.cfg.api {
            WhatsminerApi::V2 => "VH30",
            WhatsminerApi::V3 => "VK40",
        };
        format!("{short}_{variant}")
    }

    pub(crate) fn firmware(&self) -> &'static str {
        match self.cfg.api {
            WhatsminerApi::V2 => "20230803.11.REL",
            WhatsminerApi::V3 => "20251209.16.Rel2",
        }
    }
}

/// Eight characters of the crypt alphabet from a number.
pub(crate) fn salt_chars(mut n: u64, len: usize) -> String {
    const A: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(char::from(A[(n % 62 + 2) as usize]));
        n /= 62;
    }
    s
}

/// Error codes the firmware shows for the present hardware faults: 530+slot for a board
/// that lost its chips, 110 for a stopped intake fan, 350+slot for an overheating board.
pub(crate) fn active_errors(r: &Reading, faults: FaultSet) -> Vec<(u32, &'static str)> {
    let mut out = Vec::new();
    if faults.has(Fault::FanFail) {
        out.push((110, "Fan in speed error"));
    }
    for (i, b) in r.boards.iter().enumerate() {
        if b.failed {
            out.push((530 + i as u32, "Slot board not found"));
        }
    }
    if faults.has(Fault::Overheat) {
        out.push((350, "Slot temperature protecting"));
    }
    out
}

/// A Whatsminer that is serving. Dropping it stops both services.
pub struct RunningWhatsminer {
    shared: Arc<Shared>,
    rpc_addr: SocketAddr,
    v3_addr: Option<SocketAddr>,
    tasks: Vec<AbortHandle>,
}

impl Drop for RunningWhatsminer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a Whatsminer: the v2 (or degraded v2) service at `addr`, and for a v3 device the v3
/// service at the same IP on [`WhatsminerConfig::v3_port`] (a free port when `addr` has port 0).
pub async fn spawn_whatsminer(
    config: WhatsminerConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningWhatsminer> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let np = nameplate::find(&config.device.model)
        .ok_or_else(|| invalid(format!("unknown model '{}'", config.device.model)))?;
    if np.vendor != hashmesh_core::Vendor::MicroBt {
        return Err(invalid(format!("'{}' is not a Whatsminer", np.name)));
    }
    let rpc = TcpListener::bind(addr).await?;
    let rpc_addr = rpc.local_addr()?;
    let v3 = match config.api {
        WhatsminerApi::V2 => None,
        WhatsminerApi::V3 => {
            let port = if addr.port() == 0 { 0 } else { config.v3_port };
            Some(TcpListener::bind(SocketAddr::new(addr.ip(), port)).await?)
        }
    };
    let v3_addr = v3.as_ref().map(TcpListener::local_addr).transpose()?;
    let now = now_ms();
    let pools = config
        .device
        .pools
        .iter()
        .enumerate()
        .map(|(i, (u, w, p))| Pool::new(u, w, p, i as u32))
        .collect();
    let st = DeviceState::new(
        np,
        Family::Cgminer,
        config.device.seed,
        now,
        pools,
        &config.device.timing,
    );
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            st,
            faults: FaultSet::from_faults(&config.device.faults),
            tokens: Vec::new(),
            tokens_issued: 0,
            write_api_enabled: config.write_api_enabled,
            power_limit_w: (np.power_w * 1.1).round() as u32,
        }),
        cfg: config,
        np,
        wake: tokio::sync::watch::channel(0).0,
    });
    let mut tasks =
        vec![tokio::spawn(accept_loop(shared.clone(), rpc, Service::V2)).abort_handle()];
    if let Some(l) = v3 {
        tasks.push(tokio::spawn(accept_loop(shared.clone(), l, Service::V3)).abort_handle());
    }
    Ok(RunningWhatsminer {
        shared,
        rpc_addr,
        v3_addr,
        tasks,
    })
}

#[derive(Clone, Copy)]
enum Service {
    V2,
    V3,
}

/// Serves one port. While the device is down (rebooting) or offline the listener is closed, so
/// connections are refused as on hardware; it is bound again at the same address afterwards.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, service: Service) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    let mut wake = shared.wake.subscribe();
    loop {
        let now = now_ms();
        let (down_until, offline) = {
            let g = shared.lock(now);
            (g.st.down_until_ms, g.faults.has(Fault::Offline))
        };
        if offline || down_until > now {
            listener = None;
            let wait = if down_until > now {
                Duration::from_millis(down_until - now)
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            listener = rebind(addr).await;
            if listener.is_none() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    let s = shared.clone();
                    tokio::spawn(async move {
                        match service {
                            Service::V2 => v2_connection(s, stream).await,
                            Service::V3 => v3::connection(s, stream).await,
                        }
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = wake.changed() => {}
        }
    }
}

/// Binds `addr` again after a reboot, retrying while the kernel still holds it.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for attempt in 0..100u64 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(_) => tokio::time::sleep(Duration::from_millis(20 * attempt.min(25))).await,
        }
    }
    None
}

async fn v2_connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 4095];
    let n = match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return,
    };
    let now = now_ms();
    let faults = shared.lock(now).faults;
    if faults.has(Fault::Hang) {
        let _ = tokio::time::timeout(shared.cfg.device.timing.hang_max, async {
            let mut sink = [0u8; 256];
            while matches!(stream.read(&mut sink).await, Ok(k) if k > 0) {}
        })
        .await;
        return;
    }
    let (mut reply, down) = v2::respond(&shared, buf.get(..n).unwrap_or_default(), now);
    reply.push(0);
    if faults.has(Fault::Slow) {
        tokio::time::sleep(shared.cfg.device.timing.slow_reply_min).await;
    }
    if faults.has(Fault::Garbage) {
        let junk: Vec<u8> = (0..700u64).map(|i| mix(now, 70, i) as u8).collect();
        let _ = stream.write_all(&junk).await;
    } else if faults.has(Fault::Truncated) {
        let _ = stream
            .write_all(reply.get(..reply.len() / 2).unwrap_or_default())
            .await;
    } else {
        let _ = stream.write_all(&reply).await;
    }
    let _ = stream.shutdown().await;
    if let Some(d) = down {
        shared.go_down(d);
    }
}

impl RunningWhatsminer {
    /// The v2 service address (4028 on hardware; the degraded one on a v3 device).
    pub fn local_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The v3 service address, for a v3 device.
    pub fn v3_addr(&self) -> Option<SocketAddr> {
        self.v3_addr
    }

    /// The configuration.
    pub fn config(&self) -> &WhatsminerConfig {
        &self.shared.cfg
    }

    /// The nameplate.
    pub fn nameplate(&self) -> &'static Nameplate {
        self.shared.np
    }

    /// Replaces the faults (socket faults act from the next connection).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared.lock(now_ms()).faults = FaultSet::from_faults(&faults);
        self.shared.wake();
    }

    /// Switches the API write switch (what WhatsMinerTool does).
    pub fn set_write_api(&self, enabled: bool) {
        self.shared.lock(now_ms()).write_api_enabled = enabled;
    }

    /// Expires every v2 token now: the next write with one answers 135.
    pub fn expire_tokens(&self) {
        let mut g = self.shared.lock(now_ms());
        for t in &mut g.tokens {
            t.issued_ms = 0;
        }
    }

    /// v2 tokens handed out so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.lock(now_ms()).tokens_issued
    }

    /// Changes the device state directly, after advancing it to now.
    pub fn update<R>(&self, f: impl FnOnce(&mut DeviceState) -> R) -> R {
        let r = f(&mut self.shared.lock(now_ms()).st);
        self.shared.wake();
        r
    }

    /// Takes the device away for a reboot now (as a web-interface reboot would).
    pub fn reboot(&self) {
        self.shared.go_down(self.shared.cfg.device.timing.reboot);
    }

    /// What the device reports right now, in core units, as the API it speaks encodes it
    /// (v3 on a v3 device). Fields its API lacks are `None`/empty: v3 reports no share counts,
    /// hardware errors, board temperatures; neither reports expected chips or voltages.
    /// `locate_led_on` is the `ledstat`/`ledstatus` state; errors carry the codes (messages are
    /// the simulator's wording, compare codes).
    pub fn truth(&self) -> MinerSnapshot {
        let now = now_ms();
        let g = self.shared.lock(now);
        if g.faults.has(Fault::Offline) || g.st.is_down(now) {
            return MinerSnapshot::empty(now as i64, MinerStatus::Offline);
        }
        let s = &self.shared;
        let r =
            g.st.read(s.np, Family::Cgminer, s.cfg.device.seed, g.faults);
        truth_of(s, &g, &r, now)
    }
}

fn truth_of(s: &Shared, g: &Inner, r: &Reading, now: u64) -> MinerSnapshot {
    let v3 = s.cfg.api == WhatsminerApi::V3;
    let mut t = MinerSnapshot::empty(now as i64, r.status);
    t.hashrate_ths = Some(r.rate_5s_ghs / 1000.0);
    t.hashrate_avg_ths = Some(r.rate_avg_ghs / 1000.0);
    t.expected_hashrate_ths = Some(r.rate_ideal_ghs / 1000.0);
    t.uptime_s = Some(r.elapsed_s);
    t.hardware_errors = (!v3).then_some(r.hw_errors);
    t.ambient_temp_c = Some(f64::from(r.ambient_c));
    t.fans_rpm = r.fans_rpm.clone();
    t.power_w = Some(f64::from(r.power_w));
    t.power_source = Some(PowerSource::Measured);
    t.power_target_w = Some(f64::from(g.power_limit_w));
    t.power_mode = Some(g.st.mode);
    t.locate_led_on = Some(g.st.led);
    t.boards = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, b)| BoardSnapshot {
            index: i as u32,
            hashrate_ths: Some(b.rate_ghs / 1000.0),
            expected_hashrate_ths: Some(b.ideal_ghs / 1000.0),
            chip_temp_c: (!b.failed).then_some(f64::from(b.chip_max_c())),
            board_temp_c: (!v3).then_some(f64::from(b.pcb_max_c())),
            chips_working: Some(b.chips_working),
            frequency_mhz: Some(b.frequency_mhz),
            hardware_errors: (!v3).then_some(b.hw_errors),
            failed: b.failed,
            ..Default::default()
        })
        .collect();
    t.pools =
        g.st.pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (accepted, rejected, stale) = if v3 {
                    (0, 0, 0)
                } else {
                    p.shares(crate::model::POOL_DIFFICULTY)
                };
                PoolSnapshot {
                    index: i as u32,
                    url: hashmesh_core::intern(&p.url),
                    user: p.user.clone(),
                    status: match crate::rpc::pool_status(p) {
                        "Alive" => PoolStatus::Alive,
                        "Dead" => PoolStatus::Dead,
                        _ => PoolStatus::Disabled,
                    },
                    accepted,
                    rejected,
                    stale,
                    active: r.active_pool == Some(i),
                }
            })
            .collect();
    t.errors = active_errors(r, g.faults)
        .into_iter()
        .map(|(code, m)| VendorError {
            code: code.to_string(),
            message: m.to_string(),
        })
        .collect();
    t.derive_efficiency();
    t
}
