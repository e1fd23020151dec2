//! Whatsminer replies → core types (PROTOCOLS.md §4.1, §4.3). Pure functions on raw reply
//! bytes, `pub` for the table tests and fuzz targets.
//!
//! Units are taken from the API version, never from magnitudes: v2 hashrates are MH/s (`MHS *`,
//! `HS RT`, `Target MHS`) except `Factory GHS` (GH/s); v3 hashrates are TH/s. `Power` (v2) and
//! `power-realtime` (v3) are measured watts. Sentinel temperatures (`0`, `-273`) are missing.

use crate::cgminer::parse::{PoolEntry, classify, pool_status, pools_snapshot, temp_c};
use crate::cgminer::reply::{Flag, List, Num, OneOrFirst, StatusEntry, Text, decode, excerpt};
use crate::error::DriverError;
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, Model,
    PoolSnapshot, PowerMode, PowerSource, Vendor, VendorError,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The v2 poll request: one connection for the three cgminer-layout reports (§1.4, §4.1).
pub const V2_POLL_COMMAND: &str = "summary+devs+pools";
/// The v3 poll parameter of `get.miner.status`.
pub const V3_POLL_PARAM: &str = "summary+pools+edevs";
/// Firmware built on or after this date (YYYYMMDD) speaks API v3 on 4433 (§4).
pub const V3_FIRMWARE_DATE: u32 = 20241101;
/// v2 success code.
pub const CODE_OK: i64 = 131;
/// v2 "token expired": fetch a new token and retry.
pub const CODE_TOKEN_EXPIRED: i64 = 135;
/// v2 "too many tokens from this address".
pub const CODE_TOO_MANY_TOKENS: i64 = 136;
/// v2 "invalid command".
pub const CODE_INVALID_COMMAND: i64 = 14;
/// v2 "invalid JSON" (also what a request encrypted with a wrong key decrypts to).
pub const CODE_INVALID_JSON: i64 = 23;
/// v2 "permission denied".
pub const CODE_PERMISSION_DENIED: i64 = 45;
/// A power limit at or above this means "no limit" (MOS writes 99999 to remove it).
pub const NO_POWER_LIMIT_W: f64 = 99_999.0;

// ---------------------------------------------------------------------------------------------
// v2: cgminer-layout reports

/// `SUMMARY[0]` of a v2 reply (hashrates in MH/s unless the key says GHS).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2Summary {
    /// Seconds since the mining process started.
    #[serde(rename = "Elapsed", default)]
    pub elapsed_s: Num,
    /// Average hashrate, MH/s.
    #[serde(rename = "MHS av", default)]
    pub mhs_av: Num,
    /// 5-second hashrate, MH/s.
    #[serde(rename = "MHS 5s", default)]
    pub mhs_5s: Num,
    /// 1-minute hashrate, MH/s.
    #[serde(rename = "MHS 1m", default)]
    pub mhs_1m: Num,
    /// Real-time hashrate, MH/s.
    #[serde(rename = "HS RT", default)]
    pub hs_rt_mhs: Num,
    /// Target hashrate for the current settings, MH/s.
    #[serde(rename = "Target MHS", default)]
    pub target_mhs: Num,
    /// Factory-rated hashrate, GH/s.
    #[serde(rename = "Factory GHS", default)]
    pub factory_ghs: Num,
    /// Hardware errors since start.
    #[serde(rename = "Hardware Errors", default)]
    pub hardware_errors: Num,
    /// Inlet (environment) temperature, °C.
    #[serde(rename = "Env Temp", default)]
    pub env_temp_c: Num,
    /// Intake fan, RPM.
    #[serde(rename = "Fan Speed In", default)]
    pub fan_in_rpm: Num,
    /// Exhaust fan, RPM.
    #[serde(rename = "Fan Speed Out", default)]
    pub fan_out_rpm: Num,
    /// Measured wall power, W.
    #[serde(rename = "Power", default)]
    pub power_w: Num,
    /// Power limit, W.
    #[serde(rename = "Power Limit", default)]
    pub power_limit_w: Num,
    /// `Low`, `Normal` or `High`.
    #[serde(rename = "Power Mode", default)]
    pub power_mode: Text,
    /// Hottest chip, °C.
    #[serde(rename = "Chip Temp Max", default)]
    pub chip_temp_max_c: Num,
    /// How many error codes are active (absent on old firmware).
    #[serde(rename = "Error Code Count", default)]
    pub error_code_count: Num,
    /// MAC address.
    #[serde(rename = "MAC", default)]
    pub mac: Text,
}

impl V2Summary {
    /// Current hashrate, TH/s.
    pub fn hashrate_ths(&self) -> Option<f64> {
        self.mhs_5s
            .get()
            .or(self.hs_rt_mhs.get())
            .or(self.mhs_1m.get())
            .map(|m| m / 1e6)
    }

