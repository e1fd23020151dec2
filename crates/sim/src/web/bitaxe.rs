//! A simulated Bitaxe / NerdQAxe running ESP-Miner (AxeOS), PROTOCOLS.md §6: plain HTTP with
//! no authentication, `GET /api/system/info` and `/api/system/asic`, `PATCH /api/system`
//! (settings stored at once, pools used from the next restart), `POST /api/system/restart`,
//! `identify`, `pause` and `resume`. Driven by the same physical model as the RPC devices with
//! a Bitaxe nameplate (BM1366/BM1368/BM1370), and reported in AxeOS units: GH/s, mV, mA, W.

use super::{Answer, HttpRequest, HttpResponse, WebFault};
use crate::device::{mac_for, now_ms};
use crate::family::Family;
use crate::faults::{Fault, FaultSet};
use crate::model::{DeviceState, Pool, Reading, Timing, mix};
use crate::nameplate::{self, Nameplate};
use hashmesh_core::{
    BoardSnapshot, MinerSnapshot, MinerStatus, PoolSnapshot, PoolStatus, PowerSource, Vendor,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::AbortHandle;

/// The model's clock and voltage rules are those of a plain cgminer device: one mode, no
/// profiles (AxeOS tunes by frequency and core voltage, which the simulator keeps nominal).
const MODEL_FAMILY: Family = Family::Cgminer;

/// How to build a simulated AxeOS device.
#[derive(Debug, Clone, PartialEq)]
pub struct BitaxeConfig {
    /// Nameplate model (`Bitaxe Gamma`, `Bitaxe Supra`, `Bitaxe Ultra`, `NerdQAxe++`).
    pub model: String,
    /// Seed of all per-device noise.
    pub seed: u64,
    /// How fast restarts and temperatures go.
    pub timing: Timing,
    /// MAC address, colon form.
    pub mac: String,
    /// Host name.
    pub hostname: String,
    /// Firmware version reported as `version`.
    pub version: String,
    /// Old firmware (2.0–2.4): no `pause`/`resume`, no `miningPaused`, no hashrate averages.
    pub old_firmware: bool,
    /// HTTP faults present from the start.
    pub faults: Vec<WebFault>,
    /// Hardware faults of the model (`FanFail`, `Overheat`, `DeadBoard`).
    pub hardware_faults: Vec<Fault>,
    /// Primary and fallback pool: (url, user, password).
    pub pools: Vec<(String, String, String)>,
}

impl BitaxeConfig {
    /// A device of `model` with defaults from seed 1: realistic timing, current firmware.
    pub fn new(model: &str) -> Self {
        let seed = 1;
        BitaxeConfig {
            model: model.to_string(),
            seed,
            timing: Timing::realistic(),
            mac: mac_for(seed).to_ascii_uppercase(),
            hostname: format!("bitaxe-{:04x}", mix(seed, 53, 0) & 0xffff),
            version: "v2.9.0".into(),
            old_firmware: false,
            faults: Vec::new(),
            hardware_faults: Vec::new(),
            pools: vec![
                (
                    "stratum+tcp://solo.pool-a.example:3333".into(),
                    "bc1qexampleaddress.axe1".into(),
                    "x".into(),
                ),
                (
                    "stratum+tcp://solo.pool-b.example:3334".into(),
                    "bc1qexampleaddress.axe1".into(),
                    "x".into(),
                ),
            ],
        }
    }
}

/// AxeOS stores pools as host, port, user and password.
#[derive(Debug, Clone, PartialEq)]
struct StoredPool {
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl StoredPool {
    fn from_url(url: &str, user: &str, password: &str) -> Self {
        let rest = url.split("://").last().unwrap_or(url);
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(3333)),
            None => (rest.to_string(), 3333),
        };
        StoredPool {
            host,
            port,
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    fn url(&self) -> String {
        format!("stratum+tcp://{}:{}", self.host, self.port)
    }
}

struct Inner {
    st: DeviceState,
    /// What NVS holds (reported by `info` at once); the miner uses it from the next boot.
    stored: Vec<StoredPool>,
    hostname: String,
    identify_until_ms: u64,
}

struct Shared {
    connections: Arc<AtomicU64>,
    cfg: BitaxeConfig,
    np: &'static Nameplate,
    inner: Mutex<Inner>,
    faults: Mutex<Vec<WebFault>>,
    hardware: FaultSet,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.st.advance_to(
            now_ms(),
            self.np,
            MODEL_FAMILY,
            self.cfg.seed,
            self.hardware,
            &self.cfg.timing,
        );
        g
    }
}

/// An AxeOS device that is serving. Dropping it stops it.
pub struct RunningBitaxe {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: AbortHandle,
}

impl Drop for RunningBitaxe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an AxeOS device at `addr` (port 0 picks a free port). Fails for a model that is not
/// a Bitaxe-class nameplate or an address that cannot be bound.
pub async fn spawn_bitaxe(
    config: BitaxeConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningBitaxe> {
    let np = nameplate::find(&config.model)
        .filter(|n| n.vendor == Vendor::Bitaxe)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("'{}' is not a Bitaxe-class model", config.model),
            )
        })?;
    let (listener, local) = super::bind(addr).await?;
    let stored: Vec<StoredPool> = config
        .pools
        .iter()
        .take(2)
        .map(|(u, w, p)| StoredPool::from_url(u, w, p))
        .collect();
    let pools = running_pools(&stored);
    let st = DeviceState::new(
        np,
        MODEL_FAMILY,
        config.seed,
        now_ms(),
        pools,
        &config.timing,
    );
    let shared = Arc::new(Shared {
        connections: Arc::new(AtomicU64::new(0)),
        inner: Mutex::new(Inner {
            st,
            stored,
            hostname: config.hostname.clone(),
            identify_until_ms: 0,
        }),
        faults: Mutex::new(config.faults.clone()),
        hardware: FaultSet::from_faults(&config.hardware_faults),
        np,
        cfg: config,
    });
    let s = shared.clone();
    let handler = Arc::new(move |req: HttpRequest| {
        let s = s.clone();
        async move { handle(&s, req) }
    });
    let task =
        tokio::spawn(super::serve(listener, handler, shared.connections.clone())).abort_handle();
    Ok(RunningBitaxe {
        shared,
        addr: local,
        task,
    })
}

