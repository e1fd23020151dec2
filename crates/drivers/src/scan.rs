//! Network scans: every address in some CIDR ranges probed with bounded concurrency and
//! deadlines, the answering ones identified and read once.
//!
//! Stage A (TCP reachability of the RPC port, the web port and, when asked, the Modbus port)
//! runs many cheap probes at once; stage B (identify and one poll) runs fewer, heavier
//! exchanges: the cgminer-style RPC first, then the web API (Bitaxe/AxeOS), then Modbus meters. A host that stays silent (as opposed to refusing) gets one
//! later retry with a longer deadline: a cold ARP cache drops first SYNs on real networks.

use crate::credentials::{CredentialSource, DeviceRef};
use crate::identify::{self, Identification, IdentifyLimits, PortState};
use crate::modbus::{self, MeterDriver, MeterTarget};
use crate::registry::Registry;
use crate::target::{Target, Timeouts};
use hashmesh_core::{DeviceIdentity, MeterIdentity, MeterSnapshot, MinerSnapshot};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// RPC port to probe (4028 on real devices).
    pub rpc_port: u16,
    /// Web port to probe on hosts without an RPC port (80 on real devices); `None` skips it.
    pub web_port: Option<u16>,
    /// Modbus TCP port to probe for power meters (502 on real meters); `None` skips meters.
    pub modbus_port: Option<u16>,
    /// Modbus unit id to ask when probing meters.
    pub modbus_unit_id: u8,
    /// Simultaneous TCP reachability probes.
    pub probe_concurrency: usize,
    /// Simultaneous identifications.
    pub identify_concurrency: usize,
    /// Deadlines.
    pub limits: IdentifyLimits,
    /// Deadline of the retry for hosts that stayed silent.
    pub retry_connect: Duration,
    /// Read each identified device once, so the result carries hashrate and power.
    pub poll: bool,
    /// Logins for devices that need one to be identified or read (none: factory defaults).
    pub credentials: Option<Arc<dyn CredentialSource>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            rpc_port: 4028,
            web_port: Some(80),
            modbus_port: None,
            modbus_unit_id: 1,
            probe_concurrency: 4096,
            identify_concurrency: 512,
            limits: IdentifyLimits::default(),
            retry_connect: Duration::from_secs(1),
            poll: true,
            credentials: None,
        }
    }
}

/// One address that answered.
#[derive(Debug, Clone)]
pub struct ScanHit {
    /// The address.
    pub ip: IpAddr,
    /// What identification found.
    pub found: Found,
}

/// What was found at an answering address.
#[derive(Debug, Clone)]
pub enum Found {
    /// A supported device; `snapshot` is its first read, or why that read failed.
    Device {
        /// Driver name.
        family: &'static str,
        /// Make, model, firmware.
        identity: Box<DeviceIdentity>,
        /// One poll, when requested.
        snapshot: Option<Result<Box<MinerSnapshot>, String>>,
    },
    /// A power meter; `snapshot` is its first read, or why that read failed.
    Meter {
        /// The register map it was identified with (`abb_b2x`, `schneider_pm5xxx`).
        model: &'static str,
        /// Maker, model, serial, firmware.
        identity: Box<MeterIdentity>,
        /// One poll, when requested.
        snapshot: Option<Result<Box<MeterSnapshot>, String>>,
    },
    /// Responsive but not identified.
    Unknown {
        /// A recognised but unsupported family, if any.
        family: Option<&'static str>,
        /// What went wrong or what was seen.
        reason: String,
    },
}

/// Counters a scan keeps while it runs, for progress display.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Addresses whose reachability probe has finished.
    pub probed: AtomicU64,
    /// Addresses that answered and have been identified (or failed to be).
    pub answered: AtomicU64,
    /// Addresses identified as supported devices.
    pub identified: AtomicU64,
}

/// Number of addresses the ranges cover (host addresses only).
pub fn count_hosts(ranges: &[IpNet]) -> u64 {
    ranges
        .iter()
        .map(|net| match net {
            IpNet::V4(n) => {
                let bits = 32 - u32::from(n.prefix_len());
                let all = 1u64 << bits;
                if bits >= 2 { all - 2 } else { all }
            }
            IpNet::V6(n) => {
                let bits = 128 - u32::from(n.prefix_len());
                if bits >= 63 {
                    u64::MAX / 2
                } else {
                    1u64 << bits
                }
            }
        })
        .fold(0u64, u64::saturating_add)
}

