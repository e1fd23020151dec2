//! LuxOS commands (PROTOCOLS.md §5.2). Writes need a session: `logon` returns
//! `SESSION[0].SessionID`; only one session may exist, so a `logon` refused with Code 402
//! ("Another session is active") is followed by `session`, whose id is reused. Session commands
//! take the id as their FIRST parameter (`curtail` `<sid>,sleep`). A session this driver opened
//! is closed with `logoff` afterwards; one it borrowed is left to its owner.
//!
//! Power: LuxOS tunes to named profiles, each with its power. A power target picks the profile
//! nearest the requested watts; power modes map to profiles as in [`parse::profile_for_mode`]
//! (default = normal, lowest-power = low, highest-power = high).

use crate::cgminer::proto::{exchange, json_request};
use crate::cgminer::reply::{OneOrFirst, StatusEntry, Text, check_status, decode};
use crate::error::DriverError;
use crate::luxos::parse;
use crate::target::Timeouts;
use crate::verify::{self, Verdict};
use hashmesh_core::{Command, MinerSnapshot, MinerStatus};
use serde::Deserialize;
use std::net::SocketAddr;

/// The STATUS code LuxOS gives a `logon` while another session is open.
pub const CODE_SESSION_ACTIVE: i64 = 402;

/// An open write session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The id to pass as first parameter.
    pub id: String,
    /// We opened it (and must log it off); false when an existing session was reused.
    pub owned: bool,
}

#[derive(Debug, Default, Deserialize)]
struct SessionEntry {
    #[serde(rename = "SessionID", default)]
    session_id: Text,
}

#[derive(Debug, Default, Deserialize)]
struct SessionReply {
    #[serde(rename = "STATUS", default)]
    status: OneOrFirst<StatusEntry>,
    #[serde(rename = "SESSION", default)]
    session: OneOrFirst<SessionEntry>,
}

/// What a `logon` or `session` reply said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionReplyKind {
    /// A session id.
    Id(String),
    /// Another session is active (Code 402).
    Busy,
    /// No session (an empty `SessionID`).
    None,
}

/// Reads a `logon` / `session` reply.
pub fn parse_session(raw: &[u8]) -> Result<SessionReplyKind, DriverError> {
    let reply = decode::<SessionReply>(raw)?.value;
    if let Some(st) = reply.status.get() {
        if st.code() == Some(CODE_SESSION_ACTIVE) {
            return Ok(SessionReplyKind::Busy);
        }
        check_status(Some(st))?;
    }
    Ok(
        match reply.session.get().and_then(|s| s.session_id.non_empty()) {
            Some(id) => SessionReplyKind::Id(id.to_string()),
            None => SessionReplyKind::None,
        },
    )
}

/// Opens a session, or reuses the one already open (§5.2).
pub async fn open_session(addr: SocketAddr, t: &Timeouts) -> Result<Session, DriverError> {
    match parse_session(&exchange(addr, &json_request("logon", None), t).await?)? {
        SessionReplyKind::Id(id) => return Ok(Session { id, owned: true }),
        SessionReplyKind::Busy | SessionReplyKind::None => {}
    }
    match parse_session(&exchange(addr, &json_request("session", None), t).await?)? {
        SessionReplyKind::Id(id) => Ok(Session { id, owned: false }),
        _ => Err(DriverError::Auth(
            "LuxOS refused a session and reports none open".into(),
        )),
    }
}

/// Closes a session this driver opened; errors are ignored (the device may be rebooting).
pub async fn close_session(addr: SocketAddr, t: &Timeouts, session: &Session) {
    if session.owned {
        let _ = exchange(addr, &json_request("logoff", Some(&session.id)), t).await;
    }
}

/// The parameter of a session command: the id first, then the command's own arguments.
pub fn session_param(session_id: &str, args: &[&str]) -> String {
    let mut p = session_id.to_string();
    for a in args {
        p.push(',');
        p.push_str(a);
    }
    p
}

/// The `curtail` arguments for sleep / wake.
pub fn curtail_args(sleep: bool) -> &'static [&'static str] {
    if sleep { &["sleep"] } else { &["wakeup"] }
}

/// The `ledset` arguments for the locate LED (the red LED blinks to locate).
pub fn ledset_args(on: bool) -> &'static [&'static str] {
    if on {
        &["red", "blink"]
    } else {
        &["red", "off"]
    }
}

/// Fetches the profile list (no session needed).
pub async fn read_profiles(
    addr: SocketAddr,
    t: &Timeouts,
) -> Result<Vec<parse::ProfileEntry>, DriverError> {
    let raw = exchange(addr, &json_request("profiles", None), t).await?;
    let (reply, _) = parse::parse_single::<parse::ProfilesReply>(&raw)?;
    Ok(reply.profiles)
}

/// LuxOS read-back (§5.2): sleep is hashrate 0 with idle power (what the parser calls
/// Sleeping); wake needs hashing again; everything else is the generic check.
pub fn check(command: &Command, before: Option<&MinerSnapshot>, after: &MinerSnapshot) -> Verdict {
    match command {
        Command::Wake => match after.hashrate_ths {
            Some(h) if h > 0.0 && after.status != MinerStatus::Sleeping => {
                Verdict::Confirmed(format!("hashing {h:.1} TH/s"))
            }
            _ => Verdict::Pending(format!("status still {}", after.status.as_str())),
        },
        _ => verify::check(command, before, after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_replies() {
        let ok = br#"{"STATUS":[{"STATUS":"S","Code":300,"Msg":"Session created"}],"SESSION":[{"SessionID":"AbC123"}],"id":1}"#;
        assert_eq!(
            parse_session(ok).ok(),
            Some(SessionReplyKind::Id("AbC123".into()))
        );
        let busy =
            br#"{"STATUS":[{"STATUS":"E","Code":402,"Msg":"Another session is active"}],"id":1}"#;
        assert_eq!(parse_session(busy).ok(), Some(SessionReplyKind::Busy));
        let none = br#"{"STATUS":[{"STATUS":"S","Code":301,"Msg":"Session"}],"SESSION":[{"SessionID":""}],"id":1}"#;
        assert_eq!(parse_session(none).ok(), Some(SessionReplyKind::None));
        let denied = br#"{"STATUS":[{"STATUS":"E","Code":45,"Msg":"Access denied"}],"id":1}"#;
        assert!(matches!(parse_session(denied), Err(DriverError::Auth(_))));
        assert!(parse_session(b"garbage").is_err());
    }

    #[test]
    fn parameters() {
        assert_eq!(session_param("sid", curtail_args(true)), "sid,sleep");
        assert_eq!(session_param("sid", curtail_args(false)), "sid,wakeup");
        assert_eq!(session_param("sid", ledset_args(true)), "sid,red,blink");
        assert_eq!(session_param("sid", ledset_args(false)), "sid,red,off");
        assert_eq!(session_param("sid", &[]), "sid");
    }
}
