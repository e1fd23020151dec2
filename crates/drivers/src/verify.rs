//! Read-back verification: a command only counts as done once the device's own state shows it.
//!
//! Many firmwares answer "OK" to writes they ignore, so [`execute`] takes a snapshot before the
//! write, sends it, then polls until [`check`] (or a family's override) confirms the effect.

use crate::driver::Driver;
use crate::target::Target;
use hashmesh_core::{Command, CommandOutcome, CommandResult, MinerSnapshot, MinerStatus};
use std::time::{Duration, Instant};

/// How long and how often to read back after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Give up confirming after this long.
    pub timeout: Duration,
    /// Time between read-backs.
    pub interval: Duration,
    /// Longer deadline for reboots and mining restarts, which take the device away for a while.
    pub restart_timeout: Duration,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            timeout: Duration::from_secs(60),
            interval: Duration::from_secs(2),
            restart_timeout: Duration::from_secs(300),
        }
    }
}

/// What one read-back says about a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The state shows the command took effect.
    Confirmed(String),
    /// Not yet; read again (the text says what the state still shows).
    Pending(String),
    /// The device does not report the state that would show it.
    CannotTell(String),
}

/// The generic read-back check on normalised snapshots.
pub fn check(command: &Command, before: Option<&MinerSnapshot>, after: &MinerSnapshot) -> Verdict {
    match command {
        Command::Reboot | Command::RestartMining => {
            let Some(now) = after.uptime_s else {
                return Verdict::CannotTell("device does not report uptime".into());
            };
            match before.and_then(|b| b.uptime_s) {
                Some(was) if now < was => {
                    Verdict::Confirmed(format!("uptime reset from {was} s to {now} s"))
                }
                Some(was) => Verdict::Pending(format!("uptime still {now} s (was {was} s)")),
                None if now < 120 => Verdict::Confirmed(format!("uptime {now} s")),
                None => Verdict::Pending(format!("uptime {now} s")),
            }
        }
        Command::SetPools { pools } => {
            let want: Vec<(&str, &str)> = pools
                .iter()
                .map(|p| (p.url.as_str(), p.user.as_str()))
                .collect();
            let have: Vec<(&str, &str)> = after
                .pools
                .iter()
                .map(|p| (&*p.url, p.user.as_str()))
                .collect();
            if have.len() >= want.len() && have[..want.len()] == want[..] {
                Verdict::Confirmed(format!("pools now {}", list_urls(after)))
            } else {
                Verdict::Pending(format!("pools still {}", list_urls(after)))
            }
        }
        Command::SetPowerMode { mode } => match after.power_mode {
            Some(m) if m == *mode => Verdict::Confirmed(format!("power mode {}", m.as_str())),
            Some(m) => Verdict::Pending(format!("power mode still {}", m.as_str())),
            None => Verdict::CannotTell("device does not report its power mode".into()),
        },
        Command::SetPowerTarget { power_w } => match after.power_target_w {
            Some(t) if (t - f64::from(*power_w)).abs() <= 1.0 => {
                Verdict::Confirmed(format!("power target {t} W"))
            }
            Some(t) => Verdict::Pending(format!("power target still {t} W")),
            None => Verdict::CannotTell("device does not report its power target".into()),
        },
        Command::Sleep => match after.status {
            MinerStatus::Sleeping => Verdict::Confirmed("sleeping".into()),
            s => Verdict::Pending(format!("status still {}", s.as_str())),
        },
        Command::Wake => match after.status {
            MinerStatus::Mining | MinerStatus::Degraded => {
                Verdict::Confirmed(format!("status {}", after.status.as_str()))
            }
            s => Verdict::Pending(format!("status still {}", s.as_str())),
        },
        Command::LocateLed { on } => match after.locate_led_on {
            Some(v) if v == *on => {
                Verdict::Confirmed(format!("LED {}", if v { "on" } else { "off" }))
            }
            Some(v) => Verdict::Pending(format!("LED still {}", if v { "on" } else { "off" })),
            None => Verdict::CannotTell("device does not report its LED state".into()),
        },
    }
}

fn list_urls(s: &MinerSnapshot) -> String {
    let urls: Vec<&str> = s.pools.iter().map(|p| &*p.url).collect();
    format!("[{}]", urls.join(", "))
}

