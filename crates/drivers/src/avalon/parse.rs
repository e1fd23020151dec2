//! Avalon replies → core types (PROTOCOLS.md §3.1–§3.2): `version` → [`DeviceIdentity`];
//! `summary`, `estats`/`stats` (the `MM ID` strings and `HBinfo`) and `pools` → [`MinerSnapshot`].
//!
//! Pure functions on raw reply bytes, `pub` for the table tests and fuzz targets. Units are
//! normalised here: GH/s (`MGHS`, `GHSspd`) and MH/s (`MHS *` in `summary`) become TH/s by key,
//! never by magnitude; `-273` and `0` temperatures are missing; `inf`/`nan` are missing.

use crate::avalon::control::mode_for_work_mode;
use crate::avalon::mmid::ModuleStats;
use crate::cgminer::parse::{PoolEntry, PoolsReply, Summary, SummaryReply, pools_snapshot};
use crate::cgminer::reply::{
    OneOrFirst, StatusEntry, Text, check_status, decode, deserialize_kept_text,
};
use crate::error::DriverError;
use crate::health::{self, StatusRules};
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PowerSource, Vendor, VendorError,
};
use serde::Deserialize;
use serde::de::Deserializer;
use std::collections::BTreeMap;

/// The poll request: one connection for all three reports (§1.4).
pub const POLL_COMMAND: &str = "summary+estats+pools";

/// The `MM ID` strings and `HBinfo` of one `STATS` entry; every other key is skipped unparsed.
#[derive(Debug, Clone, Default)]
pub struct StatsEntry {
    /// `(key, value)` for keys starting with `MM ID` and for `HBinfo`, in reply order.
    pub strings: Vec<(String, String)>,
}

impl<'de> Deserialize<'de> for StatsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let strings = deserialize_kept_text(d, |key| key.starts_with("MM ID") || key == "HBinfo")?;
        Ok(StatsEntry { strings })
    }
}

/// A `stats` / `estats` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatsReply {
    /// The reply's STATUS.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// One entry per device / pool; Avalon puts the `MM ID` strings in the first.
    #[serde(rename = "STATS", default)]
    pub stats: Vec<StatsEntry>,
}

/// The reply to [`POLL_COMMAND`]: each member wrapped in a one-element list (§1.4). A firmware
/// without multi-command support answers with a bare top-level STATUS error instead.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PollReply {
    /// Top-level STATUS (present only when the multi-command itself was refused).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `summary` member.
    #[serde(default)]
    pub summary: OneOrFirst<SummaryReply>,
    /// `estats` member.
    #[serde(default)]
    pub estats: OneOrFirst<StatsReply>,
    /// `stats` member (when polled with `stats` instead).
    #[serde(default)]
    pub stats: OneOrFirst<StatsReply>,
    /// `pools` member.
    #[serde(default)]
    pub pools: OneOrFirst<PoolsReply>,
}

impl PollReply {
    /// Whether the reply carries the multi-command members at all.
    pub fn is_multi(&self) -> bool {
        self.summary.get().is_some() || self.estats.get().is_some() || self.stats.get().is_some()
    }
}

/// `VERSION[0]` of an Avalon `version` reply (§3.1).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionEntry {
    /// cgminer version (`4.11.1`).
    #[serde(rename = "CGMiner", default)]
    pub cgminer: Text,
    /// Product name (`AvalonMiner 15-194`, `Avalon Q`, `AvalonNano3`).
    #[serde(rename = "PROD", default)]
    pub prod: Text,
    /// Short model (`15-194`, `Q`).
    #[serde(rename = "MODEL", default)]
    pub model: Text,
    /// Controller hardware (`MM4v2_X3`).
    #[serde(rename = "HWTYPE", default)]
    pub hwtype: Text,
    /// Firmware build.
    #[serde(rename = "VERSION", default)]
    pub version: Text,
    /// cgminer build id.
    #[serde(rename = "CGVERSION", default)]
    pub cgversion: Text,
    /// Loader build id.
    #[serde(rename = "LVERSION", default)]
    pub lversion: Text,
    /// Chip DNA (serial).
    #[serde(rename = "DNA", default)]
    pub dna: Text,
    /// MAC, with or without colons.
    #[serde(rename = "MAC", default)]
    pub mac: Text,
}

