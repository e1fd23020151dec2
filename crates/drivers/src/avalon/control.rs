//! Avalon commands (PROTOCOLS.md §3.3): each [`Command`] becomes one or more cgminer requests,
//! mostly privileged `ascset|0,<opt>,<value>`, and [`check`] reads the effect back from `estats`.
//!
//! Power modes map onto `WORKMODE` (`ascset 0,workmode,<n>`), read back from the `MM ID`
//! string: 0 = [`PowerMode::Normal`], 1 = [`PowerMode::High`] (MOS's numbering, §3.3) and
//! 2 = [`PowerMode::Low`] (the efficiency mode of newer models; **verify** per model). Work
//! *levels* (`worklevel`) are finer steps below a mode and are left alone.

use crate::verify::{self, Verdict};
use hashmesh_core::{Command, MinerSnapshot, MinerStatus, PowerMode};

/// How far ahead a scheduled soft-off / soft-on is set: the firmware ignores times in the past,
/// and asic-rs / MOS use a few seconds.
pub const SOFT_SWITCH_LEAD_S: u64 = 5;

/// The `ascset` parameter for `0,<opt>,<value>` (module 0 is the whole miner on Canaan firmware).
pub fn ascset(opt: &str, value: &str) -> String {
    format!("0,{opt},{value}")
}

/// Soft-off (sleep) at `at_unix_s`: `0,softoff,1:<ts>`.
pub fn soft_off(at_unix_s: u64) -> String {
    ascset("softoff", &format!("1:{at_unix_s}"))
}

/// Soft-on (wake) at `at_unix_s`: `0,softon,1:<ts>`.
pub fn soft_on(at_unix_s: u64) -> String {
    ascset("softon", &format!("1:{at_unix_s}"))
}

/// Locate LED on (`0,led,1-1`) or off (`0,led,1-0`).
pub fn led(on: bool) -> String {
    ascset("led", if on { "1-1" } else { "1-0" })
}

/// The work mode number that stands for `mode` (see the module doc).
pub fn work_mode_for(mode: PowerMode) -> i64 {
    match mode {
        PowerMode::Normal => 0,
        PowerMode::High => 1,
        PowerMode::Low => 2,
    }
}

/// The power mode a reported `WORKMODE` stands for; other numbers have no mode.
pub fn mode_for_work_mode(mode: i64) -> Option<PowerMode> {
    match mode {
        0 => Some(PowerMode::Normal),
        1 => Some(PowerMode::High),
        2 => Some(PowerMode::Low),
        _ => None,
    }
}

/// Select a work mode: `0,workmode,<n>`.
pub fn work_mode(mode: i64) -> String {
    ascset("workmode", &mode.to_string())
}

/// Set the power level within a mode: `0,worklevel,set,<n>`.
pub fn work_level(level: i64) -> String {
    ascset("worklevel", &format!("set,{level}"))
}

/// Reboot the controller through `ascset` (the fallback when RPC `restart` is refused).
pub fn reboot() -> String {
    ascset("reboot", "0")
}

/// Seconds since the unix epoch, for scheduling soft-off / soft-on.
pub fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Avalon read-back (§3.3). Sleep is confirmed by soft-off (status Sleeping, which the parser
/// sets from `SoftOFF` / `SYSTEMSTATU In Idle`); wake needs soft-off cleared and hashing again.
/// Everything else is the generic check on the normalised snapshot.
pub fn check(command: &Command, before: Option<&MinerSnapshot>, after: &MinerSnapshot) -> Verdict {
    match command {
        Command::Wake => match after.status {
            MinerStatus::Sleeping => Verdict::Pending("soft-off still active".into()),
            _ if after.hashrate_ths.is_some_and(|h| h > 0.0) => Verdict::Confirmed(format!(
                "soft-off cleared, hashing {:.1} TH/s",
                after.hashrate_ths.unwrap_or(0.0)
            )),
            // Soft-on clears SoftOFF at once but the boards take a while to ramp up.
            _ => Verdict::Pending("soft-off cleared, hashrate not rising yet".into()),
        },
        _ => verify::check(command, before, after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters() {
        assert_eq!(soft_off(1_718_000_005), "0,softoff,1:1718000005");
        assert_eq!(soft_on(7), "0,softon,1:7");
        assert_eq!(led(true), "0,led,1-1");
        assert_eq!(led(false), "0,led,1-0");
        assert_eq!(work_mode(work_mode_for(PowerMode::High)), "0,workmode,1");
        assert_eq!(work_level(3), "0,worklevel,set,3");
        assert_eq!(reboot(), "0,reboot,0");
        for mode in [PowerMode::Low, PowerMode::Normal, PowerMode::High] {
            assert_eq!(mode_for_work_mode(work_mode_for(mode)), Some(mode));
        }
        assert_eq!(mode_for_work_mode(255), None);
    }

    #[test]
    fn wake_needs_hashrate() {
        let mut after = MinerSnapshot::empty(0, MinerStatus::Sleeping);
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Pending(_)
        ));
        after.status = MinerStatus::Error;
        after.hashrate_ths = Some(0.0);
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Pending(_)
        ));
        after.hashrate_ths = Some(12.0);
        after.status = MinerStatus::Degraded;
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Confirmed(_)
        ));
    }
}
