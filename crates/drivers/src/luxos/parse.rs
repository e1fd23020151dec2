//! LuxOS replies → core types (PROTOCOLS.md §5.2): `version` + `config` → [`DeviceIdentity`];
//! `summary`, `stats`, `pools`, `power`, `fans`, `temps`, `config`, `profiles` → [`MinerSnapshot`].
//!
//! Pure functions on raw reply bytes, `pub` for the table tests and fuzz targets. LUXminer uses
//! GH/s keys (`GHS 5s`, `chain_rateN` with `rate_unit`); `power` Watts is measured at the PSU.

use crate::cgminer::parse::{PoolEntry, Summary, pools_snapshot};
pub use crate::cgminer::parse::{PoolsReply, SummaryReply};
use crate::cgminer::reply::{
    Num, OneOrFirst, StatusEntry, Text, TextRef, check_status, decode, excerpt, parse_num,
};
use crate::error::DriverError;
use crate::health::{self, StatusRules};
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PowerMode, PowerSource, Vendor,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The poll request: every report the snapshot needs on one connection (§1.4).
pub const POLL_COMMAND: &str = "summary+stats+pools+power+fans+temps+config+profiles";

/// The identify request.
pub const IDENTIFY_COMMAND: &str = "version+config";

/// Highest chain number scanned in the bmminer-style `stats` layout LUXminer keeps.
const MAX_CHAIN: usize = 16;

/// One chain's keys in the bmminer-style `STATS` layout LUXminer keeps (`chain_acn3`,
/// `temp_chip3`, …), read as they arrive; a key sent twice keeps its last value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChainKeys {
    /// `chain_acnN`: chips detected.
    pub chips: Option<f64>,
    /// `chain_rateN`: real hashrate in the reply's rate unit.
    pub rate: Option<f64>,
    /// `chain_rateidealN`: nominal hashrate in the reply's rate unit.
    pub rate_ideal: Option<f64>,
    /// `chain_hwN`: hardware errors.
    pub hw: Option<f64>,
    /// `freq_avgN`: average chip frequency, MHz.
    pub freq_avg_mhz: Option<f64>,
    /// The hottest valid sensor of `temp_chipN` (`"55-56-64-64"`), °C.
    pub chip_sensors_max_c: Option<f64>,
    /// `temp2_N`: chip temperature, °C.
    pub chip_c: Option<f64>,
    /// The hottest valid sensor of `temp_pcbN`, °C.
    pub pcb_sensors_max_c: Option<f64>,
    /// `tempN`: board temperature, °C.
    pub board_c: Option<f64>,
}

/// The chain keys of one `STATS` entry, `total_rateideal` and `rate_unit`; other keys are
/// skipped unparsed. Read key by key into slots, so building boards looks nothing up by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainStats {
    /// Some key starts with `chain_`: this is the entry that describes the chains.
    pub has_chain_keys: bool,
    /// `total_rateideal`, in the reply's rate unit.
    pub total_rateideal: Option<f64>,
    /// `rate_unit` as its multiplier to TH/s, when the entry has one.
    unit_to_ths: Option<f64>,
    /// Chains 1, 2, … at index 0, 1, … (only as many as the highest chain number seen).
    pub chains: Vec<ChainKeys>,
}

impl ChainStats {
    /// Multiplier from the reply's `rate_unit` to TH/s (GH/s when absent, as LUXminer reports).
    pub fn rate_to_ths(&self) -> f64 {
        self.unit_to_ths.unwrap_or(1e-3)
    }

    /// Chain `n` (1-based), if any of its keys was present.
    pub fn chain(&self, n: usize) -> Option<&ChainKeys> {
        self.chains.get(n.checked_sub(1)?)
    }

    fn chain_mut(&mut self, n: usize) -> &mut ChainKeys {
        // `chain_key` bounds n to 1..=MAX_CHAIN.
        if self.chains.len() < n {
            self.chains.resize(n, ChainKeys::default());
        }
        &mut self.chains[n - 1]
    }
}

/// The multiplier to TH/s of a `rate_unit` value.
fn unit_to_ths(unit: &str) -> f64 {
    let u = unit.trim().as_bytes();
    let starts = |p: &[u8]| u.len() >= 2 && u[..2].eq_ignore_ascii_case(p);
    if starts(b"TH") {
        1.0
    } else if starts(b"MH") {
        1e-6
    } else if starts(b"KH") {
        1e-9
    } else {
        1e-3
    }
}

