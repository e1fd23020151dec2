//! LuxOS (Luxor's LUXminer firmware for Antminers): a cgminer-compatible API on TCP 4028 with
//! extra reports (`power`, `fans`, `temps`, `config`, `profiles`) and session-guarded writes
//! (PROTOCOLS.md §5.2).
//!
//! Reads: `version+config` for identity; one multi-command connection per poll, falling back to
//! single commands (remembered per device). Writes: `logon`/`session` then `curtail`, `ledset`,
//! `rebootdevice`, `resetminer`, `profileset` with the session id first, then `logoff`; pools
//! through cgminer pool commands, which need no session ([`crate::cgminer::control`]).

pub mod control;
pub mod parse;

use crate::cgminer::SingleCommandDevices;
use crate::cgminer::control::{
    self as control_rpc, PoolWrites, closed_without_reply, request, set_pools_with,
};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use crate::verify::{self, Verdict, VerifyPolicy};
use async_trait::async_trait;
use hashmesh_core::{Command, CommandOutcome, CommandResult, DeviceIdentity, MinerSnapshot};

/// Driver for miners running LuxOS.
#[derive(Debug, Default)]
pub struct LuxosDriver {
    /// Devices that refused the multi-command poll and get single commands instead.
    single_command: SingleCommandDevices,
}

impl LuxosDriver {
    /// A new driver.
    pub fn new() -> Self {
        LuxosDriver::default()
    }

    /// The poll as single requests; only `summary` is required, the rest are best effort.
    async fn poll_single(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let get = |cmd: &'static str| async move { request(target, cmd, None).await };
        let (summary, cut) = parse::parse_single::<parse::SummaryReply>(&get("summary").await?)?;
        let mut parts = parse::PollParts {
            summary: summary.summary.into_inner(),
            partial: cut,
            ..Default::default()
        };
        macro_rules! optional {
            ($cmd:literal, $ty:ty, |$r:ident| $apply:expr) => {
                if let Ok(raw) = get($cmd).await {
                    if let Ok(($r, cut)) = parse::parse_single::<$ty>(&raw) {
                        parts.partial |= cut;
                        $apply;
                    }
                }
            };
        }
        optional!("stats", parse::StatsReply, |r| parts.stats = r.stats);
        optional!("pools", parse::PoolsReply, |r| parts.pools = r.pools.0);
        optional!("power", parse::PowerReply, |r| parts.power =
            r.power.into_inner());
        optional!("fans", parse::FansReply, |r| parts.fans = r.fans);
        optional!("temps", parse::TempsReply, |r| parts.temps = r.temps);
        optional!("config", parse::ConfigReply, |r| parts.config =
            r.config.into_inner());
        optional!("profiles", parse::ProfilesReply, |r| parts.profiles =
            r.profiles);
        Ok(parse::snapshot_from(&parts, crate::now_unix_ms()))
    }

    /// Runs one session command: open (or reuse) a session, send, log off.
    async fn with_session(
        &self,
        target: &Target,
        command: &str,
        args: &[&str],
    ) -> Result<Ack, DriverError> {
        let addr = target.rpc_addr();
        let t = &target.timeouts;
        let session = control::open_session(addr, t).await?;
        let param = control::session_param(&session.id, args);
        let result = match control_rpc::command(target, command, Some(&param)).await {
            Ok(ack) => Ok(ack),
            // Reboots may drop the connection before answering; the read-back decides.
            Err(e) if command == "rebootdevice" && closed_without_reply(&e) => Ok(Ack {
                message: "rebootdevice: connection closed without a reply".into(),
                silent: true,
            }),
            Err(e) => Err(e),
        };
        control::close_session(addr, t, &session).await;
        result
    }

    /// Switches to the named profile.
    async fn profileset(&self, target: &Target, profile: &str) -> Result<Ack, DriverError> {
        let mut ack = self.with_session(target, "profileset", &[profile]).await?;
        ack.message = format!("profile {profile}: {}", ack.message);
        Ok(ack)
    }
}

