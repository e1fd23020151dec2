//! The Antminer stock web CGI interface on port 80 (PROTOCOLS.md §2.2–2.7): HTTP Digest
//! (realm `antMiner Configuration`, `root`/`root` by default), reads with GET and writes as
//! POST with a JSON body. The driver uses it for what the 4028 RPC cannot do: identity details
//! (MAC, serial, host name), sleep/wake and power modes (`miner-mode`), pools, the locate LED
//! and reboot.
//!
//! Writes follow §2.6: the whole configuration just read is sent back changed in one place,
//! the mode goes into both `miner-mode` and the legacy `bitmain-work-mode`, and the write
//! deadline is at least [`WRITE_TIMEOUT`] because some builds take ~21 s to answer.
//! Response parsers are pure functions so tests and fuzz targets call them directly.
//!
//! Logins: the target's [`crate::CredentialSet`], then `root`/`root`, tried in order by
//! [`WebClient`], which remembers per device the one that worked; only a refused login
//! (HTTP 401 after answering the Digest challenge) moves on to the next.

use crate::cgminer::reply::{Flag, Text, excerpt};
use crate::credentials::{LoginInterface, LoginMemo};
use crate::driver::Ack;
use crate::error::DriverError;
use crate::http::{HttpClient, Request, Response};
use crate::target::Target;
use hashmesh_core::PoolConfig;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Shortest deadline for `set_miner_conf.cgi` (slow firmware answers after ~21 s).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(35);

/// Pools the stock configuration always holds.
pub const POOL_SLOTS: usize = 3;

/// The web client of one driver: keep-alive connections and Digest sessions per device, and
/// which login each device accepted.
#[derive(Debug, Default)]
pub struct WebClient {
    http: HttpClient,
    logins: LoginMemo,
}

impl WebClient {
    /// A client with no connections or logins yet.
    pub fn new() -> Self {
        WebClient::default()
    }

    /// The login `target`'s web interface last accepted (username and password), if any.
    pub fn login_in_use(&self, target: &Target) -> Option<crate::Credentials> {
        self.logins.remembered(target.web_addr())
    }

    /// Forgets the connections and the Digest session of `target` (after a reboot); the login
    /// that worked is kept, since a reboot does not change it.
    pub fn forget(&self, target: &Target) {
        self.http.forget(target.web_addr());
    }

    /// Forgets web logins unused for a while (see [`HttpClient::housekeep`]).
    pub fn housekeep(&self) {
        self.http.housekeep();
    }

    /// Sends `req` within `total`, trying the target's logins in order (the one that worked
    /// last time first). Returns any status other than a refused login.
    async fn send(
        &self,
        target: &Target,
        req: Request<'_>,
        total: Duration,
    ) -> Result<Response, DriverError> {
        let addr = target.web_addr();
        let candidates = target
            .credentials
            .candidates(&LoginInterface::AntminerWeb.factory_defaults());
        self.logins
            .try_in_order(addr, LoginInterface::AntminerWeb, candidates, |login| {
                let http = &self.http;
                async move {
                    http.send(addr, req, Some(&login), &target.timeouts, total)
                        .await
                }
            })
            .await
    }
}

/// What `get_system_info.cgi` tells about the unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    /// Model, e.g. `Antminer S21`.
    pub minertype: Text,
    /// Host name.
    pub hostname: Text,
    /// MAC address.
    pub macaddr: Text,
    /// Unit serial number.
    pub serinum: Text,
    /// Firmware build (e.g. `FR-1.12(251009-S21)` or a date).
    pub system_filesystem_version: Text,
    /// Firmware type (`Release`, …).
    pub firmware_type: Text,
}

fn json_object(raw: &[u8], what: &str) -> Result<Map<String, Value>, DriverError> {
    match serde_json::from_slice::<Value>(raw.trim_ascii()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(DriverError::Malformed(format!(
            "{what} is not a JSON object: {}",
            excerpt(raw)
        ))),
        Err(e) => Err(DriverError::Malformed(format!(
            "{what}: {e}: {}",
            excerpt(raw)
        ))),
    }
}

/// Parses `get_system_info.cgi`; a reply without `minertype` is malformed.
pub fn parse_system_info(raw: &[u8]) -> Result<SystemInfo, DriverError> {
    json_object(raw, "get_system_info.cgi")?;
    let info: SystemInfo = serde_json::from_slice(raw.trim_ascii())
        .map_err(|e| DriverError::Malformed(format!("get_system_info.cgi: {e}")))?;
    if info.minertype.non_empty().is_none() {
        return Err(DriverError::Malformed(
            "get_system_info.cgi names no minertype".into(),
        ));
    }
    Ok(info)
}