/// A `version` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionReply {
    /// The reply's STATUS.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The version record.
    #[serde(rename = "VERSION", default)]
    pub version: OneOrFirst<VersionEntry>,
}

/// A MAC as `aa:bb:cc:dd:ee:ff` when it has 12 hex digits (Avalon sends both forms), else as sent.
pub fn normalise_mac(raw: &str) -> String {
    let hex: String = raw.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() == 12
        && raw
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '-')
    {
        let lower = hex.to_ascii_lowercase();
        let parts: Vec<&str> = (0..6).filter_map(|i| lower.get(i * 2..i * 2 + 2)).collect();
        parts.join(":")
    } else {
        raw.trim().to_string()
    }
}

/// Who the Avalon is, from a `version` reply.
pub fn parse_identity(raw: &[u8]) -> Result<DeviceIdentity, DriverError> {
    let reply = decode::<VersionReply>(raw)?.value;
    check_status(reply.status.get())?;
    let v = reply
        .version
        .into_inner()
        .ok_or_else(|| DriverError::Malformed("version reply without VERSION".into()))?;
    let model = match (v.prod.non_empty(), v.model.non_empty()) {
        (Some(prod), _) => prod.to_string(),
        (None, Some(model)) => format!("Avalon {model}"),
        (None, None) => {
            return Err(DriverError::Malformed(
                "version reply names no PROD or MODEL".into(),
            ));
        }
    };
    let version = [&v.version, &v.cgversion, &v.lversion, &v.cgminer]
        .into_iter()
        .find_map(|t| t.non_empty())
        .unwrap_or_default()
        .to_string();
    let nameplate_key = format!("{model} {}", v.model.trimmed());
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::Canaan,
        partially_supported: nameplate_j_per_th(&nameplate_key).is_none(),
        model: Model(model),
        firmware: Firmware {
            kind: FirmwareKind::Stock,
            version,
        },
        mac: v.mac.non_empty().map(normalise_mac),
        serial: v.dna.non_empty().map(str::to_string),
        hostname: None,
    })
}

/// Nameplate efficiency, J/TH, for Avalon models known by the model number in `PROD`/`MODEL`
/// or the `Ver` token (`1246-83-…`). Canaan's published specs, rounded.
pub fn nameplate_j_per_th(model: &str) -> Option<f64> {
    let m = model.to_ascii_uppercase();
    const TABLE: &[(&str, f64)] = &[
        ("1566", 18.5),
        ("15-", 19.0),
        ("1466", 21.5),
        ("1366", 25.0),
        ("1346", 30.0),
        ("1266", 35.0),
        ("1246", 38.0),
        ("1166", 42.0),
        ("1126", 55.0),
        ("1066", 65.0),
        ("NANO", 35.0),
        ("MINI", 21.3),
    ];
    if let Some((_, j)) = TABLE.iter().find(|(k, _)| m.contains(k)) {
        return Some(*j);
    }
    // `Avalon Q` / MODEL `Q`: match the word, not the letter anywhere.
    m.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "Q")
        .then_some(18.6)
}

/// Efficiency assumed for an Avalon whose model has no nameplate entry, J/TH.
pub const GENERIC_J_PER_TH: f64 = 30.0;

/// Meaning of the `ECHU`/`ECMM` bits (Canaan MM firmware error flags; **verify** on new models).
const ERROR_BITS: &[(u64, &str)] = &[
    (1, "idle"),
    (2, "CRC failed"),
    (4, "no fan"),
    (8, "lock"),
    (16, "API FIFO overflow"),
    (32, "RB overflow"),
    (64, "too hot"),
    (128, "was too hot"),
    (256, "loop failed"),
    (512, "core test failed"),
    (1024, "invalid PMU"),
    (2048, "power-good failed"),
    (4096, "temperature sensor error"),
    (8192, "input voltage error"),
    (16384, "core voltage error"),
    (32768, "PMU CRC failed"),
    (65536, "invalid PLL value"),
];

/// Words for an error code: the names of its set bits, or the number when none is known.
pub fn describe_error_code(code: u64) -> String {
    let words: Vec<&str> = ERROR_BITS
        .iter()
        .filter(|(bit, _)| code & bit != 0)
        .map(|(_, w)| *w)
        .collect();
    let unknown = code & !ERROR_BITS.iter().fold(0, |acc, (bit, _)| acc | bit);
    let mut text = words.join(", ");
    if unknown != 0 {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(&format!("unknown flags 0x{unknown:x}"));
    }
    text
}

