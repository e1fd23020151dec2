//! The Antminer stock web CGI interface (PROTOCOLS.md §2.2–2.6) in front of a simulated
//! Antminer: HTTP Digest (realm `antMiner Configuration`, `root`/`root` by default), identity
//! from `get_system_info.cgi`, the configuration (`get_miner_conf.cgi` / `set_miner_conf.cgi`)
//! with `miner-mode` 0/1/3 and three pool slots, `blink.cgi` with `get_blink_status.cgi`, and
//! `reboot.cgi`. Writes change the device's state through [`RunningDevice::update`], so a web
//! sleep really stops the hashrate the 4028 RPC reports.
//!
//! Quirks on request: slow writes (`write_delay`, ~21 s on one real build), and the older
//! firmware that reports its mode as `bitmain-work-mode` but obeys only `miner-mode` writes.

use super::digest::{AuthCheck, DigestRealm};
use super::{Answer, HttpRequest, HttpResponse, WebFault};
use crate::device::{RunningDevice, now_ms};
use crate::model::Pool;
use hashmesh_core::PowerMode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::AbortHandle;

/// How to build a simulated Antminer web interface.
#[derive(Debug, Clone, PartialEq)]
pub struct AntminerWebConfig {
    /// Digest realm.
    pub realm: String,
    /// Accepted user name.
    pub username: String,
    /// Accepted password.
    pub password: String,
    /// Host name reported by `get_system_info.cgi`.
    pub hostname: String,
    /// Faults present from the start.
    pub faults: Vec<WebFault>,
    /// How long `set_miner_conf.cgi` takes to answer.
    pub write_delay: Duration,
    /// Older firmware: reports the mode as `bitmain-work-mode` only, and ignores writes of it
    /// (only `miner-mode` changes the mode, §2.6).
    pub legacy_mode_key: bool,
    /// Issue a new nonce after this many authenticated requests (`None`: keep it).
    pub nonce_lifetime: Option<u32>,
}

impl Default for AntminerWebConfig {
    fn default() -> Self {
        AntminerWebConfig {
            realm: "antMiner Configuration".into(),
            username: "root".into(),
            password: "root".into(),
            hostname: "Antminer".into(),
            faults: Vec::new(),
            write_delay: Duration::ZERO,
            legacy_mode_key: false,
            nonce_lifetime: None,
        }
    }
}

struct Shared {
    connections: Arc<AtomicU64>,
    device: Arc<RunningDevice>,
    cfg: AntminerWebConfig,
    realm: Mutex<DigestRealm>,
    faults: Mutex<Vec<WebFault>>,
    authed: Mutex<u32>,
    last_write: Mutex<Option<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A web interface that is serving. Dropping it stops it (the device keeps running).
pub struct RunningAntminerWeb {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: AbortHandle,
}

impl Drop for RunningAntminerWeb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningAntminerWeb {
    /// TCP connections accepted so far (a keep-alive client needs one).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The address the web interface serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the web faults (from the next request on).
    pub fn set_faults(&self, faults: Vec<WebFault>) {
        *lock(&self.shared.faults) = faults;
    }

    /// The last configuration written with `set_miner_conf.cgi`, as parsed JSON.
    pub fn last_config_written(&self) -> Option<Value> {
        lock(&self.shared.last_write).clone()
    }

    /// Digest nonces issued so far (a client that reuses its nonce needs only one).
    pub fn nonces_issued(&self) -> u64 {
        lock(&self.shared.realm).nonces_issued()
    }

    /// Issues a new nonce now, as a server does when its nonce expires.
    pub fn rotate_nonce(&self) {
        lock(&self.shared.realm).rotate();
    }