/// Which per-chain value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChainField {
    Chips,
    Rate,
    RateIdeal,
    Hw,
    FreqAvg,
    TempChip,
    Temp2,
    TempPcb,
    Temp,
}

/// The chain field and number of a per-chain key, written exactly as LUXminer does (`temp2_3`,
/// `chain_acn12`: no sign, no leading zero, 1 to [`MAX_CHAIN`]).
fn chain_key(k: &str) -> Option<(ChainField, usize)> {
    let digits_at = k
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let (name, digits) = k.split_at(digits_at);
    if digits.is_empty() || digits.len() > 2 || digits.starts_with('0') {
        return None;
    }
    let n: usize = digits
        .parse()
        .ok()
        .filter(|n| (1..=MAX_CHAIN).contains(n))?;
    let field = match name {
        "chain_acn" => ChainField::Chips,
        "chain_rate" => ChainField::Rate,
        "chain_rateideal" => ChainField::RateIdeal,
        "chain_hw" => ChainField::Hw,
        "freq_avg" => ChainField::FreqAvg,
        "temp_chip" => ChainField::TempChip,
        "temp2_" => ChainField::Temp2,
        "temp_pcb" => ChainField::TempPcb,
        "temp" => ChainField::Temp,
        _ => return None,
    };
    Some((field, n))
}

/// The hottest valid reading of a sensor string (`"38-38-49-49"`).
fn sensors_max_c(v: &str) -> Option<f64> {
    v.split('-')
        .filter_map(parse_num)
        .filter_map(|t| health_temp(Some(t)))
        .reduce(f64::max)
}

impl<'de> Deserialize<'de> for ChainStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChainStats;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stats record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChainStats, A::Error> {
                let mut out = ChainStats::default();
                while let Some(TextRef(key)) = map.next_key::<TextRef<'de>>()? {
                    let key: &str = &key;
                    out.has_chain_keys |= key.starts_with("chain_");
                    if key == "total_rateideal" {
                        out.total_rateideal = map.next_value::<Num>()?.get();
                    } else if key == "rate_unit" {
                        let unit = map.next_value::<TextRef<'de>>()?;
                        out.unit_to_ths = Some(unit_to_ths(&unit.0));
                    } else if let Some((field, n)) = chain_key(key) {
                        match field {
                            ChainField::TempChip | ChainField::TempPcb => {
                                let max = sensors_max_c(&map.next_value::<TextRef<'de>>()?.0);
                                let chain = out.chain_mut(n);
                                if field == ChainField::TempChip {
                                    chain.chip_sensors_max_c = max;
                                } else {
                                    chain.pcb_sensors_max_c = max;
                                }
                            }
                            _ => {
                                let v = map.next_value::<Num>()?.get();
                                let chain = out.chain_mut(n);
                                *match field {
                                    ChainField::Chips => &mut chain.chips,
                                    ChainField::Rate => &mut chain.rate,
                                    ChainField::RateIdeal => &mut chain.rate_ideal,
                                    ChainField::Hw => &mut chain.hw,
                                    ChainField::FreqAvg => &mut chain.freq_avg_mhz,
                                    ChainField::Temp2 => &mut chain.chip_c,
                                    _ => &mut chain.board_c,
                                } = v;
                            }
                        }
                    } else if key.starts_with("chain_")
                        || key.starts_with("temp")
                        || key.starts_with("freq_avg")
                    {
                        // Read as text like the keys in use, so a reply's validity does not
                        // depend on which of these keys hashmesh reads.
                        map.next_value::<TextRef<'de>>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChainStats, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ChainStats::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ChainStats, E> {
                Ok(ChainStats::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// One `FANS` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FanEntry {
    /// Fan speed, RPM.
    #[serde(rename = "RPM", default)]
    pub rpm: Num,
}

/// One `TEMPS` entry (one per board). LUXminer reports four corner sensors; `Board`/`Chip`
/// are accepted too.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TempEntry {
    /// Board number.
    #[serde(rename = "ID", default)]
    pub id: Num,
    /// Board (PCB) temperature, °C.
    #[serde(rename = "Board", default)]
    pub board: Num,
    /// Chip temperature, °C.
    #[serde(rename = "Chip", default)]
    pub chip: Num,
    /// Corner sensors, °C (inlet side on the left).
    #[serde(rename = "TopLeft", default)]
    pub top_left: Num,
    /// Corner sensor, °C.
    #[serde(rename = "TopRight", default)]
    pub top_right: Num,
    /// Corner sensor, °C.
    #[serde(rename = "BottomLeft", default)]
    pub bottom_left: Num,
    /// Corner sensor, °C.
    #[serde(rename = "BottomRight", default)]
    pub bottom_right: Num,
}

/// `POWER[0]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PowerEntry {
    /// Measured input power, W.
    #[serde(rename = "Watts", default)]
    pub watts: Num,
    /// The PSU reports it (measured); `false` means LUXminer estimates it.
    #[serde(rename = "PSU", default)]
    pub psu: crate::cgminer::reply::Flag,
}

/// `CONFIG[0]` fields hashmesh reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigEntry {
    /// MAC address.
    #[serde(rename = "MACAddr", default)]
    pub mac: Text,
    /// Red (locate) LED: `off`, `on`, `blink`.
    #[serde(rename = "RedLed", default)]
    pub red_led: Text,
    /// Hardware model.
    #[serde(rename = "Model", default)]
    pub model: Text,
    /// Current profile name.
    #[serde(rename = "Profile", default)]
    pub profile: Text,
    /// Host name.
    #[serde(rename = "Hostname", default)]
    pub hostname: Text,
    /// Serial number.
    #[serde(rename = "SerialNumber", default)]
    pub serial: Text,
    /// Curtailment state (`Sleep` while curtailed, `None` otherwise), where reported.
    #[serde(rename = "CurtailMode", default)]
    pub curtail_mode: Text,
}