/// Parses `get_miner_conf.cgi` as a key map (kept whole: it is written back with one change).
pub fn parse_miner_conf(raw: &[u8]) -> Result<Map<String, Value>, DriverError> {
    json_object(raw, "get_miner_conf.cgi")
}

/// The work mode a configuration holds: `miner-mode`, else the legacy `bitmain-work-mode`,
/// as a number or a numeric string.
pub fn conf_mode(conf: &Map<String, Value>) -> Option<i64> {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    conf.get("miner-mode")
        .and_then(num)
        .or_else(|| conf.get("bitmain-work-mode").and_then(num))
}

/// The value to write for `key`, in the JSON type the firmware used for it when it read it.
fn like(conf: &Map<String, Value>, key: &str, mode: i64, default_string: bool) -> Value {
    match conf.get(key) {
        Some(Value::String(_)) => Value::String(mode.to_string()),
        Some(Value::Number(_)) => Value::from(mode),
        _ if default_string => Value::String(mode.to_string()),
        _ => Value::from(mode),
    }
}

/// The configuration with the work mode changed: both `miner-mode` and the legacy key, since
/// older firmware reads one and obeys the other (§2.6).
pub fn with_mode(mut conf: Map<String, Value>, mode: i64) -> Map<String, Value> {
    let new = like(&conf, "miner-mode", mode, false);
    let legacy = like(&conf, "bitmain-work-mode", mode, true);
    conf.insert("miner-mode".into(), new);
    conf.insert("bitmain-work-mode".into(), legacy);
    conf
}

