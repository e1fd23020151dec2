//! Antminer stock (bmminer) replies on 4028 → snapshots (PROTOCOLS.md §2.1): `version`, the
//! `summary+stats+pools` multi-command, and both `stats` layouts: the legacy one (numbered
//! `chain_*N` / `fanN` keys, `"a-b-c-d"` sensor strings) and the `new_api` one (lists).
//!
//! Both layouts are first reduced to [`AntStats`], so the snapshot is built one way.

use crate::cgminer::parse::{
    PoolsReply, SummaryReply, VersionReply, classify, cut_at_cap, pools_snapshot, temp_c,
    unit_to_ths,
};
use crate::cgminer::reply::{
    Decoded, List, Num, OneOrFirst, StatusEntry, Text, TextRef, check_status, decode, parse_num,
};
use crate::error::DriverError;
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PowerMode, PowerSource, Vendor,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// Highest chain number scanned in the legacy layout (`chain_acn1..16`).
pub const MAX_CHAIN: usize = 16;
/// Highest fan number read in the legacy layout.
pub const MAX_FAN: usize = 16;

/// Nameplate figures for a model: efficiency and chips per hash board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nameplate {
    /// Model name as `version` `Type` reports it.
    pub model: &'static str,
    /// Nominal efficiency, J/TH.
    pub j_per_th: f64,
    /// ASIC chips per hash board.
    pub chips_per_board: u32,
}

/// Nominal figures of common models (vendor spec sheets), used to estimate power when the
/// firmware reports none and to know how many chips a board should have.
pub const NAMEPLATES: &[Nameplate] = &[
    Nameplate {
        model: "Antminer S9",
        j_per_th: 98.0,
        chips_per_board: 63,
    },
    Nameplate {
        model: "Antminer S17 Pro",
        j_per_th: 39.5,
        chips_per_board: 48,
    },
    Nameplate {
        model: "Antminer S19",
        j_per_th: 34.2,
        chips_per_board: 76,
    },
    Nameplate {
        model: "Antminer S19 Pro",
        j_per_th: 29.5,
        chips_per_board: 114,
    },
    Nameplate {
        model: "Antminer S19j Pro",
        j_per_th: 29.5,
        chips_per_board: 126,
    },
    Nameplate {
        model: "Antminer S19 XP",
        j_per_th: 21.5,
        chips_per_board: 110,
    },
    Nameplate {
        model: "Antminer S19k Pro",
        j_per_th: 23.0,
        chips_per_board: 77,
    },
    Nameplate {
        model: "Antminer S21",
        j_per_th: 17.5,
        chips_per_board: 108,
    },
    Nameplate {
        model: "Antminer S21 Pro",
        j_per_th: 15.0,
        chips_per_board: 65,
    },
];

/// The nameplate of `model` (case-insensitive, ignoring a ` (…)` firmware suffix).
pub fn nameplate(model: &str) -> Option<&'static Nameplate> {
    let m = strip_suffix(model);
    NAMEPLATES.iter().find(|n| n.model.eq_ignore_ascii_case(m))
}

/// `Antminer S19 XP (Vnish 1.2.0)` → `Antminer S19 XP`.
pub fn strip_suffix(model: &str) -> &str {
    let m = model.trim();
    match m.find(" (") {
        Some(i) if m.ends_with(')') => m[..i].trim(),
        _ => m,
    }
}

/// One hash chain as either stats layout reports it, before normalisation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainRaw {
    /// Chips detected (`chain_acnN` / `asic_num`).
    pub acn: Option<f64>,
    /// Per-chip status string (`o` ok, `x` bad, `-` missing).
    pub acs: Option<String>,
    /// Hardware errors.
    pub hw: Option<f64>,
    /// Real hashrate in the stats unit; `None` for `""`.
    pub rate: Option<f64>,
    /// Nominal hashrate in the stats unit.
    pub rate_ideal: Option<f64>,
    /// PCB sensors, °C, in sensor order (sentinels removed later).
    pub pcb_c: Vec<f64>,
    /// Chip sensors, °C.
    pub chip_c: Vec<f64>,
    /// Older single board temperature (`tempN`).
    pub board_c: Option<f64>,
    /// Older single chip temperature (`temp2_N`).
    pub chip_single_c: Option<f64>,
    /// L-series inlet / outlet PCB temperatures.
    pub in_pcb_c: Option<f64>,
    /// L-series outlet PCB temperature.
    pub out_pcb_c: Option<f64>,
    /// Average chip frequency, MHz.
    pub freq_mhz: Option<f64>,
    /// Board voltage, V.
    pub voltage_v: Option<f64>,
}