/// One `PROFILES` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileEntry {
    /// Profile name (`default`, `+1`, `-2`, `385MHz`, …).
    #[serde(rename = "Profile Name", default)]
    pub name: Text,
    /// Power the profile draws, W.
    #[serde(rename = "Watts", default)]
    pub watts: Num,
    /// Hashrate the profile gives, TH/s.
    #[serde(rename = "Hashrate", default)]
    pub hashrate_ths: Num,
}

macro_rules! reply_struct {
    ($(#[$doc:meta])* $name:ident, $key:literal, $field:ident: $ty:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Deserialize)]
        pub struct $name {
            /// The reply's STATUS.
            #[serde(rename = "STATUS", default)]
            pub status: OneOrFirst<StatusEntry>,
            /// The reply's records.
            #[serde(rename = $key, default)]
            pub $field: $ty,
        }
    };
}

reply_struct!(/// A `stats` reply.
    StatsReply, "STATS", stats: Vec<ChainStats>);
reply_struct!(/// A `power` reply.
    PowerReply, "POWER", power: OneOrFirst<PowerEntry>);
reply_struct!(/// A `fans` reply.
    FansReply, "FANS", fans: Vec<FanEntry>);
reply_struct!(/// A `temps` reply.
    TempsReply, "TEMPS", temps: Vec<TempEntry>);
reply_struct!(/// A `config` reply.
    ConfigReply, "CONFIG", config: OneOrFirst<ConfigEntry>);
reply_struct!(/// A `profiles` reply.
    ProfilesReply, "PROFILES", profiles: Vec<ProfileEntry>);
reply_struct!(/// A `version` reply.
    VersionReply, "VERSION", version: OneOrFirst<VersionEntry>);

/// `VERSION[0]` of a LUXminer `version` reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionEntry {
    /// LUXminer build (`2025.4.8.220305-57b389c7`).
    #[serde(rename = "LUXminer", default)]
    pub luxminer: Text,
    /// Hardware model (`Antminer S19 Pro`).
    #[serde(rename = "Type", default)]
    pub model: Text,
}

/// The reply to [`POLL_COMMAND`], each member wrapped in a one-element list (§1.4).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PollReply {
    /// Top-level STATUS (only when the multi-command itself was refused).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `summary` member.
    #[serde(default)]
    pub summary: OneOrFirst<SummaryReply>,
    /// `stats` member.
    #[serde(default)]
    pub stats: OneOrFirst<StatsReply>,
    /// `pools` member.
    #[serde(default)]
    pub pools: OneOrFirst<PoolsReply>,
    /// `power` member.
    #[serde(default)]
    pub power: OneOrFirst<PowerReply>,
    /// `fans` member.
    #[serde(default)]
    pub fans: OneOrFirst<FansReply>,
    /// `temps` member.
    #[serde(default)]
    pub temps: OneOrFirst<TempsReply>,
    /// `config` member.
    #[serde(default)]
    pub config: OneOrFirst<ConfigReply>,
    /// `profiles` member.
    #[serde(default)]
    pub profiles: OneOrFirst<ProfilesReply>,
}