fn running_pools(stored: &[StoredPool]) -> Vec<Pool> {
    stored
        .iter()
        .enumerate()
        .map(|(i, p)| Pool::new(&p.url(), &p.user, &p.password, i as u32))
        .collect()
}

impl RunningBitaxe {
    /// TCP connections accepted so far (a keep-alive client needs one).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The address the device serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The device's nameplate.
    pub fn nameplate(&self) -> &'static Nameplate {
        self.shared.np
    }

    /// Replaces the HTTP faults (from the next request on).
    pub fn set_faults(&self, faults: Vec<WebFault>) {
        *self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Changes the model's state directly, after advancing it to now.
    pub fn update<R>(&self, f: impl FnOnce(&mut DeviceState) -> R) -> R {
        f(&mut self.shared.lock().st)
    }

    /// Whether identify mode (the "Hi!" screen and blinking) is on now.
    pub fn identifying(&self) -> bool {
        self.shared.lock().identify_until_ms > now_ms()
    }

    /// What the device's `info` reports right now, in core units.
    pub fn truth(&self) -> MinerSnapshot {
        let now = now_ms();
        let g = self.shared.lock();
        if g.st.is_down(now) {
            return MinerSnapshot::empty(now as i64, MinerStatus::Offline);
        }
        let r = g.st.read(
            self.shared.np,
            MODEL_FAMILY,
            self.shared.cfg.seed,
            self.shared.hardware,
        );
        truth_of(&self.shared, &g, &r, now)
    }
}

