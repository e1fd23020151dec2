//! Where a device is and how to reach it: address, ports, credentials and deadlines.

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

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
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
    /// Credentials for writes, when the family needs them.
    pub credentials: Option<Credentials>,
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
            credentials: None,
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
