//! The physical model behind every simulated device.
//!
//! * Hashrate = working chips × frequency × a per-model constant (TH/s per chip·MHz).
//! * Power = idle overhead + Σ chips × frequency × voltage² × a per-model constant, so a lower
//!   clock at a lower voltage saves more power than hashrate (that is what low-power modes are).
//! * Chip temperatures follow power, inlet air and airflow with a first-order lag; the fans
//!   follow temperature with a controller that aims at the model's target chip temperature.
//! * Reboots and restarts take the device away for a while and reset its uptime.
//!
//! State is advanced lazily, from the time elapsed since the last request, in whole seconds: no
//! timer runs per device, so 100,000 devices cost nothing while nobody asks. Two reads within
//! the same wall-clock second see identical numbers, which is what lets a test compare a
//! driver's snapshot with [`crate::RunningDevice::truth`].

use crate::family::Family;
use crate::faults::{Fault, FaultSet};
use crate::nameplate::Nameplate;
use hashmesh_core::{MinerStatus, PowerMode};
use std::time::Duration;

/// How fast things happen on a simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A reboot: the device refuses connections this long, then comes back with uptime 0.
    pub reboot: Duration,
    /// A restart of the mining process: the RPC is gone this long.
    pub restart: Duration,
    /// Time constant of chip temperatures.
    pub thermal_tau: Duration,
    /// Time constant of the fan controller.
    pub fan_tau: Duration,
    /// Shortest delay of a `slow` device.
    pub slow_reply_min: Duration,
    /// Longest delay of a `slow` device.
    pub slow_reply_max: Duration,
    /// A `hang` device drops the connection after this long at the latest.
    pub hang_max: Duration,
    /// A LuxOS session ends after this long without use.
    pub session_idle: Duration,
}

impl Timing {
    /// Figures like real hardware: a reboot takes 75 s, a mining restart 10 s.
    pub fn realistic() -> Self {
        Timing {
            reboot: Duration::from_secs(75),
            restart: Duration::from_secs(10),
            thermal_tau: Duration::from_secs(90),
            fan_tau: Duration::from_secs(20),
            slow_reply_min: Duration::from_secs(2),
            slow_reply_max: Duration::from_secs(4),
            hang_max: Duration::from_secs(600),
            session_idle: Duration::from_secs(300),
        }
    }

    /// For tests: a reboot takes about 1 s, temperatures settle within seconds.
    pub fn fast() -> Self {
        Timing {
            reboot: Duration::from_millis(1000),
            restart: Duration::from_millis(500),
            thermal_tau: Duration::from_secs(2),
            fan_tau: Duration::from_secs(1),
            slow_reply_min: Duration::from_millis(1500),
            slow_reply_max: Duration::from_millis(2500),
            hang_max: Duration::from_secs(60),
            session_idle: Duration::from_secs(300),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing::realistic()
    }
}

/// Deterministic noise: a well-mixed 64-bit hash of a seed and two inputs (splitmix64).
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic noise in `[-1, 1)`.
pub fn noise(seed: u64, a: u64, b: u64) -> f64 {
    (mix(seed, a, b) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Deterministic noise in `[0, 1)`.
pub fn unit(seed: u64, a: u64, b: u64) -> f64 {
    (mix(seed, a, b) >> 11) as f64 / (1u64 << 53) as f64
}

const MAX_BOARDS: usize = 4;
const DIFF1_HASHES: f64 = 4_294_967_296.0;
// Airflow at this duty with every fan working keeps the chips at the target at 25 °C inlet.
const NOMINAL_DUTY: f64 = 0.75;
const MIN_DUTY: f64 = 0.3;
const NOMINAL_AMBIENT_C: f64 = 25.0;

/// One configured pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Stratum URL.
    pub url: String,
    /// Worker name.
    pub user: String,
    /// Worker password.
    pub password: String,
    /// Priority, 0 = first.
    pub priority: u32,
    /// Disabled pools get no work.
    pub enabled: bool,
    /// Difficulty-1 shares of work sent to this pool since the mining process started.
    pub diff1_work: f64,
    /// When this pool last got a share, unix seconds (0 = never).
    pub last_share_s: u64,
}

impl Pool {
    /// A pool with no shares yet.
    pub fn new(url: &str, user: &str, password: &str, priority: u32) -> Self {
        Pool {
            url: url.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            priority,
            enabled: true,
            diff1_work: 0.0,
            last_share_s: 0,
        }
    }

    /// Whether the pool answers: any URL naming a `dead`, `down` or `invalid` host does not,
    /// which is how tests make a pool fail.
    pub fn alive(&self) -> bool {
        let u = self.url.to_ascii_lowercase();
        !self.url.trim().is_empty()
            && !u.contains("dead")
            && !u.contains("down.")
            && !u.contains("invalid")
    }

    /// Shares accepted, rejected and stale, from the work sent at `difficulty`.
    pub fn shares(&self, difficulty: f64) -> (u64, u64, u64) {
        let shares = self.diff1_work / difficulty;
        (
            (shares * 0.998) as u64,
            (shares * 0.0015) as u64,
            (shares * 0.0005) as u64,
        )
    }
}

/// A control that takes effect at a given time (Avalon `softoff`/`softon` carry a timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// `true` = go to sleep, `false` = wake.
    pub sleep: bool,
}

/// A LuxOS API session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Session id as handed out by `logon`.
    pub id: u32,
    /// Last use, unix milliseconds.
    pub last_used_ms: u64,
}

