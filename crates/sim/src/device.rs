//! One simulated device on a TCP listener: the cgminer RPC (4028 on real hardware), its
//! reboots (the listener closes and reopens), and the socket-level faults.
//!
//! Each device is one accept task; connections are tasks it owns, so dropping the
//! [`RunningDevice`] stops them all, and a hanging connection never holds up another device.

use crate::family::Family;
use crate::faults::{Fault, FaultSet};
use crate::model::{DeviceState, Pool, Reading, Timing, mix, unit};
use crate::nameplate::{self, Nameplate};
use crate::rpc::{self, Effect, MAX_REQUEST_BYTES};
use hashmesh_core::{
    BoardSnapshot, Location, MinerSnapshot, MinerStatus, PoolSnapshot, PoolStatus, PowerMode,
    PowerSource,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};

/// How to build one simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Firmware family.
    pub family: Family,
    /// Nameplate model, e.g. `Antminer S19 Pro` (see [`nameplate::NAMEPLATES`]).
    pub model: String,
    /// Seed of all per-device noise; the same seed gives the same device.
    pub seed: u64,
    /// Faults present from the start.
    pub faults: Vec<Fault>,
    /// How fast reboots, restarts and temperatures go.
    pub timing: Timing,
    /// Where the device stands (for manifests; not on any wire).
    pub location: Location,
    /// MAC address, colon form.
    pub mac: String,
    /// Unit serial number.
    pub serial: String,
    /// The RPC grants write (privileged) commands; otherwise they answer Code 45. Stock
    /// Antminer firmware defaults to read-only here; the other families allow writes.
    pub rpc_write_access: bool,
    /// Pools configured at start, first = highest priority: (url, user, password).
    pub pools: Vec<(String, String, String)>,
    /// Emit the malformed JSON some real firmware sends (Avalon: bare `nan`/`-nan`/`inf`
    /// numbers, PROTOCOLS.md §1.10), for testing a client's repair pass.
    pub firmware_quirks: bool,
}

impl DeviceConfig {
    /// A device of `family` and `model` with defaults derived from seed 1: realistic timing,
    /// no faults, three pools.
    pub fn new(family: Family, model: &str) -> Self {
        let seed = 1;
        DeviceConfig {
            family,
            model: model.to_string(),
            seed,
            faults: Vec::new(),
            timing: Timing::realistic(),
            location: Location::default(),
            mac: mac_for(seed),
            serial: serial_for(family, seed),
            rpc_write_access: family != Family::Antminer,
            pools: default_pools(seed),
            firmware_quirks: false,
        }
    }

    /// The same device with another seed, and the MAC, serial and pools derived from it.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.mac = mac_for(seed);
        self.serial = serial_for(self.family, seed);
        self.pools = default_pools(seed);
        self
    }
}

/// A locally administered MAC derived from a seed.
pub fn mac_for(seed: u64) -> String {
    let h = mix(seed, 50, 0);
    let b = |i: u32| (h >> (8 * i)) as u8;
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b(0),
        b(1),
        b(2),
        b(3),
        b(4)
    )
}

/// A serial number in the family's style, derived from a seed.
pub fn serial_for(family: Family, seed: u64) -> String {
    let h = mix(seed, 51, 0);
    match family {
        Family::Antminer | Family::Braiins | Family::LuxOs => {
            format!("JYZZ{:012X}", h & 0xffff_ffff_ffff)
        }
        Family::Avalon => format!("A{:014X}", h & 0xff_ffff_ffff_ffff),
        Family::Cgminer | Family::Bfgminer => format!("CG{:010X}", h & 0xff_ffff_ffff),
    }
}

/// Three pools with a worker name derived from a seed.
pub fn default_pools(seed: u64) -> Vec<(String, String, String)> {
    let worker = format!("hashmesh.w{:06}", mix(seed, 52, 0) % 1_000_000);
    [
        "stratum+tcp://btc.pool-a.example:3333",
        "stratum+tcp://btc.pool-b.example:443",
        "stratum+tcp://btc.pool-c.example:25",
    ]
    .into_iter()
    .map(|u| (u.to_string(), worker.clone(), "x".to_string()))
    .collect()
}

/// What the accept loop and the connections share.
struct Shared {
    cfg: DeviceConfig,
    np: &'static Nameplate,
    state: Mutex<DeviceState>,
    faults: AtomicU16,
    /// Wakes the accept loop when it must close or reopen its listener.
    wake: Notify,
    /// Counts connections, for per-connection noise (garbage bytes, slow delays).
    connections: AtomicU32,
}