    /// Expected hashrate for the current settings, TH/s (target, else factory rating).
    pub fn expected_ths(&self) -> Option<f64> {
        self.target_mhs
            .get()
            .filter(|v| *v > 0.0)
            .map(|m| m / 1e6)
            .or_else(|| self.factory_ghs.get().filter(|v| *v > 0.0).map(|g| g / 1e3))
    }
}

/// One `DEVS` record of a v2 reply: a hash board.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2Dev {
    /// ASC index.
    #[serde(rename = "ASC", default)]
    pub asc: Num,
    /// Physical slot.
    #[serde(rename = "Slot", default)]
    pub slot: Num,
    /// `Alive`, `Dead`, …
    #[serde(rename = "Status", default)]
    pub status: Text,
    /// Board temperature, °C.
    #[serde(rename = "Temperature", default)]
    pub temperature_c: Num,
    /// Chip clock, MHz.
    #[serde(rename = "Chip Frequency", default)]
    pub chip_frequency_mhz: Num,
    /// 5-second hashrate, MH/s.
    #[serde(rename = "MHS 5s", default)]
    pub mhs_5s: Num,
    /// Average hashrate, MH/s.
    #[serde(rename = "MHS av", default)]
    pub mhs_av: Num,
    /// Factory-rated hashrate of the board, GH/s.
    #[serde(rename = "Factory GHS", default)]
    pub factory_ghs: Num,
    /// Hardware errors on the board.
    #[serde(rename = "Hardware Errors", default)]
    pub hardware_errors: Num,
    /// Chips working.
    #[serde(rename = "Effective Chips", default)]
    pub effective_chips: Num,
    /// Hottest chip, °C.
    #[serde(rename = "Chip Temp Max", default)]
    pub chip_temp_max_c: Num,
}

/// A cgminer-layout v2 reply (`summary`, `devs`/`edevs` or `pools`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2Report {
    /// Status of the command (a list, or Whatsminer's flat string).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `Code` of a flat error reply.
    #[serde(rename = "Code", default)]
    pub code: Num,
    /// `Msg` of a flat error reply.
    #[serde(rename = "Msg", default)]
    pub msg: Text,
    /// The summary record.
    #[serde(rename = "SUMMARY", default)]
    pub summary: OneOrFirst<V2Summary>,
    /// Hash boards.
    #[serde(rename = "DEVS", default)]
    pub devs: List<V2Dev>,
    /// Pools.
    #[serde(rename = "POOLS", default)]
    pub pools: List<PoolEntry>,
}

impl V2Report {
    /// The error the reply carries, if its status is E/F (flat or list form).
    pub fn error(&self) -> Option<DriverError> {
        let s = self.status.get()?;
        if !s.is_error() {
            return None;
        }
        let code = s.code().or(self.code.as_i64());
        let msg = s.msg.non_empty().or(self.msg.non_empty()).unwrap_or("");
        Some(v2_error(code, msg))
    }
}

/// The multi-command reply: each member is the single-command reply wrapped in a list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2Multi {
    /// `summary` part.
    #[serde(default)]
    pub summary: OneOrFirst<V2Report>,
    /// `devs` part.
    #[serde(default)]
    pub devs: OneOrFirst<V2Report>,
    /// `edevs` part (same layout).
    #[serde(default)]
    pub edevs: OneOrFirst<V2Report>,
    /// `pools` part.
    #[serde(default)]
    pub pools: OneOrFirst<V2Report>,
    /// Flat STATUS of a firmware that refused the whole request.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// `Code` of a flat refusal.
    #[serde(rename = "Code", default)]
    pub code: Num,
    /// `Msg` of a flat refusal.
    #[serde(rename = "Msg", default)]
    pub msg: Text,
}

/// What the v2 reports of one poll say.
#[derive(Debug, Clone, Default)]
pub struct V2Reports {
    /// The summary record.
    pub summary: Option<V2Summary>,
    /// Hash boards.
    pub devs: Vec<V2Dev>,
    /// Pools.
    pub pools: Vec<PoolEntry>,
    /// Some reply was cut or repaired with loss.
    pub partial: bool,
}

/// Parses the multi-command poll reply. `Ok(None)` when the firmware refused the multi form
/// (invalid command, or no summary at all): the caller falls back to single commands.
pub fn parse_v2_multi(raw: &[u8]) -> Result<Option<V2Reports>, DriverError> {
    let d = decode::<V2Multi>(raw)?;
    let m = d.value;
    if let Some(s) = m.status.get().filter(|s| s.is_error()) {
        let code = s.code().or(m.code.as_i64());
        let msg = s.msg.non_empty().or(m.msg.non_empty()).unwrap_or("");
        return match v2_error(code, msg) {
            DriverError::Rejected(_) => Ok(None),
            other => Err(other),
        };
    }
    let Some(summary) = m.summary.into_inner() else {
        return Ok(None);
    };
    if let Some(e) = summary.error() {
        return match e {
            DriverError::Rejected(_) => Ok(None),
            other => Err(other),
        };
    }
    let devs = m
        .devs
        .into_inner()
        .or(m.edevs.into_inner())
        .unwrap_or_default();
    let pools = m.pools.into_inner().unwrap_or_default();
    Ok(Some(V2Reports {
        summary: summary.summary.into_inner(),
        devs: devs.devs.0,
        pools: pools.pools.0,
        partial: d.truncated,
    }))
}