/// The configuration with the pools replaced: exactly [`POOL_SLOTS`] entries, empty ones
/// filling the rest; more than that is refused.
pub fn with_pools(
    mut conf: Map<String, Value>,
    pools: &[PoolConfig],
) -> Result<Map<String, Value>, DriverError> {
    if pools.is_empty() || pools.len() > POOL_SLOTS {
        return Err(DriverError::Unsupported(format!(
            "stock Antminer firmware holds {POOL_SLOTS} pools; {} given",
            pools.len()
        )));
    }
    let list: Vec<Value> = (0..POOL_SLOTS)
        .map(|i| {
            let (url, user, pass) = pools.get(i).map_or(("", "", ""), |p| {
                (p.url.as_str(), p.user.as_str(), p.password.as_str())
            });
            serde_json::json!({"url": url, "user": user, "pass": pass})
        })
        .collect();
    conf.insert("pools".into(), Value::Array(list));
    Ok(conf)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeReply {
    stats: Text,
    code: Text,
    msg: Text,
}

/// Parses the answer of `set_miner_conf.cgi`: `M000` (or `stats: success`) is accepted, any
/// other code is [`DriverError::Rejected`] with the device's message.
pub fn parse_set_reply(raw: &[u8]) -> Result<Ack, DriverError> {
    json_object(raw, "set_miner_conf.cgi")?;
    let r: CodeReply = serde_json::from_slice(raw.trim_ascii())
        .map_err(|e| DriverError::Malformed(format!("set_miner_conf.cgi: {e}")))?;
    let code = r.code.trimmed();
    let ok = code == "M000" || (code.is_empty() && r.stats.trimmed() == "success");
    let message = format!("{} {}", code, r.msg.trimmed()).trim().to_owned();
    if ok {
        Ok(Ack {
            message,
            silent: false,
        })
    } else {
        Err(DriverError::Rejected(format!(
            "set_miner_conf.cgi: {}",
            if message.is_empty() {
                excerpt(raw)
            } else {
                message
            }
        )))
    }
}

/// Parses the answer of `blink.cgi`: `B000` (on) and `B100` (off) are accepted.
pub fn parse_blink_reply(raw: &[u8], on: bool) -> Result<Ack, DriverError> {
    json_object(raw, "blink.cgi")?;
    let r: CodeReply = serde_json::from_slice(raw.trim_ascii())
        .map_err(|e| DriverError::Malformed(format!("blink.cgi: {e}")))?;
    let want = if on { "B000" } else { "B100" };
    match r.code.trimmed() {
        c if c == want => Ok(Ack {
            message: c.to_owned(),
            silent: false,
        }),
        c => Err(DriverError::Rejected(format!(
            "blink.cgi answered {c:?} (expected {want})"
        ))),
    }
}

/// Parses `get_blink_status.cgi` (`{"blink":true}`, or a string on some builds).
pub fn parse_blink_status(raw: &[u8]) -> Result<bool, DriverError> {
    #[derive(Deserialize)]
    struct Blink {
        #[serde(default)]
        blink: Flag,
    }
    json_object(raw, "get_blink_status.cgi")?;
    let b: Blink = serde_json::from_slice(raw.trim_ascii())
        .map_err(|e| DriverError::Malformed(format!("get_blink_status.cgi: {e}")))?;
    b.blink.0.ok_or_else(|| {
        DriverError::Malformed(format!(
            "get_blink_status.cgi has no blink flag: {}",
            excerpt(raw)
        ))
    })
}

const CGI: &str = "/cgi-bin/";

async fn get(http: &WebClient, target: &Target, name: &str) -> Result<Vec<u8>, DriverError> {
    let path = format!("{CGI}{name}");
    let resp = http
        .send(target, Request::get(&path), target.timeouts.total)
        .await?;
    Ok(crate::http::check_status(resp, &path)?.body)
}

async fn post(
    http: &WebClient,
    target: &Target,
    name: &str,
    body: &[u8],
    total: Duration,
) -> Result<Vec<u8>, DriverError> {
    let path = format!("{CGI}{name}");
    let req = Request::json("POST", &path, body);
    let resp = http.send(target, req, total).await?;
    Ok(crate::http::check_status(resp, &path)?.body)
}

/// Reads `get_system_info.cgi`.
pub async fn system_info(http: &WebClient, target: &Target) -> Result<SystemInfo, DriverError> {
    parse_system_info(&get(http, target, "get_system_info.cgi").await?)
}

/// Reads `get_miner_conf.cgi`.
pub async fn miner_conf(
    http: &WebClient,
    target: &Target,
) -> Result<Map<String, Value>, DriverError> {
    parse_miner_conf(&get(http, target, "get_miner_conf.cgi").await?)
}

/// Writes a whole configuration with `set_miner_conf.cgi`, allowing at least [`WRITE_TIMEOUT`].
pub async fn set_miner_conf(
    http: &WebClient,
    target: &Target,
    conf: &Map<String, Value>,
) -> Result<Ack, DriverError> {
    let body = serde_json::to_vec(conf).map_err(|e| DriverError::Malformed(e.to_string()))?;
    let total = target.timeouts.total.max(WRITE_TIMEOUT);
    parse_set_reply(&post(http, target, "set_miner_conf.cgi", &body, total).await?)
}

/// Reads the configuration, changes the work mode (0 normal, 1 sleep, 3 low power), writes it.
pub async fn set_mode(http: &WebClient, target: &Target, mode: i64) -> Result<Ack, DriverError> {
    let conf = miner_conf(http, target).await?;
    set_miner_conf(http, target, &with_mode(conf, mode)).await
}

/// Reads the configuration, replaces the pools, writes it.
pub async fn set_pools(
    http: &WebClient,
    target: &Target,
    pools: &[PoolConfig],
) -> Result<Ack, DriverError> {
    let conf = with_pools(miner_conf(http, target).await?, pools)?;
    set_miner_conf(http, target, &conf).await
}

/// Switches the locate LED with `blink.cgi`.
pub async fn blink(http: &WebClient, target: &Target, on: bool) -> Result<Ack, DriverError> {
    let body: &[u8] = if on {
        br#"{"blink":"true"}"#
    } else {
        br#"{"blink":"false"}"#
    };
    let raw = post(http, target, "blink.cgi", body, target.timeouts.total).await?;
    parse_blink_reply(&raw, on)
}

/// Reads the locate LED state from `get_blink_status.cgi`.
pub async fn blink_status(http: &WebClient, target: &Target) -> Result<bool, DriverError> {
    parse_blink_status(&get(http, target, "get_blink_status.cgi").await?)
}

/// Asks for a reboot with `reboot.cgi`. The controller may drop the connection at once, which
/// counts as a silent acknowledgement.
pub async fn reboot(http: &WebClient, target: &Target) -> Result<Ack, DriverError> {
    match get(http, target, "reboot.cgi").await {
        Ok(body) => Ok(Ack {
            message: String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(120)
                .collect(),
            silent: false,
        }),
        Err(DriverError::Io(_)) | Err(DriverError::Malformed(_)) => {
            http.forget(target);
            Ok(Ack {
                message: "connection closed by the rebooting controller".into(),
                silent: true,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_keys_keep_their_types() {
        let conf = parse_miner_conf(br#"{"bitmain-work-mode":"0","pools":[]}"#).unwrap_or_default();
        let c = with_mode(conf, 1);
        assert_eq!(c["miner-mode"], Value::from(1));
        assert_eq!(c["bitmain-work-mode"], Value::from("1"));
        assert_eq!(conf_mode(&c), Some(1));
        let conf = parse_miner_conf(br#"{"miner-mode":"0"}"#).unwrap_or_default();
        assert_eq!(with_mode(conf, 3)["miner-mode"], Value::from("3"));
    }
}