impl Shared {
    fn faults(&self) -> FaultSet {
        FaultSet::from_bits(self.faults.load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        // A panic while holding the lock cannot leave the numbers half-written in a way that
        // matters to a simulator, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state advanced to now.
    fn state_now(&self, now_ms: u64) -> MutexGuard<'_, DeviceState> {
        let mut st = self.lock();
        st.advance_to(
            now_ms,
            self.np,
            self.cfg.family,
            self.cfg.seed,
            self.faults(),
            &self.cfg.timing,
        );
        st
    }
}

/// A device that is serving. Dropping it stops the listener and every open connection.
pub struct RunningDevice {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: AbortHandle,
}

impl Drop for RunningDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Now, unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts a device listening at `addr` (port 0 picks a free port). Fails if the model is
/// unknown, does not fit the family, or the address cannot be bound.
pub async fn spawn_device(
    config: DeviceConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningDevice> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let np = nameplate::find(&config.model)
        .ok_or_else(|| invalid(format!("unknown model '{}'", config.model)))?;
    if !np.fits(config.family) {
        return Err(invalid(format!(
            "model '{}' cannot run {} firmware",
            np.name, config.family
        )));
    }
    let faults = FaultSet::from_faults(&config.faults);
    let listener = if faults.has(Fault::Offline) {
        None
    } else {
        Some(TcpListener::bind(addr).await?)
    };
    // With an ephemeral port and no listener yet, reserve a port so the address is stable.
    let local = match &listener {
        Some(l) => l.local_addr()?,
        None if addr.port() == 0 => TcpListener::bind(addr).await?.local_addr()?,
        None => addr,
    };
    let pools = config
        .pools
        .iter()
        .enumerate()
        .map(|(i, (u, w, p))| Pool::new(u, w, p, i as u32))
        .collect();
    let state = DeviceState::new(
        np,
        config.family,
        config.seed,
        now_ms(),
        pools,
        &config.timing,
    );
    let shared = Arc::new(Shared {
        cfg: config,
        np,
        state: Mutex::new(state),
        faults: AtomicU16::new(faults.bits()),
        wake: Notify::new(),
        connections: AtomicU32::new(0),
    });
    let task = tokio::spawn(serve(shared.clone(), local, listener)).abort_handle();
    Ok(RunningDevice {
        shared,
        addr: local,
        task,
    })
}

impl RunningDevice {
    /// The address the device serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The device's configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.shared.cfg
    }

    /// The device's nameplate.
    pub fn nameplate(&self) -> &'static Nameplate {
        self.shared.np
    }

    /// Replaces the device's faults. Takes effect for the next connection (and at once for
    /// `offline`).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared
            .faults
            .store(FaultSet::from_faults(&faults).bits(), Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    /// The current faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.faults().to_vec()
    }

    /// Changes the device's state directly (what a web interface of the firmware would do),
    /// after advancing it to now. Use it to drive controls the RPC does not offer.
    pub fn update<R>(&self, f: impl FnOnce(&mut DeviceState) -> R) -> R {
        let r = f(&mut self.shared.state_now(now_ms()));
        self.shared.wake.notify_one();
        r
    }

    /// Takes the device away for a reboot now (as a web-interface reboot would).
    pub fn reboot(&self) {
        let now = now_ms();
        self.shared
            .state_now(now)
            .go_down(now, self.shared.cfg.timing.reboot);
        self.shared.wake.notify_one();
    }

    /// What the device reports on its wire right now, in core units (see [`truth_of`]).
    pub fn truth(&self) -> MinerSnapshot {
        let now = now_ms();
        let st = self.shared.state_now(now);
        let faults = self.shared.faults();
        let s = &self.shared;
        if faults.has(Fault::Offline) || st.is_down(now) {
            return MinerSnapshot::empty(now as i64, MinerStatus::Offline);
        }
        let reading = st.read(s.np, s.cfg.family, s.cfg.seed, faults);
        truth_of(&s.cfg, s.np, &st, &reading, now)
    }
}