#[async_trait]
impl Driver for LuxosDriver {
    fn name(&self) -> &'static str {
        "luxos"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reboot: true,
            restart_mining: true,
            set_pools: true,
            power_mode: true,
            power_target: true,
            sleep_wake: true,
            locate_led: true,
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let raw = request(target, parse::IDENTIFY_COMMAND, None).await?;
        match parse::parse_identity(&raw) {
            Ok(id) => Ok(id),
            // Without multi-command support, `version` alone still names model and build.
            Err(DriverError::Malformed(_) | DriverError::Rejected(_)) => {
                parse::parse_identity(&request(target, "version", None).await?)
            }
            Err(e) => Err(e),
        }
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        if !self.single_command.contains(addr) {
            let raw = request(target, parse::POLL_COMMAND, None).await?;
            match parse::parse_poll(&raw, crate::now_unix_ms())? {
                Some(snapshot) => return Ok(snapshot),
                None => self.single_command.insert(addr),
            }
        }
        self.poll_single(target).await
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        let addr = target.rpc_addr();
        let t = &target.timeouts;
        match command {
            Command::Sleep => {
                self.with_session(target, "curtail", control::curtail_args(true))
                    .await
            }
            Command::Wake => {
                self.with_session(target, "curtail", control::curtail_args(false))
                    .await
            }
            Command::LocateLed { on } => {
                self.with_session(target, "ledset", control::ledset_args(*on))
                    .await
            }
            Command::Reboot => self.with_session(target, "rebootdevice", &[]).await,
            Command::RestartMining => self.with_session(target, "resetminer", &[]).await,
            Command::SetPowerMode { mode } => {
                let profiles = control::read_profiles(addr, t).await?;
                let p = parse::profile_for_mode(*mode, &profiles).ok_or_else(|| {
                    DriverError::Unsupported(format!("no LuxOS profile for {} mode", mode.as_str()))
                })?;
                let name = p.name.trimmed().to_string();
                self.profileset(target, &name).await
            }
            Command::SetPowerTarget { power_w } => {
                let profiles = control::read_profiles(addr, t).await?;
                let p = parse::profile_nearest(*power_w, &profiles).ok_or_else(|| {
                    DriverError::Unsupported("the miner lists no profiles with power".into())
                })?;
                let name = p.name.trimmed().to_string();
                self.profileset(target, &name).await
            }
            // LuxOS documents no `poolpriority`: the pools are added in order instead.
            Command::SetPools { pools } => {
                let how = PoolWrites {
                    use_poolpriority: false,
                };
                set_pools_with(target, pools, how).await
            }
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

    /// A power target lands on the nearest profile, so the read-back compares against that
    /// profile's power, not the number asked for.
    async fn execute(
        &self,
        target: &Target,
        command: &Command,
        policy: &VerifyPolicy,
    ) -> CommandOutcome {
        let Command::SetPowerTarget { power_w } = command else {
            return verify::execute(self, target, command, policy).await;
        };
        let started = std::time::Instant::now();
        let chosen = match control::read_profiles(target.rpc_addr(), &target.timeouts).await {
            Ok(profiles) => parse::profile_nearest(*power_w, &profiles)
                .and_then(|p| p.watts.get().map(|w| (p.name.trimmed().to_string(), w))),
            Err(e) => {
                return CommandOutcome {
                    command: command.clone(),
                    result: CommandResult::Failed,
                    accepted: false,
                    message: format!("set_power_target: reading profiles failed: {e}"),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                };
            }
        };
        let Some((name, watts)) = chosen else {
            return CommandOutcome {
                command: command.clone(),
                result: CommandResult::Unsupported,
                accepted: false,
                message: "the miner lists no profiles with power".into(),
                elapsed_ms: started.elapsed().as_millis() as u64,
            };
        };
        let exact = Command::SetPowerTarget {
            power_w: watts.round().max(0.0) as u32,
        };
        let mut outcome = verify::execute(self, target, &exact, policy).await;
        outcome.command = command.clone();
        outcome.message = format!("nearest profile {name} ({watts} W): {}", outcome.message);
        outcome.elapsed_ms = started.elapsed().as_millis() as u64;
        outcome
    }
}
