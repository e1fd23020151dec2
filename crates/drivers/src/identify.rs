//! Identifying an unknown device at an address (PROTOCOLS.md §9): which ports answer, which
//! firmware family the RPC replies name, then the family driver's own details.
//!
//! The marker table is data, ordered so that third-party firmwares (whose replies also contain
//! "ANTMINER") win over stock.

use crate::cgminer::proto;
use crate::credentials::{CredentialSource, DeviceRef};
use crate::error::DriverError;
use crate::registry::Registry;
use crate::target::{Target, Timeouts};
use hashmesh_core::DeviceIdentity;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One row of the RPC marker table: any of `markers` in the upper-cased reply means `family`.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    /// Upper-case substrings to look for.
    pub markers: &'static [&'static str],
    /// The family they identify (a driver name when hashmesh has a driver for it).
    pub family: &'static str,
}

/// RPC markers in the order they must be tested (PROTOCOLS.md §9 stage C).
pub const RPC_MARKERS: &[Marker] = &[
    Marker {
        markers: &["BOSMINER", "BOSER"],
        family: "braiins",
    },
    Marker {
        markers: &["LUXMINER"],
        family: "luxos",
    },
    Marker {
        markers: &["VNISH"],
        family: "vnish",
    },
    Marker {
        markers: &["KAONSU", "MARAFW"],
        family: "mara",
    },
    Marker {
        markers: &["HIVEON"],
        family: "hiveon",
    },
    Marker {
        markers: &["RWGLR"],
        family: "mskminer",
    },
    Marker {
        markers: &["BDMINER"],
        family: "sealminer",
    },
    Marker {
        markers: &["BTMINER", "BITMICRO"],
        family: "whatsminer",
    },
    Marker {
        markers: &["AVALON"],
        family: "avalon",
    },
    Marker {
        markers: &["GCMINER", "FLUXOS"],
        family: "auradine",
    },
    Marker {
        markers: &["INNOMINER"],
        family: "innosilicon",
    },
    Marker {
        markers: &["KDAMINER", "INTCHAINS_QOMO"],
        family: "goldshell",
    },
    Marker {
        markers: &["ANTMINER"],
        family: "antminer",
    },
    // Plain miner software last: any real fork also reports its cgminer base.
    Marker {
        markers: &["BFGMINER"],
        family: "cgminer",
    },
    Marker {
        markers: &["CGMINER"],
        family: "cgminer",
    },
];

/// Matches the upper-cased `version` and `devdetails` replies against [`RPC_MARKERS`].
///
/// `ANTMINER` counts only when `version` says it: `devdetails` of other firmwares on Antminer
/// hardware echoes the hardware name.
pub fn classify_rpc(version: &str, devdetails: &str) -> Option<&'static str> {
    let version = version.to_ascii_uppercase();
    let devdetails = devdetails.to_ascii_uppercase();
    RPC_MARKERS
        .iter()
        .find(|row| {
            row.markers.iter().any(|m| {
                version.contains(m) || (row.family != "antminer" && devdetails.contains(m))
            })
        })
        .map(|row| row.family)
}

/// What identification found at one address.
#[derive(Debug, Clone)]
pub enum Identification {
    /// A supported device, with its family driver's name and details.
    Identified {
        /// Driver name.
        family: &'static str,
        /// Make, model, firmware, MAC, serial.
        identity: DeviceIdentity,
    },
    /// The port answered, but with no signature hashmesh supports; raw answers are kept.
    Unknown {
        /// A recognised but unsupported family, if a marker matched.
        family: Option<&'static str>,
        /// Why it is not identified, with an excerpt of what came back.
        reason: String,
    },
    /// Nothing answered.
    Unresponsive,
}

/// Deadlines for scanning and identifying.
#[derive(Debug, Clone, Copy)]
pub struct IdentifyLimits {
    /// TCP reachability probe deadline (stage A).
    pub probe_connect: Duration,
    /// Per-request deadline during fingerprinting and details (stages B and D).
    pub request: Duration,
    /// Deadline for a whole host once its port answered.
    pub per_host: Duration,
}

impl Default for IdentifyLimits {
    fn default() -> Self {
        IdentifyLimits {
            probe_connect: Duration::from_millis(500),
            request: Duration::from_secs(3),
            per_host: Duration::from_secs(5),
        }
    }
}

/// Whether anything accepts a TCP connection at `addr` within `deadline`.
pub async fn probe_port(addr: SocketAddr, deadline: Duration) -> PortState {
    match timeout(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => PortState::Open,
        Ok(Err(_)) => PortState::Closed,
        Err(_) => PortState::Silent,
    }
}

/// The outcome of a TCP reachability probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// A connection was accepted.
    Open,
    /// Refused or unreachable: a definite answer.
    Closed,
    /// No answer before the deadline (a cold ARP cache, a filtered port, or nothing there).
    Silent,
}

/// Identifies the device whose RPC port is known to be open, using `registry`'s drivers for the
/// details stage.
pub async fn identify_open(
    registry: &Registry,
    ip: IpAddr,
    rpc_port: u16,
    limits: &IdentifyLimits,
) -> Identification {
    identify_open_with(registry, ip, rpc_port, limits, None).await
}

/// [`identify_open`], with the device's logins from `credentials` for the details stage (the
/// Antminer web interface holds MAC and serial behind a login).
pub async fn identify_open_with(
    registry: &Registry,
    ip: IpAddr,
    rpc_port: u16,
    limits: &IdentifyLimits,
    credentials: Option<&dyn CredentialSource>,
) -> Identification {
    match timeout(
        limits.per_host,
        identify_inner(registry, ip, rpc_port, limits, credentials),
    )
    .await
    {
        Ok(found) => found,
        Err(_) => Identification::Unknown {
            family: None,
            reason: format!("identification exceeded {:?}", limits.per_host),
        },
    }
}