/// Everything that changes on one device. Kept compact: fixed arrays for boards, pools on
/// the heap only because operators change them.
#[derive(Debug, Clone)]
pub struct DeviceState {
    /// The model has been advanced up to here, unix ms (whole seconds).
    pub model_ms: u64,
    /// The mining process started here (uptime counts from it), unix ms.
    pub process_start_ms: u64,
    /// While non-zero the device is down (rebooting) until this time, unix ms.
    pub down_until_ms: u64,
    /// Hottest chip on each board.
    pub chip_temp_c: [f64; MAX_BOARDS],
    /// Fan duty, 0..1.
    pub fan_duty: f64,
    /// A fixed fan duty in percent set by the operator, instead of the controller.
    pub fan_manual_pct: Option<u8>,
    /// Hashes done since the mining process started.
    pub hashes: f64,
    /// Discrete power mode.
    pub mode: PowerMode,
    /// Deliberately idle (sleep, soft-off, curtail, pause).
    pub sleeping: bool,
    /// A sleep or wake that takes effect later.
    pub scheduled: Option<Scheduled>,
    /// Locate LED on.
    pub led: bool,
    /// Watt target the tuner aims at (Braiins); `None` = the nominal power.
    pub power_target_w: Option<u32>,
    /// LuxOS profile step: 0 = `default`, each step ±5 % clock.
    pub profile_step: i8,
    /// Avalon work level: each level 5 % less clock.
    pub work_level: u8,
    /// Configured pools, in pool-number order.
    pub pools: Vec<Pool>,
    /// The LuxOS session, if one is open.
    pub session: Option<Session>,
    /// Sessions handed out so far (makes ids unique).
    pub sessions_issued: u32,
    /// The device's own offset of inlet air from the site's, °C.
    pub ambient_offset_c: f64,
}

/// What the inputs of the thermal model are at one moment.
struct Load {
    board_w: [f64; MAX_BOARDS],
    board_nominal_w: f64,
    ambient_c: f64,
    cooling: f64,
}

impl DeviceState {
    /// A device that has been mining for a while (uptime drawn from the seed) and is
    /// thermally settled at `now_ms`.
    pub fn new(
        np: &Nameplate,
        family: Family,
        seed: u64,
        now_ms: u64,
        pools: Vec<Pool>,
        timing: &Timing,
    ) -> Self {
        let uptime_s = 3_600 + (unit(seed, 1, 0) * 20.0 * 86_400.0) as u64;
        let start = (now_ms - now_ms % 1000).saturating_sub(uptime_s * 1000);
        let ambient_offset_c = noise(seed, 2, 0) * 3.0;
        let mut st = DeviceState {
            model_ms: start,
            process_start_ms: start,
            down_until_ms: 0,
            chip_temp_c: [NOMINAL_AMBIENT_C + ambient_offset_c; MAX_BOARDS],
            fan_duty: NOMINAL_DUTY,
            fan_manual_pct: None,
            hashes: 0.0,
            mode: PowerMode::Normal,
            sleeping: false,
            scheduled: None,
            led: false,
            power_target_w: None,
            profile_step: 0,
            work_level: 0,
            pools,
            session: None,
            sessions_issued: 0,
            ambient_offset_c,
        };
        st.advance_to(now_ms, np, family, seed, FaultSet::default(), timing);
        st
    }

    /// Clock and voltage as fractions of nominal, from the mode, profile, level or target.
    pub fn operating_scale(&self, np: &Nameplate, family: Family) -> (f64, f64) {
        let s = match family {
            Family::LuxOs => 1.0 + 0.05 * f64::from(self.profile_step),
            Family::Braiins => match self.power_target_w {
                Some(w) => clock_for_power(np, f64::from(w)),
                None => 1.0,
            },
            Family::Avalon => mode_clock(self.mode) * (1.0 - 0.05 * f64::from(self.work_level)),
            _ => mode_clock(self.mode),
        };
        (s, volt_for_clock(s))
    }

    /// Wall power the unit draws at this operating point with every chip working (no noise).
    pub fn nominal_power_w(&self, np: &Nameplate, family: Family) -> f64 {
        let (s, v) = self.operating_scale(np, family);
        np.idle_power_w + (np.power_w - np.idle_power_w) * s * v * v
    }