/// Parses one single-command v2 report, turning an error status into the error.
pub fn parse_v2_report(raw: &[u8]) -> Result<(V2Report, bool), DriverError> {
    let d = decode::<V2Report>(raw)?;
    if let Some(e) = d.value.error() {
        return Err(e);
    }
    Ok((d.value, d.truncated))
}

// ---------------------------------------------------------------------------------------------
// v2: flat replies (`get_*`, `status`)

/// A `Msg` that is an object of type `T` on success and a sentence on error.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MsgOr<T> {
    /// The object.
    Obj(T),
    /// A text message (errors, `"ready"`, `"ok"`).
    Text(String),
    /// Absent or of another type.
    #[default]
    Other,
}

impl<T> MsgOr<T> {
    /// The object, if the message was one.
    pub fn obj(&self) -> Option<&T> {
        match self {
            MsgOr::Obj(t) => Some(t),
            _ => None,
        }
    }

    /// The text, if the message was a string.
    pub fn text(&self) -> Option<&str> {
        match self {
            MsgOr::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MsgOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MsgOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(MsgOr::Obj)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MsgOr::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MsgOr::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MsgOr::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MsgOr::Other)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(MsgOr::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(MsgOr::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(MsgOr::Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MsgOr::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MsgOr::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A flat v2 reply: `{"STATUS":"S","When":…,"Code":131,"Msg":{…},"Description":""}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2Flat<T> {
    /// Severity (flat string, or a cgminer list on some builds).
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
    /// Response code (131 OK).
    #[serde(rename = "Code", default)]
    pub code: Num,
    /// Payload or message.
    #[serde(rename = "Msg", default = "MsgOr::default")]
    pub msg: MsgOr<T>,
}

/// Maps a v2 error code and message to the driver error an operator can act on.
pub fn v2_error(code: Option<i64>, msg: &str) -> DriverError {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("can't access write cmd") || lower.contains("cannot access write cmd") {
        return DriverError::Rejected(format!(
            "the write API is disabled on the device (enable it in WhatsMinerTool or the web \
             interface): {msg}"
        ));
    }
    let msg = if msg.is_empty() { "error" } else { msg };
    match code {
        Some(CODE_PERMISSION_DENIED) => DriverError::Auth(format!("permission denied: {msg}")),
        Some(CODE_TOKEN_EXPIRED) => DriverError::Auth(format!("token expired (135): {msg}")),
        Some(CODE_TOO_MANY_TOKENS) => {
            DriverError::Rejected(format!("too many tokens for this address (136): {msg}"))
        }
        Some(c) => DriverError::Rejected(format!("{msg} (code {c})")),
        None => DriverError::Rejected(msg.to_owned()),
    }
}

/// Parses a flat reply and checks its status: `S` (or code 131) passes; E/F become the error.
pub fn parse_v2_flat<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<V2Flat<T>, DriverError> {
    let d = decode::<V2Flat<T>>(raw)?;
    let f = d.value;
    let failed = f.status.get().is_some_and(|s| s.is_error());
    if failed {
        let msg = f
            .msg
            .text()
            .map(str::to_owned)
            .or_else(|| {
                f.status
                    .get()
                    .and_then(|s| s.msg.non_empty().map(str::to_owned))
            })
            .unwrap_or_default();
        return Err(v2_error(f.code.as_i64(), &msg));
    }
    if f.status.get().is_none() && f.code.get().is_none() {
        return Err(DriverError::Malformed(format!(
            "no STATUS in reply: {}",
            excerpt(raw)
        )));
    }
    Ok(f)
}

/// `get_version` → `Msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2VersionMsg {
    /// API version, e.g. `2.0.5`.
    #[serde(default)]
    pub api_ver: Text,
    /// Firmware build, e.g. `20230803.11.REL`.
    #[serde(default)]
    pub fw_ver: Text,
}

/// `status` → `Msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2StatusMsg {
    /// Mining stopped (`"true"`/`"false"`).
    #[serde(default)]
    pub mineroff: Flag,
    /// API 1.4 spelling of `mineroff`.
    #[serde(default)]
    pub btmineroff: Flag,
    /// Why mining is off.
    #[serde(default)]
    pub mineroff_reason: Text,
    /// Power mode word.
    #[serde(default)]
    pub power_mode: Text,
}

impl V2StatusMsg {
    /// Whether mining is deliberately off.
    pub fn mining_off(&self) -> Option<bool> {
        self.mineroff.0.or(self.btmineroff.0)
    }
}

/// `get_miner_info` → `Msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2MinerInfoMsg {
    /// Host name.
    #[serde(default)]
    pub hostname: Text,
    /// MAC address.
    #[serde(default)]
    pub mac: Text,
    /// LED state: `auto` is normal operation; anything else is a manual (locate) pattern.
    #[serde(default)]
    pub ledstat: Text,
    /// Miner serial.
    #[serde(default)]
    pub minersn: Text,
}

impl V2MinerInfoMsg {
    /// Whether the locate LED is on (a manual LED setting), `None` when not reported.
    pub fn led_on(&self) -> Option<bool> {
        self.ledstat
            .non_empty()
            .map(|s| !s.eq_ignore_ascii_case("auto"))
    }
}

/// `get_error_code` → `Msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2ErrorMsg {
    /// `[{"<code>":"<time>"}, …]`, or one object of codes on API 2.0.4.
    #[serde(default)]
    pub error_code: ErrorCodes,
}

/// Error codes in any of the shapes firmwares send: a list of `{"<code>":"<time>"}` objects,
/// a list of `{"code":…,"reason":…}` objects, or one object mapping codes to times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorCodes(pub Vec<VendorError>);

impl<'de> Deserialize<'de> for ErrorCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorCodes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("error codes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ErrorCodes, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<ErrorCodes>()? {
                    out.extend(e.0);
                }
                Ok(ErrorCodes(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorCodes, A::Error> {
                let mut out = Vec::new();
                let mut code: Option<String> = None;
                let mut reason: Option<String> = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "code" | "error_code" => {
                            code = map.next_value::<Text>()?.non_empty().map(str::to_owned)
                        }
                        "reason" | "msg" | "message" => {
                            reason = map.next_value::<Text>()?.non_empty().map(str::to_owned)
                        }
                        "time" | "when" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            let k = k.trim();
                            if !k.is_empty() {
                                out.push(vendor_error(k, None));
                            }
                        }
                    }
                }
                if let Some(c) = code {
                    out.push(vendor_error(&c, reason.as_deref()));
                }
                Ok(ErrorCodes(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorCodes, E> {
                let v = v.trim();
                Ok(ErrorCodes(if v.is_empty() {
                    Vec::new()
                } else {
                    vec![vendor_error(v, None)]
                }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes(vec![vendor_error(&v.to_string(), None)]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes(vec![vendor_error(&v.to_string(), None)]))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<ErrorCodes, E> {
                Ok(ErrorCodes::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ErrorCodes, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V)
    }
}

fn vendor_error(code: &str, reason: Option<&str>) -> VendorError {
    VendorError {
        code: code.to_owned(),
        message: reason
            .map(str::to_owned)
            .unwrap_or_else(|| error_message(code)),
    }
}

/// What a Whatsminer error code means (the codes operators meet most; MicroBT's error-code
/// list; **verify** rare codes against the vendor table). Unknown codes get a generic text.
pub fn error_message(code: &str) -> String {
    let Ok(n) = code.trim().parse::<u32>() else {
        return format!("Whatsminer error {code}");
    };
    let slot = |base: u32| n - base;
    match n {
        110 => "intake fan speed error".to_owned(),
        111 => "exhaust fan speed error".to_owned(),
        120 | 130 => "intake fan speed deviates from target".to_owned(),
        121 | 131 => "exhaust fan speed deviates from target".to_owned(),
        140 => "fan speed too high".to_owned(),
        200 => "power supply not detected".to_owned(),
        201 => "power supply does not match the configuration".to_owned(),
        202 => "power supply output voltage error".to_owned(),
        203 => "power supply protecting: environment temperature too high".to_owned(),
        205 => "power supply current error".to_owned(),
        206 => "power supply input voltage too low".to_owned(),
        300..=303 => format!("slot {} temperature sensor not detected", slot(300)),
        320..=323 => format!("slot {} temperature reading error", slot(320)),
        329 => "control board temperature sensor communication error".to_owned(),
        350..=353 => format!("slot {} temperature too high (protection)", slot(350)),
        360 => "hash board temperature too high".to_owned(),
        410..=413 => format!("slot {} EEPROM data error", slot(410)),
        530..=533 => format!("slot {} hash board not found", slot(530)),
        540..=543 => format!("slot {} chip id read error", slot(540)),
        600 => "environment temperature too high".to_owned(),
        2010 => "all pools are disabled".to_owned(),
        2020..=2022 => format!("pool {} connection failed", slot(2020)),
        2030 => "high pool rejection rate".to_owned(),
        _ => format!("Whatsminer error {code}"),
    }
}

/// Parses `get_error_code`.
pub fn parse_v2_error_codes(raw: &[u8]) -> Result<Vec<VendorError>, DriverError> {
    let f = parse_v2_flat::<V2ErrorMsg>(raw)?;
    Ok(f.msg
        .obj()
        .map(|m| m.error_code.0.clone())
        .unwrap_or_default())
}

/// Parses `status`.
pub fn parse_v2_status(raw: &[u8]) -> Result<V2StatusMsg, DriverError> {
    let f = parse_v2_flat::<V2StatusMsg>(raw)?;
    f.msg
        .obj()
        .cloned()
        .ok_or_else(|| DriverError::Malformed(format!("status without Msg: {}", excerpt(raw))))
}

/// Parses `get_miner_info`.
pub fn parse_v2_miner_info(raw: &[u8]) -> Result<V2MinerInfoMsg, DriverError> {
    let f = parse_v2_flat::<V2MinerInfoMsg>(raw)?;
    f.msg.obj().cloned().ok_or_else(|| {
        DriverError::Malformed(format!("get_miner_info without Msg: {}", excerpt(raw)))
    })
}

/// Parses `get_version`.
pub fn parse_v2_version(raw: &[u8]) -> Result<V2VersionMsg, DriverError> {
    let f = parse_v2_flat::<V2VersionMsg>(raw)?;
    f.msg
        .obj()
        .cloned()
        .ok_or_else(|| DriverError::Malformed(format!("get_version without Msg: {}", excerpt(raw))))
}

/// The build date of a firmware string (`20230803.11.REL` → 20230803), quotes tolerated.
pub fn firmware_date(fw: &str) -> Option<u32> {
    let t = fw.trim().trim_matches(|c| c == '\'' || c == '"');
    let digits = t.get(..8)?;
    let date: u32 = digits.parse().ok()?;
    (19900101..=29991231).contains(&date).then_some(date)
}

/// Whether a firmware string is new enough to speak API v3 on 4433.
pub fn firmware_speaks_v3(fw: &str) -> bool {
    firmware_date(fw).is_some_and(|d| d >= V3_FIRMWARE_DATE)
}

/// `devdetails` → the model string of the first board record (`M30S++_VH30`).
#[derive(Debug, Clone, Default, Deserialize)]
struct V2DevDetails {
    #[serde(rename = "STATUS", default)]
    status: OneOrFirst<StatusEntry>,
    #[serde(rename = "DEVDETAILS", default)]
    details: List<V2DevDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct V2DevDetail {
    #[serde(rename = "Model", default)]
    model: Text,
}

/// Parses `devdetails` and returns the raw model string.
pub fn parse_v2_devdetails_model(raw: &[u8]) -> Result<String, DriverError> {
    let d = decode::<V2DevDetails>(raw)?.value;
    if let Some(s) = d.status.get().filter(|s| s.is_error()) {
        return Err(v2_error(s.code(), s.msg.trimmed()));
    }
    d.details
        .iter()
        .find_map(|x| x.model.non_empty().map(str::to_owned))
        .ok_or_else(|| {
            DriverError::Malformed(format!("devdetails without Model: {}", excerpt(raw)))
        })
}

/// Models this driver knows by name; others are read generically (`partially_supported`).
pub const KNOWN_MODELS: &[&str] = &[
    "M30S", "M30S+", "M30S++", "M31S", "M31S+", "M50", "M50S", "M50S+", "M50S++", "M53S", "M56S",
    "M60", "M60S", "M60S+", "M63S", "M66S",
];

/// The operator-facing model from a firmware model string: `M30S++_VH30` → `Whatsminer M30S++`
/// (the variant after `_` names a chip bin, not a different product).
pub fn model_name(raw_model: &str) -> (Model, bool) {
    let base = raw_model
        .trim()
        .split('_')
        .next()
        .unwrap_or_default()
        .trim();
    let base = base
        .strip_prefix("Whatsminer ")
        .unwrap_or(base)
        .to_ascii_uppercase();
    let known = KNOWN_MODELS.contains(&base.as_str());
    let name = if base.is_empty() {
        "Whatsminer (unknown model)".to_owned()
    } else {
        format!("Whatsminer {base}")
    };
    (Model(name), !known)
}

/// The identity of a v2 device from `devdetails`, `get_version` and `get_miner_info`.
pub fn v2_identity(
    devdetails: &[u8],
    version: &[u8],
    miner_info: Option<&[u8]>,
) -> Result<DeviceIdentity, DriverError> {
    let raw_model = parse_v2_devdetails_model(devdetails)?;
    let v = parse_v2_version(version)?;
    let info = miner_info.map(parse_v2_miner_info).transpose()?;
    let (model, partial) = model_name(&raw_model);
    let fw = v.fw_ver.trimmed().trim_matches('\'').to_owned();
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::MicroBt,
        model,
        firmware: Firmware {
            kind: FirmwareKind::Stock,
            version: fw,
        },
        mac: info
            .as_ref()
            .and_then(|i| i.mac.non_empty().map(str::to_owned)),
        serial: info
            .as_ref()
            .and_then(|i| i.minersn.non_empty().map(str::to_owned)),
        hostname: info
            .as_ref()
            .and_then(|i| i.hostname.non_empty().map(str::to_owned)),
        partially_supported: partial,
    })
}

/// Extra v2 reads a poll may add to the reports.
#[derive(Debug, Clone, Default)]
pub struct V2Extras {
    /// `status` said mining is off.
    pub mining_off: Option<bool>,
    /// `get_miner_info` LED state.
    pub led_on: Option<bool>,
    /// `get_error_code` codes.
    pub errors: Vec<VendorError>,
}

/// Maps a power-mode word.
pub fn power_mode(word: &str) -> Option<PowerMode> {
    match word.trim().to_ascii_lowercase().as_str() {
        "low" => Some(PowerMode::Low),
        "normal" => Some(PowerMode::Normal),
        "high" => Some(PowerMode::High),
        _ => None,
    }
}

fn power_limit(v: Num) -> Option<f64> {
    v.get().filter(|w| *w > 0.0 && *w < NO_POWER_LIMIT_W)
}

/// Builds the snapshot of a v2 poll.
pub fn v2_snapshot(r: &V2Reports, x: &V2Extras, time_unix_ms: i64) -> MinerSnapshot {
    let mut s = MinerSnapshot::empty(time_unix_ms, hashmesh_core::MinerStatus::Mining);
    if let Some(sum) = &r.summary {
        s.hashrate_ths = sum.hashrate_ths();
        s.hashrate_avg_ths = sum.mhs_av.get().map(|m| m / 1e6);
        s.expected_hashrate_ths = sum.expected_ths();
        s.uptime_s = sum.elapsed_s.as_u64();
        s.hardware_errors = sum.hardware_errors.as_u64();
        s.ambient_temp_c = temp_c(sum.env_temp_c.get());
        s.fans_rpm = [sum.fan_in_rpm, sum.fan_out_rpm]
            .into_iter()
            .filter_map(Num::as_u32)
            .collect();
        s.power_w = sum.power_w.get().filter(|w| *w >= 0.0);
        s.power_source = s.power_w.map(|_| PowerSource::Measured);
        s.power_target_w = power_limit(sum.power_limit_w);
        s.power_mode = power_mode(sum.power_mode.trimmed());
    }
    let summary_hashes = s.hashrate_ths.is_some_and(|h| h > 0.0);
    s.boards = r
        .devs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let chips = d.effective_chips.as_u32();
            let rate = d.mhs_5s.get().or(d.mhs_av.get()).map(|m| m / 1e6);
            let dead_status = matches!(
                d.status.trimmed().to_ascii_lowercase().as_str(),
                "dead" | "sick" | "nostart"
            );
            BoardSnapshot {
                index: d.slot.as_u32().or(d.asc.as_u32()).unwrap_or(i as u32),
                hashrate_ths: rate,
                expected_hashrate_ths: d.factory_ghs.get().filter(|g| *g > 0.0).map(|g| g / 1e3),
                chip_temp_c: temp_c(d.chip_temp_max_c.get()),
                board_temp_c: temp_c(d.temperature_c.get()),
                chips_working: chips,
                frequency_mhz: d.chip_frequency_mhz.get().filter(|f| *f > 0.0),
                hardware_errors: d.hardware_errors.as_u64(),
                failed: dead_status
                    || chips == Some(0)
                    || (summary_hashes && rate.is_some_and(|h| h <= 0.0)),
                ..Default::default()
            }
        })
        .collect();
    s.pools = pools_snapshot(&r.pools);
    s.locate_led_on = x.led_on;
    s.errors = x.errors.clone();
    s.partial = r.partial;
    s.derive_efficiency();
    s.status = classify(&s, x.mining_off == Some(true));
    s
}

/// Parses a complete v2 multi poll (no extras), for tests and fuzzing.
pub fn parse_v2_poll(raw: &[u8], time_unix_ms: i64) -> Result<Option<MinerSnapshot>, DriverError> {
    Ok(parse_v2_multi(raw)?.map(|r| v2_snapshot(&r, &V2Extras::default(), time_unix_ms)))
}

// ---------------------------------------------------------------------------------------------
// v3

/// A v3 reply: `{"code":0,"when":…,"msg":{…}|"…","desc":"<cmd>"}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Reply<T> {
    /// 0 ok, −1 fail, −2 invalid command, −3 missing parameter, −4 no permission.
    #[serde(default)]
    pub code: Num,
    /// Payload or message.
    #[serde(default = "MsgOr::default")]
    pub msg: MsgOr<T>,
    /// The command echoed.
    #[serde(default)]
    pub desc: Text,
}

/// Maps a v3 error code and message to the driver error an operator can act on.
pub fn v3_error(code: i64, msg: &str) -> DriverError {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("can't access write cmd") || lower.contains("api switch") {
        return DriverError::Rejected(format!(
            "the write API is disabled on the device (enable it in WhatsMinerTool or the web \
             interface): {msg}"
        ));
    }
    let msg = if msg.is_empty() { "error" } else { msg };
    match code {
        -4 => DriverError::Auth(format!(
            "no permission (wrong account, password or token): {msg}"
        )),
        -2 => DriverError::Rejected(format!("invalid command: {msg}")),
        -3 => DriverError::Rejected(format!("missing parameter: {msg}")),
        c => DriverError::Rejected(format!("{msg} (code {c})")),
    }
}

/// Parses a v3 reply and checks its code.
pub fn parse_v3<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<V3Reply<T>, DriverError> {
    let r = decode::<V3Reply<T>>(raw)?.value;
    match r.code.as_i64() {
        Some(0) => Ok(r),
        Some(c) => Err(v3_error(c, r.msg.text().unwrap_or_default())),
        None => Err(DriverError::Malformed(format!(
            "v3 reply without code: {}",
            excerpt(raw)
        ))),
    }
}

/// `get.miner.status` `summary` (TH/s, W, °C).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Summary {
    /// Seconds since mining started.
    #[serde(default)]
    pub elapsed: Num,
    /// Real-time hashrate, TH/s.
    #[serde(rename = "hash-realtime", default)]
    pub hash_realtime_ths: Num,
    /// Average hashrate, TH/s.
    #[serde(rename = "hash-average", default)]
    pub hash_average_ths: Num,
    /// Factory hashrate, TH/s.
    #[serde(rename = "factory-hash", default)]
    pub factory_hash_ths: Num,
    /// Measured power, W.
    #[serde(rename = "power-realtime", default)]
    pub power_realtime_w: Num,
    /// Power limit, W.
    #[serde(rename = "power-limit", default)]
    pub power_limit_w: Num,
    /// Inlet air, °C.
    #[serde(rename = "environment-temperature", default)]
    pub environment_temperature_c: Num,
    /// Intake fan, RPM.
    #[serde(rename = "fan-speed-in", default)]
    pub fan_speed_in_rpm: Num,
    /// Exhaust fan, RPM.
    #[serde(rename = "fan-speed-out", default)]
    pub fan_speed_out_rpm: Num,
}

/// One `edevs` board of v3.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Board {
    /// Board id (slot).
    #[serde(default)]
    pub id: Num,
    /// Board state word.
    #[serde(default)]
    pub status: Text,
    /// Real-time hashrate, TH/s.
    #[serde(rename = "hash-realtime", default)]
    pub hash_realtime_ths: Num,
    /// Factory hashrate, TH/s.
    #[serde(rename = "factory-hash", default)]
    pub factory_hash_ths: Num,
    /// Chip clock, MHz.
    #[serde(default)]
    pub freq: Num,
    /// Working chips.
    #[serde(rename = "effective-chips", default)]
    pub effective_chips: Num,
    /// Hottest chip, °C.
    #[serde(rename = "chip-temp-max", default)]
    pub chip_temp_max_c: Num,
}

