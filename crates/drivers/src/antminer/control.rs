//! Antminer commands: `restart` over 4028 (cgminer's command, only when `api-allow` grants
//! write access, else Code 45 → an authentication error), everything else over the web CGI
//! interface ([`super::web`], PROTOCOLS.md §2.5): sleep/wake/low power via `miner-mode`
//! (1 sleep, 0 normal, 3 low), pools (exactly 3 slots), `blink.cgi`, `reboot.cgi`.
//!
//! Pools fall back to the RPC pool commands when nothing listens on the web port, so a unit
//! with its web interface disabled but RPC writes allowed can still be re-pointed.

use super::web;
use crate::antminer::web::WebClient;
use crate::cgminer::control;
use crate::driver::{Ack, Driver};
use crate::error::DriverError;
use crate::target::Target;
use crate::verify::VerifyPolicy;
use hashmesh_core::{Command, CommandOutcome, CommandResult, PowerMode};
use std::time::Instant;

/// Sends a command that the 4028 interface can carry.
pub async fn send_rpc(target: &Target, command: &Command) -> Result<Ack, DriverError> {
    match command {
        Command::RestartMining => control::restart(target).await,
        Command::SetPools { pools } => control::set_pools(target, pools).await,
        other => Err(DriverError::Unsupported(format!(
            "antminer {} is not available over the 4028 RPC",
            other.name()
        ))),
    }
}

/// Sends a command over the interface that carries it.
pub async fn send(
    http: &WebClient,
    target: &Target,
    command: &Command,
) -> Result<Ack, DriverError> {
    match command {
        Command::RestartMining => send_rpc(target, command).await,
        Command::SetPools { pools } => match web::set_pools(http, target, pools).await {
            Err(DriverError::Connect(e)) => {
                tracing::debug!(addr = %target.web_addr(), "web interface refused ({e}); pools over RPC");
                send_rpc(target, command).await
            }
            other => other,
        },
        Command::Sleep => web::set_mode(http, target, 1).await,
        Command::Wake
        | Command::SetPowerMode {
            mode: PowerMode::Normal,
        } => web::set_mode(http, target, 0).await,
        Command::SetPowerMode {
            mode: PowerMode::Low,
        } => web::set_mode(http, target, 3).await,
        Command::SetPowerMode {
            mode: PowerMode::High,
        } => Err(DriverError::Unsupported(
            "stock Antminer firmware has no high-power mode".into(),
        )),
        Command::SetPowerTarget { .. } => Err(DriverError::Unsupported(
            "stock Antminer firmware has no watt target".into(),
        )),
        Command::LocateLed { on } => web::blink(http, target, *on).await,
        Command::Reboot => web::reboot(http, target).await,
    }
}

/// The `miner-mode` a mode command should leave in the configuration.
pub fn wanted_mode(command: &Command) -> Option<i64> {
    match command {
        Command::Sleep => Some(1),
        Command::Wake
        | Command::SetPowerMode {
            mode: PowerMode::Normal,
        } => Some(0),
        Command::SetPowerMode {
            mode: PowerMode::Low,
        } => Some(3),
        _ => None,
    }
}

/// Second half of a mode read-back (§2.5): once the 4028 `stats` mode confirms, the web
/// configuration must hold the same `miner-mode`; a mismatch turns the outcome into a failure.
pub async fn confirm_conf_mode(
    http: &WebClient,
    target: &Target,
    command: &Command,
    mut outcome: CommandOutcome,
) -> CommandOutcome {
    let Some(want) = wanted_mode(command) else {
        return outcome;
    };
    if outcome.result != CommandResult::Confirmed {
        return outcome;
    }
    match web::miner_conf(http, target)
        .await
        .map(|c| web::conf_mode(&c))
    {
        Ok(Some(m)) if m == want => {
            outcome.message = format!("{}; get_miner_conf mode {m}", outcome.message);
        }
        Ok(other) => {
            outcome.result = CommandResult::Failed;
            outcome.message = format!(
                "{}, but get_miner_conf mode is {other:?}, not {want}",
                outcome.message
            );
        }
        Err(e) => {
            outcome.result = CommandResult::Unverified;
            outcome.message = format!("{}; get_miner_conf unreadable: {e}", outcome.message);
        }
    }
    outcome
}

/// Switches the LED and reads `get_blink_status.cgi` until it shows the wanted state.
pub async fn execute_led<D: Driver + ?Sized>(
    driver: &D,
    http: &WebClient,
    target: &Target,
    on: bool,
    policy: &VerifyPolicy,
) -> CommandOutcome {
    let command = Command::LocateLed { on };
    let started = Instant::now();
    let outcome = |result, accepted, message: String| CommandOutcome {
        command: command.clone(),
        result,
        accepted,
        message,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    let ack = match driver.send(target, &command).await {
        Ok(a) => a,
        Err(e) => {
            return outcome(
                CommandResult::Failed,
                false,
                format!("locate_led refused: {e}"),
            );
        }
    };
    let want = if on { "on" } else { "off" };
    let mut last = format!("device said: {}", ack.message);
    loop {
        match web::blink_status(http, target).await {
            Ok(state) if state == on => {
                return outcome(CommandResult::Confirmed, true, format!("LED {want}"));
            }
            Ok(_) => last = format!("LED still not {want}"),
            Err(e) => last = format!("read-back failed: {e}"),
        }
        if started.elapsed() >= policy.timeout {
            return outcome(
                CommandResult::Failed,
                true,
                format!("accepted ({}) but not confirmed: {last}", ack.message),
            );
        }
        tokio::time::sleep(policy.interval).await;
    }
}
