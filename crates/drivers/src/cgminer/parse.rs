//! cgminer replies → snapshots: the reply sections every fork shares (`version`, `summary`,
//! `pools`, `devs`, `devdetails`), the rules that turn them into core types (units, pool
//! activity, status), and the generic cgminer / BFGMiner snapshot.
//!
//! Pure functions over bytes, `pub` so tests and fuzz targets call them directly.

use crate::cgminer::reply::{Decoded, Flag, List, Num, OneOrFirst, StatusEntry, Text, decode};
use crate::error::DriverError;
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PoolSnapshot, PoolStatus, Vendor,
};
use serde::Deserialize;

/// `VERSION[0]`: the miner software and, on vendor firmwares, the hardware type.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionEntry {
    /// cgminer version (`4.11.1`), also present on many forks.
    #[serde(rename = "CGMiner", default)]
    pub cgminer: Text,
    /// BFGMiner version (`5.5.0`).
    #[serde(rename = "BFGMiner", default)]
    pub bfgminer: Text,
    /// bmminer version on Antminer stock firmware.
    #[serde(rename = "BMMiner", default)]
    pub bmminer: Text,
    /// API version (`3.1`).
    #[serde(rename = "API", default)]
    pub api: Text,
    /// Firmware build on Antminer (`49.0.1.3`).
    #[serde(rename = "Miner", default)]
    pub miner: Text,
    /// Build time on Antminer (`Tue Dec  6 16:12:30 CST 2022`).
    #[serde(rename = "CompileTime", default)]
    pub compile_time: Text,
    /// BOSminer version on Braiins OS.
    #[serde(rename = "BOSminer", alias = "BOSminer+", default)]
    pub bosminer: Text,
    /// BOSer version on Braiins OS.
    #[serde(rename = "BOSer", default)]
    pub boser: Text,
    /// Hardware type on Antminer (`Antminer S19 Pro`, maybe with a ` (Vnish …)` suffix).
    #[serde(rename = "Type", default)]
    pub hw_type: Text,
}

/// The `version` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The version record.
    #[serde(rename = "VERSION", default)]
    pub version: OneOrFirst<VersionEntry>,
}

/// `SUMMARY[0]`, with both cgminer's MH/s keys and the GH/s keys of bmminer and LUXminer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Summary {
    /// Seconds since the mining process started.
    #[serde(rename = "Elapsed", default)]
    pub elapsed_s: Num,
    /// Average since start, MH/s.
    #[serde(rename = "MHS av", default)]
    pub mhs_av: Num,
    /// 5-second rate, MH/s.
    #[serde(rename = "MHS 5s", default)]
    pub mhs_5s: Num,
    /// 20-second rate (BFGMiner's log interval), MH/s.
    #[serde(rename = "MHS 20s", default)]
    pub mhs_20s: Num,
    /// 30-second rate, MH/s (Canaan's shortest window on some Avalon builds).
    #[serde(rename = "MHS 30s", default)]
    pub mhs_30s: Num,
    /// 1-minute rate, MH/s.
    #[serde(rename = "MHS 1m", default)]
    pub mhs_1m: Num,
    /// 5-minute rate, MH/s.
    #[serde(rename = "MHS 5m", default)]
    pub mhs_5m: Num,
    /// 15-minute rate, MH/s.
    #[serde(rename = "MHS 15m", default)]
    pub mhs_15m: Num,
    /// Average since start, GH/s (bmminer, LUXminer).
    #[serde(rename = "GHS av", default)]
    pub ghs_av: Num,
    /// 5-second rate, GH/s.
    #[serde(rename = "GHS 5s", default)]
    pub ghs_5s: Num,
    /// 30-minute rate, GH/s.
    #[serde(rename = "GHS 30m", default)]
    pub ghs_30m: Num,
    /// Accepted shares.
    #[serde(rename = "Accepted", default)]
    pub accepted: Num,
    /// Rejected shares.
    #[serde(rename = "Rejected", default)]
    pub rejected: Num,
    /// Stale shares.
    #[serde(rename = "Stale", default)]
    pub stale: Num,
    /// Hardware errors since start.
    #[serde(rename = "Hardware Errors", default)]
    pub hardware_errors: Num,
}

