//! Braiins OS commands over its cgminer-compatible API: privileged `pause` / `resume` for sleep
//! and wake (the fallback when no REST API answers), `restart`, and cgminer pool commands.
//! Power targets, the locate LED and reboot are on the REST API ([`super::rest`]).

use crate::cgminer::control;
use crate::driver::Ack;
use crate::error::DriverError;
use crate::target::Target;
use hashmesh_core::Command;

/// Sends a command that the cgminer-compatible API can carry.
pub async fn send_rpc(target: &Target, command: &Command) -> Result<Ack, DriverError> {
    match command {
        Command::Sleep => control::command(target, "pause", None).await,
        Command::Wake => control::command(target, "resume", None).await,
        Command::RestartMining => control::restart(target).await,
        Command::SetPools { pools } => control::set_pools(target, pools).await,
        other => Err(DriverError::Unsupported(format!(
            "braiins {} is not carried by the cgminer-compatible API",
            other.name()
        ))),
    }
}
