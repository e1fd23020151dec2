//! What one poll of a miner saw, normalised across vendors: hashrate in TH/s, power in W,
//! temperatures in °C, frequencies in MHz, voltages in V.

use crate::command::PowerMode;
use serde::{Deserialize, Serialize};

/// The state a miner is in, as an operator would describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MinerStatus {
    /// Hashing normally.
    Mining,
    /// Deliberately idle (sleep, soft-off, curtailed, paused).
    Sleeping,
    /// Hashing, but with a problem (a dead board, a failed fan, low hashrate, no active pool).
    Degraded,
    /// Answering, but not hashing because of a fault.
    Error,
    /// Not answering.
    Offline,
}

impl MinerStatus {
    /// Lower-case name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MinerStatus::Mining => "mining",
            MinerStatus::Sleeping => "sleeping",
            MinerStatus::Degraded => "degraded",
            MinerStatus::Error => "error",
            MinerStatus::Offline => "offline",
        }
    }
}

/// Where a power figure came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PowerSource {
    /// Measured by the device (a PSU or wall-power reading).
    Measured,
    /// Estimated by the firmware from its own model.
    FirmwareEstimated,
    /// Taken from the model's nameplate, scaled by the share of nominal hashrate.
    Nameplate,
}

/// One hash board (chain) of a miner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardSnapshot {
    /// Board index, 0-based, in the order the firmware lists populated boards.
    pub index: u32,
    /// Current hashrate of the board.
    pub hashrate_ths: Option<f64>,
    /// Nominal hashrate of the board.
    pub expected_hashrate_ths: Option<f64>,
    /// Hottest chip temperature on the board.
    pub chip_temp_c: Option<f64>,
    /// Board (PCB) temperature.
    pub board_temp_c: Option<f64>,
    /// Inlet-side temperature.
    pub inlet_temp_c: Option<f64>,
    /// Outlet-side temperature.
    pub outlet_temp_c: Option<f64>,
    /// Chips detected and working.
    pub chips_working: Option<u32>,
    /// Chips the board should have.
    pub chips_expected: Option<u32>,
    /// Average chip frequency.
    pub frequency_mhz: Option<f64>,
    /// Board voltage.
    pub voltage_v: Option<f64>,
    /// Hardware errors counted on this board.
    pub hardware_errors: Option<u64>,
    /// The board is detected but not hashing.
    pub failed: bool,
}

/// Pool connection state as the miner reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PoolStatus {
    /// Connected and usable.
    Alive,
    /// Configured but unreachable or failing.
    Dead,
    /// Disabled by the operator.
    Disabled,
    /// The firmware does not say.
    Unknown,
}

/// One configured pool and its share counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolSnapshot {
    /// Pool position in the miner's list (0 = first priority).
    pub index: u32,
    /// Stratum URL (one shared copy per distinct URL: see [`crate::intern`]).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub url: std::sync::Arc<str>,
    /// Worker name.
    pub user: String,
    /// Connection state.
    pub status: PoolStatus,
    /// Accepted shares.
    pub accepted: u64,
    /// Rejected shares.
    pub rejected: u64,
    /// Stale shares.
    pub stale: u64,
    /// This pool is the one currently receiving work.
    pub active: bool,
}

/// A vendor error code with its message, as the firmware reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VendorError {
    /// The firmware's own code (e.g. `J0:8`, `ECHU 1`, `530`).
    pub code: String,
    /// What the code means, in words.
    pub message: String,
}