fn truth_of(s: &Shared, g: &Inner, r: &Reading, now: u64) -> MinerSnapshot {
    let mut m = MinerSnapshot::empty(now as i64, r.status);
    m.hashrate_ths = Some(r.rate_5s_ghs / 1000.0);
    if !s.cfg.old_firmware {
        m.hashrate_avg_ths = Some(r.rate_avg_ghs / 1000.0);
    }
    m.expected_hashrate_ths = Some(r.rate_ideal_ghs / 1000.0);
    let b = r.boards.first();
    m.boards.push(BoardSnapshot {
        index: 0,
        hashrate_ths: m.hashrate_ths,
        expected_hashrate_ths: m.expected_hashrate_ths,
        chip_temp_c: b.map(|b| f64::from(b.chip_max_c())).filter(|t| *t > 0.0),
        board_temp_c: b.map(|b| f64::from(b.pcb_max_c())).filter(|t| *t > 0.0),
        chips_expected: Some(u32::from(s.np.chips_per_board)),
        frequency_mhz: b.map(|b| b.frequency_mhz),
        voltage_v: b.map(|b| b.voltage_v),
        ..BoardSnapshot::default()
    });
    m.fans_rpm = r.fans_rpm.clone();
    m.power_w = Some(f64::from(r.power_w));
    m.power_source = Some(PowerSource::Measured);
    let active = r.active_pool;
    m.pools = g
        .stored
        .iter()
        .enumerate()
        .map(|(i, p)| PoolSnapshot {
            index: i as u32,
            url: hashmesh_core::intern(&p.url()),
            user: p.user.clone(),
            status: if active == Some(i) && r.rate_5s_ghs > 0.0 {
                PoolStatus::Alive
            } else {
                PoolStatus::Unknown
            },
            accepted: if active == Some(i) { r.accepted } else { 0 },
            rejected: if active == Some(i) { r.rejected } else { 0 },
            stale: 0,
            active: active.map_or(i == 0, |a| a == i),
        })
        .collect();
    m.uptime_s = Some(r.elapsed_s);
    m.derive_efficiency();
    m
}

fn handle(s: &Arc<Shared>, req: HttpRequest) -> Answer {
    let faults = s.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if faults.contains(&WebFault::Hang) {
        return Answer::Hang;
    }
    if s.lock().st.is_down(now_ms()) {
        return Answer::Drop;
    }
    let resp = if faults.contains(&WebFault::Unauthorized) {
        // What AxeOS answers a client outside the private ranges.
        HttpResponse::text(401, "Unauthorized")
    } else if faults.contains(&WebFault::Forbidden) {
        HttpResponse::text(403, "Forbidden")
    } else if faults.contains(&WebFault::ServerError) {
        HttpResponse::text(500, "Internal Server Error")
    } else {
        route(s, &req)
    };
    if faults.contains(&WebFault::Slow) {
        Answer::Delayed(s.cfg.timing.slow_reply_min, resp)
    } else {
        Answer::Respond(resp)
    }
}

fn route(s: &Arc<Shared>, req: &HttpRequest) -> HttpResponse {
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "/api/system/info") => HttpResponse::json(200, info(s).to_string()),
        ("GET", "/api/system/asic") => HttpResponse::json(200, asic(s).to_string()),
        ("PATCH", "/api/system") => patch(s, &req.body),
        ("POST", "/api/system/restart") => {
            let shared = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = now_ms();
                let mut g = shared.lock();
                let pools = running_pools(&g.stored);
                g.st.pools = pools;
                g.st.sleeping = false;
                g.st.go_down(now, shared.cfg.timing.reboot);
            });
            HttpResponse::text(200, "System will restart shortly.")
        }
        ("POST", "/api/system/identify") => {
            s.lock().identify_until_ms = now_ms() + 30_000;
            HttpResponse::text(200, "Identify mode toggled")
        }
        ("POST", "/api/system/pause") if !s.cfg.old_firmware => {
            s.lock().st.sleeping = true;
            HttpResponse::json(200, r#"{"message":"Mining paused"}"#)
        }
        ("POST", "/api/system/resume") if !s.cfg.old_firmware => {
            s.lock().st.sleeping = false;
            HttpResponse::json(200, r#"{"message":"Mining resumed"}"#)
        }
        ("OPTIONS", _) => {
            let mut r = HttpResponse::text(200, "");
            r.headers.push((
                "Access-Control-Allow-Methods".into(),
                "GET, POST, PUT, PATCH, DELETE, OPTIONS".into(),
            ));
            r
        }
        _ => HttpResponse::text(404, "Not Found"),
    }
}

