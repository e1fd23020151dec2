//! The Braiins OS public REST API (PROTOCOLS.md §5.1) on the web port, in front of a simulated
//! Braiins device: token login (`POST /api/v1/auth/login`, sessions that expire after a period
//! of inactivity), constraints, power target, tuner state, miner configuration, locate LED,
//! pause / resume / reboot. Writes change the device through [`RunningDevice::update`], so a
//! power target set here changes the `tunerstatus` the 4028 API reports and the physics.

use super::{Answer, HttpRequest, HttpResponse, WebFault};
use crate::device::{RunningDevice, now_ms};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// How to build a simulated Braiins REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct BraiinsWebConfig {
    /// Accepted user name.
    pub username: String,
    /// Accepted password.
    pub password: String,
    /// A session unused for this long is gone (3,600 s on real devices).
    pub session_idle: Duration,
    /// Faults present from the start.
    pub faults: Vec<WebFault>,
}

impl Default for BraiinsWebConfig {
    fn default() -> Self {
        BraiinsWebConfig {
            username: "root".into(),
            password: "root".into(),
            session_idle: Duration::from_secs(3_600),
            faults: Vec::new(),
        }
    }
}

struct Shared {
    connections: Arc<AtomicU64>,
    device: Arc<RunningDevice>,
    cfg: BraiinsWebConfig,
    faults: Mutex<Vec<WebFault>>,
    /// Token → last use.
    sessions: Mutex<HashMap<String, Instant>>,
    logins: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A REST API that is serving. Dropping it stops it (the device keeps running).
pub struct RunningBraiinsWeb {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: AbortHandle,
}

impl Drop for RunningBraiinsWeb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningBraiinsWeb {
    /// The address the API serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Successful logins so far.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::Relaxed)
    }

    /// Ends every session now, as 3,600 s of inactivity would.
    pub fn expire_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// Replaces the web faults (from the next request on).
    pub fn set_faults(&self, faults: Vec<WebFault>) {
        *lock(&self.shared.faults) = faults;
    }

    /// The allowed power-target range, W (min, max).
    pub fn power_range_w(&self) -> (u32, u32) {
        power_range_w(&self.shared.device)
    }
}

/// The tuner's allowed range: 1,700–6,500 W on a ~3.25 kW model (pyasic issue #242), scaled
/// to the nameplate.
fn power_range_w(device: &RunningDevice) -> (u32, u32) {
    let p = device.nameplate().power_w;
    ((p * 0.52).round() as u32, (p * 2.0).round() as u32)
}

/// Starts the REST API of `device` at `addr` (port 0 picks a free port).
pub async fn spawn_braiins_web(
    device: Arc<RunningDevice>,
    config: BraiinsWebConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningBraiinsWeb> {
    let (listener, local) = super::bind(addr).await?;
    let shared = Arc::new(Shared {
        connections: Arc::new(AtomicU64::new(0)),
        faults: Mutex::new(config.faults.clone()),
        device,
        cfg: config,
        sessions: Mutex::new(HashMap::new()),
        logins: AtomicU64::new(0),
    });
    let s = shared.clone();
    let handler = Arc::new(move |req: HttpRequest| {
        let s = s.clone();
        async move { handle(&s, req) }
    });
    let task =
        tokio::spawn(super::serve(listener, handler, shared.connections.clone())).abort_handle();
    Ok(RunningBraiinsWeb {
        shared,
        addr: local,
        task,
    })
}

fn handle(s: &Arc<Shared>, req: HttpRequest) -> Answer {
    let faults = lock(&s.faults).clone();
    if faults.contains(&WebFault::Hang) {
        return Answer::Hang;
    }
    if s.device.update(|st| st.is_down(now_ms())) {
        return Answer::Drop;
    }
    let answer = route(s, &req, &faults);
    match answer {
        Answer::Respond(r) if faults.contains(&WebFault::Slow) => {
            Answer::Delayed(s.device.config().timing.slow_reply_min, r)
        }
        other => other,
    }
}

fn error(status: u16, message: &str) -> Answer {
    Answer::Respond(HttpResponse::json(
        status,
        json!({"message": message}).to_string(),
    ))
}

fn ok(v: Value) -> Answer {
    Answer::Respond(HttpResponse::json(200, v.to_string()))
}

fn login(s: &Shared, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "invalid JSON body");
    };
    let user = v.get("username").and_then(Value::as_str);
    let pass = v.get("password").and_then(Value::as_str);
    if user != Some(s.cfg.username.as_str()) || pass != Some(s.cfg.password.as_str()) {
        return error(401, "Invalid credentials");
    }
    let n = s.logins.fetch_add(1, Ordering::Relaxed) + 1;
    let token = format!("{:016x}{n:08x}", s.device.config().seed);
    lock(&s.sessions).insert(token.clone(), Instant::now());
    ok(json!({"token": token, "timeout_s": s.cfg.session_idle.as_secs()}))
}

fn authorized(s: &Shared, req: &HttpRequest) -> bool {
    let Some(token) = req.header("authorization") else {
        return false;
    };
    let mut sessions = lock(&s.sessions);
    sessions.retain(|_, used| used.elapsed() < s.cfg.session_idle);
    match sessions.get_mut(token.trim()) {
        Some(used) => {
            *used = Instant::now();
            true
        }
        None => false,
    }
}