/// The modules of a `STATS` list: `MM ID<n>` and `MM ID<n>:Summary` strings merged per module
/// number, with `HBinfo` applied to the first module (newer models have one module).
pub fn modules_from(stats: &[StatsEntry]) -> Vec<ModuleStats> {
    let mut modules: BTreeMap<u32, ModuleStats> = BTreeMap::new();
    let mut hbinfo: Vec<&str> = Vec::new();
    for (key, value) in stats.iter().flat_map(|e| e.strings.iter()) {
        if key == "HBinfo" {
            hbinfo.push(value);
            continue;
        }
        let rest = key.trim_start_matches("MM ID");
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest, |end| &rest[..end]);
        let Ok(n) = digits.parse::<u32>() else {
            continue;
        };
        modules.entry(n).or_default().apply_str(value);
    }
    let mut out: Vec<ModuleStats> = modules.into_values().collect();
    if let Some(first) = out.first_mut() {
        for h in hbinfo {
            first.apply_hbinfo(h);
        }
    }
    out
}

/// Builds the snapshot from the parts of a poll. `partial` says the reply was cut or repaired
/// with loss; `now_ms` is the poll time.
pub fn snapshot_from(
    summary: Option<&Summary>,
    modules: &[ModuleStats],
    pools: &[PoolEntry],
    partial: bool,
    now_ms: i64,
) -> MinerSnapshot {
    let mut s = MinerSnapshot::empty(now_ms, MinerStatus::Mining);
    s.partial = partial;
    let sum = |f: fn(&ModuleStats) -> Option<f64>| -> Option<f64> {
        modules.iter().filter_map(f).reduce(|a, b| a + b)
    };
    s.hashrate_ths = sum(|m| m.ghs_now)
        .map(|g| g / 1e3)
        .or_else(|| summary.and_then(|x| x.hashrate_ths().0));
    s.hashrate_avg_ths = sum(|m| m.ghs_avg)
        .map(|g| g / 1e3)
        .or_else(|| summary.and_then(|x| x.hashrate_ths().1));
    s.expected_hashrate_ths = sum(|m| m.ghs_nominal).map(|g| g / 1e3).filter(|t| *t > 0.0);

    for m in modules {
        push_boards(&mut s, m);
        let mut fans = m.fans_rpm.clone();
        fans.sort_by_key(|(n, _)| *n);
        s.fans_rpm.extend(fans.into_iter().map(|(_, rpm)| rpm));
        for (i, code) in m
            .board_error_codes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
        {
            s.errors.push(VendorError {
                code: format!("ECHU{i}:{code}"),
                message: format!("board {i}: {}", describe_error_code(*code)),
            });
        }
        if let Some(code) = m.module_error_code.filter(|c| *c != 0) {
            s.errors.push(VendorError {
                code: format!("ECMM:{code}"),
                message: describe_error_code(code),
            });
        }
    }
    let first = modules.first();
    s.ambient_temp_c = first.and_then(|m| m.ambient_temp_c);
    s.locate_led_on = first.and_then(|m| m.led_on);
    s.power_mode = first.and_then(|m| m.work_mode).and_then(mode_for_work_mode);
    s.power_target_w = sum(|m| m.mpo_w);
    s.uptime_s = summary
        .and_then(|x| x.elapsed_s.as_u64())
        .or_else(|| first.and_then(|m| m.elapsed_s));
    s.hardware_errors = summary
        .and_then(|x| x.hardware_errors.as_u64())
        .or_else(|| {
            modules
                .iter()
                .filter_map(|m| m.hw_errors)
                .reduce(|a, b| a + b)
        });
    s.pools = pools_snapshot(pools);

    if let Some(w) = sum(|m| m.wall_power_w) {
        s.power_w = Some(w);
        s.power_source = Some(PowerSource::Measured);
    } else if let Some(w) = sum(psu_power_w) {
        s.power_w = Some(w);
        s.power_source = Some(PowerSource::FirmwareEstimated);
    } else if let Some(ths) = s.hashrate_ths.filter(|h| *h > 0.0) {
        let key = first.and_then(|m| m.ver.as_deref()).unwrap_or_default();
        s.power_w = Some(ths * nameplate_j_per_th(key).unwrap_or(GENERIC_J_PER_TH));
        s.power_source = Some(PowerSource::Nameplate);
    }
    s.derive_efficiency();

    health::mark_dead_boards(&mut s);
    let sleeping = modules.iter().any(ModuleStats::is_soft_off);
    s.status = health::classify(&s, sleeping, &StatusRules::AVALON_LUXOS);
    s
}

