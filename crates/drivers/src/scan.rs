//! Network scans: every address in some CIDR ranges probed with bounded concurrency and
//! deadlines, the answering ones identified and read once.
//!
//! Stage A (TCP reachability) runs many cheap probes at once; stage B (identify and one poll)
//! runs fewer, heavier exchanges. A host that stays silent (as opposed to refusing) gets one
//! later retry with a longer deadline: a cold ARP cache drops first SYNs on real networks.

use crate::identify::{self, Identification, IdentifyLimits, PortState};
use crate::registry::Registry;
use crate::target::Target;
use hashmesh_core::{DeviceIdentity, MinerSnapshot};
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
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            rpc_port: 4028,
            probe_concurrency: 4096,
            identify_concurrency: 512,
            limits: IdentifyLimits::default(),
            retry_connect: Duration::from_secs(1),
            poll: true,
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
    let (open_tx, open_rx) = mpsc::channel::<IpAddr>(options.identify_concurrency * 4);
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
                let addr = SocketAddr::new(ip, options.rpc_port);
                match identify::probe_port(addr, options.limits.probe_connect).await {
                    PortState::Open => {
                        let _ = open_tx.send(ip).await;
                    }
                    PortState::Silent => {
                        let _ = retry_tx.send(ip);
                    }
                    PortState::Closed => {}
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
                let port = options.rpc_port;
                let deadline = options.retry_connect;
                tasks.push(tokio::spawn(async move {
                    if identify::probe_port(SocketAddr::new(ip, port), deadline).await
                        == PortState::Open
                    {
                        let _ = open_tx.send(ip).await;
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
                let Some(ip) = next else { break };
                let found = identify_host(&registry, ip, &options).await;
                if matches!(found, Found::Device { .. }) {
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

async fn identify_host(registry: &Registry, ip: IpAddr, options: &ScanOptions) -> Found {
    match identify::identify_open(registry, ip, options.rpc_port, &options.limits).await {
        Identification::Identified { family, identity } => {
            let snapshot = if options.poll {
                let poll = async {
                    let driver = registry.get(family)?;
                    let mut target = Target::new(ip);
                    target.rpc_port = options.rpc_port;
                    target.timeouts.connect = options.limits.request;
                    target.timeouts.total = options.limits.request;
                    Some(
                        driver
                            .poll(&target)
                            .await
                            .map(Box::new)
                            .map_err(|e| e.to_string()),
                    )
                };
                poll.await
            } else {
                None
            };
            Found::Device {
                family,
                identity: Box::new(identity),
                snapshot,
            }
        }
        Identification::Unknown { family, reason } => Found::Unknown { family, reason },
        Identification::Unresponsive => Found::Unknown {
            family: None,
            reason: "no answer".into(),
        },
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