    /// Whether the locate LED is blinking.
    pub fn led_on(&self) -> bool {
        self.shared.device.update(|st| st.led)
    }
}

/// Starts the web interface of `device` at `addr` (port 0 picks a free port).
pub async fn spawn_antminer_web(
    device: Arc<RunningDevice>,
    config: AntminerWebConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningAntminerWeb> {
    let (listener, local) = super::bind(addr).await?;
    let realm = DigestRealm::new(
        &config.realm,
        &config.username,
        &config.password,
        device.config().seed,
    );
    let shared = Arc::new(Shared {
        connections: Arc::new(AtomicU64::new(0)),
        faults: Mutex::new(config.faults.clone()),
        device,
        cfg: config,
        realm: Mutex::new(realm),
        authed: Mutex::new(0),
        last_write: Mutex::new(None),
    });
    let s = shared.clone();
    let handler = Arc::new(move |req: HttpRequest| {
        let s = s.clone();
        async move { handle(&s, req) }
    });
    let task =
        tokio::spawn(super::serve(listener, handler, shared.connections.clone())).abort_handle();
    Ok(RunningAntminerWeb {
        shared,
        addr: local,
        task,
    })
}

fn unauthorized(s: &Shared, stale: bool) -> Answer {
    let mut r = HttpResponse::text(401, "401 Unauthorized");
    r.headers
        .push(("WWW-Authenticate".into(), lock(&s.realm).challenge(stale)));
    Answer::Respond(r)
}

fn handle(s: &Arc<Shared>, req: HttpRequest) -> Answer {
    let faults = lock(&s.faults).clone();
    let timing = s.device.config().timing;
    if faults.contains(&WebFault::Hang) {
        return Answer::Hang;
    }
    if s.device.update(|st| st.is_down(now_ms())) {
        return Answer::Drop;
    }
    let answer = route(s, &req, &faults);
    match answer {
        Answer::Respond(r) if faults.contains(&WebFault::Slow) => {
            Answer::Delayed(timing.slow_reply_min, r)
        }
        other => other,
    }
}

fn route(s: &Arc<Shared>, req: &HttpRequest, faults: &[WebFault]) -> Answer {
    if faults.contains(&WebFault::Forbidden) {
        return Answer::Respond(HttpResponse::text(403, "403 Forbidden"));
    }
    if faults.contains(&WebFault::Unauthorized) {
        lock(&s.realm).rotate();
        return unauthorized(s, false);
    }
    let check = lock(&s.realm).check(req.header("authorization"), &req.method, &req.path);
    match check {
        AuthCheck::Denied => return unauthorized(s, false),
        AuthCheck::Stale => return unauthorized(s, true),
        AuthCheck::Ok => {}
    }
    {
        let mut n = lock(&s.authed);
        *n += 1;
        let expired = s
            .cfg
            .nonce_lifetime
            .is_some_and(|l| (*n).is_multiple_of(l.max(1)));
        if expired || faults.contains(&WebFault::NonceChange) {
            lock(&s.realm).rotate();
        }
    }
    if faults.contains(&WebFault::ServerError) {
        return Answer::Respond(HttpResponse::text(500, "500 Internal Server Error"));
    }
    let path = req.path.split('?').next().unwrap_or("");
    let ok = |v: Value| Answer::Respond(HttpResponse::json(200, v.to_string()));
    match (req.method.as_str(), path) {
        ("GET", "/cgi-bin/get_system_info.cgi") => ok(system_info(s)),
        ("GET", "/cgi-bin/miner_type.cgi") => ok(json!({
            "miner_type": s.device.nameplate().name,
            "subtype": "",
            "fw_version": FILESYSTEM_VERSION,
        })),
        ("GET", "/cgi-bin/get_miner_conf.cgi") => ok(miner_conf(s)),
        ("POST", "/cgi-bin/set_miner_conf.cgi") => {
            let reply = set_miner_conf(s, &req.body);
            Answer::Delayed(
                s.cfg.write_delay,
                HttpResponse::json(200, reply.to_string()),
            )
        }
        ("POST", "/cgi-bin/blink.cgi") => ok(blink(s, &req.body)),
        ("GET", "/cgi-bin/get_blink_status.cgi") => {
            ok(json!({"blink": s.device.update(|st| st.led)}))
        }
        ("GET", "/cgi-bin/reboot.cgi") => {
            let device = s.device.clone();
            tokio::spawn(async move {
                // The controller answers, then goes down.
                tokio::time::sleep(Duration::from_millis(50)).await;
                device.reboot();
            });
            Answer::Respond(HttpResponse::text(200, ""))
        }
        (_, p) if p.starts_with("/cgi-bin/") => {
            Answer::Respond(HttpResponse::text(404, "404 Not Found"))
        }
        _ => Answer::Respond(HttpResponse::text(404, "404 Not Found")),
    }
}

const FILESYSTEM_VERSION: &str = "Mon Jun 10 10:00:00 CST 2024";

fn system_info(s: &Shared) -> Value {
    let cfg = s.device.config();
    json!({
        "minertype": s.device.nameplate().name,
        "nettype": "DHCP",
        "netdevice": "eth0",
        "macaddr": cfg.mac.to_ascii_uppercase(),
        "hostname": s.cfg.hostname,
        "ipaddress": s.device.local_addr().ip().to_string(),
        "netmask": "255.255.255.0",
        "gateway": "",
        "dnsservers": "",
        "system_mode": "GNU/Linux",
        "system_kernel_version": "Linux 4.9.113 #1 SMP PREEMPT",
        "system_filesystem_version": FILESYSTEM_VERSION,
        "firmware_type": "Release",
        "serinum": cfg.serial,
    })
}

/// The mode code for the device's state: 0 normal, 1 sleep, 3 low power.
fn mode_code(sleeping: bool, mode: PowerMode) -> i64 {
    if sleeping {
        1
    } else if mode == PowerMode::Low {
        3
    } else {
        0
    }
}

fn miner_conf(s: &Shared) -> Value {
    let np = s.device.nameplate();
    let (pools, mode) = s.device.update(|st| {
        let mut pools: Vec<Value> = st
            .pools
            .iter()
            .map(|p| json!({"url": p.url, "user": p.user, "pass": p.password}))
            .collect();
        pools.resize(3, json!({"url": "", "user": "", "pass": ""}));
        (pools, mode_code(st.sleeping, st.mode))
    });
    let mut conf = json!({
        "pools": pools,
        "api-listen": true,
        "api-network": true,
        "api-groups": "A:stats:pools:devs:summary:version",
        "api-allow": "A:0/0,W:*",
        "bitmain-fan-ctrl": false,
        "bitmain-fan-pwm": "100",
        "bitmain-use-vil": true,
        "bitmain-freq": format!("{}", np.frequency_mhz),
        "bitmain-voltage": format!("{}", (np.voltage_v * 100.0).round()),
        "bitmain-ccdelay": "0",
        "bitmain-pwth": "0",
        "bitmain-work-mode": mode.to_string(),
        "bitmain-freq-level": "100",
    });
    if !s.cfg.legacy_mode_key
        && let Some(m) = conf.as_object_mut()
    {
        m.insert("miner-mode".into(), json!(mode));
    }
    conf
}

fn fail() -> Value {
    json!({"stats": "error", "code": "M001", "msg": "FAIL!"})
}

fn mode_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn set_miner_conf(s: &Shared, body: &[u8]) -> Value {
    let Ok(Value::Object(conf)) = serde_json::from_slice::<Value>(body) else {
        return fail();
    };
    let mode = match conf.get("miner-mode") {
        Some(v) => match mode_value(v) {
            Some(m @ (0 | 1 | 3)) => Some(m),
            _ => return fail(),
        },
        None => None,
    };
    let pools = match conf.get("pools") {
        Some(Value::Array(list)) if list.len() == 3 => {
            let mut out = Vec::new();
            for (i, p) in list.iter().enumerate() {
                let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let url = field("url");
                if !url.trim().is_empty() {
                    out.push(Pool::new(&url, &field("user"), &field("pass"), i as u32));
                }
            }
            if out.is_empty() {
                return fail();
            }
            Some(out)
        }
        Some(_) => return fail(),
        None => None,
    };
    *lock(&s.last_write) = Some(Value::Object(conf));
    s.device.update(|st| {
        if let Some(m) = mode {
            st.sleeping = m == 1;
            st.scheduled = None;
            if m != 1 {
                st.mode = if m == 3 {
                    PowerMode::Low
                } else {
                    PowerMode::Normal
                };
            }
        }
        if let Some(new) = pools {
            let same = new.len() == st.pools.len()
                && new
                    .iter()
                    .zip(&st.pools)
                    .all(|(a, b)| a.url == b.url && a.user == b.user && a.password == b.password);
            if !same {
                st.pools = new;
            }
        }
    });
    json!({"stats": "success", "code": "M000", "msg": "OK!"})
}

fn blink(s: &Shared, body: &[u8]) -> Value {
    let on = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("blink") {
            Some(Value::String(t)) => t == "true",
            Some(Value::Bool(b)) => *b,
            _ => return json!({"code": "B001"}),
        },
        Err(_) => return json!({"code": "B001"}),
    };
    s.device.update(|st| st.led = on);
    json!({"code": if on { "B000" } else { "B100" }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::Family;
    use crate::model::Timing;
    use crate::web::raw_request;
    use crate::{DeviceConfig, spawn_device};
    use md5::{Digest as _, Md5};

    fn md5_hex(s: &str) -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Answers the challenge in `head` the RFC 2069 way (no qop), which the server also takes.
    fn authorization(head: &str, method: &str, path: &str, pass: &str) -> String {
        let nonce = head
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let realm = "antMiner Configuration";
        let ha1 = md5_hex(&format!("root:{realm}:{pass}"));
        let ha2 = md5_hex(&format!("{method}:{path}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Authorization: Digest username=\"root\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", response=\"{resp}\""
        )
    }

    async fn rig(legacy: bool) -> (Arc<RunningDevice>, RunningAntminerWeb) {
        let mut cfg = DeviceConfig::new(Family::Antminer, "Antminer S19j Pro");
        cfg.timing = Timing::fast();
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let dev = Arc::new(
            spawn_device(cfg, addr)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let web_cfg = AntminerWebConfig {
            legacy_mode_key: legacy,
            ..AntminerWebConfig::default()
        };
        let web = spawn_antminer_web(dev.clone(), web_cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (dev, web)
    }

    async fn call(web: &RunningAntminerWeb, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, head, _) = raw_request(web.local_addr(), method, path, &[], body).await;
        assert_eq!(status, 401);
        assert!(
            head.contains("Digest realm=\"antMiner Configuration\""),
            "{head}"
        );
        let auth = authorization(&head, method, path, "root");
        let (status, _, body) = raw_request(web.local_addr(), method, path, &[auth], body).await;
        (status, body)
    }

    #[tokio::test]
    async fn wrong_password_is_refused() {
        let (_dev, web) = rig(false).await;
        let path = "/cgi-bin/get_system_info.cgi";
        let (_, head, _) = raw_request(web.local_addr(), "GET", path, &[], "").await;
        let auth = authorization(&head, "GET", path, "admin");
        let (status, _, _) = raw_request(web.local_addr(), "GET", path, &[auth], "").await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn a_web_sleep_stops_the_rpc_hashrate() {
        let (dev, web) = rig(false).await;
        assert!(dev.truth().hashrate_ths.unwrap_or(0.0) > 50.0);
        let (status, body) = call(&web, "GET", "/cgi-bin/get_miner_conf.cgi", "").await;
        assert_eq!(status, 200);
        let mut conf: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(conf["miner-mode"], 0);
        assert_eq!(conf["pools"].as_array().map(Vec::len), Some(3));
        conf["miner-mode"] = json!(1);
        let (_, reply) = call(
            &web,
            "POST",
            "/cgi-bin/set_miner_conf.cgi",
            &conf.to_string(),
        )
        .await;
        assert!(reply.contains("M000"), "{reply}");
        assert_eq!(dev.truth().hashrate_ths, Some(0.0));
        assert_eq!(dev.truth().status, hashmesh_core::MinerStatus::Sleeping);
        // Two pools instead of three is refused.
        conf["pools"] =
            json!([{"url": "a", "user": "u", "pass": "x"}, {"url": "", "user": "", "pass": ""}]);
        let (_, reply) = call(
            &web,
            "POST",
            "/cgi-bin/set_miner_conf.cgi",
            &conf.to_string(),
        )
        .await;
        assert!(reply.contains("M001"), "{reply}");
    }

    #[tokio::test]
    async fn legacy_firmware_ignores_its_own_read_key() {
        let (dev, web) = rig(true).await;
        let (_, body) = call(&web, "GET", "/cgi-bin/get_miner_conf.cgi", "").await;
        let mut conf: Value = serde_json::from_str(&body).unwrap_or_default();
        assert!(conf.get("miner-mode").is_none());
        conf["bitmain-work-mode"] = json!("1");
        let (_, reply) = call(
            &web,
            "POST",
            "/cgi-bin/set_miner_conf.cgi",
            &conf.to_string(),
        )
        .await;
        // Accepted, and nothing happens (§2.6).
        assert!(reply.contains("M000"), "{reply}");
        assert!(!dev.update(|st| st.sleeping));
        let (_, reply) = call(&web, "POST", "/cgi-bin/blink.cgi", r#"{"blink":"true"}"#).await;
        assert!(reply.contains("B000"), "{reply}");
        assert!(web.led_on());
    }
}