fn route(s: &Arc<Shared>, req: &HttpRequest, faults: &[WebFault]) -> Answer {
    if faults.contains(&WebFault::Forbidden) {
        return error(403, "Forbidden");
    }
    if faults.contains(&WebFault::ServerError) {
        return error(500, "Internal Server Error");
    }
    let path = req.path.split('?').next().unwrap_or("");
    if (req.method.as_str(), path) == ("POST", "/api/v1/auth/login") {
        if faults.contains(&WebFault::Unauthorized) {
            return error(401, "Invalid credentials");
        }
        return login(s, &req.body);
    }
    if !path.starts_with("/api/v1/") {
        return error(404, "Not Found");
    }
    if faults.contains(&WebFault::Unauthorized) || !authorized(s, req) {
        return error(401, "Unauthorized");
    }
    let np = s.device.nameplate();
    let target_w = || {
        s.device
            .update(|st| st.power_target_w.unwrap_or(np.power_w as u32))
    };
    match (req.method.as_str(), path) {
        ("GET", "/api/v1/configuration/constraints") => {
            let (min, max) = power_range_w(&s.device);
            ok(json!({"tuner_constraints": {"power_target": {
                "min": {"watt": min},
                "max": {"watt": max},
                "default": {"watt": np.power_w as u32},
            }}}))
        }
        ("PUT", "/api/v1/performance/power-target") => set_power_target(s, &req.body),
        ("GET", "/api/v1/performance/tuner-state") => {
            let sleeping = s.device.update(|st| st.sleeping);
            ok(json!({
                "overall_tuner_state": if sleeping { "Stopped" } else { "Stable" },
                "power_target_mode_state": {"current_target": {"watt": target_w()}},
            }))
        }
        ("GET", "/api/v1/configuration/miner") => ok(json!({
            "tuner": {"enabled": true, "tuner_mode": "PowerTarget",
                      "power_target": {"watt": target_w()}},
        })),
        ("GET", "/api/v1/actions/locate") => ok(json!(s.device.update(|st| st.led))),
        ("PUT", "/api/v1/actions/locate") => match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Bool(on)) => {
                s.device.update(|st| st.led = on);
                ok(json!(on))
            }
            _ => error(400, "body must be true or false"),
        },
        ("PUT", "/api/v1/actions/pause") => {
            s.device.update(|st| st.sleeping = true);
            ok(json!(true))
        }
        ("PUT", "/api/v1/actions/resume") => {
            s.device.update(|st| st.sleeping = false);
            ok(json!(true))
        }
        ("PUT", "/api/v1/actions/reboot") => {
            let device = s.device.clone();
            lock(&s.sessions).clear();
            tokio::spawn(async move {
                // The controller answers, then goes down.
                tokio::time::sleep(Duration::from_millis(50)).await;
                device.reboot();
            });
            ok(json!(true))
        }
        _ => error(404, "Not Found"),
    }
}

fn set_power_target(s: &Shared, body: &[u8]) -> Answer {
    let watt = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("watt").and_then(Value::as_u64));
    let Some(watt) = watt else {
        return error(400, "body must be {\"watt\": N}");
    };
    let (min, max) = power_range_w(&s.device);
    if watt < u64::from(min) || watt > u64::from(max) {
        return error(
            400,
            &format!("Power target {watt} W is out of range {min}-{max} W"),
        );
    }
    let watt = watt as u32;
    s.device.update(|st| st.power_target_w = Some(watt));
    ok(json!({"watt": watt}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::Family;
    use crate::model::Timing;
    use crate::web::raw_request;
    use crate::{DeviceConfig, spawn_device};

    async fn rig() -> (Arc<RunningDevice>, RunningBraiinsWeb) {
        let mut cfg = DeviceConfig::new(Family::Braiins, "Antminer S19 Pro");
        cfg.timing = Timing::fast();
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let dev = Arc::new(
            spawn_device(cfg, addr)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let web = spawn_braiins_web(dev.clone(), BraiinsWebConfig::default(), addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (dev, web)
    }

    #[tokio::test]
    async fn login_then_power_target_changes_the_device() {
        let (dev, web) = rig().await;
        let a = web.local_addr();
        let (st, _, _) = raw_request(a, "GET", "/api/v1/actions/locate", &[], "").await;
        assert_eq!(st, 401);
        let bad = r#"{"username":"root","password":""}"#;
        let (st, _, _) = raw_request(a, "POST", "/api/v1/auth/login", &[], bad).await;
        assert_eq!(st, 401);
        let good = r#"{"username":"root","password":"root"}"#;
        let (st, _, body) = raw_request(a, "POST", "/api/v1/auth/login", &[], good).await;
        assert_eq!(st, 200);
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
        let token = v["token"].as_str().unwrap_or("").to_string();
        let auth = vec![format!("Authorization: {token}")];
        let (min, max) = web.power_range_w();
        let out = format!("{{\"watt\":{}}}", max + 1);
        let (st, _, body) =
            raw_request(a, "PUT", "/api/v1/performance/power-target", &auth, &out).await;
        assert_eq!(st, 400, "{body}");
        let want = min + 100;
        let set = format!("{{\"watt\":{want}}}");
        let (st, _, _) =
            raw_request(a, "PUT", "/api/v1/performance/power-target", &auth, &set).await;
        assert_eq!(st, 200);
        assert_eq!(dev.update(|s| s.power_target_w), Some(want));
        let (st, _, body) = raw_request(a, "GET", "/api/v1/configuration/miner", &auth, "").await;
        assert_eq!(st, 200);
        assert!(body.contains(&format!("\"watt\":{want}")), "{body}");
        web.expire_sessions();
        let (st, _, _) = raw_request(a, "GET", "/api/v1/actions/locate", &auth, "").await;
        assert_eq!(st, 401);
    }
}