impl ChainRaw {
    /// Whether this slot holds a board (X19 firmware lists an empty 4th slot).
    pub fn populated(&self) -> bool {
        self.acn.is_some_and(|n| n > 0.0)
            || self.rate.is_some()
            || self.rate_ideal.is_some_and(|r| r > 0.0)
            || self
                .acs
                .as_deref()
                .is_some_and(|s| s.contains(['o', 'x', 'X']))
            || self.pcb_c.iter().chain(&self.chip_c).any(|t| *t > 0.0)
    }
}

/// What both stats layouts reduce to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AntStats {
    /// Hardware type (`Antminer S19 Pro`).
    pub model: Option<String>,
    /// Firmware build (`Miner`).
    pub miner: Option<String>,
    /// Build time.
    pub compile_time: Option<String>,
    /// Seconds since start.
    pub elapsed_s: Option<f64>,
    /// Current rate in `rate_unit`.
    pub rate_now: Option<f64>,
    /// Average rate in `rate_unit`.
    pub rate_avg: Option<f64>,
    /// Nominal rate in `rate_unit`.
    pub rate_ideal: Option<f64>,
    /// Unit of the rates (`GH` when absent).
    pub rate_unit: Option<String>,
    /// Fan speeds, RPM, in fan order.
    pub fans_rpm: Vec<f64>,
    /// Work mode (`miner-mode`: 0 normal, 1 sleep, 3 low power).
    pub mode: Option<i64>,
    /// Average frequency over all chains, MHz.
    pub freq_mhz: Option<f64>,
    /// Power reported by the firmware, W (not on stock).
    pub power_w: Option<f64>,
    /// Chains in slot order (only populated ones).
    pub chains: Vec<ChainRaw>,
}

impl AntStats {
    /// Converts a value in this reply's rate unit to TH/s (GH when the unit is missing).
    pub fn ths(&self, v: Option<f64>) -> Option<f64> {
        let unit = self
            .rate_unit
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or("GH");
        v.and_then(|v| unit_to_ths(v, unit))
    }
}

/// Splits a sensor string `"41-38-58-60"` (or a bare number) into readings.
pub fn sensors(s: &str) -> Vec<f64> {
    let s = s.trim();
    if s.is_empty() {
        return Vec::new();
    }
    if let Some(v) = parse_num(s) {
        return vec![v];
    }
    s.split('-').filter_map(parse_num).collect()
}

/// A key of the legacy layout, classified without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegacyKey {
    Type,
    Miner,
    CompileTime,
    Elapsed,
    Ghs5s,
    GhsAv,
    Rate30m,
    RateUnit,
    TotalRateIdeal,
    MinerMode,
    Mode,
    FanNum,
    TotalFreqAvg,
    Frequency,
    Power,
    Fan(usize),
    Acn(usize),
    Acs(usize),
    Hw(usize),
    Rate(usize),
    RateIdeal(usize),
    TempPcb(usize),
    TempChip(usize),
    Temp(usize),
    Temp2(usize),
    InPcb(usize),
    OutPcb(usize),
    FreqAvg(usize),
    Voltage(usize),
    Other,
}

/// Splits a numbered key into its name and number: `chain_acn3` → (`chain_acn`, 3). The number
/// is the key's trailing digits, after an optional `+`, leading zeros allowed (`fan+01` is fan
/// 1), as firmwares have been seen to write them.
fn split_numbered(key: &str) -> Option<(&str, usize)> {
    let digits_at = key
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let (name, digits) = key.split_at(digits_at);
    if digits.is_empty() {
        return None;
    }
    let name = name.strip_suffix('+').unwrap_or(name);
    Some((name, digits.parse().ok()?))
}

