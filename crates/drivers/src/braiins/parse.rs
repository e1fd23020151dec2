//! Braiins OS (bosminer / BOSer) replies on its cgminer-compatible API → snapshots
//! (PROTOCOLS.md §5.1): `version` + `devdetails` for identity, and one
//! `summary+pools+devs+devdetails+fans+temps+tunerstatus` request per poll. Hashrates are MH/s.

use crate::cgminer::parse::{
    DevDetailsReply, DevsReply, PoolsReply, SummaryReply, VersionReply, classify, cut_at_cap,
    pools_snapshot, snapshot_from_summary, sum_some, temp_c,
};
use crate::cgminer::reply::{
    Decoded, List, Num, OneOrFirst, StatusEntry, Text, check_status, decode,
};
use crate::error::DriverError;
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, Model,
    PowerSource, Vendor,
};
use serde::Deserialize;

/// One `FANS` record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FanEntry {
    /// Fan id.
    #[serde(rename = "ID", default)]
    pub id: Num,
    /// Speed, RPM.
    #[serde(rename = "RPM", default)]
    pub rpm: Num,
    /// Duty, %.
    #[serde(rename = "Speed", default)]
    pub speed_pct: Num,
}

/// The `fans` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FansReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The fans.
    #[serde(rename = "FANS", default)]
    pub fans: List<FanEntry>,
}

/// One `TEMPS` record (one per hash board).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TempEntry {
    /// Board id.
    #[serde(rename = "ID", default)]
    pub id: Num,
    /// Board (PCB) temperature, °C.
    #[serde(rename = "Board", default)]
    pub board_c: Num,
    /// Hottest chip temperature, °C.
    #[serde(rename = "Chip", default)]
    pub chip_c: Num,
}

/// The `temps` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TempsReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// One record per board.
    #[serde(rename = "TEMPS", default)]
    pub temps: List<TempEntry>,
}

/// `TUNERSTATUS[0]`: the autotuner's power limit and the power it sees.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TunerEntry {
    /// Configured power limit, W.
    #[serde(rename = "PowerLimit", default)]
    pub power_limit_w: Num,
    /// Measured power (PSU reading), W, on firmware that has one.
    #[serde(rename = "MinerPowerConsumption", alias = "PowerConsumption", default)]
    pub measured_power_w: Num,
    /// The tuner's estimate of the whole miner's power, W.
    #[serde(rename = "ApproximateMinerPowerConsumption", default)]
    pub approx_power_w: Num,
    /// Tuner or miner state, when reported (`Paused`, `Tuning`, `Stable`).
    #[serde(rename = "TunerState", alias = "MinerState", default)]
    pub state: Text,
}

/// The `tunerstatus` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TunerReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The tuner record.
    #[serde(rename = "TUNERSTATUS", default)]
    pub tuner: OneOrFirst<TunerEntry>,
}

/// The poll's multi-command reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BraiinsMulti {
    /// Top-level status: only present when the whole multi-command was refused.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The `summary` section.
    #[serde(default)]
    pub summary: OneOrFirst<SummaryReply>,
    /// The `pools` section.
    #[serde(default)]
    pub pools: OneOrFirst<PoolsReply>,
    /// The `devs` section (one device per hash board).
    #[serde(default)]
    pub devs: OneOrFirst<DevsReply>,
    /// The `devdetails` section.
    #[serde(default)]
    pub devdetails: OneOrFirst<DevDetailsReply>,
    /// The `fans` section.
    #[serde(default)]
    pub fans: OneOrFirst<FansReply>,
    /// The `temps` section.
    #[serde(default)]
    pub temps: OneOrFirst<TempsReply>,
    /// The `tunerstatus` section.
    #[serde(default)]
    pub tunerstatus: OneOrFirst<TunerReply>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// The sections a Braiins snapshot is built from; any but `summary` may be missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct BraiinsParts<'a> {
    /// `summary`.
    pub summary: Option<&'a SummaryReply>,
    /// `pools`.
    pub pools: Option<&'a PoolsReply>,
    /// `devs`.
    pub devs: Option<&'a DevsReply>,
    /// `devdetails`.
    pub devdetails: Option<&'a DevDetailsReply>,
    /// `fans`.
    pub fans: Option<&'a FansReply>,
    /// `temps`.
    pub temps: Option<&'a TempsReply>,
    /// `tunerstatus`.
    pub tuner: Option<&'a TunerReply>,
}

fn ok<T>(section: Option<&T>, status: impl Fn(&T) -> Option<&StatusEntry>) -> Option<&T> {
    // An optional section the firmware refused (older BOS without `tunerstatus`) is just absent.
    section.filter(|s| check_status(status(s)).is_ok())
}

