//! Avalon (Canaan) miners: Canaan's cgminer 4.11.1 fork on TCP 4028 (PROTOCOLS.md §3).
//!
//! Reads: `version` for identity; one `summary+estats+pools` connection per poll, falling back
//! to single commands (remembered per device) where the multi-command form is refused. The
//! telemetry lives in the `MM ID` strings of `estats` ([`mmid`]). Writes: privileged `ascset`
//! options (soft-off/on, LED, work level, reboot) ([`control`]), and cgminer `restart` and pool
//! commands ([`crate::cgminer::control`]); each is confirmed by reading `estats`/`pools` back.

pub mod control;
pub mod mmid;
pub mod parse;

use crate::cgminer::SingleCommandDevices;
use crate::cgminer::control::{self as control_rpc, closed_without_reply, request};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use crate::verify::Verdict;
use async_trait::async_trait;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot};

/// Driver for Avalon miners on Canaan's stock firmware.
#[derive(Debug)]
pub struct AvalonDriver {
    /// Devices that refused the multi-command poll and get single commands instead.
    single_command: SingleCommandDevices,
    /// How far ahead soft-off / soft-on are scheduled.
    soft_switch_lead_s: u64,
}

impl Default for AvalonDriver {
    fn default() -> Self {
        AvalonDriver {
            single_command: SingleCommandDevices::default(),
            soft_switch_lead_s: control::SOFT_SWITCH_LEAD_S,
        }
    }
}

impl AvalonDriver {
    /// A driver with the default soft-switch lead time.
    pub fn new() -> Self {
        AvalonDriver::default()
    }

    /// The same driver scheduling soft-off / soft-on `lead_s` seconds ahead (at least 1).
    pub fn with_soft_switch_lead_s(mut self, lead_s: u64) -> Self {
        self.soft_switch_lead_s = lead_s.max(1);
        self
    }

    /// The poll as three separate requests, for firmwares without multi-command support.
    async fn poll_single(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let (summary, cut_a) = parse::parse_summary(&request(target, "summary", None).await?)?;
        let (modules, cut_b) = match parse::parse_stats(&request(target, "estats", None).await?) {
            Ok(m) => m,
            // Older builds lack `estats`; `stats` carries the same MM ID strings.
            Err(DriverError::Rejected(_)) => {
                parse::parse_stats(&request(target, "stats", None).await?)?
            }
            Err(e) => return Err(e),
        };
        let (pools, cut_c) = parse::parse_pools(&request(target, "pools", None).await?)?;
        Ok(parse::snapshot_from(
            summary.as_ref(),
            &modules,
            &pools,
            cut_a || cut_b || cut_c,
            crate::now_unix_ms(),
        ))
    }

    /// One `ascset` write.
    async fn ascset(&self, target: &Target, parameter: &str) -> Result<Ack, DriverError> {
        control_rpc::command(target, "ascset", Some(parameter)).await
    }
}

fn silent(what: &str) -> Ack {
    Ack {
        message: format!("{what}: the device closed the connection without replying"),
        silent: true,
    }
}

#[async_trait]
impl Driver for AvalonDriver {
    fn name(&self) -> &'static str {
        "avalon"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reboot: true,
            restart_mining: true,
            set_pools: true,
            power_mode: true,
            // Work levels are steps, not watts: there is no way to ask for a number of watts.
            power_target: false,
            sleep_wake: true,
            locate_led: true,
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let raw = request(target, "version", None).await?;
        parse::parse_identity(&raw)
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        if !self.single_command.contains(addr) {
            let raw = request(target, parse::POLL_COMMAND, None).await?;
            match parse::parse_poll(&raw, crate::now_unix_ms()) {
                Ok(Some(snapshot)) => return Ok(snapshot),
                Ok(None) => self.single_command.insert(addr),
                Err(e) => return Err(e),
            }
        }
        self.poll_single(target).await
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        let lead = self.soft_switch_lead_s;
        match command {
            Command::Sleep => {
                self.ascset(target, &control::soft_off(control::now_unix_s() + lead))
                    .await
            }
            Command::Wake => match self
                .ascset(target, &control::soft_on(control::now_unix_s() + lead))
                .await
            {
                Err(e) if closed_without_reply(&e) => Ok(silent("softon")),
                other => other,
            },
            Command::LocateLed { on } => self.ascset(target, &control::led(*on)).await,
            Command::SetPowerMode { mode } => {
                self.ascset(target, &control::work_mode(control::work_mode_for(*mode)))
                    .await
            }
            Command::SetPowerTarget { .. } => Err(DriverError::Unsupported(
                "Avalon work levels are steps, not a watt target".into(),
            )),
            Command::Reboot => match self.ascset(target, &control::reboot()).await {
                Err(e) if closed_without_reply(&e) => Ok(silent("reboot")),
                // Builds without the ascset reboot option still restart through the RPC.
                Err(DriverError::Rejected(_)) => self.send(target, &Command::RestartMining).await,
                other => other,
            },
            Command::RestartMining => match control_rpc::command(target, "restart", None).await {
                Err(e) if closed_without_reply(&e) => Ok(silent("restart")),
                other => other,
            },
            Command::SetPools { pools } => control_rpc::set_pools(target, pools).await,
        }
    }

    fn check(
        &self,
        command: &Command,
        before: Option<&MinerSnapshot>,
        after: &MinerSnapshot,
    ) -> Verdict {
        control::check(command, before, after)
    }
}