async fn identify_inner(
    registry: &Registry,
    ip: IpAddr,
    rpc_port: u16,
    limits: &IdentifyLimits,
    credentials: Option<&dyn CredentialSource>,
) -> Identification {
    let timeouts = Timeouts {
        connect: limits.request,
        total: limits.request,
        max_reply_bytes: 1024 * 1024,
    };
    let addr = SocketAddr::new(ip, rpc_port);
    let version_req = proto::json_request("version", None);
    let devdetails_req = proto::json_request("devdetails", None);
    let (version, devdetails) = tokio::join!(
        proto::exchange(addr, &version_req, &timeouts),
        proto::exchange(addr, &devdetails_req, &timeouts),
    );
    let version = match version {
        Ok(v) => v,
        Err(e) => {
            return Identification::Unknown {
                family: None,
                reason: format!("version request failed: {e}"),
            };
        }
    };
    if version.starts_with(b"HTTP/") {
        return Identification::Unknown {
            family: Some("epic"),
            reason: "HTTP server on the RPC port".into(),
        };
    }
    let version_text = String::from_utf8_lossy(&version);
    let devdetails_text = devdetails
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let Some(family) = classify_rpc(&version_text, &devdetails_text) else {
        return Identification::Unknown {
            family: None,
            reason: format!("no known marker in: {}", excerpt(&version_text)),
        };
    };
    let Some(driver) = registry.get(family) else {
        return Identification::Unknown {
            family: Some(family),
            reason: format!("{family} firmware is recognised but not supported yet"),
        };
    };
    let mut target = Target::new(ip);
    target.rpc_port = rpc_port;
    target.timeouts = timeouts;
    if let Some(source) = credentials {
        target.credentials = source.credentials_for(&DeviceRef {
            ip,
            mac: None,
            groups: &[],
            family: driver.name(),
        });
    }
    match driver.identify(&target).await {
        Ok(identity) => Identification::Identified {
            family: driver.name(),
            identity,
        },
        Err(e) => Identification::Unknown {
            family: Some(family),
            reason: format!("{family} details failed: {e}"),
        },
    }
}

/// Identifies a single address end to end: probe, fingerprint, details.
pub async fn identify(
    registry: &Registry,
    ip: IpAddr,
    rpc_port: u16,
    limits: &IdentifyLimits,
) -> Result<(&'static str, DeviceIdentity), DriverError> {
    identify_with(registry, ip, rpc_port, limits, None).await
}

/// [`identify`], with the device's logins from `credentials` for the details stage.
pub async fn identify_with(
    registry: &Registry,
    ip: IpAddr,
    rpc_port: u16,
    limits: &IdentifyLimits,
    credentials: Option<&dyn CredentialSource>,
) -> Result<(&'static str, DeviceIdentity), DriverError> {
    match probe_port(
        SocketAddr::new(ip, rpc_port),
        limits.probe_connect.max(Duration::from_secs(1)),
    )
    .await
    {
        PortState::Open => {}
        PortState::Closed => {
            return Err(DriverError::Connect(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("nothing listens on {ip}:{rpc_port}"),
            )));
        }
        PortState::Silent => return Err(DriverError::Timeout(limits.probe_connect, "connect")),
    }
    match identify_open_with(registry, ip, rpc_port, limits, credentials).await {
        Identification::Identified { family, identity } => Ok((family, identity)),
        Identification::Unknown { reason, .. } => Err(DriverError::Unsupported(reason)),
        Identification::Unresponsive => Err(DriverError::Timeout(limits.per_host, "identify")),
    }
}

fn excerpt(s: &str) -> String {
    let cut: String = s.chars().take(120).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_party_firmware_beats_stock() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                r#"{"VERSION":[{"BMMiner":"1.0.0","Type":"Antminer S19 Pro"}]}"#,
                "",
                Some("antminer"),
            ),
            (
                r#"{"VERSION":[{"CGMiner":"4.11.1","PROD":"AvalonMiner 1346"}]}"#,
                "",
                Some("avalon"),
            ),
            (
                r#"{"STATUS":[{"Description":"BOSer boser-buildroot 0.1.0"}]}"#,
                r#"{"Model":"Bitmain Antminer S19"}"#,
                Some("braiins"),
            ),
            (
                r#"{"VERSION":[{"LUXminer":"2025.4.8","Type":"Antminer S19 XP"}]}"#,
                "",
                Some("luxos"),
            ),
            (
                r#"{"VERSION":[{"Type":"Antminer S19 XP (Vnish 1.2.0)"}]}"#,
                "",
                Some("vnish"),
            ),
            (
                r#"{"STATUS":[{"Description":"btminer"}]}"#,
                "",
                Some("whatsminer"),
            ),
            (
                r#"{"STATUS":[{"Description":"bfgminer 5.5.0"}],"VERSION":[{"BFGMiner":"5.5.0"}]}"#,
                "",
                Some("cgminer"),
            ),
            (r#"{"VERSION":[{"CGMiner":"4.12.0"}]}"#, "", Some("cgminer")),
            (
                r#"{"VERSION":[{"Foo":"1"}]}"#,
                r#"{"Model":"Antminer S19"}"#,
                None,
            ),
            ("", "", None),
        ];
        for (version, devdetails, want) in cases {
            assert_eq!(classify_rpc(version, devdetails), *want, "{version}");
        }
    }
}