/// The ground truth of a device as its family's wire encodes it, in core units. Fields a
/// family does not report on its RPC are `None` (stock Antminer reports no power and no LED
/// state over 4028; plain cgminer/BFGMiner report no fans, power or per-board chip counts).
///
/// Per family, what the fields are read from:
/// * hashrate: the 5 s key (`MHS 5s`, `MHS 20s` on BFGMiner, `GHS 5s`, Avalon `GHSspd`);
///   average: `MHS av` / `GHS av` / `GHSavg`; expected: `total_rateideal` / `GHSmm` /
///   `Nominal MHS` (Braiins) / the current profile's hashrate (LuxOS).
/// * boards: in the order the firmware lists populated boards. `chip_temp_c` = the hottest
///   chip sensor (`temp_chipN`, `MTmax`, `temps` Chip, `devs` Temperature on cgminer);
///   `board_temp_c` = the hottest PCB sensor (`temp_pcbN`, `temps` Board); a dead board has
///   0 working chips, `failed` true, and no chip temperature.
/// * status: `Sleeping` when asleep/soft-off/paused/curtailed; `Degraded` with a dead board, a
///   stopped fan, a chip above the model's limit, or no pool to hash on; else `Mining`.
/// * power: Avalon `WALLPOWER` (measured), Braiins `ApproximateMinerPowerConsumption` and
///   LuxOS `POWER.Watts` (firmware estimates). Power target: Avalon `MPO`, Braiins
///   `PowerLimit`, LuxOS the current profile's `Watts`.
/// * power mode: Antminer `Mode`/`miner-mode` (0 normal, 3 low; none while asleep), Avalon
///   `WORKMODE` (0 normal, 1 high, 2 low).
/// * LED: Avalon `Led`, LuxOS `config` `RedLed` (`off` = off).
pub fn truth_of(
    cfg: &DeviceConfig,
    np: &Nameplate,
    st: &DeviceState,
    r: &Reading,
    now_ms: u64,
) -> MinerSnapshot {
    let family = cfg.family;
    let mut s = MinerSnapshot::empty(now_ms as i64, r.status);
    s.hashrate_ths = Some(r.rate_5s_ghs / 1000.0);
    s.hashrate_avg_ths = Some(r.rate_avg_ghs / 1000.0);
    s.uptime_s = Some(r.elapsed_s);
    s.hardware_errors = Some(r.hw_errors);
    s.expected_hashrate_ths = match family {
        Family::Antminer | Family::Avalon | Family::Braiins | Family::LuxOs => {
            Some(r.rate_ideal_ghs / 1000.0)
        }
        Family::Cgminer | Family::Bfgminer => None,
    };
    s.boards = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut bs = BoardSnapshot {
                index: i as u32,
                hashrate_ths: Some(b.rate_ghs / 1000.0),
                chip_temp_c: (!b.failed).then_some(f64::from(b.chip_max_c())),
                failed: b.failed,
                ..Default::default()
            };
            match family {
                Family::Antminer | Family::LuxOs => {
                    bs.expected_hashrate_ths = Some(b.ideal_ghs / 1000.0);
                    bs.board_temp_c = Some(f64::from(b.pcb_max_c()));
                    bs.chips_working = Some(b.chips_working);
                    bs.frequency_mhz = Some(b.frequency_mhz);
                    bs.hardware_errors = Some(b.hw_errors);
                }
                Family::Braiins => {
                    bs.expected_hashrate_ths = Some(b.ideal_ghs / 1000.0);
                    bs.board_temp_c = Some(f64::from(b.pcb_max_c()));
                    bs.chips_working = Some(b.chips_working);
                    bs.frequency_mhz = Some(b.frequency_mhz);
                    bs.voltage_v = Some(b.voltage_v);
                    bs.hardware_errors = Some(b.hw_errors);
                }
                Family::Avalon => {}
                Family::Cgminer | Family::Bfgminer => bs.hardware_errors = Some(b.hw_errors),
            }
            bs
        })
        .collect();
    if !matches!(family, Family::Cgminer | Family::Bfgminer) {
        s.fans_rpm = r.fans_rpm.clone();
    }
    match family {
        Family::Avalon => {
            s.power_w = Some(f64::from(r.power_w));
            s.power_source = Some(PowerSource::Measured);
            s.power_target_w = Some(f64::from(r.nominal_power_w.div_ceil(10) * 10));
            s.power_mode = Some(st.mode);
            s.locate_led_on = Some(st.led);
            s.ambient_temp_c = Some(f64::from(r.ambient_c));
        }
        Family::Braiins => {
            s.power_w = Some(f64::from(r.power_w));
            s.power_source = Some(PowerSource::FirmwareEstimated);
            s.power_target_w = Some(f64::from(st.power_target_w.unwrap_or(np.power_w as u32)));
        }
        Family::LuxOs => {
            s.power_w = Some(f64::from(r.power_w));
            s.power_source = Some(PowerSource::FirmwareEstimated);
            s.power_target_w = Some(f64::from(r.nominal_power_w));
            s.locate_led_on = Some(st.led);
        }
        Family::Antminer => {
            s.power_mode = if st.sleeping {
                None
            } else if st.mode == PowerMode::Low {
                Some(PowerMode::Low)
            } else {
                Some(PowerMode::Normal)
            };
        }
        Family::Cgminer | Family::Bfgminer => {}
    }
    s.pools = st
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (accepted, rejected, stale) = p.shares(crate::model::POOL_DIFFICULTY);
            PoolSnapshot {
                index: i as u32,
                url: hashmesh_core::intern(&p.url),
                user: p.user.clone(),
                status: match rpc::pool_status(p) {
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
    s.derive_efficiency();
    s
}

async fn serve(shared: Arc<Shared>, addr: SocketAddr, mut listener: Option<TcpListener>) {
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        let now = now_ms();
        let down_until = shared.lock().down_until_ms;
        let offline = shared.faults().has(Fault::Offline);
        if offline || down_until > now {
            if listener.take().is_some() {
                // A rebooting device drops every connection it had.
                conns.abort_all();
            }
            let wait = if down_until > now {
                Duration::from_millis(down_until - now)
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            listener = rebind(addr).await;
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(handle(shared.clone(), stream));
                }
                // Out of file descriptors or similar: back off instead of spinning.
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shared.wake.notified() => {}
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Binds the address again after a reboot, retrying while the kernel still holds it.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for attempt in 0..100u64 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::debug!(%addr, error = %e, attempt, "rebind failed");
                tokio::time::sleep(Duration::from_millis(20 * attempt.min(25))).await;
            }
        }
    }
    tracing::warn!(%addr, "could not bind again after reboot");
    None
}

