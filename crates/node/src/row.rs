//! How a poll becomes one row of the time-series store. The store knows nothing of miners:
//! this file is where snapshots meet columns.

use crate::live::{DeviceStatus, Reading};
use hashmesh_core::{MeterSnapshot, MinerSnapshot};

/// The columns of a stored row, in order. Adding one at the end is safe; never reorder.
pub const COLUMNS: [&str; 22] = [
    "status_code",
    "online",
    "mining",
    "hashrate_ths",
    "hashrate_avg_ths",
    "expected_hashrate_ths",
    "power_w",
    "efficiency_j_per_th",
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
    v[0] = status.code();
    v[1] = if status.is_online() { 1.0 } else { 0.0 };
    v[2] = if matches!(status, DeviceStatus::Mining | DeviceStatus::Degraded) {
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
    v[3] = opt(s.hashrate_ths);
    v[4] = opt(s.hashrate_avg_ths);
    v[5] = opt(s.expected_hashrate_ths);
    v[6] = opt(s.power_w);
    v[7] = opt(s.efficiency_j_per_th);
    v[8] = max(s.boards.iter().filter_map(|b| b.chip_temp_c));
    v[9] = max(s.boards.iter().filter_map(|b| b.board_temp_c));
    v[10] = opt(s.ambient_temp_c).min(max(s.boards.iter().filter_map(|b| b.inlet_temp_c)));
    v[11] = max(s.boards.iter().filter_map(|b| b.outlet_temp_c));
    v[12] = s
        .fans_rpm
        .iter()
        .map(|&f| f as f64)
        .fold(f64::NAN, f64::min);
    v[13] = s
        .fans_rpm
        .iter()
        .map(|&f| f as f64)
        .fold(f64::NAN, f64::max);
    if !s.pools.is_empty() {
        v[14] = s.pools.iter().map(|p| p.accepted as f64).sum();
        v[15] = s.pools.iter().map(|p| p.rejected as f64).sum();
    }
    v[16] = s.hardware_errors.map_or(f64::NAN, |h| h as f64);
    v[17] = s.uptime_s.map_or(f64::NAN, |u| u as f64);
    if !s.boards.is_empty() {
        v[18] = s.boards.iter().filter(|b| b.failed).count() as f64;
    }
}

fn meter(v: &mut [f64; N], m: &MeterSnapshot) {
    v[6] = opt(m.active_power_total_w);
    v[19] = opt(m.energy_import_kwh);
    let volts: Vec<f64> = m.voltage_ln_v.iter().flatten().copied().collect();
    if !volts.is_empty() {
        v[20] = volts.iter().sum::<f64>() / volts.len() as f64;
    }
    v[21] = opt(m.power_factor_total);
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
        assert!((c("efficiency_j_per_th") - 29.545).abs() < 0.01);
    }

    #[test]
    fn offline_row_has_only_status() {
        let v = values(DeviceStatus::Offline, None);
        assert_eq!(v[0], 6.0);
        assert_eq!(v[1], 0.0);
        assert_eq!(v[2], 0.0);
        assert!(v[3..].iter().all(|x| x.is_nan()));
    }
}