/// Classifies a key of the legacy layout with one split and one match, not a prefix search:
/// a `STATS` record has a hundred keys, most of which are skipped.
fn classify_key(k: &str) -> LegacyKey {
    use LegacyKey::*;
    match k {
        "Type" => return Type,
        "Miner" => return Miner,
        "CompileTime" => return CompileTime,
        "Elapsed" => return Elapsed,
        "GHS 5s" => return Ghs5s,
        "GHS av" => return GhsAv,
        "rate_30m" | "GHS 30m" => return Rate30m,
        "rate_unit" => return RateUnit,
        "total_rateideal" => return TotalRateIdeal,
        "miner-mode" => return MinerMode,
        "Mode" => return Mode,
        "fan_num" => return FanNum,
        "total_freqavg" => return TotalFreqAvg,
        "frequency" => return Frequency,
        "Power" | "power" | "total_power" => return Power,
        _ => {}
    }
    let Some((name, n)) = split_numbered(k) else {
        return Other;
    };
    let (make, max): (fn(usize) -> LegacyKey, usize) = match name {
        "chain_rateideal" | "chain_rate_ideal" => (RateIdeal, MAX_CHAIN),
        "chain_rate" => (Rate, MAX_CHAIN),
        "chain_acn" => (Acn, MAX_CHAIN),
        "chain_acs" => (Acs, MAX_CHAIN),
        "chain_hw" => (Hw, MAX_CHAIN),
        "chain_vol" => (Voltage, MAX_CHAIN),
        "temp_pcb" => (TempPcb, MAX_CHAIN),
        "temp_chip" => (TempChip, MAX_CHAIN),
        "temp_in_pcb_" => (InPcb, MAX_CHAIN),
        "temp_out_pcb_" => (OutPcb, MAX_CHAIN),
        "temp2_" => (Temp2, MAX_CHAIN),
        "temp" => (Temp, MAX_CHAIN),
        "freq_avg" => (FreqAvg, MAX_CHAIN),
        "fan" => (Fan, MAX_FAN),
        _ => return Other,
    };
    if (1..=max).contains(&n) {
        make(n)
    } else {
        Other
    }
}

