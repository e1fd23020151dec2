//! Device logins: where they are kept and in which order they are tried.
//!
//! * [`Scope`]: what an entry applies to: one device (by IP, or by MAC when known), a named
//!   group (opaque: `site=A`, `rack=A/C01/R03`, `model=Antminer S19 Pro`, `tag=foo`), or a whole
//!   family (`antminer`, `braiins`, `whatsminer`) as the site's own default.
//! * [`CredentialStore`] (in [`store`]): `<data_dir>/credentials.json` with usernames in clear and
//!   passwords sealed under a random key kept apart in `<data_dir>/credentials.key` (mode 0600),
//!   so the file alone leaks no password. [`CredentialStore::unlock`] gives a [`Keyring`].
//! * [`Keyring::lookup`]: a device's [`CredentialSet`]: its device entries (MAC, then IP), its
//!   groups' entries in the order given, then its family's entry.
//! * Drivers add their vendor's factory logins ([`LoginInterface::factory_defaults`],
//!   PROTOCOLS.md §0) after those, try them in order with [`LoginMemo::try_in_order`], stop at
//!   the first the device accepts and remember it per device, so a poll does not try wrong
//!   passwords again. When every login is refused the error is [`DriverError::Auth`] naming the
//!   usernames tried, never a password; a refused connection or a timeout stays what it is.

mod seal;
pub mod store;

pub use seal::{SealError, StoreKey};
pub use store::{Change, CredentialError, CredentialStore, EntryInfo, Keyring};

use crate::error::DriverError;
use crate::target::{CredentialSet, Credentials};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;

/// Families whose drivers log in, so a family entry means something for them.
pub const FAMILIES_WITH_LOGIN: [&str; 3] = ["antminer", "braiins", "whatsminer"];

/// Longest group name, username accepted, in characters.
const MAX_NAME_CHARS: usize = 256;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What a stored login applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One device, by MAC address (lower-case, colon-separated).
    DeviceMac(String),
    /// One device, by address.
    DeviceIp(IpAddr),
    /// Every device of a named group (an opaque name such as `site=A`).
    Group(String),
    /// Every device of a family that has no closer entry (lower-case family name).
    Family(String),
}

impl Scope {
    /// A device scope from an IP address or a MAC address (`aa:bb:cc:dd:ee:ff`, `AA-BB-…`,
    /// or 12 hex digits).
    pub fn device(value: &str) -> Result<Scope, String> {
        let v = value.trim();
        if let Ok(ip) = v.parse::<IpAddr>() {
            return Ok(Scope::DeviceIp(ip));
        }
        normalise_mac(v).map(Scope::DeviceMac).ok_or_else(|| {
            format!("'{value}' is neither an IP address nor a MAC address (aa:bb:cc:dd:ee:ff)")
        })
    }

    /// A group scope; the name is opaque but must be printable and not empty.
    pub fn group(name: &str) -> Result<Scope, String> {
        let n = name.trim();
        check_name(n, "group name")?;
        Ok(Scope::Group(n.to_owned()))
    }

    /// A family scope, for one of [`FAMILIES_WITH_LOGIN`].
    pub fn family(name: &str) -> Result<Scope, String> {
        let n = name.trim().to_ascii_lowercase();
        if FAMILIES_WITH_LOGIN.contains(&n.as_str()) {
            Ok(Scope::Family(n))
        } else {
            Err(format!(
                "family '{name}' takes no login here; families with logins: {}",
                FAMILIES_WITH_LOGIN.join(", ")
            ))
        }
    }

    /// `device`, `group` or `family`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::DeviceMac(_) | Scope::DeviceIp(_) => "device",
            Scope::Group(_) => "group",
            Scope::Family(_) => "family",
        }
    }

    /// The value after the kind: the address, MAC, group or family name.
    pub fn value(&self) -> String {
        match self {
            Scope::DeviceMac(m) => m.clone(),
            Scope::DeviceIp(ip) => ip.to_string(),
            Scope::Group(g) => g.clone(),
            Scope::Family(f) => f.clone(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

impl FromStr for Scope {
    type Err = String;

    /// Parses `device:<ip|mac>`, `group:<name>` or `family:<name>` (as [`Scope`]'s `Display`
    /// writes them); a bare IP or MAC address is a device.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.split_once(':') {
            Some(("device", v)) => Scope::device(v),
            Some(("group", v)) => Scope::group(v),
            Some(("family", v)) => Scope::family(v),
            _ => Scope::device(t).map_err(|_| {
                format!(
                    "'{s}' is not a scope: expected device:<ip|mac>, group:<name> or family:<name>"
                )
            }),
        }
    }
}

fn check_name(n: &str, what: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the {what} is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(format!("the {what} contains control characters"));
    }
    Ok(())
}