/// Scans `ranges`, sending each answering host to the returned channel as soon as it is known.
/// The channel closes when the scan is done.
pub fn scan(
    registry: Registry,
    ranges: Vec<IpNet>,
    options: ScanOptions,
    progress: Arc<ScanProgress>,
) -> mpsc::Receiver<ScanHit> {
    let (hits_tx, hits_rx) = mpsc::channel(1024);
    let (open_tx, open_rx) = mpsc::channel::<(IpAddr, OpenPorts)>(options.identify_concurrency * 4);
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<IpAddr>();
    let hosts = Arc::new(std::sync::Mutex::new(
        ranges.into_iter().flat_map(|r| r.hosts()),
    ));
    let options = Arc::new(options);

    // Stage A: probe workers pull addresses from the shared iterator.
    let mut probers = Vec::with_capacity(options.probe_concurrency);
    for _ in 0..options.probe_concurrency.max(1) {
        let hosts = hosts.clone();
        let open_tx = open_tx.clone();
        let retry_tx = retry_tx.clone();
        let options = options.clone();
        let progress = progress.clone();
        probers.push(tokio::spawn(async move {
            loop {
                let next = match hosts.lock() {
                    Ok(mut it) => it.next(),
                    Err(_) => None,
                };
                let Some(ip) = next else { break };
                match probe_host(ip, &options, options.limits.probe_connect).await {
                    Probe::Open(ports) => {
                        let _ = open_tx.send((ip, ports)).await;
                    }
                    Probe::Silent => {
                        let _ = retry_tx.send(ip);
                    }
                    Probe::Closed => {}
                }
                progress.probed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    drop(retry_tx);
    // Retries of silent hosts, after the first pass, with a longer deadline.
    {
        let open_tx = open_tx.clone();
        let options = options.clone();
        tokio::spawn(async move {
            for p in probers {
                let _ = p.await;
            }
            let mut silent = Vec::new();
            while let Some(ip) = retry_rx.recv().await {
                silent.push(ip);
            }
            let sem = Arc::new(tokio::sync::Semaphore::new(
                options.probe_concurrency.max(1),
            ));
            let mut tasks = Vec::with_capacity(silent.len());
            for ip in silent {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let open_tx = open_tx.clone();
                let options = options.clone();
                tasks.push(tokio::spawn(async move {
                    if let Probe::Open(ports) =
                        probe_host(ip, &options, options.retry_connect).await
                    {
                        let _ = open_tx.send((ip, ports)).await;
                    }
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    }
    drop(open_tx);

    // Stage B: identify and read the answering hosts.
    let open_rx = Arc::new(Mutex::new(open_rx));
    for _ in 0..options.identify_concurrency.max(1) {
        let open_rx = open_rx.clone();
        let hits_tx = hits_tx.clone();
        let registry = registry.clone();
        let options = options.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                let next = open_rx.lock().await.recv().await;
                let Some((ip, ports)) = next else { break };
                let found = identify_host(&registry, ip, ports, &options).await;
                if matches!(found, Found::Device { .. } | Found::Meter { .. }) {
                    progress.identified.fetch_add(1, Ordering::Relaxed);
                }
                progress.answered.fetch_add(1, Ordering::Relaxed);
                if hits_tx.send(ScanHit { ip, found }).await.is_err() {
                    break;
                }
            }
        });
    }
    hits_rx
}

/// Which of the probed ports accepted a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OpenPorts {
    rpc: bool,
    web: bool,
    modbus: bool,
}

/// What stage A learnt about one host.
enum Probe {
    /// At least one port accepted.
    Open(OpenPorts),
    /// Something refused: a host is there, but nothing we look for.
    Closed,
    /// No answer at all before the deadline: worth one retry.
    Silent,
}

/// Probes the configured ports of one host at once.
async fn probe_host(ip: IpAddr, options: &ScanOptions, deadline: Duration) -> Probe {
    let port = |p: Option<u16>| async move {
        match p {
            Some(p) => identify::probe_port(SocketAddr::new(ip, p), deadline).await,
            None => PortState::Closed,
        }
    };
    let (rpc, web, modbus) = tokio::join!(
        port(Some(options.rpc_port)),
        port(options.web_port),
        port(options.modbus_port)
    );
    let states = [rpc, web, modbus];
    if states.contains(&PortState::Open) {
        Probe::Open(OpenPorts {
            rpc: rpc == PortState::Open,
            web: web == PortState::Open,
            modbus: modbus == PortState::Open,
        })
    } else if rpc == PortState::Silent {
        Probe::Silent
    } else {
        Probe::Closed
    }
}

/// Identifies one answering host: RPC first, then the web API, then Modbus.
async fn identify_host(
    registry: &Registry,
    ip: IpAddr,
    ports: OpenPorts,
    options: &ScanOptions,
) -> Found {
    let mut reasons = Vec::new();
    let mut recognised = None;
    let mut target = Target::new(ip);
    target.rpc_port = options.rpc_port;
    target.web_port = options.web_port.unwrap_or(80);
    target.timeouts.connect = options.limits.request;
    target.timeouts.total = options.limits.request;
    if ports.rpc {
        let credentials = options.credentials.as_deref();
        let found = identify::identify_open_with(
            registry,
            ip,
            options.rpc_port,
            &options.limits,
            credentials,
        )
        .await;
        match found {
            Identification::Identified { family, identity } => {
                if let Some(source) = credentials {
                    target.credentials = source.credentials_for(&DeviceRef {
                        ip,
                        mac: identity.mac.as_deref(),
                        groups: &[],
                        family,
                    });
                }
                return device(registry, family, identity, &target, options).await;
            }
            Identification::Unknown { family, reason } => {
                recognised = recognised.or(family);
                reasons.push(reason);
            }
            Identification::Unresponsive => reasons.push("RPC port gave no answer".into()),
        }
    }
    if ports.web && !ports.rpc {
        let web =
            tokio::time::timeout(options.limits.per_host, crate::bitaxe::probe(&target)).await;
        match web {
            Ok(Ok(identity)) => {
                return device(registry, "bitaxe", identity, &target, options).await;
            }
            Ok(Err(e)) => reasons.push(format!("web port: no known device API ({e})")),
            Err(_) => reasons.push(format!(
                "web port: no answer within {:?}",
                options.limits.per_host
            )),
        }
    }
    if let (true, Some(port)) = (ports.modbus, options.modbus_port) {
        let addr = SocketAddr::new(ip, port);
        let timeouts = Timeouts {
            connect: options.limits.request,
            total: options.limits.request,
            ..Timeouts::default()
        };
        match modbus::probe(addr, options.modbus_unit_id, timeouts).await {
            Ok(Some((model, identity))) => {
                let model_name = model.name();
                let snapshot = if options.poll {
                    let target = MeterTarget {
                        addr,
                        unit_id: options.modbus_unit_id,
                        model,
                        timeouts,
                    };
                    let driver = MeterDriver::new();
                    let read = driver
                        .poll(&target)
                        .await
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    driver.disconnect(addr, options.modbus_unit_id);
                    Some(read)
                } else {
                    None
                };
                return Found::Meter {
                    model: model_name,
                    identity: Box::new(identity),
                    snapshot,
                };
            }
            Ok(None) => reasons.push("Modbus device of an unknown make".into()),
            Err(e) => reasons.push(format!("Modbus probe failed: {e}")),
        }
    }
    Found::Unknown {
        family: recognised,
        reason: if reasons.is_empty() {
            "no answer".into()
        } else {
            reasons.join("; ")
        },
    }
}

/// A supported device, read once when the options ask for it.
async fn device(
    registry: &Registry,
    family: &'static str,
    identity: DeviceIdentity,
    target: &Target,
    options: &ScanOptions,
) -> Found {
    let snapshot = match (options.poll, registry.get(family)) {
        (true, Some(driver)) => Some(
            driver
                .poll(target)
                .await
                .map(Box::new)
                .map_err(|e| e.to_string()),
        ),
        _ => None,
    };
    Found::Device {
        family,
        identity: Box::new(identity),
        snapshot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hosts() {
        let r: Vec<IpNet> = vec![
            "127.20.0.0/16".parse().unwrap(),
            "127.0.0.5/32".parse().unwrap(),
        ];
        assert_eq!(count_hosts(&r), 65534 + 1);
    }
}