    /// Whether the device is down (rebooting) at `now_ms`.
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_until_ms > now_ms
    }

    /// The pool getting work: the alive, enabled pool of lowest priority (the second one
    /// under the `wrong-pool` fault). `None` when no pool can take work.
    pub fn active_pool(&self, faults: FaultSet) -> Option<usize> {
        let mut order: Vec<usize> = (0..self.pools.len())
            .filter(|&i| self.pools[i].enabled && self.pools[i].alive())
            .collect();
        order.sort_by_key(|&i| self.pools[i].priority);
        if faults.has(Fault::WrongPool) && order.len() > 1 {
            return Some(order[1]);
        }
        order.first().copied()
    }

    /// Whether chips are hashing now.
    fn hashing(&self, faults: FaultSet) -> bool {
        !self.sleeping && self.down_until_ms == 0 && self.active_pool(faults).is_some()
    }

    fn working_chips(&self, np: &Nameplate, board: usize, faults: FaultSet) -> u32 {
        if faults.has(Fault::DeadBoard) && board == dead_board(np) {
            0
        } else {
            u32::from(np.chips_per_board)
        }
    }

    fn load(&self, np: &Nameplate, family: Family, faults: FaultSet, at_ms: u64) -> Load {
        let (s, v) = self.operating_scale(np, family);
        let board_nominal_w = (np.power_w - np.idle_power_w) / f64::from(np.boards);
        let mut board_w = [0.0; MAX_BOARDS];
        if self.hashing(faults) {
            for (b, w) in board_w.iter_mut().enumerate().take(usize::from(np.boards)) {
                let share =
                    f64::from(self.working_chips(np, b, faults)) / f64::from(np.chips_per_board);
                *w = board_nominal_w * s * v * v * share;
            }
        }
        let mut cooling = fan_airflow(np, faults);
        let mut ambient_c = ambient_at(self.ambient_offset_c, at_ms);
        if faults.has(Fault::Overheat) {
            cooling *= 0.6;
            ambient_c += 10.0;
        }
        Load {
            board_w,
            board_nominal_w,
            ambient_c,
            cooling,
        }
    }

    /// Moves the model forward to `now_ms` (rounded down to a whole second), applying
    /// scheduled controls and the end of a reboot on the way.
    pub fn advance_to(
        &mut self,
        now_ms: u64,
        np: &Nameplate,
        family: Family,
        seed: u64,
        faults: FaultSet,
        timing: &Timing,
    ) {
        let t = now_ms - now_ms % 1000;
        while t > self.model_ms {
            let mut end = t;
            if self.down_until_ms > 0 {
                end = end.min(self.down_until_ms.max(self.model_ms));
            }
            if let Some(p) = self.scheduled {
                end = end.min(p.at_ms.max(self.model_ms));
            }
            self.integrate(end - self.model_ms, np, family, seed, faults, timing);
            self.model_ms = end;
            if self.down_until_ms > 0 && self.model_ms >= self.down_until_ms {
                self.come_up();
            }
            if let Some(p) = self.scheduled.filter(|p| self.model_ms >= p.at_ms) {
                self.sleeping = p.sleep;
                self.scheduled = None;
            }
        }
    }

    fn integrate(
        &mut self,
        dt_ms: u64,
        np: &Nameplate,
        family: Family,
        seed: u64,
        faults: FaultSet,
        timing: &Timing,
    ) {
        if dt_ms == 0 {
            return;
        }
        let dt = dt_ms as f64 / 1000.0;
        let end_ms = self.model_ms + dt_ms;
        let load = self.load(np, family, faults, end_ms);
        let boards = usize::from(np.boards);
        let tau = timing.thermal_tau.as_secs_f64().max(0.001);
        let tau_fan = timing.fan_tau.as_secs_f64().max(0.001);
        // Temperatures and fans forget their past after a few time constants, so a long gap
        // between requests only needs its last stretch integrated; keeping every step under a
        // quarter of the shorter time constant stops the fan and chip loop from leaping
        // between extremes (a large step made them cycle: hot chips, full fans, cold chips).
        let thermal_dt = dt.min(10.0 * tau.min(tau_fan));
        let steps = (thermal_dt / (tau.min(tau_fan) / 4.0))
            .ceil()
            .clamp(1.0, 40.0);
        let h = thermal_dt / steps;
        let k_temp = 1.0 - (-h / tau).exp();
        let k_fan = 1.0 - (-h / tau_fan).exp();
        let delta_nominal = np.chip_target_c - NOMINAL_AMBIENT_C;
        for _ in 0..steps as usize {
            let flow = (self.fan_duty * load.cooling).max(0.02);
            let mut hottest = f64::MIN;
            for b in 0..boards {
                let heat = load.board_w[b] / load.board_nominal_w;
                // Idle boards still sit a little above the inlet air.
                let rise = (delta_nominal * heat * NOMINAL_DUTY / flow).min(160.0) + 2.0;
                self.chip_temp_c[b] += (load.ambient_c + rise - self.chip_temp_c[b]) * k_temp;
                hottest = hottest.max(self.chip_temp_c[b]);
            }
            let want = match self.fan_manual_pct {
                Some(p) => f64::from(p) / 100.0,
                None => {
                    let heat =
                        load.board_w.iter().fold(0.0f64, |m, w| m.max(*w)) / load.board_nominal_w;
                    let headroom = (np.chip_target_c - load.ambient_c - 2.0).max(1.0);
                    let feed_forward =
                        delta_nominal * heat * NOMINAL_DUTY / (load.cooling * headroom);
                    (feed_forward + 0.03 * (hottest - np.chip_target_c)).clamp(MIN_DUTY, 1.0)
                }
            };
            self.fan_duty += (want - self.fan_duty) * k_fan;
        }
        if self.hashing(faults) {
            let (s, _) = self.operating_scale(np, family);
            let chip_equivalents: f64 = (0..boards)
                .map(|b| f64::from(self.working_chips(np, b, faults)) * board_quality(seed, b))
                .sum();
            let hashes =
                chip_equivalents * np.frequency_mhz * s * np.ths_per_chip_mhz() * 1e12 * dt;
            self.hashes += hashes;
            if let Some(p) = self.active_pool(faults) {
                self.pools[p].diff1_work += hashes / DIFF1_HASHES;
                self.pools[p].last_share_s = end_ms / 1000;
            }
        }
    }

    /// Takes the device away for `down` from `now_ms` (reboot or restart of mining).
    pub fn go_down(&mut self, now_ms: u64, down: Duration) {
        let until = now_ms + down.as_millis() as u64;
        // Round up so the device is back at a whole second, like the model's clock.
        self.down_until_ms = until.div_ceil(1000) * 1000;
    }

    fn come_up(&mut self) {
        self.process_start_ms = self.down_until_ms;
        self.down_until_ms = 0;
        self.hashes = 0.0;
        for p in &mut self.pools {
            p.diff1_work = 0.0;
            p.last_share_s = 0;
        }
    }

    /// What the device would report at the model's current time: every figure rounded the
    /// way the wire carries it (hashrates to 0.01 GH/s, temperatures to 1 °C, power to 1 W).
    pub fn read(&self, np: &Nameplate, family: Family, seed: u64, faults: FaultSet) -> Reading {
        let now_s = self.model_ms / 1000;
        let elapsed_s = self.model_ms.saturating_sub(self.process_start_ms) / 1000;
        let load = self.load(np, family, faults, self.model_ms);
        let (s, v) = self.operating_scale(np, family);
        let hashing = self.hashing(faults);
        let window5 = now_s / 5;
        let mut boards = Vec::with_capacity(usize::from(np.boards));
        let ideal_board_ghs = np.hashrate_ths * 1000.0 * s / f64::from(np.boards);
        let total_working: u32 = (0..usize::from(np.boards))
            .map(|b| self.working_chips(np, b, faults))
            .sum();
        let diff1_total: f64 = self.hashes / DIFF1_HASHES;
        let hw_total = (diff1_total * 2e-6) as u64;
        let elapsed_f = (elapsed_s as f64).max(1.0);
        for b in 0..usize::from(np.boards) {
            let chips = self.working_chips(np, b, faults);
            let share = f64::from(chips) / f64::from(np.chips_per_board);
            let bseed = seed ^ ((b as u64 + 1) << 40);
            let quality = board_quality(seed, b);
            let rate = if hashing {
                ideal_board_ghs * share * quality * (1.0 + 0.015 * noise(bseed, 3, window5))
            } else {
                0.0
            };
            let weights: f64 = (0..usize::from(np.boards))
                .map(|k| f64::from(self.working_chips(np, k, faults)) * board_quality(seed, k))
                .sum();
            let avg = if weights > 0.0 {
                self.hashes / 1e9 / elapsed_f * f64::from(chips) * quality / weights
            } else {
                0.0
            };
            let hot = self.chip_temp_c[b];
            let amb = load.ambient_c;
            let sensor =
                |i: u64, t: f64| (t + noise(bseed, 10 + i, now_s / 10) * 0.8).round() as i32;
            // Four sensors per board: two at the inlet side, two at the outlet side.
            let chip_c = [
                sensor(0, hot - 0.22 * (hot - amb) - 1.0),
                sensor(1, hot - 0.22 * (hot - amb)),
                sensor(2, hot - 1.0),
                sensor(3, hot),
            ];
            // Dead chips report no temperature; the board's own sensors still do.
            let chip_c = if chips == 0 {
                [0; 4]
            } else {
                chip_c.map(|c| c.min(hot.round() as i32))
            };
            let pcb_c = [
                sensor(4, amb + 0.35 * (hot - amb) - 1.0),
                sensor(5, amb + 0.35 * (hot - amb)),
                sensor(6, hot - 16.0),
                sensor(7, hot - 15.0),
            ];
            boards.push(BoardReading {
                chips_expected: u32::from(np.chips_per_board),
                chips_working: chips,
                rate_ghs: round2(rate),
                rate_avg_ghs: round2(avg),
                ideal_ghs: round2(ideal_board_ghs),
                frequency_mhz: round2(np.frequency_mhz * s),
                voltage_v: round2(np.voltage_v * v),
                chip_c,
                pcb_c,
                hw_errors: if total_working > 0 {
                    hw_total * u64::from(chips) / u64::from(total_working)
                } else {
                    0
                },
                failed: chips == 0,
                power_w: load.board_w[b],
            });
        }
        let rate_5s_ghs = round2(boards.iter().map(|b| b.rate_ghs).sum());
        let rate_avg_ghs = round2(self.hashes / 1e9 / elapsed_f);
        let rate_nominal =
            np.hashrate_ths * 1000.0 * s * f64::from(total_working) / f64::from(np.total_chips());
        let rate_30m_ghs = if hashing {
            round2(rate_nominal * (1.0 + 0.004 * noise(seed, 4, now_s / 60)))
        } else {
            0.0
        };
        let fan_fail = faults.has(Fault::FanFail);
        let fans_rpm = (0..u64::from(np.fans))
            .map(|i| {
                if fan_fail && i == 0 {
                    0
                } else {
                    (self.fan_duty
                        * f64::from(np.fan_max_rpm)
                        * (1.0 + 0.01 * noise(seed, 20 + i, now_s / 5)))
                    .round() as u32
                }
            })
            .collect();
        let board_w: f64 = load.board_w.iter().sum();
        let fan_w = 12.0 * f64::from(np.fans) * self.fan_duty.powi(3);
        let power = if self.down_until_ms > 0 {
            0.0
        } else {
            np.idle_power_w + board_w + fan_w
        };
        let power_w = (power * (1.0 + 0.004 * noise(seed, 5, now_s))).round() as u32;
        let hottest = boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
        let status = if self.down_until_ms > 0 {
            MinerStatus::Offline
        } else if self.sleeping {
            MinerStatus::Sleeping
        } else if boards.iter().any(|b| b.failed)
            || fan_fail
            || f64::from(hottest) > np.chip_limit_c
            || self.active_pool(faults).is_none()
        {
            MinerStatus::Degraded
        } else {
            MinerStatus::Mining
        };
        let accepted: u64 = self.pools.iter().map(|p| p.shares(POOL_DIFFICULTY).0).sum();
        let rejected: u64 = self.pools.iter().map(|p| p.shares(POOL_DIFFICULTY).1).sum();
        let stale: u64 = self.pools.iter().map(|p| p.shares(POOL_DIFFICULTY).2).sum();
        Reading {
            now_s,
            elapsed_s,
            status,
            sleeping: self.sleeping,
            rate_5s_ghs,
            rate_avg_ghs,
            rate_30m_ghs,
            rate_ideal_ghs: round2(np.hashrate_ths * 1000.0 * s),
            boards,
            fan_duty_pct: (self.fan_duty * 100.0).round() as u32,
            fans_rpm,
            power_w,
            nominal_power_w: self.nominal_power_w(np, family).round() as u32,
            ambient_c: load.ambient_c.round() as i32,
            diff1_total,
            accepted,
            rejected,
            stale,
            hw_errors: hw_total,
            best_share: (diff1_total * (1.5 + 3.0 * unit(seed, 6, 0))) as u64,
            active_pool: self.active_pool(faults),
        }
    }
}