impl Summary {
    /// Current and average hashrate in TH/s, unit from the key (MHS or GHS), never magnitude.
    pub fn hashrate_ths(&self) -> (Option<f64>, Option<f64>) {
        let mhs_now = [
            self.mhs_5s,
            self.mhs_20s,
            self.mhs_30s,
            self.mhs_1m,
            self.mhs_5m,
            self.mhs_15m,
        ]
        .into_iter()
        .find_map(Num::get);
        if mhs_now.is_some() || self.mhs_av.get().is_some() {
            let now = mhs_now.or(self.mhs_av.get());
            return (now.map(|v| v / 1e6), self.mhs_av.get().map(|v| v / 1e6));
        }
        let now = self
            .ghs_5s
            .get()
            .or(self.ghs_30m.get())
            .or(self.ghs_av.get());
        (now.map(|v| v / 1e3), self.ghs_av.get().map(|v| v / 1e3))
    }
}

/// The `summary` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SummaryReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The summary record.
    #[serde(rename = "SUMMARY", default)]
    pub summary: OneOrFirst<Summary>,
    /// 1 normally; 0 when an old API cut the reply at its size cap.
    #[serde(default)]
    pub id: Num,
}

/// One `POOLS` record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PoolEntry {
    /// cgminer's pool number (what `switchpool`/`removepool` take).
    #[serde(rename = "POOL", default)]
    pub pool: Num,
    /// Stratum URL.
    #[serde(rename = "URL", default)]
    pub url: Text,
    /// Worker name.
    #[serde(rename = "User", default)]
    pub user: Text,
    /// `Alive`, `Dead`, `Disabled`, `Rejecting`.
    #[serde(rename = "Status", default)]
    pub status: Text,
    /// 0 = first priority.
    #[serde(rename = "Priority", default)]
    pub priority: Num,
    /// Accepted shares.
    #[serde(rename = "Accepted", default)]
    pub accepted: Num,
    /// Rejected shares.
    #[serde(rename = "Rejected", default)]
    pub rejected: Num,
    /// Stale shares.
    #[serde(rename = "Stale", default)]
    pub stale: Num,
    /// This pool is the stratum connection receiving work.
    #[serde(rename = "Stratum Active", default)]
    pub stratum_active: Flag,
}

/// The `pools` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PoolsReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The pools.
    #[serde(rename = "POOLS", default)]
    pub pools: List<PoolEntry>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// One `DEVS` record (an ASC, PGA or GPU device: a hash board on most ASIC firmwares).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DevEntry {
    /// ASC index.
    #[serde(rename = "ASC", default)]
    pub asc: Num,
    /// PGA index (BFGMiner, older cgminer).
    #[serde(rename = "PGA", default)]
    pub pga: Num,
    /// Driver name (`BTM`, `AVA10`).
    #[serde(rename = "Name", default)]
    pub name: Text,
    /// Device id within the driver.
    #[serde(rename = "ID", default)]
    pub id: Num,
    /// `Y` / `N`.
    #[serde(rename = "Enabled", default)]
    pub enabled: Flag,
    /// `Alive`, `Sick`, `Dead`, `NoStart`, `Initialising`.
    #[serde(rename = "Status", default)]
    pub status: Text,
    /// Device temperature, °C (`-273`/`0` = no sensor).
    #[serde(rename = "Temperature", default)]
    pub temperature_c: Num,
    /// Average since start, MH/s.
    #[serde(rename = "MHS av", default)]
    pub mhs_av: Num,
    /// 5-second rate, MH/s.
    #[serde(rename = "MHS 5s", default)]
    pub mhs_5s: Num,
    /// 20-second rate (BFGMiner), MH/s.
    #[serde(rename = "MHS 20s", default)]
    pub mhs_20s: Num,
    /// 1-minute rate, MH/s.
    #[serde(rename = "MHS 1m", default)]
    pub mhs_1m: Num,
    /// Nominal hashrate of the device, MH/s (Braiins OS).
    #[serde(rename = "Nominal MHS", default)]
    pub nominal_mhs: Num,
    /// Hardware errors on this device.
    #[serde(rename = "Hardware Errors", default)]
    pub hardware_errors: Num,
}

impl DevEntry {
    /// Current hashrate of the device, TH/s.
    pub fn hashrate_ths(&self) -> Option<f64> {
        [self.mhs_5s, self.mhs_20s, self.mhs_1m, self.mhs_av]
            .into_iter()
            .find_map(Num::get)
            .map(|v| v / 1e6)
    }
}