async fn handle(shared: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let conn = shared.connections.fetch_add(1, Ordering::Relaxed);
    let faults = shared.faults();
    let timing = shared.cfg.timing;
    // cgminer reads the request with one recv into a 4 KiB buffer.
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let n = match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return,
    };
    if faults.has(Fault::Hang) {
        // Keep the socket open, reading and discarding, until the client gives up.
        let _ = tokio::time::timeout(timing.hang_max, async {
            let mut sink = [0u8; 1024];
            while let Ok(k) = stream.read(&mut sink).await {
                if k == 0 {
                    break;
                }
            }
        })
        .await;
        return;
    }
    let now = now_ms();
    let (reply, effect) = {
        let mut st = shared.state_now(now);
        rpc::respond(&shared.cfg, shared.np, &mut st, faults, now, &buf[..n])
    };
    let seed = shared.cfg.seed;
    if faults.has(Fault::Slow) {
        let (lo, hi) = (
            timing.slow_reply_min.as_millis() as f64,
            timing.slow_reply_max.as_millis() as f64,
        );
        let delay = lo + (hi - lo).max(0.0) * unit(seed, 60, u64::from(conn));
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    if faults.has(Fault::Garbage) {
        let len = 256 + (mix(seed, 61, u64::from(conn)) % 3840) as usize;
        let bytes: Vec<u8> = (0..len as u64)
            .map(|i| mix(seed ^ u64::from(conn), 62, i) as u8)
            .collect();
        let _ = stream.write_all(&bytes).await;
    } else if faults.has(Fault::Reset) {
        let _ = stream.write_all(&reply[..reply.len() / 3]).await;
        let _ = stream.flush().await;
        // SO_LINGER 0 makes the close an RST instead of a FIN.
        let _ = stream.set_zero_linger();
        drop(stream);
        return;
    } else if faults.has(Fault::Truncated) {
        let cut = reply.len() * (40 + (mix(seed, 63, u64::from(conn)) % 30) as usize) / 100;
        let _ = stream.write_all(&reply[..cut]).await;
    } else if faults.has(Fault::Oversized) {
        let _ = write_oversized(&mut stream, &reply).await;
    } else {
        let _ = stream.write_all(&reply).await;
    }
    let _ = stream.shutdown().await;
    if let Effect::Down(d) = effect {
        let now = now_ms();
        shared.state_now(now).go_down(now, d);
        shared.wake.notify_one();
    }
}

/// Bytes an `oversized` device sends: a valid reply padded inside with many MB of records.
pub const OVERSIZED_BYTES: usize = 16 * 1024 * 1024;

async fn write_oversized(stream: &mut TcpStream, reply: &[u8]) -> std::io::Result<()> {
    // Open a JSON object, then a huge list, then the real reply as the last member.
    stream.write_all(b"{\"PADDING\":[").await?;
    let record = b"{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},";
    let chunk: Vec<u8> = record
        .iter()
        .copied()
        .cycle()
        .take(record.len() * 640)
        .collect();
    let mut sent = 0;
    while sent < OVERSIZED_BYTES {
        stream.write_all(&chunk).await?;
        sent += chunk.len();
    }
    stream.write_all(b"{}],\"REPLY\":").await?;
    let body = reply.strip_suffix(&[0]).unwrap_or(reply);
    stream.write_all(body).await?;
    stream.write_all(b"}\0").await
}
