//! Whatsminer (MicroBT btminer) miners, API v2 on TCP 4028 and API v3 on TCP 4433
//! (PROTOCOLS.md §4).
//!
//! Which API a device speaks is found once and remembered per device: a v3 `get.device.info`
//! frame on 4433 first (firmware from 2024-11 on), else v2 on 4028.
//!
//! * v2 poll: one `summary+devs+pools` connection (single commands as a remembered fallback),
//!   plus `status` only when nothing hashes (to tell sleeping from failed), `get_error_code`
//!   only when the summary counts errors, and `get_miner_info` only for devices whose LED
//!   this driver switched (the LED read-back), so a healthy poll costs one connection.
//! * v3 poll: `get.miner.status` (`summary+pools+edevs`) and `get.device.info`, as two frames
//!   on one connection (two connections, remembered per device, if the device closes after one).
//! * Writes: v2 `get_token` → MD5-crypt key and sign → AES-256-ECB envelope, tokens cached per
//!   device for 30 min and refreshed on code 135; v3 `ts` + SHA-256 token with the cached salt,
//!   pools encrypted ([`crypto`], [`control`]). Every command is confirmed by reading back.
//!
//! Logins: the target's [`crate::CredentialSet`], then the vendor defaults (v2 admin password
//! `admin`, v3 account `super`/`super`), tried in order until the device accepts one, which is
//! remembered per device (v2 ignores the username: only the admin password is used; v3 sends
//! the username as its `account`, `super` when empty). When every login is refused the error is
//! [`DriverError::Auth`] with the usernames tried.

pub mod control;
pub mod crypto;
pub mod parse;
pub mod proto;

use crate::credentials::{LoginInterface, LoginMemo};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::{Credentials, Target, Timeouts};
use async_trait::async_trait;
use control::V2WriteReply;
use crypto::V2Keys;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot, MinerStatus};
use parse::{V2Extras, V2Reports};
use proto::{v2_exchange, v2_request, v3_exchange, v3_exchange_many, v3_request};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The v2 admin password of a factory-fresh device.
pub const DEFAULT_V2_PASSWORD: &str = "admin";
/// The v3 account of a factory-fresh device.
pub const DEFAULT_V3_ACCOUNT: &str = "super";
/// The v3 password of a factory-fresh device.
pub const DEFAULT_V3_PASSWORD: &str = "super";
/// How long a v2 token is reused before a new one is fetched (pyasic uses 30 min).
pub const TOKEN_REUSE: Duration = Duration::from_secs(30 * 60);
/// The v2 poll request (fixed, so a poll builds nothing).
const V2_POLL_REQUEST: &[u8] = br#"{"cmd":"summary+devs+pools"}"#;
/// The v3 status request of a poll.
const V3_STATUS_REQUEST: &[u8] = br#"{"cmd":"get.miner.status","param":"summary+pools+edevs"}"#;
/// The v3 device-info request of a poll (mode, LED, service state, errors).
const V3_INFO_REQUEST: &[u8] = br#"{"cmd":"get.device.info"}"#;
/// Attempts of a v2 write whose token keeps expiring (MOS retries up to 3 times).
const WRITE_ATTEMPTS: usize = 3;

/// Which Whatsminer API a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// API v1/v2 on 4028 (firmware before about 2024-11).
    V2,
    /// API v3 on 4433.
    V3,
}

/// What the driver remembers about one device between calls.
#[derive(Debug, Default)]
struct Memo {
    api: Option<Api>,
    single_commands: bool,
    v3_one_frame_per_connection: bool,
    watch_led: bool,
    /// Write keys of the current v2 token, and the login they were derived from.
    v2_keys: Option<(Instant, V2Keys, Credentials)>,
    v3_salt: Option<String>,
}