/// Sends `command` through `driver` and reads back until confirmed or out of time.
pub async fn execute<D: Driver + ?Sized>(
    driver: &D,
    target: &Target,
    command: &Command,
    policy: &VerifyPolicy,
) -> CommandOutcome {
    let started = Instant::now();
    let outcome = |result, accepted, message: String| CommandOutcome {
        command: command.clone(),
        result,
        accepted,
        message,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if !driver.capabilities().allows(command) {
        return outcome(
            CommandResult::Unsupported,
            false,
            format!("{} does not support {}", driver.name(), command.name()),
        );
    }
    // The state before the write is what a restart check compares against; a device that
    // cannot be read now is still worth commanding (a wake or reboot may be the fix).
    let before = driver.poll(target).await.ok();
    let ack = match driver.send(target, command).await {
        Ok(ack) => ack,
        Err(e) => {
            return outcome(
                CommandResult::Failed,
                false,
                format!("{} refused: {e}", command.name()),
            );
        }
    };
    let restarts = matches!(command, Command::Reboot | Command::RestartMining);
    let deadline = started
        + if restarts {
            policy.restart_timeout
        } else {
            policy.timeout
        };
    let mut last = format!("device said: {}", ack.message);
    loop {
        tokio::time::sleep(policy.interval).await;
        match driver.poll(target).await {
            Ok(after) => match driver.check(command, before.as_ref(), &after) {
                Verdict::Confirmed(why) => return outcome(CommandResult::Confirmed, true, why),
                Verdict::CannotTell(why) => {
                    return outcome(
                        CommandResult::Unverified,
                        true,
                        format!("{}; {why}", ack.message),
                    );
                }
                Verdict::Pending(why) => last = why,
            },
            Err(e) => last = format!("read-back failed: {e}"),
        }
        if Instant::now() >= deadline {
            return outcome(
                CommandResult::Failed,
                true,
                format!(
                    "accepted ({}) but not confirmed within {:?}: {last}",
                    ack.message,
                    deadline - started
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_core::{PoolConfig, PoolSnapshot, PoolStatus, PowerMode};

    fn snap() -> MinerSnapshot {
        MinerSnapshot::empty(0, MinerStatus::Mining)
    }

    #[test]
    fn reboot_needs_uptime_to_fall() {
        let mut before = snap();
        before.uptime_s = Some(5000);
        let mut after = snap();
        after.uptime_s = Some(6000);
        assert!(matches!(
            check(&Command::Reboot, Some(&before), &after),
            Verdict::Pending(_)
        ));
        after.uptime_s = Some(12);
        assert!(matches!(
            check(&Command::Reboot, Some(&before), &after),
            Verdict::Confirmed(_)
        ));
        after.uptime_s = None;
        assert!(matches!(
            check(&Command::Reboot, Some(&before), &after),
            Verdict::CannotTell(_)
        ));
    }

    #[test]
    fn pools_compare_in_order() {
        let cmd = Command::SetPools {
            pools: vec![PoolConfig {
                url: "stratum+tcp://a:1".into(),
                user: "w".into(),
                password: "x".into(),
            }],
        };
        let mut after = snap();
        after.pools.push(PoolSnapshot {
            index: 0,
            url: "stratum+tcp://b:1".into(),
            user: "w".into(),
            status: PoolStatus::Alive,
            accepted: 0,
            rejected: 0,
            stale: 0,
            active: true,
        });
        assert!(matches!(check(&cmd, None, &after), Verdict::Pending(_)));
        after.pools[0].url = "stratum+tcp://a:1".into();
        assert!(matches!(check(&cmd, None, &after), Verdict::Confirmed(_)));
    }

    #[test]
    fn mode_and_led() {
        let mut after = snap();
        let cmd = Command::SetPowerMode {
            mode: PowerMode::Low,
        };
        assert!(matches!(check(&cmd, None, &after), Verdict::CannotTell(_)));
        after.power_mode = Some(PowerMode::Normal);
        assert!(matches!(check(&cmd, None, &after), Verdict::Pending(_)));
        after.power_mode = Some(PowerMode::Low);
        assert!(matches!(check(&cmd, None, &after), Verdict::Confirmed(_)));
        after.locate_led_on = Some(true);
        assert!(matches!(
            check(&Command::LocateLed { on: true }, None, &after),
            Verdict::Confirmed(_)
        ));
        assert!(matches!(
            check(&Command::LocateLed { on: false }, None, &after),
            Verdict::Pending(_)
        ));
    }
}