/// The reply to [`IDENTIFY_COMMAND`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdentifyReply {
    /// Top-level STATUS (only when the multi-command itself was refused).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `version` member.
    #[serde(default)]
    pub version: OneOrFirst<VersionReply>,
    /// `config` member.
    #[serde(default)]
    pub config: OneOrFirst<ConfigReply>,
}

/// Everything one poll read, section by section (each optional: a firmware may refuse one).
#[derive(Debug, Clone, Default)]
pub struct PollParts {
    /// `SUMMARY[0]`.
    pub summary: Option<Summary>,
    /// `STATS` entries.
    pub stats: Vec<ChainStats>,
    /// `POOLS`.
    pub pools: Vec<PoolEntry>,
    /// `POWER[0]`.
    pub power: Option<PowerEntry>,
    /// `FANS`.
    pub fans: Vec<FanEntry>,
    /// `TEMPS`.
    pub temps: Vec<TempEntry>,
    /// `CONFIG[0]`.
    pub config: Option<ConfigEntry>,
    /// `PROFILES`.
    pub profiles: Vec<ProfileEntry>,
    /// Some reply was truncated.
    pub partial: bool,
}

/// Parses the reply to [`POLL_COMMAND`] into its parts. `Ok(None)`: the multi-command form
/// was refused (fall back to single commands).
pub fn parse_poll_parts(raw: &[u8]) -> Result<Option<PollParts>, DriverError> {
    let decoded = decode::<PollReply>(raw)?;
    let r = decoded.value;
    if r.summary.get().is_none() && r.stats.get().is_none() {
        crate::cgminer::multi_refusal_strict(r.status.get(), raw)?;
        return Ok(None);
    }
    let summary = r.summary.into_inner().unwrap_or_default();
    check_status(summary.status.get())?;
    // The extra LuxOS reports are optional: one refused member must not sink the poll.
    let ok = |s: &OneOrFirst<StatusEntry>| !s.get().is_some_and(StatusEntry::is_error);
    let stats = r
        .stats
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let pools = r
        .pools
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let power = r
        .power
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let fans = r
        .fans
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let temps = r
        .temps
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let config = r
        .config
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    let profiles = r
        .profiles
        .into_inner()
        .filter(|x| ok(&x.status))
        .unwrap_or_default();
    Ok(Some(PollParts {
        summary: summary.summary.into_inner(),
        stats: stats.stats,
        pools: pools.pools.0,
        power: power.power.into_inner(),
        fans: fans.fans,
        temps: temps.temps,
        config: config.config.into_inner(),
        profiles: profiles.profiles,
        partial: decoded.truncated,
    }))
}

/// Parses the reply to [`POLL_COMMAND`] into a snapshot; `Ok(None)` as [`parse_poll_parts`].
pub fn parse_poll(raw: &[u8], now_ms: i64) -> Result<Option<MinerSnapshot>, DriverError> {
    Ok(parse_poll_parts(raw)?.map(|p| snapshot_from(&p, now_ms)))
}

/// Parses one single-command reply of type `T`, checking its STATUS.
pub fn parse_single<T: serde::de::DeserializeOwned + HasStatus>(
    raw: &[u8],
) -> Result<(T, bool), DriverError> {
    let d = decode::<T>(raw)?;
    check_status(d.value.status())?;
    Ok((d.value, d.truncated))
}

/// Reply types that carry a STATUS.
pub trait HasStatus {
    /// The STATUS, if the reply had one.
    fn status(&self) -> Option<&StatusEntry>;
}

macro_rules! has_status {
    ($($t:ty),*) => {$(
        impl HasStatus for $t {
            fn status(&self) -> Option<&StatusEntry> {
                self.status.get()
            }
        }
    )*};
}
has_status!(
    SummaryReply,
    StatsReply,
    PoolsReply,
    PowerReply,
    FansReply,
    TempsReply,
    ConfigReply,
    ProfilesReply,
    VersionReply
);

/// The locate LED state from `RedLed` (`blink` and `on` count as on).
pub fn red_led_on(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Some(false),
        "on" | "blink" | "blinking" => Some(true),
        _ => None,
    }
}