/// One v3 pool (**verify** the key names on a device: no share counts in v3).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Pool {
    /// Pool number.
    #[serde(default)]
    pub id: Num,
    /// Stratum URL.
    #[serde(default)]
    pub url: Text,
    /// Worker name.
    #[serde(default, alias = "user", alias = "worker")]
    pub account: Text,
    /// `alive`, `dead`, `disabled`.
    #[serde(default)]
    pub status: Text,
    /// This pool receives work.
    #[serde(rename = "stratum-active", default)]
    pub stratum_active: Flag,
}

/// `get.miner.status` `msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Status {
    /// Summary part.
    #[serde(default)]
    pub summary: Option<V3Summary>,
    /// Pools part.
    #[serde(default)]
    pub pools: List<V3Pool>,
    /// Boards part.
    #[serde(default)]
    pub edevs: List<V3Board>,
}

/// `get.device.info` `msg.miner`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3MinerInfo {
    /// Model string (`M60S_VK40`).
    #[serde(rename = "type", default)]
    pub model: Text,
    /// Miner serial.
    #[serde(rename = "miner-sn", default)]
    pub serial: Text,
    /// Mining service running (`"true"`/`"false"`).
    #[serde(default)]
    pub working: Flag,
}

/// `get.device.info` `msg.network`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Network {
    /// MAC address.
    #[serde(default)]
    pub mac: Text,
    /// Host name.
    #[serde(default)]
    pub hostname: Text,
}