fn info(s: &Shared) -> Value {
    let now = now_ms();
    let g = s.lock();
    let r = g.st.read(s.np, MODEL_FAMILY, s.cfg.seed, s.hardware);
    let b = r.boards.first();
    let chip_c = b.map_or(0, |b| b.chip_max_c());
    let vr_c = b.map_or(0, |b| b.pcb_max_c());
    let input_mv = 5100.0 + (mix(s.cfg.seed, 54, r.now_s / 5) % 100) as f64;
    let power = f64::from(r.power_w);
    let primary = g.stored.first();
    let fallback = g.stored.get(1);
    let on_fallback = r.active_pool == Some(1);
    let field = |p: Option<&StoredPool>, f: fn(&StoredPool) -> Value| p.map_or(json!(""), f);
    let mut v = json!({
        "power": power,
        "voltage": input_mv,
        "current": (power / input_mv * 1e6).round(),
        "temp": chip_c,
        "vrTemp": vr_c,
        "hashRate": r.rate_5s_ghs,
        "expectedHashrate": r.rate_ideal_ghs,
        "bestDiff": format!("{}M", r.best_share / 1_000_000),
        "bestSessionDiff": "0",
        "coreVoltage": (s.np.voltage_v * 1000.0).round(),
        "coreVoltageActual": b.map_or(0.0, |b| (b.voltage_v * 1000.0).round()),
        "frequency": s.np.frequency_mhz,
        "ssid": "farm-iot",
        "macAddr": s.cfg.mac,
        "hostname": g.hostname,
        "wifiStatus": "Connected!",
        "sharesAccepted": r.accepted,
        "sharesRejected": r.rejected,
        "uptimeSeconds": r.elapsed_s,
        "asicCount": s.np.chips_per_board,
        "smallCoreCount": 2040,
        "ASICModel": s.np.chip,
        "stratumURL": field(primary, |p| json!(p.host)),
        "stratumPort": field(primary, |p| json!(p.port)),
        "stratumUser": field(primary, |p| json!(p.user)),
        "fallbackStratumURL": field(fallback, |p| json!(p.host)),
        "fallbackStratumPort": field(fallback, |p| json!(p.port)),
        "fallbackStratumUser": field(fallback, |p| json!(p.user)),
        "isUsingFallbackStratum": u8::from(on_fallback),
        "version": s.cfg.version,
        "boardVersion": "601",
        "runningPartition": "factory",
        "flipscreen": 1,
        "invertscreen": 0,
        "autofanspeed": 1,
        "fanspeed": r.fan_duty_pct,
        "fanrpm": r.fans_rpm.first().copied().unwrap_or(0),
        "temptarget": s.np.chip_target_c,
        "overheat_mode": 0,
    });
    if let Some(m) = v.as_object_mut() {
        if !s.np.name.starts_with("Bitaxe") {
            // Derived firmwares (NerdQAxe …) name their board; stock AxeOS does not.
            m.insert("deviceModel".into(), json!(s.np.name));
        }
        if let Some(rpm) = r.fans_rpm.get(1) {
            m.insert("fan2rpm".into(), json!(rpm));
        }
        if !s.cfg.old_firmware {
            m.insert("hashRate_1m".into(), json!(r.rate_5s_ghs));
            m.insert("hashRate_10m".into(), json!(r.rate_avg_ghs));
            m.insert("hashRate_1h".into(), json!(r.rate_avg_ghs));
            m.insert(
                "actualFrequency".into(),
                json!(b.map_or(0.0, |b| b.frequency_mhz)),
            );
            m.insert("miningPaused".into(), json!(g.st.sleeping));
            m.insert("axeOSVersion".into(), json!(s.cfg.version));
            m.insert("identifyMode".into(), json!(g.identify_until_ms > now));
        }
    }
    v
}

fn asic(s: &Shared) -> Value {
    let f = s.np.frequency_mhz;
    let mv = (s.np.voltage_v * 1000.0).round();
    json!({
        "ASICModel": s.np.chip,
        "deviceModel": s.np.name,
        "asicCount": s.np.chips_per_board,
        "defaultFrequency": f,
        "frequencyOptions": [f - 75.0, f - 50.0, f - 25.0, f, f + 25.0, f + 50.0],
        "defaultVoltage": mv,
        "voltageOptions": [mv - 50.0, mv, mv + 50.0, mv + 100.0],
    })
}