/// The `devs` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DevsReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The devices.
    #[serde(rename = "DEVS", default)]
    pub devs: List<DevEntry>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// One `DEVDETAILS` record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DevDetailEntry {
    /// Hardware model (`Bitmain Antminer S19 Pro` on Braiins OS).
    #[serde(rename = "Model", default)]
    pub model: Text,
    /// Driver name.
    #[serde(rename = "Driver", default)]
    pub driver: Text,
    /// Chips on the board, when reported.
    #[serde(rename = "Chips", default)]
    pub chips: Num,
    /// Board frequency, MHz, when reported.
    #[serde(rename = "Frequency", default)]
    pub frequency_mhz: Num,
    /// Board voltage, V, when reported.
    #[serde(rename = "Voltage", default)]
    pub voltage_v: Num,
}

/// The `devdetails` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DevDetailsReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// One record per device.
    #[serde(rename = "DEVDETAILS", default)]
    pub details: List<DevDetailEntry>,
}

/// The generic driver's `summary+pools+devs` multi-command reply (§1.4).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CgminerMulti {
    /// Top-level status: only present when the whole multi-command was refused.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The `summary` section.
    #[serde(default)]
    pub summary: OneOrFirst<SummaryReply>,
    /// The `pools` section.
    #[serde(default)]
    pub pools: OneOrFirst<PoolsReply>,
    /// The `devs` section.
    #[serde(default)]
    pub devs: OneOrFirst<DevsReply>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// Converts a rate in `unit` (`GH`, `GH/s`, `MH`, `TH/s`, …) to TH/s; `None` for an unknown unit.
pub fn unit_to_ths(value: f64, unit: &str) -> Option<f64> {
    let u = unit
        .trim()
        .trim_end_matches("/s")
        .trim_end_matches("/S")
        .trim();
    let scale = match u.to_ascii_uppercase().as_str() {
        "H" => 1e-12,
        "KH" => 1e-9,
        "MH" => 1e-6,
        "GH" => 1e-3,
        "TH" => 1.0,
        "PH" => 1e3,
        _ => return None,
    };
    Some(value * scale)
}

/// Parses a rate with its unit inside the string (`"11.49 GH/s"`, `"5659.83 MH/s"`) to TH/s.
pub fn rate_string_to_ths(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v = crate::cgminer::reply::parse_num(num)?;
    unit_to_ths(v, unit)
}

/// A temperature reading, with sentinels (`-273`, `0`, implausible values) treated as no sensor.
pub fn temp_c(v: Option<f64>) -> Option<f64> {
    v.filter(|t| *t > 0.0 && *t < 200.0)
}

/// Maps cgminer pool records to snapshots, in priority order, marking the active pool
/// (`Stratum Active`, else the first `Alive` by priority; PROTOCOLS.md §1.8).
pub fn pools_snapshot(entries: &[PoolEntry]) -> Vec<PoolSnapshot> {
    let mut order: Vec<&PoolEntry> = entries.iter().collect();
    // Stable sort: pools without a priority keep their listed order after those with one.
    order.sort_by(|a, b| {
        let key = |p: &PoolEntry| p.priority.get().or(p.pool.get()).unwrap_or(f64::MAX);
        key(a).total_cmp(&key(b))
    });
    let mut out: Vec<PoolSnapshot> = order
        .iter()
        .enumerate()
        .map(|(i, p)| PoolSnapshot {
            index: i as u32,
            url: hashmesh_core::intern(p.url.trimmed()),
            user: p.user.0.clone(),
            status: pool_status(p.status.trimmed()),
            accepted: p.accepted.as_u64().unwrap_or(0),
            rejected: p.rejected.as_u64().unwrap_or(0),
            stale: p.stale.as_u64().unwrap_or(0),
            active: false,
        })
        .collect();
    let active = order
        .iter()
        .position(|p| p.stratum_active.0 == Some(true))
        .or_else(|| out.iter().position(|p| p.status == PoolStatus::Alive));
    if let Some(p) = active.and_then(|i| out.get_mut(i)) {
        p.active = true;
    }
    out
}

/// Maps a cgminer pool status word.
pub fn pool_status(s: &str) -> PoolStatus {
    match s.to_ascii_lowercase().as_str() {
        "alive" => PoolStatus::Alive,
        "dead" | "rejecting" => PoolStatus::Dead,
        "disabled" => PoolStatus::Disabled,
        _ => PoolStatus::Unknown,
    }
}