/// Builds the snapshot. `paused_by_us` is the driver's memory that it sent `pause` to this
/// device, used when the firmware's replies carry no explicit paused state.
pub fn braiins_snapshot(
    time_unix_ms: i64,
    parts: BraiinsParts<'_>,
    paused_by_us: bool,
    partial: bool,
) -> Result<MinerSnapshot, DriverError> {
    let mut snap = snapshot_from_summary(time_unix_ms, parts.summary, partial)?;

    if let Some(p) = parts.pools {
        check_status(p.status.get())?;
        snap.pools = pools_snapshot(&p.pools);
        snap.partial |= cut_at_cap(p.id);
    }
    let devs: &[_] = ok(parts.devs, |d| d.status.get()).map_or(&[], |d| &d.devs);
    let details: &[_] = ok(parts.devdetails, |d| d.status.get()).map_or(&[], |d| &d.details);
    let temps: &[_] = ok(parts.temps, |t| t.status.get()).map_or(&[], |t| &t.temps);
    let mut paused_state = false;
    snap.boards = devs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let detail = details.get(i);
            let temp = temps.get(i);
            let status = d.status.trimmed().to_ascii_lowercase();
            paused_state |= status.contains("paus");
            let chips = detail.and_then(|x| x.chips.as_u32());
            BoardSnapshot {
                index: i as u32,
                hashrate_ths: d.hashrate_ths(),
                expected_hashrate_ths: d.nominal_mhs.get().map(|v| v / 1e6),
                chip_temp_c: temp_c(temp.and_then(|t| t.chip_c.get()))
                    .or(temp_c(d.temperature_c.get())),
                board_temp_c: temp_c(temp.and_then(|t| t.board_c.get())),
                chips_working: chips,
                chips_expected: None,
                frequency_mhz: detail
                    .and_then(|x| x.frequency_mhz.get())
                    .filter(|f| *f > 0.0),
                voltage_v: detail.and_then(|x| x.voltage_v.get()).filter(|v| *v > 0.0),
                hardware_errors: d.hardware_errors.as_u64(),
                failed: d.enabled.0 == Some(false)
                    || matches!(status.as_str(), "dead" | "sick" | "nostart"),
                ..Default::default()
            }
        })
        .collect();
    snap.expected_hashrate_ths = sum_some(snap.boards.iter().map(|b| b.expected_hashrate_ths));
    if let Some(f) = ok(parts.fans, |f| f.status.get()) {
        snap.fans_rpm = f.fans.iter().map(|f| f.rpm.as_u32().unwrap_or(0)).collect();
    }
    if let Some(t) = ok(parts.tuner, |t| t.status.get()).and_then(|t| t.tuner.get()) {
        paused_state |= t.state.trimmed().to_ascii_lowercase().contains("paus");
        snap.power_target_w = t.power_limit_w.get().filter(|w| *w > 0.0);
        if let Some(w) = t.measured_power_w.get() {
            snap.power_w = Some(w);
            snap.power_source = Some(PowerSource::Measured);
        } else if let Some(w) = t.approx_power_w.get() {
            snap.power_w = Some(w);
            snap.power_source = Some(PowerSource::FirmwareEstimated);
        }
    }
    let hashing = snap.hashrate_ths.is_some_and(|h| h > 0.0);
    let sleeping = paused_state || (paused_by_us && !hashing);
    if !sleeping {
        // A board with no working chips is dead even when no other board hashes.
        for b in &mut snap.boards {
            b.failed |= b.chips_working == Some(0);
        }
        crate::health::mark_dead_boards(&mut snap);
    }
    snap.derive_efficiency();
    snap.status = classify(&snap, sleeping);
    Ok(snap)
}

/// Parses the poll's multi-command reply. `Ok(None)` means the device did not answer it as a
/// multi-command (fall back to single commands).
pub fn parse_braiins_multi(
    raw: &[u8],
    time_unix_ms: i64,
    paused_by_us: bool,
) -> Result<Option<MinerSnapshot>, DriverError> {
    let d: Decoded<BraiinsMulti> = decode(raw)?;
    let m = &d.value;
    if m.summary.get().is_none() {
        crate::cgminer::multi_refusal(m.status.get())?;
        return Ok(None);
    }
    let parts = BraiinsParts {
        summary: m.summary.get(),
        pools: m.pools.get(),
        devs: m.devs.get(),
        devdetails: m.devdetails.get(),
        fans: m.fans.get(),
        temps: m.temps.get(),
        tuner: m.tunerstatus.get(),
    };
    braiins_snapshot(
        time_unix_ms,
        parts,
        paused_by_us,
        d.truncated || cut_at_cap(m.id),
    )
    .map(Some)
}

/// Identity from `version` (Description `BOSer …` / `BOSminer …`) and `devdetails` (`Model`
/// minus the `Bitmain ` prefix).
pub fn braiins_identity(
    version: &[u8],
    devdetails: Option<&[u8]>,
) -> Result<DeviceIdentity, DriverError> {
    let v: Decoded<VersionReply> = decode(version)?;
    check_status(v.value.status.get())?;
    let description = v
        .value
        .status
        .get()
        .map(|s| s.description.trimmed().to_owned())
        .unwrap_or_default();
    let entry = v.value.version.into_inner().unwrap_or_default();
    let upper = description.to_ascii_uppercase();
    let from_keys = entry
        .boser
        .non_empty()
        .or(entry.bosminer.non_empty())
        .map(str::to_owned);
    if from_keys.is_none() && !(upper.contains("BOSER") || upper.contains("BOSMINER")) {
        return Err(DriverError::Malformed(format!(
            "not Braiins OS: version says '{description}'"
        )));
    }
    let build = from_keys.unwrap_or_else(|| {
        description
            .split_once(' ')
            .map(|(_, rest)| rest.trim().to_owned())
            .unwrap_or_default()
    });
    let detail_model = devdetails
        .and_then(|d| decode::<DevDetailsReply>(d).ok())
        .and_then(|d| {
            d.value
                .details
                .first()
                .and_then(|e| e.model.non_empty().map(str::to_owned))
        });
    let model = detail_model
        .as_deref()
        .map(|m| m.strip_prefix("Bitmain ").unwrap_or(m).trim().to_owned())
        .or_else(|| entry.hw_type.non_empty().map(str::to_owned))
        .unwrap_or_else(|| "Braiins OS miner".to_owned());
    let vendor = if model.to_ascii_lowercase().starts_with("antminer") {
        Vendor::Bitmain
    } else {
        Vendor::Unknown
    };
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor,
        partially_supported: detail_model.is_none(),
        model: Model(model),
        firmware: Firmware {
            kind: FirmwareKind::BraiinsOs,
            version: build,
        },
        mac: None,
        serial: None,
        hostname: None,
    })
}