struct KeyName(LegacyKey);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(classify_key(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One record of the legacy `STATS` list, read key by key into [`AntStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyStats {
    stats: AntStats,
    /// Chains by slot number (index 0 unused).
    slots: Vec<ChainRaw>,
    fans: Vec<(usize, f64)>,
    fan_num: Option<f64>,
    mode: Option<f64>,
    miner_mode: Option<f64>,
}

impl<'de> Deserialize<'de> for LegacyStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LegacyStats;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stats record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LegacyStats, A::Error> {
                // Slots are added as chain numbers appear (`slot`): most records have three.
                let mut out = LegacyStats::default();
                while let Some(KeyName(key)) = map.next_key::<KeyName>()? {
                    out.read(key, &mut map)?;
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl LegacyStats {
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: LegacyKey,
        map: &mut A,
    ) -> Result<(), A::Error> {
        use LegacyKey::*;
        let num = |map: &mut A| map.next_value::<Num>().map(Num::get);
        let text = |map: &mut A| map.next_value::<Text>().map(|t| t.0);
        // Sensor strings are read in place, without a copy.
        let temps = |map: &mut A| map.next_value::<TextRef<'de>>().map(|t| sensors(&t.0));
        let s = &mut self.stats;
        match key {
            Type => s.model = Some(text(map)?).filter(|t| !t.is_empty()),
            Miner => s.miner = Some(text(map)?).filter(|t| !t.is_empty()),
            CompileTime => s.compile_time = Some(text(map)?).filter(|t| !t.is_empty()),
            Elapsed => s.elapsed_s = num(map)?,
            Ghs5s => s.rate_now = num(map)?,
            GhsAv => s.rate_avg = num(map)?,
            Rate30m => {
                let v = num(map)?;
                s.rate_avg = s.rate_avg.or(v);
            }
            RateUnit => s.rate_unit = Some(text(map)?),
            TotalRateIdeal => s.rate_ideal = num(map)?,
            MinerMode => self.miner_mode = num(map)?,
            Mode => self.mode = num(map)?,
            FanNum => self.fan_num = num(map)?,
            TotalFreqAvg => s.freq_mhz = num(map)?.or(s.freq_mhz),
            Frequency => {
                let v = num(map)?;
                s.freq_mhz = s.freq_mhz.or(v);
            }
            Power => s.power_w = num(map)?,
            Fan(n) => {
                if let Some(v) = num(map)? {
                    self.fans.push((n, v));
                }
            }
            Acn(n) => self.slot(n).acn = num(map)?,
            Acs(n) => self.slot(n).acs = Some(text(map)?),
            Hw(n) => self.slot(n).hw = num(map)?,
            Rate(n) => self.slot(n).rate = num(map)?,
            RateIdeal(n) => self.slot(n).rate_ideal = num(map)?,
            TempPcb(n) => self.slot(n).pcb_c = temps(map)?,
            TempChip(n) => self.slot(n).chip_c = temps(map)?,
            Temp(n) => self.slot(n).board_c = num(map)?,
            Temp2(n) => self.slot(n).chip_single_c = num(map)?,
            InPcb(n) => {
                self.slot(n).in_pcb_c = temps(map)?
                    .into_iter()
                    .filter_map(|t| temp_c(Some(t)))
                    .reduce(f64::min)
            }
            OutPcb(n) => {
                self.slot(n).out_pcb_c = temps(map)?
                    .into_iter()
                    .filter_map(|t| temp_c(Some(t)))
                    .reduce(f64::max)
            }
            FreqAvg(n) => self.slot(n).freq_mhz = num(map)?,
            Voltage(n) => self.slot(n).voltage_v = num(map)?,
            Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn slot(&mut self, n: usize) -> &mut ChainRaw {
        // `classify_key` bounds n to 1..=MAX_CHAIN.
        if self.slots.len() <= n {
            self.slots.resize(n + 1, ChainRaw::default());
        }
        &mut self.slots[n]
    }

    /// Merges the records of the `STATS` list (version info, then data) into one view.
    pub fn merge(records: Vec<LegacyStats>) -> AntStats {
        let mut out = AntStats::default();
        for mut r in records {
            let s = &mut r.stats;
            out.model = out.model.take().or(s.model.take());
            out.miner = out.miner.take().or(s.miner.take());
            out.compile_time = out.compile_time.take().or(s.compile_time.take());
            out.elapsed_s = out.elapsed_s.or(s.elapsed_s);
            out.rate_now = out.rate_now.or(s.rate_now);
            out.rate_avg = out.rate_avg.or(s.rate_avg);
            out.rate_ideal = out.rate_ideal.or(s.rate_ideal);
            out.rate_unit = out.rate_unit.take().or(s.rate_unit.take());
            out.freq_mhz = out.freq_mhz.or(s.freq_mhz);
            out.power_w = out.power_w.or(s.power_w);
            out.mode = out
                .mode
                .or(r.miner_mode.or(r.mode).map(|m| m.round() as i64));
            if out.fans_rpm.is_empty() && !r.fans.is_empty() {
                r.fans.sort_by_key(|(n, _)| *n);
                let all: Vec<f64> = r.fans.iter().map(|(_, v)| *v).collect();
                out.fans_rpm = match r.fan_num.map(|n| n.max(0.0) as usize) {
                    // S9-era firmware lists fan1..fan8 with only the fitted ones non-zero.
                    Some(n) if all.len() > n => {
                        let mut fitted: Vec<f64> =
                            all.iter().copied().filter(|v| *v > 0.0).take(n).collect();
                        fitted.resize(n, 0.0);
                        fitted
                    }
                    _ => all,
                };
            }
            if out.chains.is_empty() {
                out.chains = r
                    .slots
                    .into_iter()
                    .skip(1)
                    .filter(ChainRaw::populated)
                    .collect();
            }
        }
        out
    }
}

/// The legacy `stats` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LegacyStatsReply {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `STATS[0]` version info, `STATS[1]` data.
    #[serde(rename = "STATS", default)]
    pub stats: List<LegacyStats>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// The `summary+stats+pools` multi-command reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AntminerMulti {
    /// Top-level status: only present when the whole multi-command was refused.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// The `summary` section.
    #[serde(default)]
    pub summary: OneOrFirst<SummaryReply>,
    /// The `stats` section (legacy layout).
    #[serde(default)]
    pub stats: OneOrFirst<LegacyStatsReply>,
    /// The `pools` section.
    #[serde(default)]
    pub pools: OneOrFirst<PoolsReply>,
    /// 1 normally; 0 when cut at the size cap.
    #[serde(default)]
    pub id: Num,
}

/// `INFO` of the `new_api` layout.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewApiInfo {
    /// Firmware build.
    #[serde(default)]
    pub miner_version: Text,
    /// Build time.
    #[serde(rename = "CompileTime", default)]
    pub compile_time: Text,
    /// Hardware type.
    #[serde(rename = "type", default)]
    pub hw_type: Text,
}

/// One chain of the `new_api` layout.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewApiChain {
    /// Slot index.
    #[serde(default)]
    pub index: Num,
    /// Average frequency, MHz.
    #[serde(default)]
    pub freq_avg: Num,
    /// Real hashrate in `rate_unit`.
    #[serde(default)]
    pub rate_real: Num,
    /// Nominal hashrate in `rate_unit`.
    #[serde(default)]
    pub rate_ideal: Num,
    /// Chips detected.
    #[serde(default)]
    pub asic_num: Num,
    /// Per-chip status string.
    #[serde(default)]
    pub asic: Text,
    /// PCB sensors, °C.
    #[serde(default)]
    pub temp_pcb: List<Num>,
    /// Chip sensors, °C.
    #[serde(default)]
    pub temp_chip: List<Num>,
    /// Hardware errors.
    #[serde(default)]
    pub hw: Num,
}

/// `STATS[0]` of the `new_api` layout.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewApiStats {
    /// Seconds since start.
    #[serde(default)]
    pub elapsed: Num,
    /// 5-second rate.
    #[serde(default)]
    pub rate_5s: Num,
    /// 30-minute rate.
    #[serde(default)]
    pub rate_30m: Num,
    /// Average rate.
    #[serde(default)]
    pub rate_avg: Num,
    /// Nominal rate.
    #[serde(default)]
    pub rate_ideal: Num,
    /// Unit of the rates (`GH`).
    #[serde(default)]
    pub rate_unit: Text,
    /// Fan speeds, RPM.
    #[serde(default)]
    pub fan: List<Num>,
    /// Work mode: 0 normal, 1 sleep, 3 low power.
    #[serde(rename = "miner-mode", default)]
    pub miner_mode: Num,
    /// Chains.
    #[serde(default)]
    pub chain: List<NewApiChain>,
}

/// The `{"command":"stats","new_api":true}` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewApiStatsReply {
    /// Status (an object in this layout).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// Build and type.
    #[serde(rename = "INFO", default)]
    pub info: OneOrFirst<NewApiInfo>,
    /// The data record.
    #[serde(rename = "STATS", default)]
    pub stats: OneOrFirst<NewApiStats>,
}

impl NewApiStatsReply {
    /// Reduces this layout to [`AntStats`].
    pub fn into_stats(self) -> AntStats {
        let info = self.info.into_inner().unwrap_or_default();
        let s = self.stats.into_inner().unwrap_or_default();
        let nums = |l: &List<Num>| l.iter().filter_map(|n| n.get()).collect::<Vec<f64>>();
        AntStats {
            model: info.hw_type.non_empty().map(str::to_owned),
            miner: info.miner_version.non_empty().map(str::to_owned),
            compile_time: info.compile_time.non_empty().map(str::to_owned),
            elapsed_s: s.elapsed.get(),
            rate_now: s.rate_5s.get(),
            rate_avg: s.rate_avg.get().or(s.rate_30m.get()),
            rate_ideal: s.rate_ideal.get(),
            rate_unit: s.rate_unit.non_empty().map(str::to_owned),
            fans_rpm: nums(&s.fan),
            mode: s.miner_mode.as_i64(),
            freq_mhz: None,
            power_w: None,
            chains: s
                .chain
                .iter()
                .map(|c| ChainRaw {
                    acn: c.asic_num.get(),
                    acs: Some(c.asic.0.clone()),
                    hw: c.hw.get(),
                    rate: c.rate_real.get(),
                    rate_ideal: c.rate_ideal.get(),
                    pcb_c: nums(&c.temp_pcb),
                    chip_c: nums(&c.temp_chip),
                    freq_mhz: c.freq_avg.get(),
                    ..Default::default()
                })
                .filter(ChainRaw::populated)
                .collect(),
        }
    }
}

/// Maps the stock work mode to a power mode (1 is sleep, not a power mode).
pub fn power_mode(mode: Option<i64>) -> Option<PowerMode> {
    match mode {
        Some(0) => Some(PowerMode::Normal),
        Some(3) => Some(PowerMode::Low),
        _ => None,
    }
}

fn board(index: usize, c: &ChainRaw, stats: &AntStats, plate: Option<&Nameplate>) -> BoardSnapshot {
    let valid = |v: &[f64]| {
        v.iter()
            .copied()
            .filter_map(|t| temp_c(Some(t)))
            .collect::<Vec<f64>>()
    };
    let pcb = valid(&c.pcb_c);
    let chip = valid(&c.chip_c);
    let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
    let ok_chips = c
        .acs
        .as_deref()
        .map(|s| s.chars().filter(|ch| *ch == 'o').count());
    let chips_working = match ok_chips {
        Some(n)
            if c.acs
                .as_deref()
                .is_some_and(|s| s.contains(['o', 'x', 'X'])) =>
        {
            Some(n as u32)
        }
        _ => c.acn.map(|n| n.max(0.0) as u32),
    };
    BoardSnapshot {
        index: index as u32,
        hashrate_ths: stats.ths(c.rate),
        expected_hashrate_ths: stats.ths(c.rate_ideal),
        chip_temp_c: max(&chip).or(temp_c(c.chip_single_c)),
        board_temp_c: max(&pcb).or(temp_c(c.board_c)),
        // Only L-series firmware says which sensors are inlet and outlet; X19 sensor strings
        // do not, so no side is guessed from them.
        inlet_temp_c: c.in_pcb_c,
        outlet_temp_c: c.out_pcb_c,
        chips_working,
        chips_expected: plate.map(|p| p.chips_per_board),
        frequency_mhz: c.freq_mhz.or(stats.freq_mhz).filter(|f| *f > 0.0),
        voltage_v: c.voltage_v.filter(|v| *v > 0.0),
        hardware_errors: c.hw.map(|v| v.max(0.0) as u64),
        failed: false,
    }
}

/// Builds the snapshot from the three parts (`summary` may be missing; stats and pools not).
pub fn antminer_snapshot(
    time_unix_ms: i64,
    summary: Option<&SummaryReply>,
    stats: &AntStats,
    pools: Option<&PoolsReply>,
    partial: bool,
) -> Result<MinerSnapshot, DriverError> {
    let mut snap = MinerSnapshot::empty(time_unix_ms, MinerStatus::Mining);
    snap.partial = partial;
    let summary_rec = match summary {
        Some(s) => {
            check_status(s.status.get())?;
            snap.partial |= cut_at_cap(s.id);
            s.summary.get()
        }
        None => None,
    };
    // bmminer's summary uses GHS keys whose unit is the stats `rate_unit`.
    snap.hashrate_ths = stats.ths(summary_rec.and_then(|s| s.ghs_5s.get()).or(stats.rate_now));
    snap.hashrate_avg_ths = stats.ths(summary_rec.and_then(|s| s.ghs_av.get()).or(stats.rate_avg));
    if snap.hashrate_ths.is_none() {
        // A fork with MHS keys in its summary.
        let (now, avg) = summary_rec.map(|s| s.hashrate_ths()).unwrap_or_default();
        snap.hashrate_ths = now;
        snap.hashrate_avg_ths = snap.hashrate_avg_ths.or(avg);
    }
    snap.expected_hashrate_ths = stats.ths(stats.rate_ideal);
    snap.uptime_s = summary_rec
        .and_then(|s| s.elapsed_s.as_u64())
        .or(stats.elapsed_s.map(|e| e.max(0.0) as u64));
    snap.hardware_errors = summary_rec.and_then(|s| s.hardware_errors.as_u64());
    let model = stats.model.as_deref().unwrap_or("");
    let plate = nameplate(model);
    snap.boards = stats
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| board(i, c, stats, plate))
        .collect();
    // S9-era firmware gives only the total nominal rate; its boards are identical, so each
    // board's share is an equal split.
    if let Some(total) = snap.expected_hashrate_ths
        && !snap.boards.is_empty()
        && snap
            .boards
            .iter()
            .all(|b| b.expected_hashrate_ths.is_none_or(|e| e <= 0.0))
    {
        let share = total / snap.boards.len() as f64;
        for b in &mut snap.boards {
            b.expected_hashrate_ths = Some(share);
        }
    }
    snap.fans_rpm = stats
        .fans_rpm
        .iter()
        .map(|v| v.max(0.0).round() as u32)
        .collect();
    let sleeping = stats.mode == Some(1);
    snap.power_mode = power_mode(stats.mode);
    if let Some(p) = pools {
        check_status(p.status.get())?;
        snap.pools = pools_snapshot(&p.pools);
        snap.partial |= cut_at_cap(p.id);
    }
    let others_hash = snap
        .boards
        .iter()
        .any(|b| b.hashrate_ths.is_some_and(|h| h > 0.0));
    if !sleeping {
        for b in &mut snap.boards {
            b.failed = b.chips_working == Some(0)
                || (others_hash && b.hashrate_ths.is_some_and(|h| h <= 0.0));
        }
    }
    match (stats.power_w.filter(|p| *p > 0.0), plate, snap.hashrate_ths) {
        (Some(w), _, _) => {
            snap.power_w = Some(w);
            snap.power_source = Some(PowerSource::FirmwareEstimated);
        }
        (None, Some(plate), Some(h)) => {
            snap.power_w = Some(plate.j_per_th * h.max(0.0));
            snap.power_source = Some(PowerSource::Nameplate);
        }
        _ => {}
    }
    snap.derive_efficiency();
    snap.status = classify(&snap, sleeping);
    Ok(snap)
}

/// The three sections of a multi-command poll and whether the reply was cut short.
pub type MultiParts = (SummaryReply, AntStats, PoolsReply, bool);

/// Decodes the `summary+stats+pools` multi-command reply into its parts. `Ok(None)` means the
/// device did not answer it as a multi-command (fall back to single commands); a reply cut
/// before its sections is an error, not a reason to change how the device is polled.
pub fn decode_antminer_multi(raw: &[u8]) -> Result<Option<MultiParts>, DriverError> {
    let d: Decoded<AntminerMulti> = decode(raw)?;
    let m = d.value;
    if let (Some(summary), Some(stats), Some(pools)) = (
        m.summary.into_inner(),
        m.stats.into_inner(),
        m.pools.into_inner(),
    ) {
        check_status(stats.status.get())?;
        let partial = d.truncated || cut_at_cap(m.id) || cut_at_cap(stats.id);
        return Ok(Some((
            summary,
            LegacyStats::merge(stats.stats.0),
            pools,
            partial,
        )));
    }
    crate::cgminer::multi_refusal(m.status.get())?;
    if d.truncated {
        return Err(DriverError::Malformed(
            "reply cut short before all its sections".into(),
        ));
    }
    Ok(None)
}

/// Parses the `summary+stats+pools` multi-command reply into a snapshot (`Ok(None)`: fall back
/// to single commands).
pub fn parse_antminer_multi(
    raw: &[u8],
    time_unix_ms: i64,
) -> Result<Option<MinerSnapshot>, DriverError> {
    match decode_antminer_multi(raw)? {
        Some((summary, stats, pools, partial)) => {
            antminer_snapshot(time_unix_ms, Some(&summary), &stats, Some(&pools), partial).map(Some)
        }
        None => Ok(None),
    }
}

/// Parses a legacy single `stats` reply into [`AntStats`] (and whether it was truncated).
pub fn parse_legacy_stats(raw: &[u8]) -> Result<(AntStats, bool), DriverError> {
    let d: Decoded<LegacyStatsReply> = decode(raw)?;
    check_status(d.value.status.get())?;
    let truncated = d.truncated || cut_at_cap(d.value.id);
    Ok((LegacyStats::merge(d.value.stats.0), truncated))
}

/// Parses a `new_api` `stats` reply into [`AntStats`] (and whether it was truncated).
pub fn parse_new_api_stats(raw: &[u8]) -> Result<(AntStats, bool), DriverError> {
    let d: Decoded<NewApiStatsReply> = decode(raw)?;
    check_status(d.value.status.get())?;
    if d.value.stats.get().is_none() {
        return Err(DriverError::Malformed(
            "new_api stats reply has no STATS record".into(),
        ));
    }
    Ok((d.value.into_stats(), d.truncated))
}

/// Identity from the `version` reply: `Type` (minus a firmware suffix) is the model,
/// `Miner` and `CompileTime` the build.
pub fn antminer_identity(version: &[u8]) -> Result<DeviceIdentity, DriverError> {
    let v: Decoded<VersionReply> = decode(version)?;
    check_status(v.value.status.get())?;
    let e = v
        .value
        .version
        .into_inner()
        .ok_or_else(|| DriverError::Malformed("version reply has no VERSION record".into()))?;
    let model = strip_suffix(e.hw_type.trimmed()).to_owned();
    if model.is_empty() {
        return Err(DriverError::Malformed("version reply has no Type".into()));
    }
    let build = e.miner.non_empty().or(e.bmminer.non_empty()).unwrap_or("");
    let version = match e.compile_time.non_empty() {
        Some(t) if !build.is_empty() => format!("{build} ({t})"),
        Some(t) => t.to_owned(),
        None => build.to_owned(),
    };
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::Bitmain,
        partially_supported: nameplate(&model).is_none(),
        model: Model(model),
        firmware: Firmware {
            kind: FirmwareKind::Stock,
            version,
        },
        mac: None,
        serial: None,
        hostname: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_classify() {
        assert_eq!(classify_key("chain_rateideal3"), LegacyKey::RateIdeal(3));
        assert_eq!(classify_key("chain_rate3"), LegacyKey::Rate(3));
        assert_eq!(classify_key("temp2_6"), LegacyKey::Temp2(6));
        assert_eq!(classify_key("temp6"), LegacyKey::Temp(6));
        assert_eq!(classify_key("temp_pcb1"), LegacyKey::TempPcb(1));
        assert_eq!(classify_key("fan_num"), LegacyKey::FanNum);
        assert_eq!(classify_key("fan4"), LegacyKey::Fan(4));
        assert_eq!(classify_key("chain_acn17"), LegacyKey::Other);
        assert_eq!(classify_key("chain_acn0"), LegacyKey::Other);
        assert_eq!(classify_key("temp_in_pcb_2"), LegacyKey::InPcb(2));
        assert_eq!(classify_key("chain_rate_ideal2"), LegacyKey::RateIdeal(2));
        assert_eq!(classify_key("fan+01"), LegacyKey::Fan(1));
        assert_eq!(classify_key("fan++1"), LegacyKey::Other);
        assert_eq!(classify_key("temp26"), LegacyKey::Other);
        assert_eq!(classify_key("fan"), LegacyKey::Other);
        assert_eq!(classify_key("12"), LegacyKey::Other);
        assert_eq!(classify_key("fan99999999999999999999999"), LegacyKey::Other);
        assert_eq!(classify_key("no_matching_work"), LegacyKey::Other);
    }

    #[test]
    fn sensor_strings() {
        assert_eq!(sensors("41-38-58-60"), vec![41.0, 38.0, 58.0, 60.0]);
        assert_eq!(sensors("0-0-0-0"), vec![0.0; 4]);
        assert_eq!(sensors("55"), vec![55.0]);
        assert!(sensors("").is_empty());
        assert_eq!(
            strip_suffix("Antminer S19 XP (Vnish 1.2.0-rc1)"),
            "Antminer S19 XP"
        );
        assert!(nameplate("antminer s19 pro").is_some());
    }
}