/// Checks a login before it is stored: a printable username, a password of at most
/// [`MAX_PASSWORD_BYTES`] without line breaks or NUL (no device login takes those).
pub fn check_login(login: &Credentials) -> Result<(), String> {
    check_name(login.username.trim(), "username")?;
    if login.username.trim() != login.username {
        return Err("the username has leading or trailing spaces".into());
    }
    if login.password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if login.password.contains(['\r', '\n', '\0']) {
        return Err("the password contains a line break or NUL".into());
    }
    Ok(())
}

/// `aa:bb:cc:dd:ee:ff` from any common spelling of a MAC address, or `None`.
pub fn normalise_mac(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let lower = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &lower[2 * i..2 * i + 2]).collect();
    Some(pairs.join(":"))
}

/// What is known about a device when its logins are looked up.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRef<'a> {
    /// Its address.
    pub ip: IpAddr,
    /// Its MAC address, when known (any common spelling).
    pub mac: Option<&'a str>,
    /// The groups it belongs to, closest first (the order their entries are tried in).
    pub groups: &'a [String],
    /// Its driver family (`antminer`, …).
    pub family: &'a str,
}

/// Where the configured logins of a device come from (the store's [`Keyring`], or a caller's
/// own source).
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The device's configured logins, best first (drivers add their factory defaults).
    fn credentials_for(&self, device: &DeviceRef<'_>) -> CredentialSet;
}

/// One login interface of a family, with its factory logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginInterface {
    /// Antminer stock web CGI (HTTP Digest).
    AntminerWeb,
    /// Braiins OS REST API.
    BraiinsRest,
    /// Whatsminer API v2 writes (the admin password; the username is not sent).
    WhatsminerV2,
    /// Whatsminer API v3 writes (account and password).
    WhatsminerV3,
}

