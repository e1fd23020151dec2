//! Where a device is and how to reach it: address, ports, credentials and deadlines.
//!
//! Credentials travel as a [`CredentialSet`]: the logins an operator configured for the device,
//! best first (in hashmesh, from the credential store: device entry, its groups, its family; see
//! [`crate::credentials`]). A driver that needs a login tries those, then its vendor's factory
//! defaults, stops at the first the device accepts and remembers it for that device.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Deadlines and caps for one exchange with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Deadline for the TCP connect.
    pub connect: Duration,
    /// Deadline for the whole exchange (connect, request, reply).
    pub total: Duration,
    /// Largest reply accepted, in bytes.
    pub max_reply_bytes: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(1500),
            total: Duration::from_secs(5),
            max_reply_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A username and password for a device's privileged interface.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password (never logged).
    pub password: String,
}

impl Credentials {
    /// A login of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// The logins to try on one device, best first, and whether the vendor's factory defaults
/// follow them. Empty (the default) means "factory defaults only".
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialSet {
    configured: Vec<Credentials>,
    factory_defaults: bool,
}

impl Default for CredentialSet {
    fn default() -> Self {
        CredentialSet {
            configured: Vec::new(),
            factory_defaults: true,
        }
    }
}

impl CredentialSet {
    /// These logins in order (repeats dropped), then the vendor's factory defaults.
    pub fn new(logins: impl IntoIterator<Item = Credentials>) -> Self {
        let mut set = CredentialSet::default();
        for c in logins {
            set.push(c);
        }
        set
    }

    /// Only these logins, never the factory defaults (for devices that lock out after a few
    /// wrong tries, or to test one password).
    pub fn only(logins: impl IntoIterator<Item = Credentials>) -> Self {
        CredentialSet {
            factory_defaults: false,
            ..CredentialSet::new(logins)
        }
    }

    /// Appends a login unless it is already in the set.
    pub fn push(&mut self, login: Credentials) {
        if !self.configured.contains(&login) {
            self.configured.push(login);
        }
    }

    /// The configured logins, best first (without the factory defaults).
    pub fn configured(&self) -> &[Credentials] {
        &self.configured
    }

    /// Whether no login is configured (only factory defaults, if those are allowed, are tried).
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty()
    }

    /// Whether the vendor's factory defaults are tried after the configured logins.
    pub fn tries_factory_defaults(&self) -> bool {
        self.factory_defaults
    }

    /// Every login to try, in order: the configured ones, then `defaults` (when allowed), each
    /// once.
    pub fn candidates(&self, defaults: &[Credentials]) -> Vec<Credentials> {
        let mut all = self.configured.clone();
        if self.factory_defaults {
            for d in defaults {
                if !all.contains(d) {
                    all.push(d.clone());
                }
            }
        }
        all
    }
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Usernames only: a Target is logged in many places.
        let users: Vec<&str> = self
            .configured
            .iter()
            .map(|c| c.username.as_str())
            .collect();
        write!(
            f,
            "CredentialSet({users:?}{})",
            if self.factory_defaults {
                " then factory defaults"
            } else {
                ""
            }
        )
    }
}

impl From<Credentials> for CredentialSet {
    fn from(login: Credentials) -> Self {
        CredentialSet::new([login])
    }
}

impl From<Vec<Credentials>> for CredentialSet {
    fn from(logins: Vec<Credentials>) -> Self {
        CredentialSet::new(logins)
    }
}

/// One device to talk to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Device address.
    pub ip: IpAddr,
    /// cgminer-style RPC port (4028 on real devices).
    pub rpc_port: u16,
    /// Web interface port (80 on real devices).
    pub web_port: u16,
    /// Whatsminer API v3 port (4433 on real devices; length-prefixed JSON).
    pub whatsminer_v3_port: u16,
    /// Logins to try for writes and web reads, when the family needs them (empty: the
    /// vendor's factory defaults).
    pub credentials: CredentialSet,
    /// Deadlines for each exchange.
    pub timeouts: Timeouts,
}

impl Target {
    /// A target at the real-device default ports.
    pub fn new(ip: IpAddr) -> Self {
        Target {
            ip,
            rpc_port: 4028,
            web_port: 80,
            whatsminer_v3_port: 4433,
            credentials: CredentialSet::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// The RPC socket address.
    pub fn rpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.rpc_port)
    }

    /// The Whatsminer API v3 socket address.
    pub fn whatsminer_v3_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.whatsminer_v3_port)
    }

    /// The web socket address.
    pub fn web_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.web_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_keep_order_and_drop_repeats() {
        let a = Credentials::new("root", "a");
        let b = Credentials::new("root", "b");
        let root = Credentials::new("root", "root");
        let set = CredentialSet::new([a.clone(), b.clone(), a.clone()]);
        assert_eq!(set.configured(), &[a.clone(), b.clone()]);
        assert_eq!(
            set.candidates(&[root.clone(), b.clone()]),
            vec![a.clone(), b.clone(), root.clone()]
        );
        let only = CredentialSet::only([b.clone()]);
        let defaults = vec![root.clone()];
        assert_eq!(only.candidates(&defaults), vec![b]);
        assert_eq!(CredentialSet::default().candidates(&defaults), defaults);
        let shown = format!("{:?}", CredentialSet::from(a));
        assert!(!shown.contains("\"a\""), "{shown}");
        assert!(shown.contains("root"), "{shown}");
    }
}