/// `get.device.info` `msg.power`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3Power {
    /// Power mode word.
    #[serde(default)]
    pub mode: Text,
}

/// `get.device.info` `msg.system`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3System {
    /// API version (`3.0.1`).
    #[serde(default)]
    pub api: Text,
    /// Firmware build.
    #[serde(default)]
    pub fwversion: Text,
    /// LED state (`auto` = normal).
    #[serde(default)]
    pub ledstatus: Text,
}

/// `get.device.info` `msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct V3DeviceInfo {
    /// Miner part.
    #[serde(default)]
    pub miner: Option<V3MinerInfo>,
    /// Network part.
    #[serde(default)]
    pub network: Option<V3Network>,
    /// Power part.
    #[serde(default)]
    pub power: Option<V3Power>,
    /// System part.
    #[serde(default)]
    pub system: Option<V3System>,
    /// Salt for write tokens.
    #[serde(default)]
    pub salt: Text,
    /// Active error codes.
    #[serde(rename = "error-code", default)]
    pub error_code: ErrorCodes,
}

/// Parses `get.miner.status`.
pub fn parse_v3_status(raw: &[u8]) -> Result<V3Status, DriverError> {
    let r = parse_v3::<V3Status>(raw)?;
    match r.msg {
        MsgOr::Obj(s) => Ok(s),
        _ => Err(DriverError::Malformed(format!(
            "get.miner.status without msg object: {}",
            excerpt(raw)
        ))),
    }
}