/// Everything one poll of a miner saw, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinerSnapshot {
    /// When the poll completed, unix milliseconds.
    pub time_unix_ms: i64,
    /// Overall state.
    pub status: MinerStatus,
    /// Current hashrate (the firmware's shortest window, usually 5 s).
    pub hashrate_ths: Option<f64>,
    /// Average hashrate since the mining process started (or the firmware's longest window).
    pub hashrate_avg_ths: Option<f64>,
    /// Nominal hashrate for the current configuration.
    pub expected_hashrate_ths: Option<f64>,
    /// Hash boards, in firmware order.
    pub boards: Vec<BoardSnapshot>,
    /// Fan speeds, one per fan.
    pub fans_rpm: Vec<u32>,
    /// Power draw.
    pub power_w: Option<f64>,
    /// Where `power_w` came from.
    pub power_source: Option<PowerSource>,
    /// Power limit or target the firmware is tuning to, if it has one.
    pub power_target_w: Option<f64>,
    /// Power mode, when the firmware has discrete modes.
    pub power_mode: Option<PowerMode>,
    /// Energy per unit of work: `power_w / hashrate_ths`.
    pub efficiency_j_per_th: Option<f64>,
    /// Ambient or inlet air temperature reported by the controller.
    pub ambient_temp_c: Option<f64>,
    /// Configured pools.
    pub pools: Vec<PoolSnapshot>,
    /// Seconds since the mining process started.
    pub uptime_s: Option<u64>,
    /// Hardware errors since start, all boards.
    pub hardware_errors: Option<u64>,
    /// Locate LED state, when the firmware reports it.
    pub locate_led_on: Option<bool>,
    /// Vendor error codes active now.
    pub errors: Vec<VendorError>,
    /// The reply was truncated or repaired; some fields may be missing.
    pub partial: bool,
}

impl MinerSnapshot {
    /// An empty snapshot taken at `time_unix_ms` with the given status.
    pub fn empty(time_unix_ms: i64, status: MinerStatus) -> Self {
        MinerSnapshot {
            time_unix_ms,
            status,
            hashrate_ths: None,
            hashrate_avg_ths: None,
            expected_hashrate_ths: None,
            boards: Vec::new(),
            fans_rpm: Vec::new(),
            power_w: None,
            power_source: None,
            power_target_w: None,
            power_mode: None,
            efficiency_j_per_th: None,
            ambient_temp_c: None,
            pools: Vec::new(),
            uptime_s: None,
            hardware_errors: None,
            locate_led_on: None,
            errors: Vec::new(),
            partial: false,
        }
    }

    /// The pool currently receiving work, if any.
    pub fn active_pool(&self) -> Option<&PoolSnapshot> {
        self.pools.iter().find(|p| p.active)
    }

    /// Hottest chip temperature over all boards.
    pub fn max_chip_temp_c(&self) -> Option<f64> {
        self.boards
            .iter()
            .filter_map(|b| b.chip_temp_c)
            .fold(None, |m, t| Some(m.map_or(t, |m: f64| m.max(t))))
    }

    /// Fills `efficiency_j_per_th` from power and hashrate when both are meaningful.
    pub fn derive_efficiency(&mut self) {
        self.efficiency_j_per_th = match (self.power_w, self.hashrate_ths) {
            (Some(p), Some(h)) if h > 0.01 && p > 0.0 => Some(p / h),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_needs_hashrate() {
        let mut s = MinerSnapshot::empty(0, MinerStatus::Mining);
        s.power_w = Some(3250.0);
        s.hashrate_ths = Some(110.0);
        s.derive_efficiency();
        let e = s.efficiency_j_per_th.unwrap_or_default();
        assert!((e - 29.545).abs() < 0.01, "{e}");
        s.hashrate_ths = Some(0.0);
        s.derive_efficiency();
        assert_eq!(s.efficiency_j_per_th, None);
    }

    #[test]
    fn max_chip_temp_over_boards() {
        let mut s = MinerSnapshot::empty(0, MinerStatus::Mining);
        for (i, t) in [Some(70.0), None, Some(81.5)].into_iter().enumerate() {
            s.boards.push(BoardSnapshot {
                index: i as u32,
                chip_temp_c: t,
                ..Default::default()
            });
        }
        assert_eq!(s.max_chip_temp_c(), Some(81.5));
    }
}
