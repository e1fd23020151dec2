//! What one poll of a power meter saw: instantaneous three-phase quantities and the meter's own
//! energy counters. Every field is optional because meters differ in what they offer (an ABB B23
//! has no per-phase power factor on some units, a Satec basic block no L-L voltages in wye).
//!
//! Sign conventions: active power and power factor are positive when importing (consuming) and
//! negative when exporting; reactive power is positive when inductive (lagging).

use serde::{Deserialize, Serialize};

/// One reading of a three-phase power meter, normalised to W, var, VA, V, A, Hz and kWh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeterSnapshot {
    /// When the reading was taken, unix milliseconds.
    pub time_unix_ms: i64,
    /// Active power, sum of all phases (W).
    pub active_power_total_w: Option<f64>,
    /// Active power per phase L1, L2, L3 (W).
    pub active_power_phase_w: [Option<f64>; 3],
    /// Reactive power, sum of all phases (var).
    pub reactive_power_total_var: Option<f64>,
    /// Reactive power per phase L1, L2, L3 (var).
    pub reactive_power_phase_var: [Option<f64>; 3],
    /// Apparent power, sum of all phases (VA).
    pub apparent_power_total_va: Option<f64>,
    /// Apparent power per phase L1, L2, L3 (VA).
    pub apparent_power_phase_va: [Option<f64>; 3],
    /// Active energy imported (delivered to the load), the meter's counter (kWh).
    pub energy_import_kwh: Option<f64>,
    /// Active energy exported (received from the load), the meter's counter (kWh).
    pub energy_export_kwh: Option<f64>,
    /// Reactive energy imported, the meter's counter (kvarh).
    pub reactive_energy_import_kvarh: Option<f64>,
    /// Line-to-neutral voltages L1-N, L2-N, L3-N (V).
    pub voltage_ln_v: [Option<f64>; 3],
    /// Line-to-line voltages L1-L2, L2-L3, L3-L1 (V).
    pub voltage_ll_v: [Option<f64>; 3],
    /// Phase currents L1, L2, L3 (A).
    pub current_phase_a: [Option<f64>; 3],
    /// Neutral current (A).
    pub current_neutral_a: Option<f64>,
    /// Total power factor, −1…+1, signed like active power.
    pub power_factor_total: Option<f64>,
    /// Power factor per phase L1, L2, L3, −1…+1, signed like active power.
    pub power_factor_phase: [Option<f64>; 3],
    /// Grid frequency (Hz).
    pub frequency_hz: Option<f64>,
}

/// Who a power meter is, as read from its identification registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeterIdentity {
    /// Manufacturer, e.g. `ABB`, `Schneider Electric`, `Satec`.
    pub manufacturer: String,
    /// Model or product name as the meter reports it (or the configured model when it has none).
    pub model: String,
    /// Serial number, when the meter exposes one.
    pub serial: Option<String>,
    /// Firmware version, when the meter exposes one.
    pub firmware: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_through_json_with_missing_fields() {
        let snap = MeterSnapshot {
            time_unix_ms: 5,
            active_power_total_w: Some(3000.0),
            voltage_ln_v: [Some(230.1), None, Some(229.9)],
            ..MeterSnapshot::default()
        };
        let json = serde_json::to_string(&snap).unwrap();
        let back: MeterSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        assert!(json.contains("\"voltage_ln_v\":[230.1,null,229.9]"));
    }
}
