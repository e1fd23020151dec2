//! `GET /api/system/info` of AxeOS (PROTOCOLS.md §6) to a snapshot and an identity. Pure
//! functions over the raw body, so tests and fuzz targets call them directly.
//!
//! Units at the wire: hashrates GH/s, `voltage` (input) mV, `current` mA, `coreVoltage*` mV,
//! `power` W (measured by the board's power monitor), temperatures °C, frequency MHz. Firmware
//! 2.0–2.4 lacks many fields, so every field is optional and lenient about its JSON type.

use crate::cgminer::parse::{classify, temp_c};
use crate::cgminer::reply::{Flag, Num, Text};
use crate::error::DriverError;
use hashmesh_core::{
    BoardSnapshot, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, MinerSnapshot, MinerStatus,
    Model, PoolSnapshot, PoolStatus, PowerSource, Vendor,
};
use serde::Deserialize;

/// The fields of `/api/system/info` the driver reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    /// Current hashrate, GH/s.
    #[serde(rename = "hashRate")]
    pub hash_rate_ghs: Num,
    /// 1 h average hashrate, GH/s (newer firmware).
    #[serde(rename = "hashRate_1h")]
    pub hash_rate_1h_ghs: Num,
    /// 10 min average hashrate, GH/s (newer firmware).
    #[serde(rename = "hashRate_10m")]
    pub hash_rate_10m_ghs: Num,
    /// Hashrate the ASICs should make at this frequency, GH/s.
    #[serde(rename = "expectedHashrate")]
    pub expected_hashrate_ghs: Num,
    /// Measured power, W.
    pub power: Num,
    /// Input voltage, mV.
    #[serde(rename = "voltage")]
    pub input_voltage_mv: Num,
    /// Input current, mA.
    #[serde(rename = "current")]
    pub input_current_ma: Num,
    /// Average chip temperature, °C.
    #[serde(rename = "temp")]
    pub chip_temp_c: Num,
    /// Second chip sensor, °C (boards with two ASICs).
    #[serde(rename = "temp2")]
    pub chip_temp2_c: Num,
    /// Voltage regulator temperature, °C.
    #[serde(rename = "vrTemp")]
    pub vr_temp_c: Num,
    /// Core voltage set, mV.
    #[serde(rename = "coreVoltage")]
    pub core_voltage_mv: Num,
    /// Core voltage measured, mV.
    #[serde(rename = "coreVoltageActual")]
    pub core_voltage_actual_mv: Num,
    /// ASIC frequency set, MHz.
    #[serde(rename = "frequency")]
    pub frequency_mhz: Num,
    /// ASIC frequency measured, MHz (newer firmware).
    #[serde(rename = "actualFrequency")]
    pub actual_frequency_mhz: Num,
    /// Fan speed, RPM.
    #[serde(rename = "fanrpm")]
    pub fan_rpm: Num,
    /// Second fan, RPM (boards with two fans).
    #[serde(rename = "fan2rpm")]
    pub fan2_rpm: Num,
    /// ASIC chip model (`BM1366`, …).
    #[serde(rename = "ASICModel")]
    pub asic_model: Text,
    /// ASICs on the board.
    #[serde(rename = "asicCount")]
    pub asic_count: Num,
    /// Accepted shares since boot.
    #[serde(rename = "sharesAccepted")]
    pub shares_accepted: Num,
    /// Rejected shares since boot.
    #[serde(rename = "sharesRejected")]
    pub shares_rejected: Num,
    /// Primary pool host (no scheme on most firmware).
    #[serde(rename = "stratumURL")]
    pub stratum_url: Text,
    /// Primary pool port.
    #[serde(rename = "stratumPort")]
    pub stratum_port: Num,
    /// Primary pool worker.
    #[serde(rename = "stratumUser")]
    pub stratum_user: Text,
    /// Fallback pool host.
    #[serde(rename = "fallbackStratumURL")]
    pub fallback_url: Text,
    /// Fallback pool port.
    #[serde(rename = "fallbackStratumPort")]
    pub fallback_port: Num,
    /// Fallback pool worker.
    #[serde(rename = "fallbackStratumUser")]
    pub fallback_user: Text,
    /// Hashing on the fallback pool now.
    #[serde(rename = "isUsingFallbackStratum")]
    pub using_fallback: Flag,
    /// Seconds since boot.
    #[serde(rename = "uptimeSeconds")]
    pub uptime_s: Num,
    /// Host name.
    pub hostname: Text,
    /// MAC address.
    #[serde(rename = "macAddr")]
    pub mac_addr: Text,
    /// Firmware version.
    pub version: Text,
    /// Web UI version (newer firmware).
    #[serde(rename = "axeOSVersion")]
    pub axeos_version: Text,
    /// Board revision (`601`, `204`, …).
    #[serde(rename = "boardVersion")]
    pub board_version: Text,
    /// Device model on derived firmwares (NerdQAxe, LuckyMiner …).
    #[serde(rename = "deviceModel")]
    pub device_model: Text,
    /// Mining paused by the operator (newer firmware).
    #[serde(rename = "miningPaused")]
    pub mining_paused: Flag,
    /// Overheat protection tripped (hashing stopped).
    pub overheat_mode: Flag,
    /// Power fault reported by the regulator (a number or a text on some builds).
    pub power_fault: Text,
}