fn patch(s: &Shared, body: &[u8]) -> HttpResponse {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return HttpResponse::text(400, "Invalid JSON");
    };
    let mut g = s.lock();
    while g.stored.len() < 2 {
        g.stored.push(StoredPool {
            host: String::new(),
            port: 3333,
            user: String::new(),
            password: String::new(),
        });
    }
    for (i, prefix) in ["stratum", "fallbackStratum"].into_iter().enumerate() {
        let Some(p) = g.stored.get_mut(i) else {
            continue;
        };
        if let Some(v) = m.get(&format!("{prefix}URL")).and_then(Value::as_str) {
            p.host = v.to_string();
        }
        if let Some(v) = m.get(&format!("{prefix}Port")).and_then(Value::as_u64) {
            match u16::try_from(v) {
                Ok(port) if port > 0 => p.port = port,
                _ => return HttpResponse::text(400, "Invalid port"),
            }
        }
        if let Some(v) = m.get(&format!("{prefix}User")).and_then(Value::as_str) {
            p.user = v.to_string();
        }
        if let Some(v) = m.get(&format!("{prefix}Password")).and_then(Value::as_str) {
            p.password = v.to_string();
        }
    }
    g.stored.retain(|p| !p.host.is_empty());
    if let Some(h) = m.get("hostname").and_then(Value::as_str) {
        g.hostname = h.to_string();
    }
    HttpResponse::text(200, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::raw_request;

    async fn device(old: bool) -> RunningBitaxe {
        let mut cfg = BitaxeConfig::new("Bitaxe Gamma");
        cfg.timing = Timing::fast();
        cfg.old_firmware = old;
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        spawn_bitaxe(cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn info(d: &RunningBitaxe) -> Value {
        let (status, _, body) =
            raw_request(d.local_addr(), "GET", "/api/system/info", &[], "").await;
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap_or_default()
    }

    #[tokio::test]
    async fn info_is_in_axeos_units() {
        let d = device(false).await;
        let v = info(&d).await;
        let num = |k: &str| v[k].as_f64().unwrap_or(-1.0);
        assert!((1100.0..1300.0).contains(&num("hashRate")), "GH/s: {v}");
        assert_eq!(num("expectedHashrate"), 1200.0);
        assert!((5000.0..5300.0).contains(&num("voltage")), "mV: {v}");
        assert_eq!(num("coreVoltage"), 1150.0);
        assert_eq!(v["ASICModel"], "BM1370");
        assert_eq!(v["stratumURL"], "solo.pool-a.example");
        assert_eq!(v["stratumPort"], 3333);
        assert_eq!(v["miningPaused"], false);
        let truth = d.truth();
        assert!((truth.hashrate_ths.unwrap_or(0.0) - num("hashRate") / 1000.0).abs() < 0.05);
    }

    #[tokio::test]
    async fn pools_apply_at_restart_and_pause_stops_hashing() {
        let d = device(false).await;
        let addr = d.local_addr();
        let patch = r#"{"stratumURL":"new.example","stratumPort":4444,"stratumUser":"bc1q.new"}"#;
        assert_eq!(
            raw_request(addr, "PATCH", "/api/system", &[], patch)
                .await
                .0,
            200
        );
        // Stored at once, used from the next boot.
        assert_eq!(info(&d).await["stratumURL"], "new.example");
        let running = d.update(|st| st.pools[0].url.clone());
        assert_eq!(running, "stratum+tcp://solo.pool-a.example:3333");
        assert_eq!(
            raw_request(addr, "POST", "/api/system/restart", &[], "")
                .await
                .0,
            200
        );
        // Down for about a second, back at a whole second.
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let v = info(&d).await;
        assert!(v["uptimeSeconds"].as_u64().unwrap_or(999) < 5, "{v}");
        let running = d.update(|st| st.pools[0].url.clone());
        assert_eq!(running, "stratum+tcp://new.example:4444");
        assert_eq!(
            raw_request(addr, "POST", "/api/system/pause", &[], "")
                .await
                .0,
            200
        );
        let v = info(&d).await;
        assert_eq!(
            (v["miningPaused"].clone(), v["hashRate"].as_f64()),
            (json!(true), Some(0.0))
        );
        assert_eq!(d.truth().status, MinerStatus::Sleeping);
        assert_eq!(
            raw_request(addr, "PATCH", "/api/system", &[], "{nope")
                .await
                .0,
            400
        );
        assert_eq!(
            raw_request(addr, "GET", "/api/nothing", &[], "").await.0,
            404
        );
    }

    #[tokio::test]
    async fn old_firmware_lacks_pause_and_new_fields() {
        let d = device(true).await;
        let v = info(&d).await;
        assert!(v.get("miningPaused").is_none() && v.get("hashRate_1h").is_none());
        let (status, _, _) =
            raw_request(d.local_addr(), "POST", "/api/system/pause", &[], "").await;
        assert_eq!(status, 404);
        d.set_faults(vec![WebFault::ServerError]);
        let (status, _, _) = raw_request(d.local_addr(), "GET", "/api/system/info", &[], "").await;
        assert_eq!(status, 500);
    }
}
