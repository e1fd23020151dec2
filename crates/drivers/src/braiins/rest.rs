//! Braiins OS writes over its public REST API on the web port (PROTOCOLS.md §5.1): token login
//! (`POST /api/v1/auth/login`, sent back as `Authorization: <token>`, logged in again on a 401
//! because sessions expire after 3,600 s of inactivity), power target checked against
//! `configuration/constraints`, locate LED, pause / resume / reboot, and the read-backs
//! (`actions/locate`, `configuration/miner`, `performance/tuner-state`).
//!
//! The shared [`crate::http::HttpClient`] speaks Digest only, so this keeps its own small pool
//! of keep-alive connections over the same [`crate::http::wire`] framing.
//!
//! Logins: the target's [`crate::CredentialSet`], then `root` with an empty password, then
//! `root`/`root` (PROTOCOLS.md §0), in order until one is accepted; the one that worked is
//! remembered per device and tried first when a session has to be opened again.

use crate::credentials::{LoginInterface, LoginMemo};
use crate::driver::Ack;
use crate::error::DriverError;
use crate::http::{Response, check_status, wire};
use crate::target::{Credentials, Target, Timeouts};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;
use tokio::io::BufReader;
use tokio::net::TcpStream;

type Conn = BufReader<TcpStream>;

/// Idle connections older than this are not reused (embedded servers drop them).
const MAX_IDLE_AGE: std::time::Duration = crate::http::MAX_IDLE_AGE;

/// The REST login path.
pub const LOGIN_PATH: &str = "/api/v1/auth/login";

/// A REST client for Braiins devices: one per driver, holding tokens and idle connections.
#[derive(Debug, Default)]
pub struct RestClient {
    tokens: Mutex<HashMap<SocketAddr, String>>,
    idle: Mutex<HashMap<SocketAddr, (Conn, Instant)>>,
    logins: LoginMemo,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold only tokens and sockets; a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The allowed power-target range from `configuration/constraints`, W (min, max).
pub fn parse_constraints(body: &[u8]) -> Result<(f64, f64), DriverError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DriverError::Malformed(format!("configuration/constraints: {e}")))?;
    let pt = &v["tuner_constraints"]["power_target"];
    match (pt["min"]["watt"].as_f64(), pt["max"]["watt"].as_f64()) {
        (Some(min), Some(max)) if min <= max => Ok((min, max)),
        _ => Err(DriverError::Malformed(
            "configuration/constraints has no tuner_constraints.power_target min/max watt".into(),
        )),
    }
}

/// The configured power target from `configuration/miner` (`tuner.power_target.watt`), W.
pub fn parse_miner_power_target(body: &[u8]) -> Result<Option<f64>, DriverError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DriverError::Malformed(format!("configuration/miner: {e}")))?;
    Ok(v["tuner"]["power_target"]["watt"].as_f64())
}

/// The tuner's current target from `performance/tuner-state`, W.
pub fn parse_tuner_target(body: &[u8]) -> Result<Option<f64>, DriverError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DriverError::Malformed(format!("performance/tuner-state: {e}")))?;
    Ok(v["power_target_mode_state"]["current_target"]["watt"].as_f64())
}

/// The LED state from `GET actions/locate` (a bare `true`/`false`).
pub fn parse_locate(body: &[u8]) -> Result<bool, DriverError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(Value::Object(m)) => m.get("enabled").and_then(Value::as_bool).ok_or_else(|| {
            DriverError::Malformed("actions/locate: no boolean state in reply".into())
        }),
        _ => Err(DriverError::Malformed(
            "actions/locate: expected true or false".into(),
        )),
    }
}

/// The token from a login reply.
pub fn parse_token(body: &[u8]) -> Result<String, DriverError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DriverError::Malformed(format!("auth/login: {e}")))?;
    match v["token"].as_str() {
        Some(t) if !t.is_empty() && !t.contains(['\r', '\n']) => Ok(t.to_owned()),
        _ => Err(DriverError::Malformed(
            "auth/login reply has no token".into(),
        )),
    }
}

/// Checks a power target against the allowed range before anything is sent.
pub fn check_power_target(power_w: u32, (min, max): (f64, f64)) -> Result<(), DriverError> {
    let w = f64::from(power_w);
    if w < min || w > max {
        return Err(DriverError::Rejected(format!(
            "power target {power_w} W is outside the device's allowed range {min:.0}–{max:.0} W"
        )));
    }
    Ok(())
}

impl RestClient {
    /// A client with no sessions yet.
    pub fn new() -> Self {
        RestClient::default()
    }

    /// Whether a login to `addr` is held (the device has answered REST before).
    pub fn has_session(&self, addr: SocketAddr) -> bool {
        lock(&self.tokens).contains_key(&addr)
    }