/// Driver for MicroBT Whatsminer miners on stock firmware.
#[derive(Debug, Default)]
pub struct WhatsminerDriver {
    /// Per device (keyed by its 4028 address).
    memo: Mutex<HashMap<SocketAddr, Memo>>,
    /// The login each device accepted (keyed by the v2 or v3 address it was used on).
    logins: LoginMemo,
}

/// What identification found at an address.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The API the device speaks.
    pub api: Api,
    /// Who it is.
    pub identity: DeviceIdentity,
}

/// Identifies a Whatsminer at `target` without a driver: a length-prefixed
/// `{"cmd":"get.device.info"}` on `target.whatsminer_v3_port` (4433; marker: a v3 frame with
/// `code` 0 and `msg.miner.type`), else v2 on `target.rpc_port` (4028): `devdetails`
/// (`Model`), `get_version` (`fw_ver`) and `get_miner_info` (MAC, serial, host name).
pub async fn probe(target: &Target) -> Result<Probe, DriverError> {
    match v3_device_info(target).await {
        Ok(info) => {
            return Ok(Probe {
                api: Api::V3,
                identity: parse::v3_identity(&info)?,
            });
        }
        Err(e) => tracing::debug!(ip = %target.ip, error = %e, "no Whatsminer API v3"),
    }
    Ok(Probe {
        api: Api::V2,
        identity: v2_identify(target).await?,
    })
}

async fn v3_device_info(target: &Target) -> Result<parse::V3DeviceInfo, DriverError> {
    // A device without API v3 should cost a probe little: a short connect deadline.
    let raw = v3_exchange(
        target.whatsminer_v3_addr(),
        v3_request("get.device.info", None, "").as_bytes(),
        &probe_timeouts(&target.timeouts),
    )
    .await?;
    parse::parse_v3_device_info(&raw)
}

async fn v2_get(target: &Target, cmd: &str) -> Result<Vec<u8>, DriverError> {
    v2_exchange(
        target.rpc_addr(),
        v2_request(cmd, &[]).as_bytes(),
        &target.timeouts,
    )
    .await
}

async fn v2_identify(target: &Target) -> Result<DeviceIdentity, DriverError> {
    let details = v2_get(target, "devdetails").await?;
    let version = v2_get(target, "get_version").await?;
    // MAC and serial are a bonus: a firmware that refuses get_miner_info is still identified.
    let info = v2_get(target, "get_miner_info").await.ok();
    let info = info.filter(|i| parse::parse_v2_miner_info(i).is_ok());
    parse::v2_identity(&details, &version, info.as_deref())
}

/// The v3 `account` of a login: its username, `super` when empty.
fn account(login: &Credentials) -> &str {
    match login.username.trim() {
        "" => DEFAULT_V3_ACCOUNT,
        u => u,
    }
}

fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an exchange error means the device closed without replying (reboots may do so).
fn closed_without_reply(e: &DriverError) -> bool {
    match e {
        DriverError::Malformed(m) => m == "empty reply" || m.starts_with("v3 frame cut short: 0 "),
        DriverError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

impl WhatsminerDriver {
    /// A driver with nothing remembered yet.
    pub fn new() -> Self {
        WhatsminerDriver::default()
    }

    fn with_memo<R>(&self, addr: SocketAddr, f: impl FnOnce(&mut Memo) -> R) -> R {
        let mut map = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(addr).or_default())
    }

    /// The API the device speaks, detecting it on first use.
    pub async fn api(&self, target: &Target) -> Result<Api, DriverError> {
        let addr = target.rpc_addr();
        if let Some(api) = self.with_memo(addr, |m| m.api) {
            return Ok(api);
        }
        let api = match v3_device_info(target).await {
            Ok(_) => Api::V3,
            Err(DriverError::Auth(e)) => return Err(DriverError::Auth(e)),
            Err(_) => Api::V2,
        };
        self.with_memo(addr, |m| m.api = Some(api));
        Ok(api)
    }

    fn forget_api(&self, target: &Target) {
        self.with_memo(target.rpc_addr(), |m| m.api = None);
    }

    async fn poll_v2(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        let t = &target.timeouts;
        let single = self.with_memo(addr, |m| m.single_commands);
        let reports = if single {
            None
        } else {
            let raw = v2_exchange(addr, V2_POLL_REQUEST, t).await?;
            parse::parse_v2_multi(&raw)?
        };
        let reports = match reports {
            Some(r) => r,
            None => {
                self.with_memo(addr, |m| m.single_commands = true);
                v2_single(target).await?
            }
        };
        let mut extras = V2Extras::default();
        let summary = reports.summary.as_ref();
        let hashing = summary
            .and_then(parse::V2Summary::hashrate_ths)
            .is_some_and(|h| h > 0.0);
        if !hashing {
            let st = parse::parse_v2_status(&v2_get(target, "status").await?)?;
            extras.mining_off = st.mining_off();
        }
        if self.with_memo(addr, |m| m.watch_led) {
            extras.led_on =
                parse::parse_v2_miner_info(&v2_get(target, "get_miner_info").await?)?.led_on();
        }
        let mut snap = parse::v2_snapshot(&reports, &extras, crate::now_unix_ms());
        let count = summary.and_then(|s| s.error_code_count.as_u64());
        let want_errors = match count {
            Some(n) => n > 0,
            None => snap.status != MinerStatus::Mining,
        };
        if want_errors {
            // Error codes explain a state; failing to read them must not fail the poll.
            match v2_get(target, "get_error_code").await {
                Ok(raw) => match parse::parse_v2_error_codes(&raw) {
                    Ok(errors) => snap.errors = errors,
                    Err(e) => tracing::debug!(%addr, error = %e, "get_error_code unreadable"),
                },
                Err(e) => tracing::debug!(%addr, error = %e, "get_error_code failed"),
            }
        }
        Ok(snap)
    }

    async fn poll_v3(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let t = &target.timeouts;
        let addr = target.whatsminer_v3_addr();
        let (status_req, info_req) = (V3_STATUS_REQUEST, V3_INFO_REQUEST);
        let separate = self.with_memo(target.rpc_addr(), |m| m.v3_one_frame_per_connection);
        let (status_raw, info_raw) = if separate {
            (
                v3_exchange(addr, status_req, t).await?,
                v3_exchange(addr, info_req, t).await?,
            )
        } else {
            match v3_exchange_many(addr, &[status_req, info_req], t).await {
                Ok(mut replies) if replies.len() == 2 => {
                    let info = replies.pop().unwrap_or_default();
                    (replies.pop().unwrap_or_default(), info)
                }
                Ok(_) => return Err(DriverError::Malformed("missing v3 reply".into())),
                Err(e) if closed_without_reply(&e) => {
                    self.with_memo(target.rpc_addr(), |m| m.v3_one_frame_per_connection = true);
                    (
                        v3_exchange(addr, status_req, t).await?,
                        v3_exchange(addr, info_req, t).await?,
                    )
                }
                Err(e) => return Err(e),
            }
        };
        let status = parse::parse_v3_status(&status_raw)?;
        let info = parse::parse_v3_device_info(&info_raw)?;
        Ok(parse::v3_snapshot(
            &status,
            Some(&info),
            crate::now_unix_ms(),
        ))
    }

    /// The v2 write keys of a device for `login`: cached (when made for that login), or from a
    /// fresh `get_token`.
    async fn v2_keys(
        &self,
        target: &Target,
        login: &Credentials,
        fresh: bool,
    ) -> Result<V2Keys, DriverError> {
        let addr = target.rpc_addr();
        if !fresh {
            let cached = self.with_memo(addr, |m| {
                m.v2_keys
                    .as_ref()
                    .filter(|(at, _, made_for)| at.elapsed() < TOKEN_REUSE && made_for == login)
                    .map(|(_, k, _)| k.clone())
            });
            if let Some(k) = cached {
                return Ok(k);
            }
        }
        let token = control::parse_token(&v2_get(target, "get_token").await?)?;
        let keys = V2Keys::derive(
            &login.password,
            token.time.trimmed(),
            token.salt.trimmed(),
            token.newsalt.trimmed(),
        );
        self.with_memo(addr, |m| {
            m.v2_keys = Some((Instant::now(), keys.clone(), login.clone()))
        });
        Ok(keys)
    }

    /// A v2 write with each of the target's logins in turn until one is accepted.
    async fn send_v2(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        let body = control::v2_write(command)?;
        let candidates = target
            .credentials
            .candidates(&LoginInterface::WhatsminerV2.factory_defaults());
        self.logins
            .try_in_order(
                target.rpc_addr(),
                LoginInterface::WhatsminerV2,
                candidates,
                |login| self.send_v2_as(target, command, &body, login),
            )
            .await
    }

    async fn send_v2_as(
        &self,
        target: &Target,
        command: &Command,
        body: &str,
        login: Credentials,
    ) -> Result<Ack, DriverError> {
        let addr = target.rpc_addr();
        for attempt in 0..WRITE_ATTEMPTS {
            let keys = self.v2_keys(target, &login, attempt > 0).await?;
            let raw = match v2_exchange(addr, &keys.seal(body), &target.timeouts).await {
                Ok(raw) => raw,
                Err(e) if closed_without_reply(&e) && restarts(command) => {
                    return Ok(silent(command));
                }
                Err(e) => return Err(e),
            };
            match control::v2_write_reply(&raw, &keys) {
                V2WriteReply::Ok(message) => {
                    return Ok(Ack {
                        message,
                        silent: false,
                    });
                }
                V2WriteReply::TokenExpired => {
                    self.with_memo(addr, |m| m.v2_keys = None);
                }
                V2WriteReply::Err(e) => {
                    if matches!(e, DriverError::Auth(_)) {
                        self.with_memo(addr, |m| m.v2_keys = None);
                    }
                    return Err(e);
                }
            }
        }
        Err(DriverError::Auth(format!(
            "the device kept answering 'token expired' (135) to {WRITE_ATTEMPTS} fresh tokens"
        )))
    }

    async fn v3_salt(&self, target: &Target, fresh: bool) -> Result<String, DriverError> {
        let addr = target.rpc_addr();
        if !fresh && let Some(s) = self.with_memo(addr, |m| m.v3_salt.clone()) {
            return Ok(s);
        }
        let raw = v3_exchange(
            target.whatsminer_v3_addr(),
            v3_request("get.device.info", Some("\"salt\""), "").as_bytes(),
            &target.timeouts,
        )
        .await?;
        let info = parse::parse_v3_device_info(&raw)?;
        let salt = info
            .salt
            .non_empty()
            .map(str::to_owned)
            .ok_or_else(|| DriverError::Malformed("get.device.info salt is empty".into()))?;
        self.with_memo(addr, |m| m.v3_salt = Some(salt.clone()));
        Ok(salt)
    }

    /// A v3 write with each of the target's logins in turn until one is accepted.
    async fn send_v3(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        let w = control::v3_write(command)?;
        let candidates = target
            .credentials
            .candidates(&LoginInterface::WhatsminerV3.factory_defaults());
        // The salt is fetched again at most once per write: a refused token may only mean
        // that the cached salt changed, not that the login is wrong.
        let salt_refreshed = AtomicBool::new(false);
        self.logins
            .try_in_order(
                target.whatsminer_v3_addr(),
                LoginInterface::WhatsminerV3,
                candidates,
                |login| self.send_v3_as(target, command, &w, login, &salt_refreshed),
            )
            .await
    }

    async fn send_v3_as(
        &self,
        target: &Target,
        command: &Command,
        w: &control::V3Write,
        login: Credentials,
        salt_refreshed: &AtomicBool,
    ) -> Result<Ack, DriverError> {
        let acct = account(&login);
        let mut fresh = false;
        loop {
            let salt = self.v3_salt(target, fresh).await?;
            let ts = now_unix_s();
            let (token, key) = crypto::v3_token(w.cmd, &login.password, &salt, ts);
            let req = control::v3_request(w, acct, &token, &key, ts);
            let raw = match v3_exchange(
                target.whatsminer_v3_addr(),
                req.as_bytes(),
                &target.timeouts,
            )
            .await
            {
                Ok(raw) => raw,
                Err(e) if closed_without_reply(&e) && restarts(command) => {
                    return Ok(silent(command));
                }
                Err(e) => return Err(e),
            };
            match control::v3_write_reply(&raw) {
                Ok(message) => {
                    return Ok(Ack {
                        message,
                        silent: false,
                    });
                }
                Err(DriverError::Auth(m)) => {
                    if !fresh && !salt_refreshed.swap(true, Ordering::Relaxed) {
                        fresh = true;
                        continue;
                    }
                    return Err(DriverError::Auth(m));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn restarts(command: &Command) -> bool {
    matches!(command, Command::Reboot | Command::RestartMining)
}

fn silent(command: &Command) -> Ack {
    Ack {
        message: format!(
            "{}: the device closed the connection without replying",
            command.name()
        ),
        silent: true,
    }
}

/// The three cgminer-layout reports as separate requests.
async fn v2_single(target: &Target) -> Result<V2Reports, DriverError> {
    let (summary, a) = parse::parse_v2_report(&v2_get(target, "summary").await?)?;
    let (devs, b) = parse::parse_v2_report(&v2_get(target, "devs").await?)?;
    let (pools, c) = parse::parse_v2_report(&v2_get(target, "pools").await?)?;
    Ok(V2Reports {
        summary: summary.summary.into_inner(),
        devs: devs.devs.0,
        pools: pools.pools.0,
        partial: a || b || c,
    })
}

/// A copy of `limits` for a probe that should not wait as long as a poll.
pub fn probe_timeouts(limits: &Timeouts) -> Timeouts {
    Timeouts {
        connect: limits.connect.min(Duration::from_millis(500)),
        ..*limits
    }
}

#[async_trait]
impl Driver for WhatsminerDriver {
    fn name(&self) -> &'static str {
        "whatsminer"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reboot: true,
            restart_mining: true,
            set_pools: true,
            power_mode: true,
            power_target: true,
            sleep_wake: true,
            locate_led: true,
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let p = probe(target).await?;
        self.with_memo(target.rpc_addr(), |m| m.api = Some(p.api));
        Ok(p.identity)
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let api = self.api(target).await?;
        let result = match api {
            Api::V2 => self.poll_v2(target).await,
            Api::V3 => self.poll_v3(target).await,
        };
        if let Err(DriverError::Connect(_)) = &result {
            // A firmware update may have moved the device to the other API: detect again.
            self.forget_api(target);
        }
        result
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        if let Command::LocateLed { .. } = command {
            self.with_memo(target.rpc_addr(), |m| m.watch_led = true);
        }
        match self.api(target).await? {
            Api::V2 => self.send_v2(target, command).await,
            Api::V3 => self.send_v3(target, command).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_requests_match_the_builders() {
        assert_eq!(
            V2_POLL_REQUEST,
            v2_request(parse::V2_POLL_COMMAND, &[]).as_bytes()
        );
        let param = format!("\"{}\"", parse::V3_POLL_PARAM);
        assert_eq!(
            V3_STATUS_REQUEST,
            v3_request("get.miner.status", Some(&param), "").as_bytes()
        );
        assert_eq!(
            V3_INFO_REQUEST,
            v3_request("get.device.info", None, "").as_bytes()
        );
    }
}
