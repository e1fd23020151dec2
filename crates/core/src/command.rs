//! What an operator can ask a device to do, and how it turned out.

use serde::{Deserialize, Serialize};

/// A discrete power mode, for firmwares that offer modes rather than (or besides) a watt target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PowerMode {
    /// Low power (efficiency) mode.
    Low,
    /// The factory default.
    Normal,
    /// High performance (overclock) mode.
    High,
}

impl PowerMode {
    /// Lower-case name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerMode::Low => "low",
            PowerMode::Normal => "normal",
            PowerMode::High => "high",
        }
    }
}

impl std::str::FromStr for PowerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(PowerMode::Low),
            "normal" => Ok(PowerMode::Normal),
            "high" => Ok(PowerMode::High),
            other => Err(format!(
                "unknown power mode '{other}' (expected low, normal or high)"
            )),
        }
    }
}

/// One pool entry to configure on a miner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolConfig {
    /// Stratum URL, e.g. `stratum+tcp://pool.example:3333`.
    pub url: String,
    /// Worker name.
    pub user: String,
    /// Worker password (pools mostly ignore it; `x` is customary).
    pub password: String,
}

/// A command an operator can send to a miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Reboot the controller.
    Reboot,
    /// Restart the mining process without rebooting.
    RestartMining,
    /// Replace the pool list, first entry highest priority.
    SetPools {
        /// The new pools, in priority order.
        pools: Vec<PoolConfig>,
    },
    /// Switch to a discrete power mode.
    SetPowerMode {
        /// The mode to switch to.
        mode: PowerMode,
    },
    /// Tune to a power target.
    SetPowerTarget {
        /// Target power draw.
        power_w: u32,
    },
    /// Stop hashing but stay reachable.
    Sleep,
    /// Resume hashing after sleep.
    Wake,
    /// Switch the locate LED on or off.
    LocateLed {
        /// Whether the LED should be on.
        on: bool,
    },
}

impl Command {
    /// Short name used in logs and the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Reboot => "reboot",
            Command::RestartMining => "restart_mining",
            Command::SetPools { .. } => "set_pools",
            Command::SetPowerMode { .. } => "set_power_mode",
            Command::SetPowerTarget { .. } => "set_power_target",
            Command::Sleep => "sleep",
            Command::Wake => "wake",
            Command::LocateLed { .. } => "locate_led",
        }
    }
}

/// How a command ended, after the device's state was read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandResult {
    /// The device's state shows the command took effect.
    Confirmed,
    /// The device accepted the command, but its state could not show whether it took effect.
    Unverified,
    /// The device refused, failed, or its state shows the command did not take effect.
    Failed,
    /// This device cannot do this command.
    Unsupported,
}

/// The outcome of one command on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandOutcome {
    /// The command that was sent.
    pub command: Command,
    /// How it ended.
    pub result: CommandResult,
    /// The device accepted the write (it answered OK), before any read-back.
    pub accepted: bool,
    /// What happened, in words: the device's own message, or what the read-back showed.
    pub message: String,
    /// Time from sending to the final verdict.
    pub elapsed_ms: u64,
}