/// Decodes the info body. A body that is not a JSON object is [`DriverError::Malformed`].
pub fn decode_info(raw: &[u8]) -> Result<SystemInfo, DriverError> {
    let trimmed = raw.trim_ascii();
    if !trimmed.starts_with(b"{") {
        return Err(DriverError::Malformed(format!(
            "AxeOS info is not a JSON object: {}",
            crate::cgminer::reply::excerpt(raw)
        )));
    }
    serde_json::from_slice(trimmed).map_err(|e| DriverError::Malformed(format!("AxeOS info: {e}")))
}

fn ghs_to_ths(v: Num) -> Option<f64> {
    v.get().filter(|v| *v >= 0.0).map(|v| v / 1000.0)
}

/// `host:port` as a stratum URL; AxeOS stores the host without a scheme.
pub fn pool_url(host: &str, port: Option<u32>) -> String {
    let host = host.trim();
    let with_scheme = if host.contains("://") {
        host.to_owned()
    } else {
        format!("stratum+tcp://{host}")
    };
    match port {
        Some(p) if p > 0 => format!("{with_scheme}:{p}"),
        _ => with_scheme,
    }
}

/// The snapshot of one info body.
pub fn bitaxe_snapshot(raw: &[u8], time_unix_ms: i64) -> Result<MinerSnapshot, DriverError> {
    let i = decode_info(raw)?;
    if i.hash_rate_ghs.get().is_none() && i.asic_model.non_empty().is_none() {
        return Err(DriverError::Malformed(
            "AxeOS info has neither hashRate nor ASICModel".into(),
        ));
    }
    let mut s = MinerSnapshot::empty(time_unix_ms, MinerStatus::Mining);
    s.hashrate_ths = ghs_to_ths(i.hash_rate_ghs);
    s.hashrate_avg_ths = ghs_to_ths(i.hash_rate_1h_ghs).or(ghs_to_ths(i.hash_rate_10m_ghs));
    s.expected_hashrate_ths = ghs_to_ths(i.expected_hashrate_ghs).filter(|e| *e > 0.0);
    let chip = match (temp_c(i.chip_temp_c.get()), temp_c(i.chip_temp2_c.get())) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mv_to_v = |n: Num| n.get().filter(|v| *v > 0.0).map(|v| v / 1000.0);
    s.boards.push(BoardSnapshot {
        index: 0,
        hashrate_ths: s.hashrate_ths,
        expected_hashrate_ths: s.expected_hashrate_ths,
        chip_temp_c: chip,
        board_temp_c: temp_c(i.vr_temp_c.get()),
        inlet_temp_c: None,
        outlet_temp_c: None,
        chips_working: None,
        chips_expected: i.asic_count.as_u32().filter(|n| *n > 0),
        frequency_mhz: i
            .actual_frequency_mhz
            .get()
            .or(i.frequency_mhz.get())
            .filter(|f| *f > 0.0),
        voltage_v: mv_to_v(i.core_voltage_actual_mv).or(mv_to_v(i.core_voltage_mv)),
        hardware_errors: None,
        failed: false,
    });
    s.fans_rpm = [i.fan_rpm, i.fan2_rpm]
        .iter()
        .enumerate()
        .filter_map(|(n, v)| match v.as_u32() {
            // A second fan of 0 RPM is usually no second fan at all.
            Some(0) if n > 0 => None,
            r => r,
        })
        .collect();
    if let Some(w) = i.power.get().filter(|w| *w > 0.0) {
        s.power_w = Some(w);
        s.power_source = Some(PowerSource::Measured);
    }
    let on_fallback = i.using_fallback.0 == Some(true);
    if let Some(host) = i.stratum_url.non_empty() {
        s.pools.push(PoolSnapshot {
            index: 0,
            url: hashmesh_core::intern(&pool_url(host, i.stratum_port.as_u32())),
            user: i.stratum_user.trimmed().to_owned(),
            // AxeOS does not report pool health; shares flowing to a pool show it alive.
            status: PoolStatus::Unknown,
            accepted: i.shares_accepted.as_u64().unwrap_or(0),
            rejected: i.shares_rejected.as_u64().unwrap_or(0),
            stale: 0,
            active: !on_fallback,
        });
    }
    if let Some(host) = i.fallback_url.non_empty() {
        s.pools.push(PoolSnapshot {
            index: s.pools.len() as u32,
            url: hashmesh_core::intern(&pool_url(host, i.fallback_port.as_u32())),
            user: i.fallback_user.trimmed().to_owned(),
            status: PoolStatus::Unknown,
            accepted: 0,
            rejected: 0,
            stale: 0,
            active: on_fallback,
        });
        if on_fallback && let Some(p) = s.pools.get_mut(1) {
            // The counters are per session, and the session is with the fallback now.
            p.accepted = i.shares_accepted.as_u64().unwrap_or(0);
            p.rejected = i.shares_rejected.as_u64().unwrap_or(0);
            if let Some(first) = s.pools.first_mut() {
                first.accepted = 0;
                first.rejected = 0;
            }
        }
    }
    // AxeOS reports no pool health, but it can only hash on work from a connected pool.
    let hashing = s.hashrate_ths.is_some_and(|h| h > 0.0);
    if hashing && let Some(p) = s.pools.iter_mut().find(|p| p.active) {
        p.status = PoolStatus::Alive;
    }
    s.uptime_s = i.uptime_s.as_u64();
    if i.overheat_mode.0 == Some(true) {
        s.errors.push(hashmesh_core::VendorError {
            code: "overheat_mode".into(),
            message: "overheat protection tripped: ASIC stopped until restarted".into(),
        });
    }
    if let Some(f) = i
        .power_fault
        .non_empty()
        .filter(|f| *f != "0" && *f != "false")
    {
        s.errors.push(hashmesh_core::VendorError {
            code: "power_fault".into(),
            message: format!("voltage regulator fault: {f}"),
        });
    }
    s.derive_efficiency();
    let sleeping = i.mining_paused.0 == Some(true);
    s.status = classify(&s, sleeping);
    Ok(s)
}