/// Stratum difficulty every simulated pool hands out.
pub const POOL_DIFFICULTY: f64 = 65_536.0;

/// One board as the device reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardReading {
    /// Chips the board should have.
    pub chips_expected: u32,
    /// Chips detected and working.
    pub chips_working: u32,
    /// Current (5 s) hashrate, GH/s.
    pub rate_ghs: f64,
    /// Average hashrate since the mining process started, GH/s.
    pub rate_avg_ghs: f64,
    /// Nominal hashrate at this clock, GH/s.
    pub ideal_ghs: f64,
    /// Chip clock.
    pub frequency_mhz: f64,
    /// Board voltage.
    pub voltage_v: f64,
    /// Chip temperature sensors: two at the inlet side, then two at the outlet side.
    pub chip_c: [i32; 4],
    /// Board (PCB) temperature sensors, same order.
    pub pcb_c: [i32; 4],
    /// Hardware errors since the mining process started.
    pub hw_errors: u64,
    /// Detected but not hashing (no working chips).
    pub failed: bool,
    /// Power the board draws (not on any wire; for the model's own checks).
    pub power_w: f64,
}

impl BoardReading {
    /// The hottest chip sensor.
    pub fn chip_max_c(&self) -> i32 {
        self.chip_c.into_iter().max().unwrap_or(0)
    }