/// The overall status from a filled snapshot by the shared rules ([`crate::health`]) with the
/// cgminer family's parameters: Sleeping when the firmware says so; Error when it answers but
/// does not hash; Degraded for a dead board, a stopped fan, no alive pool, or a warmed-up
/// hashrate below 80 % of expected; else Mining.
pub fn classify(snap: &MinerSnapshot, sleeping: bool) -> MinerStatus {
    crate::health::classify(snap, sleeping, &crate::health::StatusRules::CGMINER)
}

/// Marks a reply cut at an old API's size cap (`"id":0`, §1.6).
pub fn cut_at_cap(id: Num) -> bool {
    id.get() == Some(0.0)
}

/// Sums optional values, `None` when none is present.
pub fn sum_some(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values
        .into_iter()
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

/// Identity of a plain cgminer or BFGMiner from its `version` (and optional `devdetails`) reply.
pub fn cgminer_identity(
    version: &[u8],
    devdetails: Option<&[u8]>,
) -> Result<DeviceIdentity, DriverError> {
    let v: Decoded<VersionReply> = decode(version)?;
    crate::cgminer::reply::check_status(v.value.status.get())?;
    let entry = v.value.version.into_inner().unwrap_or_default();
    let (kind, build) = if let Some(b) = entry.bfgminer.non_empty() {
        (FirmwareKind::Bfgminer, b.to_owned())
    } else if let Some(c) = entry.cgminer.non_empty() {
        (FirmwareKind::Cgminer, c.to_owned())
    } else {
        let desc = v
            .value
            .status
            .get()
            .map(|s| s.description.trimmed().to_owned())
            .unwrap_or_default();
        let lower = desc.to_ascii_lowercase();
        if lower.starts_with("bfgminer") {
            (
                FirmwareKind::Bfgminer,
                desc.split_whitespace().nth(1).unwrap_or("").to_owned(),
            )
        } else if lower.starts_with("cgminer") {
            (
                FirmwareKind::Cgminer,
                desc.split_whitespace().nth(1).unwrap_or("").to_owned(),
            )
        } else {
            return Err(DriverError::Malformed(
                "version reply names neither CGMiner nor BFGMiner".into(),
            ));
        }
    };
    let detail_model = devdetails
        .and_then(|d| decode::<DevDetailsReply>(d).ok())
        .and_then(|d| {
            d.value
                .details
                .first()
                .and_then(|e| e.model.non_empty().map(str::to_owned))
        });
    let model = detail_model.unwrap_or_else(|| match kind {
        FirmwareKind::Bfgminer => "BFGMiner rig".to_owned(),
        _ => "cgminer rig".to_owned(),
    });
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::Unknown,
        model: Model(model),
        firmware: Firmware {
            kind,
            version: build,
        },
        mac: None,
        serial: None,
        hostname: None,
        partially_supported: false,
    })
}

/// A snapshot begun from the `summary` section every fork sends: hashrates, uptime, hardware
/// errors, and `partial` (also set when the section was cut at the size cap). A missing section
/// or record is `Malformed`; an error STATUS is its error.
pub fn snapshot_from_summary(
    time_unix_ms: i64,
    summary: Option<&SummaryReply>,
    partial: bool,
) -> Result<MinerSnapshot, DriverError> {
    let summary_reply =
        summary.ok_or_else(|| DriverError::Malformed("reply has no summary".into()))?;
    crate::cgminer::reply::check_status(summary_reply.status.get())?;
    let s = summary_reply
        .summary
        .get()
        .ok_or_else(|| DriverError::Malformed("summary reply has no SUMMARY record".into()))?;
    let mut snap = MinerSnapshot::empty(time_unix_ms, MinerStatus::Mining);
    let (now, avg) = s.hashrate_ths();
    snap.hashrate_ths = now;
    snap.hashrate_avg_ths = avg;
    snap.uptime_s = s.elapsed_s.as_u64();
    snap.hardware_errors = s.hardware_errors.as_u64();
    snap.partial = partial || cut_at_cap(summary_reply.id);
    Ok(snap)
}