/// Power from the `PS[...]` array: index 4 on the models asic-rs and MOS read (index meaning
/// varies by PSU, hence firmware-estimated rather than measured; **verify**).
fn psu_power_w(m: &ModuleStats) -> Option<f64> {
    m.ps.get(4).copied().flatten().filter(|w| *w > 0.0)
}

/// Appends one module's boards to the snapshot.
fn push_boards(s: &mut MinerSnapshot, m: &ModuleStats) {
    let n = [
        m.board_ghs.len(),
        m.board_chip_temp_max_c.len(),
        m.chips.len(),
    ]
    .into_iter()
    .find(|n| *n > 0)
    .unwrap_or(0);
    let per_board = |v: &[Option<f64>], i: usize| -> Option<f64> {
        match v {
            [one] => *one,
            many => many.get(i).copied().flatten(),
        }
    };
    let chips_expected = m
        .total_chips
        .filter(|t| n > 0 && (*t as usize).is_multiple_of(n))
        .map(|t| t / n as u32);
    for i in 0..n {
        let chips = m.chips.get(i);
        let board = BoardSnapshot {
            index: s.boards.len() as u32,
            hashrate_ths: m.board_ghs.get(i).copied().flatten().map(|g| g / 1e3),
            expected_hashrate_ths: None,
            chip_temp_c: m
                .board_chip_temp_max_c
                .get(i)
                .copied()
                .flatten()
                .or_else(|| chips.and_then(|c| c.max_temp_c())),
            board_temp_c: m.board_chip_temp_avg_c.get(i).copied().flatten(),
            inlet_temp_c: per_board(&m.board_inlet_temp_c, i),
            outlet_temp_c: per_board(&m.board_outlet_temp_c, i),
            chips_working: chips.and_then(|c| c.working()),
            chips_expected,
            frequency_mhz: m.board_freq_mhz(i),
            voltage_v: None,
            hardware_errors: None,
            failed: false,
        };
        s.boards.push(board);
    }
}

/// Parses the reply to [`POLL_COMMAND`]. `Ok(None)` means the firmware refused the
/// multi-command form (fall back to single commands).
pub fn parse_poll(raw: &[u8], now_ms: i64) -> Result<Option<MinerSnapshot>, DriverError> {
    let decoded = decode::<PollReply>(raw)?;
    let reply = decoded.value;
    if !reply.is_multi() {
        crate::cgminer::multi_refusal_strict(reply.status.get(), raw)?;
        return Ok(None);
    }
    let summary = reply.summary.into_inner().unwrap_or_default();
    check_status(summary.status.get())?;
    let stats = reply
        .estats
        .into_inner()
        .or(reply.stats.into_inner())
        .unwrap_or_default();
    check_status(stats.status.get())?;
    let pools = reply.pools.into_inner().unwrap_or_default();
    check_status(pools.status.get())?;
    let modules = modules_from(&stats.stats);
    Ok(Some(snapshot_from(
        summary.summary.get(),
        &modules,
        &pools.pools,
        decoded.truncated,
        now_ms,
    )))
}

/// Parses a single `summary` reply (single-command fallback).
pub fn parse_summary(raw: &[u8]) -> Result<(Option<Summary>, bool), DriverError> {
    let d = decode::<SummaryReply>(raw)?;
    check_status(d.value.status.get())?;
    Ok((d.value.summary.into_inner(), d.truncated))
}

/// Parses a single `estats`/`stats` reply into modules (single-command fallback).
pub fn parse_stats(raw: &[u8]) -> Result<(Vec<ModuleStats>, bool), DriverError> {
    let d = decode::<StatsReply>(raw)?;
    check_status(d.value.status.get())?;
    Ok((modules_from(&d.value.stats), d.truncated))
}

/// Parses a single `pools` reply (single-command fallback).
pub fn parse_pools(raw: &[u8]) -> Result<(Vec<PoolEntry>, bool), DriverError> {
    let d = decode::<PoolsReply>(raw)?;
    check_status(d.value.status.get())?;
    Ok((d.value.pools.0, d.truncated))
}