    /// The hottest board sensor.
    pub fn pcb_max_c(&self) -> i32 {
        self.pcb_c.into_iter().max().unwrap_or(0)
    }
}

/// What a device reports at one moment, rounded as its wire carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Unix seconds.
    pub now_s: u64,
    /// Seconds since the mining process started.
    pub elapsed_s: u64,
    /// The state an operator would name.
    pub status: MinerStatus,
    /// Deliberately idle.
    pub sleeping: bool,
    /// Current hashrate, GH/s: the sum of the boards.
    pub rate_5s_ghs: f64,
    /// Average since the mining process started, GH/s.
    pub rate_avg_ghs: f64,
    /// 30-minute average, GH/s.
    pub rate_30m_ghs: f64,
    /// Nominal hashrate at this clock with every chip working, GH/s.
    pub rate_ideal_ghs: f64,
    /// Boards in slot order.
    pub boards: Vec<BoardReading>,
    /// Fan duty in percent.
    pub fan_duty_pct: u32,
    /// Fan speeds, one per fan.
    pub fans_rpm: Vec<u32>,
    /// Wall power.
    pub power_w: u32,
    /// Wall power this operating point draws with every chip working (a limit or profile watts).
    pub nominal_power_w: u32,
    /// Inlet air.
    pub ambient_c: i32,
    /// Difficulty-1 shares of work since the mining process started.
    pub diff1_total: f64,
    /// Accepted shares, all pools.
    pub accepted: u64,
    /// Rejected shares, all pools.
    pub rejected: u64,
    /// Stale shares, all pools.
    pub stale: u64,
    /// Hardware errors, all boards.
    pub hw_errors: u64,
    /// Best share difficulty since start.
    pub best_share: u64,
    /// Index of the pool getting work.
    pub active_pool: Option<usize>,
}