/// The generic cgminer snapshot from the three sections (any may be missing).
pub fn cgminer_snapshot(
    time_unix_ms: i64,
    summary: Option<&SummaryReply>,
    pools: Option<&PoolsReply>,
    devs: Option<&DevsReply>,
    partial: bool,
) -> Result<MinerSnapshot, DriverError> {
    let mut snap = snapshot_from_summary(time_unix_ms, summary, partial)?;
    if let Some(p) = pools {
        if crate::cgminer::reply::check_status(p.status.get()).is_ok() {
            snap.pools = pools_snapshot(&p.pools);
        }
        snap.partial |= cut_at_cap(p.id);
    }
    if let Some(d) = devs {
        if crate::cgminer::reply::check_status(d.status.get()).is_ok() {
            snap.boards = d
                .devs
                .iter()
                .enumerate()
                .map(|(i, dev)| {
                    let hashrate = dev.hashrate_ths();
                    let alive = dev.status.trimmed().eq_ignore_ascii_case("alive");
                    BoardSnapshot {
                        index: i as u32,
                        hashrate_ths: hashrate,
                        chip_temp_c: temp_c(dev.temperature_c.get()),
                        hardware_errors: dev.hardware_errors.as_u64(),
                        failed: !alive || dev.enabled.0 == Some(false),
                        ..Default::default()
                    }
                })
                .collect();
        }
        snap.partial |= cut_at_cap(d.id);
    }
    // Plain cgminer reports no power, fans or nominal rate, and the hardware is unknown, so
    // there is no nameplate to estimate power from either.
    snap.derive_efficiency();
    snap.status = classify(&snap, false);
    Ok(snap)
}

/// Parses the generic driver's `summary+pools+devs` reply (the poll's fast path).
pub fn parse_cgminer_multi(raw: &[u8], time_unix_ms: i64) -> Result<MinerSnapshot, DriverError> {
    let d: Decoded<CgminerMulti> = decode(raw)?;
    crate::cgminer::reply::check_status(d.value.status.get())?;
    let m = d.value;
    cgminer_snapshot(
        time_unix_ms,
        m.summary.get(),
        m.pools.get(),
        m.devs.get(),
        d.truncated || cut_at_cap(m.id),
    )
}

/// Parses one single-command reply into `T`, returning whether it was truncated.
pub fn parse_single<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<(T, bool), DriverError> {
    let d: Decoded<T> = decode(raw)?;
    Ok((d.value, d.truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_from_strings_and_names() {
        assert_eq!(unit_to_ths(140258.58, "GH"), Some(140.25858));
        assert_eq!(unit_to_ths(1.5, "TH/s"), Some(1.5));
        assert_eq!(unit_to_ths(1.0, "furlongs"), None);
        assert_eq!(rate_string_to_ths("11.49 GH/s"), Some(0.01149));
        assert_eq!(
            rate_string_to_ths("5659.83 MH/s").map(|v| (v * 1e8).round()),
            Some(565983.0)
        );
        assert_eq!(rate_string_to_ths("fast"), None);
        assert_eq!(temp_c(Some(-273.0)), None);
        assert_eq!(temp_c(Some(0.0)), None);
        assert_eq!(temp_c(Some(65.5)), Some(65.5));
    }

    #[test]
    fn active_pool_rules() {
        let mk = |pool: f64, prio: f64, status: &str, active: Option<bool>| PoolEntry {
            pool: Num(Some(pool)),
            url: Text(format!("stratum+tcp://p{pool}:3333")),
            status: Text(status.into()),
            priority: Num(Some(prio)),
            stratum_active: Flag(active),
            ..Default::default()
        };
        let pools = pools_snapshot(&[
            mk(0.0, 1.0, "Alive", Some(false)),
            mk(1.0, 0.0, "Dead", Some(false)),
        ]);
        assert_eq!(
            &*pools[0].url, "stratum+tcp://p1:3333",
            "sorted by priority"
        );
        assert!(
            !pools[0].active && pools[1].active,
            "first alive by priority"
        );
        let pools = pools_snapshot(&[
            mk(0.0, 0.0, "Alive", Some(false)),
            mk(1.0, 1.0, "Alive", Some(true)),
        ]);
        assert!(!pools[0].active && pools[1].active, "Stratum Active wins");
        let pools = pools_snapshot(&[mk(0.0, 0.0, "Dead", None)]);
        assert!(!pools[0].active);
    }
}
