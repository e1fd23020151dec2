//! The physics behind a simulated meter: a three-phase load whose active power follows a
//! set-point with a first-order lag, a power factor, voltages per phase and a grid frequency,
//! and energy counters that integrate that power exactly over (optionally accelerated) time.

use hashmesh_core::MeterSnapshot;
use std::f64::consts::PI;
use std::time::Instant;

/// What the meter measures: the load and the grid it hangs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Set-point of total active power (W); negative means exporting.
    pub power_w: f64,
    /// Share of the power on L1, L2, L3 (normalised to sum 1).
    pub phase_share: [f64; 3],
    /// Power factor magnitude, 0.05…1.
    pub power_factor: f64,
    /// Capacitive (leading) load: reactive power negative.
    pub leading: bool,
    /// Line-to-neutral voltage of each phase (V).
    pub voltage_ln_v: [f64; 3],
    /// Grid frequency (Hz).
    pub frequency_hz: f64,
    /// Time constant with which the power follows its set-point (s); 0 = at once.
    pub response_time_s: f64,
}

impl Load {
    /// A 230/400 V 50 Hz load of `power_w`, slightly unbalanced, PF 0.95 lagging.
    pub fn grid_50hz(power_w: f64) -> Self {
        Load {
            power_w,
            phase_share: [0.34, 0.33, 0.33],
            power_factor: 0.95,
            leading: false,
            voltage_ln_v: [230.4, 229.1, 231.2],
            frequency_hz: 50.0,
            response_time_s: 0.0,
        }
    }

    /// A 277/480 V 60 Hz load of `power_w`, PF 0.97 lagging.
    pub fn grid_60hz(power_w: f64) -> Self {
        Load {
            voltage_ln_v: [277.3, 276.5, 278.1],
            frequency_hz: 60.0,
            power_factor: 0.97,
            ..Load::grid_50hz(power_w)
        }
    }
}

/// The meter's state: the load's present power and the counters.
#[derive(Debug, Clone)]
pub struct Physics {
    /// The load being measured.
    pub load: Load,
    /// Present total active power (W), lagging the set-point.
    pub power_w: f64,
    /// Imported active energy (Wh).
    pub energy_import_wh: f64,
    /// Exported active energy (Wh).
    pub energy_export_wh: f64,
    /// Imported (inductive) reactive energy (varh).
    pub reactive_import_varh: f64,
    /// Simulated seconds per real second (energy counters run this much faster).
    pub time_scale: f64,
    last: Instant,
}

impl Physics {
    /// A meter at steady state on `load`, its import counter at `initial_import_kwh`.
    pub fn new(load: Load, initial_import_kwh: f64, time_scale: f64, now: Instant) -> Self {
        Physics {
            load,
            power_w: load.power_w,
            energy_import_wh: initial_import_kwh * 1000.0,
            energy_export_wh: 0.0,
            reactive_import_varh: 0.0,
            time_scale: time_scale.max(0.0),
            last: now,
        }
    }

    /// Moves the state forward to `now`: the power relaxes towards its set-point and the
    /// counters take the exact integral of that curve.
    pub fn advance(&mut self, now: Instant) {
        let dt_s = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if dt_s <= 0.0 {
            return;
        }
        let target = self.load.power_w;
        let tau = self.load.response_time_s;
        let (next, integral_ws) = if tau <= 0.0 {
            (target, target * dt_s)
        } else {
            let decay = (-dt_s / tau).exp();
            let start = self.power_w;
            (
                target + (start - target) * decay,
                target * dt_s + (start - target) * tau * (1.0 - decay),
            )
        };
        self.power_w = next;
        let energy_wh = integral_ws * self.time_scale / 3600.0;
        if energy_wh >= 0.0 {
            self.energy_import_wh += energy_wh;
        } else {
            self.energy_export_wh -= energy_wh;
        }
        let tan_phi = tan_phi(self.load.power_factor);
        if !self.load.leading {
            self.reactive_import_varh += energy_wh.abs() * tan_phi;
        }
    }