/// Rounds to two decimals, as cgminer prints hashrates.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn mode_clock(mode: PowerMode) -> f64 {
    match mode {
        PowerMode::Low => 0.8,
        PowerMode::Normal => 1.0,
        PowerMode::High => 1.1,
    }
}

/// Voltage follows clock at 30 % of its relative change: a 20 % lower clock runs at 6 % lower
/// voltage, which is about what low-power modes do.
fn volt_for_clock(s: f64) -> f64 {
    1.0 + 0.3 * (s - 1.0)
}

/// The clock scale at which the unit draws `watts` (the Braiins tuner), within 50–125 %.
fn clock_for_power(np: &Nameplate, watts: f64) -> f64 {
    let power =
        |s: f64| np.idle_power_w + (np.power_w - np.idle_power_w) * s * volt_for_clock(s).powi(2);
    let (mut lo, mut hi) = (0.5, 1.25);
    if watts <= power(lo) {
        return lo;
    }
    if watts >= power(hi) {
        return hi;
    }
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if power(mid) < watts {
            lo = mid
        } else {
            hi = mid
        }
    }
    (lo + hi) / 2.0
}

/// How close a board's chips come to their nominal hashrate: 97–100.5 %, fixed per board
/// (no two real boards bin alike).
fn board_quality(seed: u64, board: usize) -> f64 {
    0.97 + 0.035 * unit(seed, 7, board as u64)
}

/// The board that dies under the `dead-board` fault: the middle one.
pub fn dead_board(np: &Nameplate) -> usize {
    usize::from(np.boards / 2)
}

/// Airflow as a fraction of normal: one stopped fan of N costs more than 1/N, because air
/// recirculates through the stopped fan.
fn fan_airflow(np: &Nameplate, faults: FaultSet) -> f64 {
    if faults.has(Fault::FanFail) && np.fans > 0 {
        let working = f64::from(np.fans - 1) / f64::from(np.fans);
        working * working
    } else {
        1.0
    }
}