/// Parses `get.device.info`.
pub fn parse_v3_device_info(raw: &[u8]) -> Result<V3DeviceInfo, DriverError> {
    let r = parse_v3::<V3DeviceInfo>(raw)?;
    match r.msg {
        MsgOr::Obj(s) => Ok(s),
        _ => Err(DriverError::Malformed(format!(
            "get.device.info without msg object: {}",
            excerpt(raw)
        ))),
    }
}

/// The identity of a v3 device from `get.device.info`.
pub fn v3_identity(info: &V3DeviceInfo) -> Result<DeviceIdentity, DriverError> {
    let raw_model = info
        .miner
        .as_ref()
        .and_then(|m| m.model.non_empty())
        .ok_or_else(|| DriverError::Malformed("get.device.info without miner.type".into()))?;
    let (model, partial) = model_name(raw_model);
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::MicroBt,
        model,
        firmware: Firmware {
            kind: FirmwareKind::Stock,
            version: info
                .system
                .as_ref()
                .map(|s| s.fwversion.trimmed().to_owned())
                .unwrap_or_default(),
        },
        mac: info
            .network
            .as_ref()
            .and_then(|n| n.mac.non_empty().map(str::to_owned)),
        serial: info
            .miner
            .as_ref()
            .and_then(|m| m.serial.non_empty().map(str::to_owned)),
        hostname: info
            .network
            .as_ref()
            .and_then(|n| n.hostname.non_empty().map(str::to_owned)),
        partially_supported: partial,
    })
}

