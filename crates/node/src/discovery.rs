//! Discovery: the configured ranges scanned at start and on a schedule. New devices join the
//! inventory and the poller; known ones are followed to new addresses; devices a scan no
//! longer finds are marked missing (shown offline by the poller), never deleted.

use crate::node::NodeInner;
use hashmesh_core::{DeviceId, DeviceKind};
use hashmesh_drivers::scan::{self, Found, ScanOptions, ScanProgress};
use hashmesh_store::meta::{Discovered, Upsert};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one scan found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanSummary {
    /// When the scan started, unix ms.
    pub started_unix_ms: i64,
    /// How long it took, seconds.
    pub duration_s: f64,
    /// Addresses probed.
    pub addresses: u64,
    /// Supported devices found.
    pub found: u64,
    /// Of those, devices never seen before.
    pub new: u64,
    /// Known devices found at a new address.
    pub moved: u64,
    /// Known devices in the ranges that this scan did not find.
    pub missing: u64,
    /// Hosts that answered but are not a supported device.
    pub unknown: u64,
}

/// Runs scans forever: one now, then every `interval` (none if zero).
pub async fn run(node: Arc<NodeInner>, interval: Duration) {
    loop {
        match scan_once(&node).await {
            Ok(s) => tracing::info!(
                found = s.found,
                new = s.new,
                moved = s.moved,
                missing = s.missing,
                unknown = s.unknown,
                seconds = format!("{:.1}", s.duration_s),
                "discovery scan done"
            ),
            Err(e) => tracing::error!("discovery scan failed: {e}"),
        }
        if interval.is_zero() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// One scan of every configured range.
pub async fn scan_once(node: &Arc<NodeInner>) -> Result<ScanSummary, String> {
    let d = &node.config.discovery;
    let ranges: Vec<IpNet> = d.ranges.clone();
    let mut summary = ScanSummary {
        started_unix_ms: hashmesh_drivers::now_unix_ms(),
        addresses: scan::count_hosts(&ranges),
        ..Default::default()
    };
    if ranges.is_empty() {
        return Ok(summary);
    }
    let started = Instant::now();
    let options = ScanOptions {
        rpc_port: d.rpc_port,
        web_port: Some(d.web_port),
        modbus_port: d.meters.then_some(d.modbus_port),
        probe_concurrency: d.probe_concurrency,
        identify_concurrency: d.identify_concurrency,
        // The poller reads every device soon enough; a scan only needs to know who is there.
        poll: false,
        ..ScanOptions::default()
    };
    let progress = Arc::new(ScanProgress::default());
    let mut hits = scan::scan(node.registry.clone(), ranges.clone(), options, progress);
    let mut seen: HashSet<DeviceId> = HashSet::new();
    while let Some(hit) = hits.recv().await {
        let Some(found) = discovered(hit.ip, &hit.found) else {
            summary.unknown += 1;
            continue;
        };
        summary.found += 1;
        seen.insert(found.id.clone());
        let now = hashmesh_drivers::now_unix_ms();
        let (record, upsert) = node
            .inventory
            .record_discovery(&found, now)
            .map_err(|e| format!("recording {}: {e}", found.ip))?;
        match upsert {
            Upsert::New => summary.new += 1,
            Upsert::Moved { from } => {
                summary.moved += 1;
                tracing::info!(device = %record.id, %from, to = %record.ip, "device moved");
            }
            Upsert::Seen => {}
        }
        node.admit(&record)
            .map_err(|e| format!("admitting {}: {e}", record.id))?;
    }

    // Known devices in the scanned ranges that did not answer: missing, not deleted.
    let now = hashmesh_drivers::now_unix_ms();
    let gone: Vec<DeviceId> = node
        .inventory
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| in_ranges(r.ip, &ranges) && !seen.contains(&r.id))
        .map(|r| r.id)
        .collect();
    summary.missing = gone.len() as u64;
    node.inventory
        .mark_missing(&gone, now)
        .map_err(|e| e.to_string())?;
    for id in &gone {
        if let Ok(Some(record)) = node.inventory.get(id) {
            node.admit(&record).map_err(|e| e.to_string())?;
        }
    }
    summary.duration_s = started.elapsed().as_secs_f64();
    node.discovery_scans.fetch_add(1, Ordering::Relaxed);
    *node.last_scan.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
    Ok(summary)
}

fn in_ranges(ip: IpAddr, ranges: &[IpNet]) -> bool {
    ranges.iter().any(|r| r.contains(&ip))
}

/// What the inventory records of a scan hit; `None` for hosts that are not a supported device.
pub fn discovered(ip: IpAddr, found: &Found) -> Option<Discovered> {
    match found {
        Found::Device {
            family, identity, ..
        } => Some(Discovered {
            id: identity.device_id(ip),
            ip,
            kind: identity.kind,
            family: (*family).to_owned(),
            vendor: identity.vendor.display_name().to_owned(),
            model: identity.model.0.clone(),
            firmware: identity.firmware.to_string(),
            mac: identity.mac.clone(),
            serial: identity.serial.clone(),
            hostname: identity.hostname.clone(),
            unit_id: None,
        }),
        Found::Meter {
            model, identity, ..
        } => {
            let serial = identity.serial.clone().filter(|s| !s.is_empty());
            let id = match &serial {
                Some(s) => DeviceId(format!("sn:{}:{s}", identity.manufacturer)),
                None => DeviceId::from_addr(ip),
            };
            Some(Discovered {
                id,
                ip,
                kind: DeviceKind::PowerMeter,
                family: (*model).to_owned(),
                vendor: identity.manufacturer.clone(),
                model: identity.model.clone(),
                firmware: identity.firmware.clone().unwrap_or_default(),
                mac: None,
                serial,
                hostname: None,
                unit_id: Some(1),
            })
        }
        Found::Unknown { .. } => None,
    }
}
