//! Antminer commands over 4028. Stock bmminer's RPC is read-mostly: only cgminer's `restart`
//! and pool commands exist there, and only when the device's `api-allow` grants write access
//! (otherwise Code 45, reported as an authentication error). Sleep, power modes, the locate LED
//! and reboot live on the web CGI interface (port 80, PROTOCOLS.md §2.2), which belongs in a
//! `web.rs` beside this file; `send` in `mod.rs` is where those commands will be routed.

use crate::cgminer::control;
use crate::driver::Ack;
use crate::error::DriverError;
use crate::target::Target;
use hashmesh_core::Command;

/// Sends a command that the 4028 interface can carry.
pub async fn send_rpc(target: &Target, command: &Command) -> Result<Ack, DriverError> {
    match command {
        Command::RestartMining => control::restart(target).await,
        Command::SetPools { pools } => control::set_pools(target, pools).await,
        other => Err(DriverError::Unsupported(format!(
            "antminer {} needs the web interface (port 80), which this driver does not use yet",
            other.name()
        ))),
    }
}