fn v3_pools(pools: &[V3Pool]) -> Vec<PoolSnapshot> {
    let mut out: Vec<PoolSnapshot> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| PoolSnapshot {
            index: i as u32,
            url: hashmesh_core::intern(p.url.trimmed()),
            user: p.account.0.clone(),
            status: pool_status(p.status.trimmed()),
            accepted: 0,
            rejected: 0,
            stale: 0,
            active: p.stratum_active.0 == Some(true),
        })
        .collect();
    if !out.iter().any(|p| p.active)
        && let Some(p) = out
            .iter_mut()
            .find(|p| p.status == hashmesh_core::PoolStatus::Alive)
    {
        p.active = true;
    }
    out
}

/// Builds the snapshot of a v3 poll from `get.miner.status` and `get.device.info`.
pub fn v3_snapshot(st: &V3Status, info: Option<&V3DeviceInfo>, time_unix_ms: i64) -> MinerSnapshot {
    let mut s = MinerSnapshot::empty(time_unix_ms, hashmesh_core::MinerStatus::Mining);
    if let Some(sum) = &st.summary {
        s.hashrate_ths = sum.hash_realtime_ths.get();
        s.hashrate_avg_ths = sum.hash_average_ths.get();
        s.expected_hashrate_ths = sum.factory_hash_ths.get().filter(|v| *v > 0.0);
        s.uptime_s = sum.elapsed.as_u64();
        s.ambient_temp_c = temp_c(sum.environment_temperature_c.get());
        s.fans_rpm = [sum.fan_speed_in_rpm, sum.fan_speed_out_rpm]
            .into_iter()
            .filter_map(Num::as_u32)
            .collect();
        s.power_w = sum.power_realtime_w.get().filter(|w| *w >= 0.0);
        s.power_source = s.power_w.map(|_| PowerSource::Measured);
        s.power_target_w = power_limit(sum.power_limit_w);
    }
    let summary_hashes = s.hashrate_ths.is_some_and(|h| h > 0.0);
    s.boards = st
        .edevs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let chips = b.effective_chips.as_u32();
            let rate = b.hash_realtime_ths.get();
            BoardSnapshot {
                index: b.id.as_u32().unwrap_or(i as u32),
                hashrate_ths: rate,
                expected_hashrate_ths: b.factory_hash_ths.get().filter(|v| *v > 0.0),
                chip_temp_c: temp_c(b.chip_temp_max_c.get()),
                chips_working: chips,
                frequency_mhz: b.freq.get().filter(|f| *f > 0.0),
                failed: chips == Some(0) || (summary_hashes && rate.is_some_and(|h| h <= 0.0)),
                ..Default::default()
            }
        })
        .collect();
    s.pools = v3_pools(&st.pools);
    let mut sleeping = false;
    if let Some(info) = info {
        s.power_mode = info
            .power
            .as_ref()
            .and_then(|p| power_mode(p.mode.trimmed()));
        s.locate_led_on = info
            .system
            .as_ref()
            .and_then(|sys| sys.ledstatus.non_empty())
            .map(|l| !l.eq_ignore_ascii_case("auto"));
        s.errors = info.error_code.0.clone();
        sleeping = info.miner.as_ref().and_then(|m| m.working.0) == Some(false);
    }
    s.derive_efficiency();
    s.status = classify(&s, sleeping);
    s
}