/// The make and model a body names: NerdAxe/NerdQAxe, ForgeAxe and LuckyMiner run derived
/// firmware; everything else with an `ASICModel` is a Bitaxe of that chip.
pub fn model_name(i: &SystemInfo, raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let chip = i.asic_model.trimmed();
    if let Some(m) = i.device_model.non_empty() {
        return m.to_owned();
    }
    if text.contains("Nerd") {
        return format!("NerdAxe {chip}").trim().to_owned();
    }
    if text.contains("ForgeOS") {
        return format!("ForgeAxe {chip}").trim().to_owned();
    }
    let family = match chip.to_ascii_uppercase().as_str() {
        "BM1366" => "Bitaxe Ultra",
        "BM1368" => "Bitaxe Supra",
        "BM1370" => "Bitaxe Gamma",
        "BM1397" => "Bitaxe Max",
        _ => "Bitaxe",
    };
    family.to_owned()
}

/// The identity of one info body: model from the ASIC (or `deviceModel`), firmware version,
/// MAC and host name.
pub fn bitaxe_identity(raw: &[u8]) -> Result<DeviceIdentity, DriverError> {
    let i = decode_info(raw)?;
    if i.asic_model.non_empty().is_none() {
        return Err(DriverError::Malformed(
            "AxeOS info names no ASICModel".into(),
        ));
    }
    let model = model_name(&i, raw);
    Ok(DeviceIdentity {
        kind: DeviceKind::Miner,
        vendor: Vendor::Bitaxe,
        partially_supported: !model.starts_with("Bitaxe ") && !model.starts_with("NerdAxe"),
        model: Model(model),
        firmware: Firmware {
            kind: FirmwareKind::AxeOs,
            version: i.version.trimmed().to_owned(),
        },
        mac: i.mac_addr.non_empty().map(str::to_owned),
        serial: None,
        hostname: i.hostname.non_empty().map(str::to_owned),
    })
}