impl LoginInterface {
    /// The family whose store entries apply.
    pub fn family(self) -> &'static str {
        match self {
            LoginInterface::AntminerWeb => "antminer",
            LoginInterface::BraiinsRest => "braiins",
            LoginInterface::WhatsminerV2 | LoginInterface::WhatsminerV3 => "whatsminer",
        }
    }

    /// The name used in errors.
    pub fn describe(self) -> &'static str {
        match self {
            LoginInterface::AntminerWeb => "the Antminer web interface",
            LoginInterface::BraiinsRest => "the Braiins OS REST API",
            LoginInterface::WhatsminerV2 => "the Whatsminer API v2",
            LoginInterface::WhatsminerV3 => "the Whatsminer API v3",
        }
    }

    /// The vendor's factory logins in the order to try them (PROTOCOLS.md §0, §4, §5.1).
    pub fn factory_defaults(self) -> Vec<Credentials> {
        let pairs: &[(&str, &str)] = match self {
            LoginInterface::AntminerWeb => &[("root", "root")],
            LoginInterface::BraiinsRest => &[("root", ""), ("root", "root")],
            LoginInterface::WhatsminerV2 => &[("admin", crate::whatsminer::DEFAULT_V2_PASSWORD)],
            LoginInterface::WhatsminerV3 => &[(
                crate::whatsminer::DEFAULT_V3_ACCOUNT,
                crate::whatsminer::DEFAULT_V3_PASSWORD,
            )],
        };
        pairs
            .iter()
            .map(|(u, p)| Credentials::new(*u, *p))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map holds only logins; a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which login each device last accepted, per login endpoint: a driver keeps one so that later
/// calls start with the login that works instead of trying refused ones again.
#[derive(Debug, Default)]
pub struct LoginMemo {
    worked: Mutex<HashMap<SocketAddr, Credentials>>,
}

impl LoginMemo {
    /// A memo with nothing remembered.
    pub fn new() -> Self {
        LoginMemo::default()
    }

    /// The login `addr` last accepted, if any.
    pub fn remembered(&self, addr: SocketAddr) -> Option<Credentials> {
        lock(&self.worked).get(&addr).cloned()
    }

    /// Remembers that `addr` accepted `login`.
    pub fn remember(&self, addr: SocketAddr, login: &Credentials) {
        let mut map = lock(&self.worked);
        if map.get(&addr) != Some(login) {
            map.insert(addr, login.clone());
        }
    }

    /// Forgets the login of `addr`.
    pub fn forget(&self, addr: SocketAddr) {
        lock(&self.worked).remove(&addr);
    }

    /// `candidates` with the login `addr` last accepted moved to the front, when it is still
    /// one of them (a login removed from the store is not tried because it once worked).
    pub fn order(&self, addr: SocketAddr, mut candidates: Vec<Credentials>) -> Vec<Credentials> {
        if let Some(known) = self.remembered(addr)
            && let Some(i) = candidates.iter().position(|c| *c == known)
        {
            let first = candidates.remove(i);
            candidates.insert(0, first);
        }
        candidates
    }

    /// Runs `attempt` with each login in turn (the remembered one first) until one is not
    /// refused. Only [`DriverError::Auth`] moves on to the next login; any other error (a
    /// refused connection, a timeout, a malformed reply) ends the search as it is. When every
    /// login is refused the error names the interface and the usernames tried, in order.
    pub async fn try_in_order<T, F, Fut>(
        &self,
        addr: SocketAddr,
        interface: LoginInterface,
        candidates: Vec<Credentials>,
        mut attempt: F,
    ) -> Result<T, DriverError>
    where
        F: FnMut(Credentials) -> Fut,
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let ordered = self.order(addr, candidates);
        if ordered.is_empty() {
            return Err(DriverError::Auth(format!(
                "{}: no login to try (none configured, factory defaults turned off)",
                interface.describe()
            )));
        }
        let mut tried: Vec<String> = Vec::with_capacity(ordered.len());
        let mut last = String::new();
        for login in ordered {
            let user = login.username.clone();
            match attempt(login.clone()).await {
                Ok(v) => {
                    self.remember(addr, &login);
                    return Ok(v);
                }
                Err(DriverError::Auth(why)) => {
                    if self.remembered(addr).as_ref() == Some(&login) {
                        self.forget(addr);
                    }
                    tracing::debug!(%addr, user = %user, "login refused: {why}");
                    tried.push(user);
                    last = why;
                }
                Err(e) => return Err(e),
            }
        }
        Err(refused(interface, &tried, &last))
    }
}

