//! How a poll becomes one row of the time-series store. The store knows nothing of miners:
//! this file is where snapshots meet columns.

use crate::live::{DeviceStatus, Reading};
use hashmesh_core::{MeterSnapshot, MinerSnapshot};

/// Position of each stored column; [`COLUMNS`] holds their names in the same order.
mod col {
    pub const STATUS_CODE: usize = 0;
    pub const ONLINE: usize = 1;
    pub const MINING: usize = 2;
    pub const HASHRATE: usize = 3;
    pub const HASHRATE_AVG: usize = 4;
    pub const EXPECTED: usize = 5;
    pub const POWER: usize = 6;
    pub const CHIP_TEMP: usize = 7;
    pub const BOARD_TEMP: usize = 8;
    pub const INLET_TEMP: usize = 9;
    pub const OUTLET_TEMP: usize = 10;
    pub const FAN_MIN: usize = 11;
    pub const FAN_MAX: usize = 12;
    pub const ACCEPTED: usize = 13;
    pub const REJECTED: usize = 14;
    pub const HW_ERRORS: usize = 15;
    pub const UPTIME: usize = 16;
    pub const BOARDS_FAILED: usize = 17;
    pub const ENERGY_IMPORT: usize = 18;
    pub const VOLTAGE: usize = 19;
    pub const POWER_FACTOR: usize = 20;
}

/// The columns of a stored row, in order. Adding one at the end is safe; never reorder.
/// Efficiency is not stored: it is power over hashrate, computed when read (a stored quotient
/// of two noisy values compresses badly, about 6 bytes a sample).
pub const COLUMNS: [&str; 21] = [
    "status_code",
    "online",
    "mining",
    "hashrate_ths",
    "hashrate_avg_ths",
    "expected_hashrate_ths",
    "power_w",
    "chip_temp_max_c",
    "board_temp_max_c",
    "inlet_temp_c",
    "outlet_temp_max_c",
    "fan_rpm_min",
    "fan_rpm_max",
    "accepted_shares",
    "rejected_shares",
    "hardware_errors",
    "uptime_s",
    "boards_failed",
    "energy_import_kwh",
    "voltage_ln_avg_v",
    "power_factor",
];

/// Index of a column by name.
pub fn column(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| *c == name)
}

/// Number of columns.
pub const N: usize = COLUMNS.len();

/// The row for one poll: a reading when it succeeded, else just the status.
pub fn values(status: DeviceStatus, reading: Option<&Reading>) -> [f64; N] {
    let mut v = [f64::NAN; N];
    v[col::STATUS_CODE] = status.code();
    v[col::ONLINE] = if status.is_online() { 1.0 } else { 0.0 };
    v[col::MINING] = if matches!(status, DeviceStatus::Mining | DeviceStatus::Degraded) {
        1.0
    } else {
        0.0
    };
    match reading {
        Some(Reading::Miner(s)) => miner(&mut v, s),
        Some(Reading::Meter(m)) => meter(&mut v, m),
        None => {}
    }
    v
}

fn opt(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

fn max(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(f64::NAN, f64::max)
}

fn miner(v: &mut [f64; N], s: &MinerSnapshot) {
    v[col::HASHRATE] = opt(s.hashrate_ths);
    v[col::HASHRATE_AVG] = opt(s.hashrate_avg_ths);
    v[col::EXPECTED] = opt(s.expected_hashrate_ths);
    v[col::POWER] = opt(s.power_w);
    v[col::CHIP_TEMP] = max(s.boards.iter().filter_map(|b| b.chip_temp_c));
    v[col::BOARD_TEMP] = max(s.boards.iter().filter_map(|b| b.board_temp_c));
    v[col::INLET_TEMP] =
        opt(s.ambient_temp_c).min(max(s.boards.iter().filter_map(|b| b.inlet_temp_c)));
    v[col::OUTLET_TEMP] = max(s.boards.iter().filter_map(|b| b.outlet_temp_c));
    let fans = || s.fans_rpm.iter().map(|&f| f as f64);
    v[col::FAN_MIN] = fans().fold(f64::NAN, f64::min);
    v[col::FAN_MAX] = fans().fold(f64::NAN, f64::max);
    if !s.pools.is_empty() {
        v[col::ACCEPTED] = s.pools.iter().map(|p| p.accepted as f64).sum();
        v[col::REJECTED] = s.pools.iter().map(|p| p.rejected as f64).sum();
    }
    v[col::HW_ERRORS] = s.hardware_errors.map_or(f64::NAN, |h| h as f64);
    v[col::UPTIME] = s.uptime_s.map_or(f64::NAN, |u| u as f64);
    if !s.boards.is_empty() {
        v[col::BOARDS_FAILED] = s.boards.iter().filter(|b| b.failed).count() as f64;
    }
}

fn meter(v: &mut [f64; N], m: &MeterSnapshot) {
    v[col::POWER] = opt(m.active_power_total_w);
    v[col::ENERGY_IMPORT] = opt(m.energy_import_kwh);
    let volts: Vec<f64> = m.voltage_ln_v.iter().flatten().copied().collect();
    if !volts.is_empty() {
        v[col::VOLTAGE] = volts.iter().sum::<f64>() / volts.len() as f64;
    }
    v[col::POWER_FACTOR] = opt(m.power_factor_total);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_core::{BoardSnapshot, MinerStatus, PoolSnapshot, PoolStatus};
    use std::sync::Arc;

    #[test]
    fn miner_row_takes_the_hottest_board_and_sums_pools() {
        let mut s = MinerSnapshot::empty(1, MinerStatus::Mining);
        s.hashrate_ths = Some(110.0);
        s.power_w = Some(3250.0);
        s.derive_efficiency();
        s.fans_rpm = vec![5400, 5520];
        for (i, t) in [71.0, 76.5].into_iter().enumerate() {
            s.boards.push(BoardSnapshot {
                index: i as u32,
                chip_temp_c: Some(t),
                failed: i == 1,
                ..Default::default()
            });
        }
        for a in [10, 32] {
            s.pools.push(PoolSnapshot {
                index: 0,
                url: "stratum+tcp://p".into(),
                user: "u".into(),
                status: PoolStatus::Alive,
                accepted: a,
                rejected: 1,
                stale: 0,
                active: true,
            });
        }
        let v = values(DeviceStatus::Mining, Some(&Reading::Miner(Arc::new(s))));
        let c = |n: &str| v[column(n).unwrap()];
        assert_eq!(c("status_code"), 1.0);
        assert_eq!(c("online"), 1.0);
        assert_eq!(c("mining"), 1.0);
        assert_eq!(c("hashrate_ths"), 110.0);
        assert_eq!(c("chip_temp_max_c"), 76.5);
        assert_eq!(c("fan_rpm_min"), 5400.0);
        assert_eq!(c("accepted_shares"), 42.0);
        assert_eq!(c("boards_failed"), 1.0);
        assert!(c("energy_import_kwh").is_nan());
        assert_eq!(column("efficiency_j_per_th"), None);
    }

    #[test]
    fn offline_row_has_only_status() {
        let v = values(DeviceStatus::Offline, None);
        assert_eq!(v[0], 6.0);
        assert_eq!(v[1], 0.0);
        assert_eq!(v[2], 0.0);
        assert!(v[col::HASHRATE..].iter().all(|x| x.is_nan()));
    }
}