/// Inlet air: 25 °C, the device's own offset, and a ±3 °C day cycle.
fn ambient_at(offset_c: f64, at_ms: u64) -> f64 {
    let day = (at_ms / 1000 % 86_400) as f64 / 86_400.0;
    NOMINAL_AMBIENT_C + offset_c + 3.0 * (std::f64::consts::TAU * (day - 0.375)).sin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nameplate;

    const T0: u64 = 1_750_000_000_000;

    fn s19() -> &'static Nameplate {
        nameplate::find("Antminer S19 Pro").unwrap_or(&nameplate::NAMEPLATES[0])
    }

    fn state(family: Family) -> DeviceState {
        let pools = vec![Pool::new("stratum+tcp://a.example:3333", "w", "x", 0)];
        DeviceState::new(s19(), family, 7, T0, pools, &Timing::realistic())
    }

    fn settle(st: &mut DeviceState, family: Family, faults: FaultSet) -> Reading {
        let t = st.model_ms + 3_600_000;
        st.advance_to(t, s19(), family, 7, faults, &Timing::realistic());
        st.read(s19(), family, 7, faults)
    }

    #[test]
    fn power_grows_with_clock_and_voltage_squared() {
        let np = s19();
        let mut st = state(Family::Braiins);
        let nominal = st.nominal_power_w(np, Family::Braiins);
        assert!((nominal - np.power_w).abs() < 1e-6);
        // The Braiins tuner finds the clock for a target; power follows f·V² exactly.
        for target in [2000u32, 2600, 3000, 3600] {
            st.power_target_w = Some(target);
            let (s, v) = st.operating_scale(np, Family::Braiins);
            let expect = np.idle_power_w + (np.power_w - np.idle_power_w) * s * v * v;
            assert!(
                (st.nominal_power_w(np, Family::Braiins) - f64::from(target)).abs() < 1.0,
                "{target}"
            );
            assert!((st.nominal_power_w(np, Family::Braiins) - expect).abs() < 1e-9);
        }
        // Doubling the voltage at the same clock quadruples the chip share of the power.
        let k = np.w_per_chip_mhz_v2() * f64::from(np.total_chips()) * np.frequency_mhz;
        assert!(
            (k * (2.0 * np.voltage_v).powi(2) / (k * np.voltage_v.powi(2)) - 4.0).abs() < 1e-12
        );
    }

    #[test]
    fn modes_change_power_and_hashrate() {
        let mut st = state(Family::Antminer);
        let normal = settle(&mut st, Family::Antminer, FaultSet::default());
        st.mode = PowerMode::Low;
        let low = settle(&mut st, Family::Antminer, FaultSet::default());
        st.mode = PowerMode::High;
        let high = settle(&mut st, Family::Antminer, FaultSet::default());
        assert!(
            low.rate_ideal_ghs < normal.rate_ideal_ghs
                && normal.rate_ideal_ghs < high.rate_ideal_ghs
        );
        assert!(low.power_w < normal.power_w && normal.power_w < high.power_w);
        // Low power saves more power than hashrate: efficiency improves.
        let eff = |r: &Reading| f64::from(r.power_w) / r.rate_5s_ghs;
        assert!(eff(&low) < eff(&normal) && eff(&normal) < eff(&high));
        assert!(
            (normal.rate_5s_ghs / 1000.0 - 110.0).abs() < 110.0 * 0.03,
            "{}",
            normal.rate_5s_ghs
        );
        assert!(
            (f64::from(normal.power_w) - 3250.0).abs() < 3250.0 * 0.03,
            "{}",
            normal.power_w
        );
    }

    #[test]
    fn luxos_profiles_and_avalon_levels_move_power() {
        let np = s19();
        let mut st = state(Family::LuxOs);
        let base = st.nominal_power_w(np, Family::LuxOs);
        st.profile_step = -2;
        assert!(st.nominal_power_w(np, Family::LuxOs) < base);
        st.profile_step = 2;
        assert!(st.nominal_power_w(np, Family::LuxOs) > base);
        st.work_level = 3;
        assert!(st.nominal_power_w(np, Family::Avalon) < base);
    }

    #[test]
    fn sleep_stops_hashing_and_cools() {
        let mut st = state(Family::Antminer);
        let awake = settle(&mut st, Family::Antminer, FaultSet::default());
        st.sleeping = true;
        let asleep = settle(&mut st, Family::Antminer, FaultSet::default());
        assert_eq!(asleep.rate_5s_ghs, 0.0);
        assert_eq!(asleep.status, MinerStatus::Sleeping);
        assert!(asleep.power_w < 200, "{}", asleep.power_w);
        let hot = |r: &Reading| r.boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
        assert!(
            hot(&asleep) < hot(&awake) - 30,
            "{} vs {}",
            hot(&asleep),
            hot(&awake)
        );
        assert!(asleep.fan_duty_pct < awake.fan_duty_pct);
    }

    #[test]
    fn temperatures_follow_fans() {
        let mut st = state(Family::Avalon);
        let auto = settle(&mut st, Family::Avalon, FaultSet::default());
        let hot = |r: &Reading| r.boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
        // The controller holds the target.
        assert!(
            (f64::from(hot(&auto)) - s19().chip_target_c).abs() <= 3.0,
            "{}",
            hot(&auto)
        );
        st.fan_manual_pct = Some(100);
        let full = settle(&mut st, Family::Avalon, FaultSet::default());
        st.fan_manual_pct = Some(40);
        let slow = settle(&mut st, Family::Avalon, FaultSet::default());
        assert!(
            hot(&full) < hot(&auto) && hot(&auto) < hot(&slow),
            "{} {} {}",
            hot(&full),
            hot(&auto),
            hot(&slow)
        );
        assert_eq!(full.fan_duty_pct, 100);
        // A failed fan: the others speed up, yet the chips run hotter than the target.
        st.fan_manual_pct = None;
        let failed = settle(
            &mut st,
            Family::Avalon,
            FaultSet::from_faults(&[Fault::FanFail]),
        );
        assert_eq!(failed.fans_rpm[0], 0);
        assert!(failed.fan_duty_pct > auto.fan_duty_pct);
        assert!(
            hot(&failed) > hot(&auto) + 5,
            "{} vs {}",
            hot(&failed),
            hot(&auto)
        );
        assert_eq!(failed.status, MinerStatus::Degraded);
    }

    #[test]
    fn temperatures_lag_behind_power() {
        let mut st = state(Family::Antminer);
        settle(&mut st, Family::Antminer, FaultSet::default());
        let before = st.chip_temp_c[0];
        st.sleeping = true;
        // One time constant later the temperature has gone about 63 % of the way down.
        let t = st.model_ms + 90_000;
        st.advance_to(
            t,
            s19(),
            Family::Antminer,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        let after_tau = st.chip_temp_c[0];
        settle(&mut st, Family::Antminer, FaultSet::default());
        let settled = st.chip_temp_c[0];
        let gone = (before - after_tau) / (before - settled);
        assert!(gone > 0.45 && gone < 0.85, "{gone}");
    }

    #[test]
    fn overheat_and_dead_board() {
        let mut st = state(Family::Antminer);
        let r = settle(
            &mut st,
            Family::Antminer,
            FaultSet::from_faults(&[Fault::Overheat]),
        );
        assert!(
            r.boards
                .iter()
                .any(|b| f64::from(b.chip_max_c()) > s19().chip_limit_c)
        );
        assert_eq!(r.status, MinerStatus::Degraded);
        let r = settle(
            &mut st,
            Family::Antminer,
            FaultSet::from_faults(&[Fault::DeadBoard]),
        );
        let dead = &r.boards[dead_board(s19())];
        assert!(dead.failed && dead.chips_working == 0 && dead.rate_ghs == 0.0);
        assert!(r.rate_5s_ghs < 110_000.0 * 0.7);
    }

    #[test]
    fn reboot_resets_uptime_and_counters() {
        let mut st = state(Family::Cgminer);
        let t = st.model_ms;
        let before = st.read(s19(), Family::Cgminer, 7, FaultSet::default());
        assert!(before.elapsed_s >= 3600 && before.accepted > 0);
        st.go_down(t, Duration::from_secs(75));
        st.advance_to(
            t + 30_000,
            s19(),
            Family::Cgminer,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        assert!(st.is_down(t + 30_000));
        assert_eq!(
            st.read(s19(), Family::Cgminer, 7, FaultSet::default())
                .status,
            MinerStatus::Offline
        );
        st.advance_to(
            t + 80_000,
            s19(),
            Family::Cgminer,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        let after = st.read(s19(), Family::Cgminer, 7, FaultSet::default());
        assert_eq!(after.elapsed_s, 5);
        assert!(after.accepted < before.accepted);
        assert_eq!(after.status, MinerStatus::Mining);
    }

    #[test]
    fn scheduled_sleep_applies_at_its_time() {
        let mut st = state(Family::Avalon);
        let t = st.model_ms;
        st.scheduled = Some(Scheduled {
            at_ms: t + 5_000,
            sleep: true,
        });
        st.advance_to(
            t + 4_000,
            s19(),
            Family::Avalon,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        assert!(!st.sleeping);
        st.advance_to(
            t + 6_000,
            s19(),
            Family::Avalon,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        assert!(st.sleeping && st.scheduled.is_none());
    }

    #[test]
    fn wrong_pool_and_dead_pools() {
        let mut st = state(Family::Cgminer);
        st.pools
            .push(Pool::new("stratum+tcp://b.example:3333", "w", "x", 1));
        assert_eq!(st.active_pool(FaultSet::default()), Some(0));
        assert_eq!(
            st.active_pool(FaultSet::from_faults(&[Fault::WrongPool])),
            Some(1)
        );
        st.pools[0].url = "stratum+tcp://dead.example:3333".into();
        assert_eq!(st.active_pool(FaultSet::default()), Some(1));
        st.pools[1].enabled = false;
        assert_eq!(st.active_pool(FaultSet::default()), None);
        let r = settle(&mut st, Family::Cgminer, FaultSet::default());
        assert_eq!(r.rate_5s_ghs, 0.0);
        assert_eq!(r.status, MinerStatus::Degraded);
    }

    #[test]
    fn same_second_same_numbers() {
        let mut a = state(Family::Antminer);
        let mut b = a.clone();
        a.advance_to(
            T0 + 10_100,
            s19(),
            Family::Antminer,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        b.advance_to(
            T0 + 10_900,
            s19(),
            Family::Antminer,
            7,
            FaultSet::default(),
            &Timing::realistic(),
        );
        let fs = FaultSet::default();
        assert_eq!(
            a.read(s19(), Family::Antminer, 7, fs),
            b.read(s19(), Family::Antminer, 7, fs)
        );
    }
}