    /// Forgets the token and connection of `addr` (after a reboot).
    pub fn forget(&self, addr: SocketAddr) {
        lock(&self.tokens).remove(&addr);
        lock(&self.idle).remove(&addr);
    }

    async fn connect(addr: SocketAddr, timeouts: &Timeouts) -> Result<Conn, DriverError> {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(BufReader::with_capacity(8 * 1024, s))
            }
            Ok(Err(e)) => Err(DriverError::Connect(e)),
            Err(_) => Err(DriverError::Timeout(timeouts.connect, "connect")),
        }
    }

    async fn round_trip(
        &self,
        addr: SocketAddr,
        bytes: &[u8],
        path: &str,
        timeouts: &Timeouts,
    ) -> Result<Response, DriverError> {
        let reused = lock(&self.idle)
            .remove(&addr)
            .filter(|(_, since)| since.elapsed() < MAX_IDLE_AGE);
        if let Some((mut conn, _)) = reused {
            let attempt = async {
                wire::send(&mut conn, bytes).await?;
                wire::read_response(&mut conn, timeouts.max_reply_bytes, false).await
            };
            match attempt.await {
                Ok(Some(resp)) => return Ok(self.keep(addr, conn, resp)),
                // The device dropped the idle connection: start over on a new one.
                Ok(None) | Err(DriverError::Io(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = Self::connect(addr, timeouts).await?;
        wire::send(&mut conn, bytes).await?;
        match wire::read_response(&mut conn, timeouts.max_reply_bytes, false).await? {
            Some(resp) => Ok(self.keep(addr, conn, resp)),
            None => Err(DriverError::Malformed(format!(
                "{path} closed the connection without a reply"
            ))),
        }
    }

    fn keep(&self, addr: SocketAddr, conn: Conn, resp: Response) -> Response {
        if resp.keep_alive {
            lock(&self.idle).insert(addr, (conn, Instant::now()));
        }
        resp
    }

    /// One request within the target's overall deadline, any status.
    async fn raw(
        &self,
        target: &Target,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response, DriverError> {
        let addr = target.web_addr();
        let headers: Vec<String> = token
            .map(|t| format!("Authorization: {t}"))
            .into_iter()
            .collect();
        let bytes = wire::encode_request(
            method,
            path,
            &addr.to_string(),
            &headers,
            body.map(|b| ("application/json", b)),
        );
        let t = &target.timeouts;
        match tokio::time::timeout(t.total, self.round_trip(addr, &bytes, path, t)).await {
            Ok(r) => r,
            Err(_) => Err(DriverError::Timeout(t.total, "HTTP request")),
        }
    }

    /// Logs in with the first of the target's logins (then the factory defaults) that the
    /// device accepts. A 401 or 403 refuses that login; anything else ends the search.
    async fn login(&self, target: &Target) -> Result<String, DriverError> {
        let addr = target.web_addr();
        let candidates = target
            .credentials
            .candidates(&LoginInterface::BraiinsRest.factory_defaults());
        let token = self
            .logins
            .try_in_order(addr, LoginInterface::BraiinsRest, candidates, |login| {
                self.login_as(target, login)
            })
            .await?;
        lock(&self.tokens).insert(addr, token.clone());
        Ok(token)
    }

    async fn login_as(&self, target: &Target, login: Credentials) -> Result<String, DriverError> {
        let body = serde_json::json!({"username": login.username, "password": login.password});
        let body = body.to_string();
        let resp = self
            .raw(target, "POST", LOGIN_PATH, None, Some(body.as_bytes()))
            .await?;
        if matches!(resp.status, 401 | 403) {
            return Err(DriverError::Auth(format!(
                "{LOGIN_PATH}: HTTP {} for user '{}'",
                resp.status, login.username
            )));
        }
        parse_token(&check_status(resp, LOGIN_PATH)?.body)
    }

    /// The login the device at `target` last accepted, if any.
    pub fn login_in_use(&self, target: &Target) -> Option<Credentials> {
        self.logins.remembered(target.web_addr())
    }

    /// An authenticated request: logs in when there is no token, and once more on a 401
    /// (an expired session). Non-2xx statuses become errors.
    pub async fn call(
        &self,
        target: &Target,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, DriverError> {
        let addr = target.web_addr();
        let cached = lock(&self.tokens).get(&addr).cloned();
        let fresh = cached.is_none();
        let token = match cached {
            Some(t) => t,
            None => self.login(target).await?,
        };
        let resp = self.raw(target, method, path, Some(&token), body).await?;
        if resp.status == 401 && !fresh {
            tracing::debug!(%addr, "Braiins REST session expired; logging in again");
            lock(&self.tokens).remove(&addr);
            let token = self.login(target).await?;
            let resp = self.raw(target, method, path, Some(&token), body).await?;
            return check_status(resp, path);
        }
        check_status(resp, path)
    }

    /// Sets the power target after checking it against the device's constraints.
    pub async fn set_power_target(
        &self,
        target: &Target,
        power_w: u32,
    ) -> Result<Ack, DriverError> {
        let c = self
            .call(target, "GET", "/api/v1/configuration/constraints", None)
            .await?;
        check_power_target(power_w, parse_constraints(&c.body)?)?;
        let body = format!("{{\"watt\":{power_w}}}");
        self.call(
            target,
            "PUT",
            "/api/v1/performance/power-target",
            Some(body.as_bytes()),
        )
        .await?;
        let state = self
            .call(target, "GET", "/api/v1/performance/tuner-state", None)
            .await
            .ok()
            .and_then(|r| parse_tuner_target(&r.body).ok().flatten());
        Ok(Ack {
            message: match state {
                Some(w) => format!("power target set; tuner now aims at {w} W"),
                None => "power target set".into(),
            },
            silent: false,
        })
    }

    /// Switches the locate LED.
    pub async fn set_locate(&self, target: &Target, on: bool) -> Result<Ack, DriverError> {
        let body: &[u8] = if on { b"true" } else { b"false" };
        self.call(target, "PUT", "/api/v1/actions/locate", Some(body))
            .await?;
        Ok(Ack {
            message: format!("locate {}", if on { "on" } else { "off" }),
            silent: false,
        })
    }

    /// `PUT /api/v1/actions/{action}` (pause, resume, reboot).
    pub async fn action(&self, target: &Target, action: &str) -> Result<Ack, DriverError> {
        let path = format!("/api/v1/actions/{action}");
        self.call(target, "PUT", &path, None).await?;
        if action == "reboot" {
            // The controller goes away; its sessions and sockets with it.
            self.forget(target.web_addr());
        }
        Ok(Ack {
            message: format!("{action} accepted"),
            silent: false,
        })
    }

    /// Read-backs for a device with a live session: LED state and configured power target.
    pub async fn read_back(&self, target: &Target) -> (Option<bool>, Option<f64>) {
        let led = self
            .call(target, "GET", "/api/v1/actions/locate", None)
            .await
            .ok()
            .and_then(|r| parse_locate(&r.body).ok());
        let power = self
            .call(target, "GET", "/api/v1/configuration/miner", None)
            .await
            .ok()
            .and_then(|r| parse_miner_power_target(&r.body).ok().flatten());
        (led, power)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_table() {
        let ok = br#"{"tuner_constraints":{"power_target":{"min":{"watt":1700},"max":{"watt":6500},"default":{"watt":3250}}}}"#;
        assert_eq!(parse_constraints(ok).ok(), Some((1700.0, 6500.0)));
        let bad: [&[u8]; 4] = [
            b"",
            b"{}",
            br#"{"tuner_constraints":{"power_target":{"min":{"watt":"x"},"max":{"watt":1}}}}"#,
            br#"{"tuner_constraints":{"power_target":{"min":{"watt":9},"max":{"watt":1}}}}"#,
        ];
        for b in bad {
            assert!(matches!(
                parse_constraints(b),
                Err(DriverError::Malformed(_))
            ));
        }
    }

    #[test]
    fn range_check_names_the_range() {
        assert!(check_power_target(3000, (1700.0, 6500.0)).is_ok());
        assert!(check_power_target(1700, (1700.0, 6500.0)).is_ok());
        for w in [0, 1699, 6501] {
            match check_power_target(w, (1700.0, 6500.0)) {
                Err(DriverError::Rejected(m)) => assert!(m.contains("1700–6500 W"), "{m}"),
                other => panic!("{w}: {other:?}"),
            }
        }
    }

    #[test]
    fn small_replies_table() {
        assert_eq!(parse_locate(b"true").ok(), Some(true));
        assert_eq!(parse_locate(b"false").ok(), Some(false));
        assert_eq!(parse_locate(br#"{"enabled":true}"#).ok(), Some(true));
        assert!(parse_locate(b"1").is_err());
        assert!(parse_locate(b"").is_err());
        assert_eq!(parse_token(br#"{"token":"abc"}"#).ok(), Some("abc".into()));
        assert!(parse_token(br#"{"token":""}"#).is_err());
        assert!(parse_token(br#"{"token":"a\r\nX: y"}"#).is_err());
        assert!(parse_token(b"[]").is_err());
        let miner = br#"{"tuner":{"power_target":{"watt":3100}}}"#;
        assert_eq!(parse_miner_power_target(miner).ok(), Some(Some(3100.0)));
        assert_eq!(parse_miner_power_target(b"{}").ok(), Some(None));
        assert!(parse_miner_power_target(b"{").is_err());
        let state = br#"{"power_target_mode_state":{"current_target":{"watt":2900}}}"#;
        assert_eq!(parse_tuner_target(state).ok(), Some(Some(2900.0)));
    }
}