/// The power mode of `current` among `profiles`: the `default` profile is normal, a profile
/// drawing less than it is low, more is high. Without a `default` profile there is no mode.
pub fn power_mode_of(current: &str, profiles: &[ProfileEntry]) -> Option<PowerMode> {
    let watts_of = |name: &str| {
        profiles
            .iter()
            .find(|p| p.name.trimmed() == name)
            .and_then(|p| p.watts.get())
    };
    let default_w = watts_of("default")?;
    let w = watts_of(current)?;
    Some(if current == "default" || (w - default_w).abs() < 0.5 {
        PowerMode::Normal
    } else if w < default_w {
        PowerMode::Low
    } else {
        PowerMode::High
    })
}

/// The profile to switch to for `mode`: `default` for normal, the lowest-power profile for low,
/// the highest-power one for high.
pub fn profile_for_mode(mode: PowerMode, profiles: &[ProfileEntry]) -> Option<&ProfileEntry> {
    let with_watts = profiles
        .iter()
        .filter(|p| p.watts.get().is_some() && p.name.non_empty().is_some());
    let by_watts = |a: &&ProfileEntry, b: &&ProfileEntry| {
        a.watts
            .get()
            .partial_cmp(&b.watts.get())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    match mode {
        PowerMode::Normal => profiles.iter().find(|p| p.name.trimmed() == "default"),
        PowerMode::Low => with_watts.min_by(by_watts),
        PowerMode::High => with_watts.max_by(by_watts),
    }
}

/// The profile whose power is nearest `power_w` (ties go to the lower-power profile).
pub fn profile_nearest(power_w: u32, profiles: &[ProfileEntry]) -> Option<&ProfileEntry> {
    let target = f64::from(power_w);
    profiles
        .iter()
        .filter(|p| p.name.non_empty().is_some())
        .filter_map(|p| p.watts.get().map(|w| (p, w)))
        .min_by(|(_, a), (_, b)| {
            ((a - target).abs(), *a)
                .partial_cmp(&((b - target).abs(), *b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(p, _)| p)
}

/// Below this share of the current profile's power, a miner with no hashrate is asleep
/// (curtailed) rather than failed: LuxOS has no curtail flag in its reports, so the read-back
/// of `curtail` is hashrate 0 with the PSU near idle (§5.2).
pub const SLEEP_POWER_SHARE: f64 = 0.1;

/// Idle power assumed asleep when the profile's power is unknown, W.
pub const SLEEP_POWER_MAX_W: f64 = 150.0;

/// Builds the snapshot from the parts of a poll.
pub fn snapshot_from(p: &PollParts, now_ms: i64) -> MinerSnapshot {
    let mut s = MinerSnapshot::empty(now_ms, MinerStatus::Mining);
    s.partial = p.partial;
    let summary = p.summary.as_ref();
    let (now_ths, avg_ths) = summary.map_or((None, None), Summary::hashrate_ths);
    s.hashrate_ths = now_ths;
    s.hashrate_avg_ths = avg_ths;
    s.uptime_s = summary.and_then(|x| x.elapsed_s.as_u64());
    s.hardware_errors = summary.and_then(|x| x.hardware_errors.as_u64());

    let chains = p.stats.iter().find(|c| c.has_chain_keys);
    if let Some(c) = chains {
        let unit = c.rate_to_ths();
        s.expected_hashrate_ths = c.total_rateideal.map(|v| v * unit).filter(|v| *v > 0.0);
        push_boards(&mut s, c, unit);
    }
    // TEMPS lists the boards in the same order as the chains (its ID numbering varies).
    for (t, board) in p.temps.iter().zip(s.boards.iter_mut()) {
        let corners = [t.top_left, t.top_right, t.bottom_left, t.bottom_right];
        let corner_max = corners
            .iter()
            .filter_map(|n| health_temp(n.get()))
            .reduce(f64::max);
        // The chain's own chip sensors (stats) are more specific than the corner sensors.
        board.chip_temp_c = health_temp(t.chip.get())
            .or(board.chip_temp_c)
            .or(corner_max);
        board.board_temp_c = health_temp(t.board.get()).or(board.board_temp_c);
        board.inlet_temp_c = [t.top_left, t.bottom_left]
            .iter()
            .filter_map(|n| health_temp(n.get()))
            .reduce(f64::max)
            .or(board.inlet_temp_c);
        board.outlet_temp_c = [t.top_right, t.bottom_right]
            .iter()
            .filter_map(|n| health_temp(n.get()))
            .reduce(f64::max)
            .or(board.outlet_temp_c);
    }
    s.fans_rpm = p.fans.iter().filter_map(|f| f.rpm.as_u32()).collect();
    s.pools = pools_snapshot(&p.pools);

    let config = p.config.as_ref();
    s.locate_led_on = config.and_then(|c| red_led_on(c.red_led.trimmed()));
    let current = config
        .and_then(|c| c.profile.non_empty())
        .and_then(|name| p.profiles.iter().find(|x| x.name.trimmed() == name));
    s.power_target_w = current.and_then(|c| c.watts.get());
    s.power_mode = config
        .and_then(|c| c.profile.non_empty())
        .and_then(|name| power_mode_of(name, &p.profiles));
    if let Some(power) = p.power.as_ref()
        && let Some(w) = power.watts.get().filter(|w| *w >= 0.0)
    {
        s.power_w = Some(w);
        // §5.2 calls POWER measured; a reply that says `PSU: false` is LUXminer's estimate.
        s.power_source = Some(if power.psu.0 == Some(false) {
            PowerSource::FirmwareEstimated
        } else {
            PowerSource::Measured
        });
    }
    s.derive_efficiency();

    health::mark_dead_boards(&mut s);
    let hashing = s.hashrate_ths.is_some_and(|h| h > 0.0);
    let idle_limit = s
        .power_target_w
        .map_or(SLEEP_POWER_MAX_W, |t| t * SLEEP_POWER_SHARE);
    // `CurtailMode` says it outright where the firmware reports it; else judge by power.
    let curtailed = config
        .and_then(|c| c.curtail_mode.non_empty())
        .map(|m| m.eq_ignore_ascii_case("sleep"));
    let sleeping =
        curtailed.unwrap_or_else(|| !hashing && s.power_w.is_some_and(|w| w <= idle_limit));
    s.status = health::classify(&s, sleeping, &StatusRules::AVALON_LUXOS);
    s
}

fn health_temp(t: Option<f64>) -> Option<f64> {
    crate::avalon::mmid::temp_c(t)
}

/// Appends the boards of the bmminer-style chain keys: a chain counts when it reports chips or
/// a rate (LUXminer numbers chains from 1, like X19 stock firmware).
fn push_boards(s: &mut MinerSnapshot, c: &ChainStats, unit: f64) {
    for chain in &c.chains {
        let (chips, rate, ideal) = (chain.chips, chain.rate, chain.rate_ideal);
        // X19-style layouts list an empty 4th chain (`chain_acn4: 0`, `chain_rate4: ""`).
        let present =
            chips.is_some_and(|v| v > 0.0) || rate.is_some() || ideal.is_some_and(|v| v > 0.0);
        if !present {
            continue;
        }
        s.boards.push(BoardSnapshot {
            index: s.boards.len() as u32,
            hashrate_ths: rate.map(|r| r * unit),
            expected_hashrate_ths: ideal.map(|r| r * unit),
            chip_temp_c: chain
                .chip_sensors_max_c
                .or_else(|| health_temp(chain.chip_c)),
            board_temp_c: chain
                .pcb_sensors_max_c
                .or_else(|| health_temp(chain.board_c)),
            inlet_temp_c: None,
            outlet_temp_c: None,
            chips_working: chips.filter(|v| *v >= 0.0).map(|v| v as u32),
            chips_expected: None,
            frequency_mhz: chain.freq_avg_mhz.filter(|f| *f > 0.0),
            voltage_v: None,
            hardware_errors: chain.hw.filter(|v| *v >= 0.0).map(|v| v as u64),
            failed: false,
        });
    }
}

/// Who the LuxOS miner is, from the reply to [`IDENTIFY_COMMAND`] (or a bare `version` reply).
pub fn parse_identity(raw: &[u8]) -> Result<DeviceIdentity, DriverError> {
    let decoded = decode::<IdentifyReply>(raw)?.value;
    let (version, config) = if decoded.version.get().is_some() {
        let v = decoded.version.into_inner().unwrap_or_default();
        check_status(v.status.get())?;
        (
            v.version.into_inner(),
            decoded
                .config
                .into_inner()
                .and_then(|c| c.config.into_inner()),
        )
    } else {
        let v = decode::<VersionReply>(raw)?.value;
        check_status(v.status.get())?;
        (v.version.into_inner(), None)
    };
    let v = version.ok_or_else(|| {
        DriverError::Malformed(format!("version reply without VERSION: {}", excerpt(raw)))
    })?;
    let build = v
        .luxminer
        .non_empty()
        .ok_or_else(|| DriverError::Malformed("version reply does not name LUXminer".into()))?;
    let model = v
        .model
        .non_empty()
        .or_else(|| config.as_ref().and_then(|c| c.model.non_empty()))
        .unwrap_or("unknown")
        .to_string();
    let vendor = if model.to_ascii_lowercase().contains("antminer") {
        Vendor::Bitmain
    } else {
        Vendor::Unknown
    };
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor,
        partially_supported: vendor == Vendor::Unknown,
        model: Model(model),
        firmware: Firmware {
            kind: FirmwareKind::LuxOs,
            version: build.to_string(),
        },
        mac: config
            .as_ref()
            .and_then(|c| c.mac.non_empty())
            .map(crate::avalon::parse::normalise_mac),
        serial: config
            .as_ref()
            .and_then(|c| c.serial.non_empty())
            .map(str::to_string),
        hostname: config
            .as_ref()
            .and_then(|c| c.hostname.non_empty())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains(json: &str) -> ChainStats {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn chain_keys_land_in_their_slots() {
        let c = chains(
            r#"{"STATS":0,"chain_acn1":126,"chain_rate1":"65432.1","chain_rateideal1":66000,
                "chain_hw1":12,"freq_avg1":490,"temp_chip1":"55-56-64-64","temp2_1":60,
                "temp_pcb1":"38-0-49-x","temp1":47,"chain_acn3":0,"chain_rate3":"",
                "rate_unit":"gh","total_rateideal":198000}"#,
        );
        assert!(c.has_chain_keys);
        assert_eq!(c.total_rateideal, Some(198000.0));
        assert_eq!(c.rate_to_ths(), 1e-3);
        assert_eq!(c.chains.len(), 3, "up to the highest chain number seen");
        let one = c.chain(1).copied().unwrap_or_default();
        assert_eq!(one.chips, Some(126.0));
        assert_eq!(one.rate, Some(65432.1));
        assert_eq!(one.rate_ideal, Some(66000.0));
        assert_eq!(one.hw, Some(12.0));
        assert_eq!(one.freq_avg_mhz, Some(490.0));
        assert_eq!(one.chip_sensors_max_c, Some(64.0));
        assert_eq!(one.chip_c, Some(60.0));
        // A 0 sensor is missing, an unreadable one skipped.
        assert_eq!(one.pcb_sensors_max_c, Some(49.0));
        assert_eq!(one.board_c, Some(47.0));
        assert_eq!(c.chain(2).copied(), Some(ChainKeys::default()));
        let three = c.chain(3).copied().unwrap_or_default();
        assert_eq!((three.chips, three.rate), (Some(0.0), None));
        assert_eq!(c.chain(4), None);
    }

    #[test]
    fn chain_keys_are_read_as_luxminer_writes_them() {
        // A repeated key keeps its last value, even an unreadable one; numbers are only the
        // exact `chain_acn12` form; `rate_unit` is read case-insensitively.
        let c = chains(
            r#"{"chain_rate1":5,"chain_rate1":"x","chain_acn01":7,"chain_acn+2":7,
                "chain_acn17":7,"chain_acn0":7,"temp_pic1":"1-2","rate_unit":"TH/s"}"#,
        );
        assert!(c.has_chain_keys);
        assert_eq!(c.chains.len(), 1);
        assert_eq!(c.chain(1).and_then(|k| k.rate), None);
        assert_eq!(c.chain(1).and_then(|k| k.chips), None);
        assert_eq!(c.rate_to_ths(), 1.0);
        assert_eq!(chains(r#"{"rate_unit":" mh "}"#).rate_to_ths(), 1e-6);
        assert_eq!(chains(r#"{"rate_unit":"KH"}"#).rate_to_ths(), 1e-9);
        assert_eq!(chains(r#"{"rate_unit":5}"#).rate_to_ths(), 1e-3);
        let other = chains(r#"{"STATS":1,"ID":"POOL0","chainless":1}"#);
        assert!(!other.has_chain_keys && other.chains.is_empty());
        for not_an_object in ["[1,2]", "null", "\"x\"", "5", "true"] {
            assert_eq!(chains(not_an_object), ChainStats::default());
        }
    }
}