/// The error for a device that refused every login: the interface, the usernames in the order
/// they were tried (never a password), and the device's last answer.
pub fn refused(interface: LoginInterface, usernames: &[String], last: &str) -> DriverError {
    let users: Vec<String> = usernames
        .iter()
        .map(|u| {
            if u.is_empty() {
                "(empty)".to_owned()
            } else {
                format!("'{u}'")
            }
        })
        .collect();
    DriverError::Auth(format!(
        "{} refused every login tried ({} tried, users {}); last answer: {last}",
        interface.describe(),
        usernames.len(),
        users.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let cases = [
            ("device:10.0.0.5", "device:10.0.0.5"),
            ("10.0.0.5", "device:10.0.0.5"),
            ("device:AA-BB-CC-DD-EE-0F", "device:aa:bb:cc:dd:ee:0f"),
            ("aabbccddee0f", "device:aa:bb:cc:dd:ee:0f"),
            ("device:::1", "device:::1"),
            ("group:site=A", "group:site=A"),
            ("group: rack=A/C01/R03 ", "group:rack=A/C01/R03"),
            ("family:Antminer", "family:antminer"),
        ];
        for (input, shown) in cases {
            let s: Scope = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.to_string(), shown, "{input}");
            assert_eq!(shown.parse::<Scope>().ok(), Some(s), "{shown}");
        }
        for bad in [
            "",
            "device:",
            "device:not-an-address",
            "group:",
            "group:a\nb",
            "family:avalon",
            "family:",
            "rack:1",
            "aa:bb",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn logins_are_checked() {
        assert!(check_login(&Credentials::new("root", "")).is_ok());
        assert!(check_login(&Credentials::new("root", "a b ~!")).is_ok());
        assert!(check_login(&Credentials::new("", "x")).is_err());
        assert!(check_login(&Credentials::new(" root", "x")).is_err());
        assert!(check_login(&Credentials::new("root", "a\nb")).is_err());
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(check_login(&Credentials::new("root", long)).is_err());
    }

    #[test]
    fn memo_puts_the_remembered_login_first_while_it_is_a_candidate() {
        let memo = LoginMemo::new();
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = (
            Credentials::new("a", "1"),
            Credentials::new("b", "2"),
            Credentials::new("c", "3"),
        );
        let all = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(memo.order(addr, all.clone()), all);
        memo.remember(addr, &c);
        assert_eq!(
            memo.order(addr, all.clone()),
            vec![c.clone(), a.clone(), b.clone()]
        );
        assert_eq!(memo.order(addr, vec![a.clone(), b.clone()]), vec![a, b]);
    }

    #[tokio::test]
    async fn only_auth_errors_move_on() {
        let memo = LoginMemo::new();
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap_or_else(|e| panic!("{e}"));
        let logins = vec![
            Credentials::new("alice", "pw-a"),
            Credentials::new("", "pw-empty"),
            Credentials::new("root", "pw-r"),
        ];
        // Everything refused: every username in order, no password.
        let r: Result<(), _> = memo
            .try_in_order(
                addr,
                LoginInterface::BraiinsRest,
                logins.clone(),
                |_| async { Err(DriverError::Auth("HTTP 401".into())) },
            )
            .await;
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("authentication failed"), "{msg}");
        assert!(msg.contains("users 'alice', (empty), 'root'"), "{msg}");
        assert!(msg.contains("HTTP 401"), "{msg}");
        assert!(!msg.contains("pw-"), "{msg}");
        // A timeout is not a refusal: it ends the search at once, and stays a timeout.
        let mut calls = 0;
        let r: Result<(), _> = memo
            .try_in_order(addr, LoginInterface::BraiinsRest, logins.clone(), |_| {
                calls += 1;
                async {
                    Err(DriverError::Timeout(
                        std::time::Duration::from_secs(1),
                        "connect",
                    ))
                }
            })
            .await;
        assert!(r.as_ref().is_err_and(DriverError::is_offline), "{r:?}");
        assert_eq!(calls, 1);
        // The third works; next time it is tried first.
        let mut seen = Vec::new();
        let r = memo
            .try_in_order(addr, LoginInterface::BraiinsRest, logins.clone(), |c| {
                seen.push(c.username.clone());
                async move {
                    if c.password == "pw-r" {
                        Ok(7)
                    } else {
                        Err(DriverError::Auth("no".into()))
                    }
                }
            })
            .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(seen, vec!["alice", "", "root"]);
        assert_eq!(memo.remembered(addr), Some(logins[2].clone()));
        let mut seen = Vec::new();
        let _ = memo
            .try_in_order(addr, LoginInterface::BraiinsRest, logins.clone(), |c| {
                seen.push(c.username.clone());
                async { Ok::<_, DriverError>(()) }
            })
            .await;
        assert_eq!(seen, vec!["root"]);
        let none: Result<(), _> = memo
            .try_in_order(addr, LoginInterface::BraiinsRest, Vec::new(), |_| async {
                Ok(())
            })
            .await;
        assert!(matches!(none, Err(DriverError::Auth(_))));
    }

    #[test]
    fn factory_defaults_follow_protocols() {
        let users = |i: LoginInterface| -> Vec<(String, String)> {
            i.factory_defaults()
                .into_iter()
                .map(|c| (c.username, c.password))
                .collect()
        };
        assert_eq!(
            users(LoginInterface::BraiinsRest),
            vec![("root".into(), "".into()), ("root".into(), "root".into())]
        );
        assert_eq!(
            users(LoginInterface::WhatsminerV3),
            vec![("super".into(), "super".into())]
        );
        for i in [
            LoginInterface::AntminerWeb,
            LoginInterface::BraiinsRest,
            LoginInterface::WhatsminerV2,
            LoginInterface::WhatsminerV3,
        ] {
            assert!(Scope::family(i.family()).is_ok());
        }
    }
}
