//! LuxOS replies → core types (PROTOCOLS.md §5.2): `version` + `config` → [`DeviceIdentity`];
//! `summary`, `stats`, `pools`, `power`, `fans`, `temps`, `config`, `profiles` → [`MinerSnapshot`].
//!
//! Pure functions on raw reply bytes, `pub` for the table tests and fuzz targets. LUXminer uses
//! GH/s keys (`GHS 5s`, `chain_rateN` with `rate_unit`); `power` Watts is measured at the PSU.

use crate::cgminer::parse::{PoolEntry, Summary, pools_snapshot};
pub use crate::cgminer::parse::{PoolsReply, SummaryReply};
use crate::cgminer::reply::{
    Num, OneOrFirst, StatusEntry, Text, check_status, decode, deserialize_kept_text, excerpt,
    parse_num,
};
use crate::error::DriverError;
use crate::health::{self, StatusRules};
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PowerMode, PowerSource, Vendor,
};
use serde::Deserialize;
use serde::de::Deserializer;

/// The poll request: every report the snapshot needs on one connection (§1.4).
pub const POLL_COMMAND: &str = "summary+stats+pools+power+fans+temps+config+profiles";

/// The identify request.
pub const IDENTIFY_COMMAND: &str = "version+config";

/// Highest chain number scanned in the bmminer-style `stats` layout LUXminer keeps.
const MAX_CHAIN: usize = 16;

/// The per-chain keys of a `STATS` entry (`chain_rate1`, `chain_acn1`, `temp_chip1`, …) plus
/// `total_rateideal` and `rate_unit`; other keys are skipped unparsed.
#[derive(Debug, Clone, Default)]
pub struct ChainStats {
    /// `(key, value as text)` in reply order.
    pub fields: Vec<(String, String)>,
}

impl ChainStats {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(parse_num)
    }

    /// Multiplier from the reply's `rate_unit` to TH/s (GH/s when absent, as LUXminer reports).
    pub fn rate_to_ths(&self) -> f64 {
        match self.get("rate_unit").map(|u| u.trim().to_ascii_uppercase()) {
            Some(u) if u.starts_with("TH") => 1.0,
            Some(u) if u.starts_with("MH") => 1e-6,
            Some(u) if u.starts_with("KH") => 1e-9,
            _ => 1e-3,
        }
    }
}

fn keep_stats_key(k: &str) -> bool {
    k.starts_with("chain_")
        || k.starts_with("temp")
        || k.starts_with("freq_avg")
        || k == "total_rateideal"
        || k == "rate_unit"
}

impl<'de> Deserialize<'de> for ChainStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = deserialize_kept_text(d, keep_stats_key)?;
        Ok(ChainStats { fields })
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

    let chains = p
        .stats
        .iter()
        .find(|c| c.fields.iter().any(|(k, _)| k.starts_with("chain_")));
    if let Some(c) = chains {
        let unit = c.rate_to_ths();
        s.expected_hashrate_ths = c
            .num("total_rateideal")
            .map(|v| v * unit)
            .filter(|v| *v > 0.0);
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
    for n in 1..=MAX_CHAIN {
        let chips = c.num(&format!("chain_acn{n}"));
        let rate = c.num(&format!("chain_rate{n}"));
        let ideal = c.num(&format!("chain_rateideal{n}"));
        // X19-style layouts list an empty 4th chain (`chain_acn4: 0`, `chain_rate4: ""`).
        let present =
            chips.is_some_and(|v| v > 0.0) || rate.is_some() || ideal.is_some_and(|v| v > 0.0);
        if !present {
            continue;
        }
        let chip_temp = c
            .get(&format!("temp_chip{n}"))
            .and_then(|v| {
                v.split('-')
                    .filter_map(parse_num)
                    .filter_map(|t| health_temp(Some(t)))
                    .reduce(f64::max)
            })
            .or_else(|| health_temp(c.num(&format!("temp2_{n}"))));
        let board_temp = c
            .get(&format!("temp_pcb{n}"))
            .and_then(|v| {
                v.split('-')
                    .filter_map(parse_num)
                    .filter_map(|t| health_temp(Some(t)))
                    .reduce(f64::max)
            })
            .or_else(|| health_temp(c.num(&format!("temp{n}"))));
        s.boards.push(BoardSnapshot {
            index: s.boards.len() as u32,
            hashrate_ths: rate.map(|r| r * unit),
            expected_hashrate_ths: ideal.map(|r| r * unit),
            chip_temp_c: chip_temp,
            board_temp_c: board_temp,
            inlet_temp_c: None,
            outlet_temp_c: None,
            chips_working: chips.filter(|v| *v >= 0.0).map(|v| v as u32),
            chips_expected: None,
            frequency_mhz: c.num(&format!("freq_avg{n}")).filter(|f| *f > 0.0),
            voltage_v: None,
            hardware_errors: c
                .num(&format!("chain_hw{n}"))
                .filter(|v| *v >= 0.0)
                .map(|v| v as u64),
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