    /// What an ideal meter reads now, every field filled.
    pub fn reading(&self, time_unix_ms: i64) -> MeterSnapshot {
        let load = &self.load;
        let pf = load.power_factor.clamp(0.05, 1.0);
        let tan = tan_phi(pf);
        let sum_share: f64 = load.phase_share.iter().sum();
        let share = |i: usize| {
            if sum_share > 0.0 {
                load.phase_share[i] / sum_share
            } else {
                1.0 / 3.0
            }
        };
        let p: [f64; 3] = std::array::from_fn(|i| self.power_w * share(i));
        let sign_q = if load.leading { -1.0 } else { 1.0 };
        let q: [f64; 3] = std::array::from_fn(|i| sign_q * p[i].abs() * tan);
        let s: [f64; 3] = std::array::from_fn(|i| p[i].abs() / pf);
        let v = load.voltage_ln_v;
        let current: [f64; 3] = std::array::from_fn(|i| if v[i] > 0.0 { s[i] / v[i] } else { 0.0 });
        let signed_pf = |p: f64| if p < 0.0 { -pf } else { pf };
        // Phasors 120° apart: the neutral carries their vector sum.
        let (mut n_re, mut n_im) = (0.0, 0.0);
        for (k, amps) in current.iter().enumerate() {
            let angle = -2.0 * PI / 3.0 * k as f64;
            n_re += amps * angle.cos();
            n_im += amps * angle.sin();
        }
        let ll = |a: f64, b: f64| (a * a + b * b + a * b).sqrt();
        let p_total: f64 = p.iter().sum();
        let s_total: f64 = s.iter().sum();
        MeterSnapshot {
            time_unix_ms,
            active_power_total_w: Some(p_total),
            active_power_phase_w: p.map(Some),
            reactive_power_total_var: Some(q.iter().sum()),
            reactive_power_phase_var: q.map(Some),
            apparent_power_total_va: Some(s_total),
            apparent_power_phase_va: s.map(Some),
            energy_import_kwh: Some(self.energy_import_wh / 1000.0),
            energy_export_kwh: Some(self.energy_export_wh / 1000.0),
            reactive_energy_import_kvarh: Some(self.reactive_import_varh / 1000.0),
            voltage_ln_v: v.map(Some),
            voltage_ll_v: [
                Some(ll(v[0], v[1])),
                Some(ll(v[1], v[2])),
                Some(ll(v[2], v[0])),
            ],
            current_phase_a: current.map(Some),
            current_neutral_a: Some((n_re * n_re + n_im * n_im).sqrt()),
            power_factor_total: Some(if s_total > 0.0 {
                p_total / s_total
            } else {
                signed_pf(p_total)
            }),
            power_factor_phase: p.map(|p| Some(signed_pf(p))),
            frequency_hz: Some(load.frequency_hz),
        }
    }
}

/// tan φ of a power factor magnitude.
fn tan_phi(pf: f64) -> f64 {
    let pf = pf.clamp(0.05, 1.0);
    (1.0 - pf * pf).sqrt() / pf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn energy_integrates_power_over_scaled_time() {
        let t0 = Instant::now();
        let mut phys = Physics::new(Load::grid_50hz(3000.0), 10.0, 3600.0, t0);
        // One real second at 3600× is one hour: 3 kWh.
        phys.advance(t0 + Duration::from_secs(1));
        assert!((phys.energy_import_wh - 13_000.0).abs() < 1e-6);
        assert_eq!(phys.energy_export_wh, 0.0);
    }

    #[test]
    fn power_follows_set_point_and_energy_takes_the_exact_integral() {
        let t0 = Instant::now();
        let mut load = Load::grid_50hz(0.0);
        load.response_time_s = 1.0;
        let mut phys = Physics::new(load, 0.0, 3600.0, t0);
        phys.load.power_w = 1000.0;
        phys.advance(t0 + Duration::from_secs(1));
        let expected_power = 1000.0 * (1.0 - (-1.0f64).exp());
        assert!((phys.power_w - expected_power).abs() < 1e-9);
        // ∫ 1000 (1 − e^−t) dt over 1 s = 1000 e^−1 W·s; at 3600× that many Wh.
        assert!((phys.energy_import_wh - 1000.0 * (-1.0f64).exp()).abs() < 1e-6);
    }

    #[test]
    fn balanced_load_has_no_neutral_current_and_consistent_powers() {
        let mut load = Load::grid_50hz(6900.0);
        load.phase_share = [1.0, 1.0, 1.0];
        load.voltage_ln_v = [230.0; 3];
        let r = Physics::new(load, 0.0, 1.0, Instant::now()).reading(0);
        assert!(r.current_neutral_a.is_some_and(|n| n < 1e-9));
        let s = r.apparent_power_total_va.unwrap_or_default();
        let p = r.active_power_total_w.unwrap_or_default();
        let q = r.reactive_power_total_var.unwrap_or_default();
        assert!((s * s - p * p - q * q).abs() < 1e-3);
        assert!(r.voltage_ll_v[0].is_some_and(|v| (v - 398.37).abs() < 0.01));
    }
}
