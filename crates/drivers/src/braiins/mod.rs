//! Braiins OS (bosminer / BOSer) through its cgminer-compatible API on 4028 (PROTOCOLS.md
//! §5.1): identity from `version` and `devdetails`; per poll one multi-command with summary,
//! pools, boards, fans, temperatures and the autotuner's power figures (single commands for
//! firmwares that refuse it, remembered per device). Writes go over the REST API on the web
//! port ([`rest`]): power target, locate LED, pause / resume / reboot; sleep and wake fall back
//! to `pause` / `resume` on 4028 when no web port answers.
//!
//! Power modes: Braiins has no low / normal / high presets (its tuner takes a watt or hashrate
//! target), so `SetPowerMode` is unsupported; use `SetPowerTarget`.

pub mod control;
pub mod parse;
pub mod rest;

use crate::cgminer::control::request;
use crate::cgminer::reply::decode;
use crate::cgminer::{DeviceSet, SingleCommandDevices};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use async_trait::async_trait;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot};

/// The poll's multi-command.
pub const POLL_COMMAND: &str = "summary+pools+devs+devdetails+fans+temps+tunerstatus";

/// Driver for Braiins OS (name `braiins`).
#[derive(Debug, Default)]
pub struct BraiinsDriver {
    single: SingleCommandDevices,
    /// Devices this driver paused: a paused bosminer reports zero hashrate but, on some
    /// versions, no paused state over this API, so this tells sleeping from failed.
    paused: DeviceSet,
    /// REST sessions and connections for the writes.
    rest: rest::RestClient,
}

impl BraiinsDriver {
    /// A driver with no per-device memory yet.
    pub fn new() -> Self {
        BraiinsDriver::default()
    }

    async fn poll_single(
        &self,
        target: &Target,
        paused: bool,
    ) -> Result<MinerSnapshot, DriverError> {
        let (summary, pools, devs, devdetails, fans, temps, tuner) = tokio::join!(
            request(target, "summary", None),
            request(target, "pools", None),
            request(target, "devs", None),
            request(target, "devdetails", None),
            request(target, "fans", None),
            request(target, "temps", None),
            request(target, "tunerstatus", None),
        );
        let summary = decode::<crate::cgminer::parse::SummaryReply>(&summary?)?;
        let pools = decode::<crate::cgminer::parse::PoolsReply>(&pools?)?;
        // The rest are optional: older versions lack some of these commands.
        let devs = devs
            .ok()
            .and_then(|r| decode::<crate::cgminer::parse::DevsReply>(&r).ok());
        let devdetails = devdetails
            .ok()
            .and_then(|r| decode::<crate::cgminer::parse::DevDetailsReply>(&r).ok());
        let fans = fans.ok().and_then(|r| decode::<parse::FansReply>(&r).ok());
        let temps = temps
            .ok()
            .and_then(|r| decode::<parse::TempsReply>(&r).ok());
        let tuner = tuner
            .ok()
            .and_then(|r| decode::<parse::TunerReply>(&r).ok());
        let partial = summary.truncated || pools.truncated;
        let parts = parse::BraiinsParts {
            summary: Some(&summary.value),
            pools: Some(&pools.value),
            devs: devs.as_ref().map(|d| &d.value),
            devdetails: devdetails.as_ref().map(|d| &d.value),
            fans: fans.as_ref().map(|d| &d.value),
            temps: temps.as_ref().map(|d| &d.value),
            tuner: tuner.as_ref().map(|d| &d.value),
        };
        parse::braiins_snapshot(crate::now_unix_ms(), parts, paused, partial)
    }
}

#[async_trait]
impl Driver for BraiinsDriver {
    fn name(&self) -> &'static str {
        "braiins"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reboot: true,
            restart_mining: true,
            set_pools: true,
            power_target: true,
            sleep_wake: true,
            locate_led: true,
            ..Capabilities::default()
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let (version, devdetails) = tokio::join!(
            request(target, "version", None),
            request(target, "devdetails", None)
        );
        parse::braiins_identity(&version?, devdetails.ok().as_deref())
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let mut snap = self.poll_rpc(target).await?;
        // Only a device this driver has written to over REST is read there too: the extra
        // round trips are for read-back, not for every poll of the fleet.
        if self.rest.has_session(target.web_addr()) {
            let (led, power_target_w) = self.rest.read_back(target).await;
            snap.locate_led_on = led.or(snap.locate_led_on);
            snap.power_target_w = power_target_w.or(snap.power_target_w);
        }
        Ok(snap)
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        let ack = match command {
            Command::SetPowerTarget { power_w } => {
                self.rest.set_power_target(target, *power_w).await?
            }
            Command::LocateLed { on } => self.rest.set_locate(target, *on).await?,
            Command::Reboot => self.rest.action(target, "reboot").await?,
            Command::Sleep | Command::Wake => {
                let action = if *command == Command::Sleep {
                    "pause"
                } else {
                    "resume"
                };
                match self.rest.action(target, action).await {
                    Ok(ack) => ack,
                    Err(e) if e.is_offline() => {
                        tracing::debug!(addr = %target.web_addr(), "no REST API; using 4028");
                        control::send_rpc(target, command).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            Command::SetPowerMode { .. } => {
                return Err(DriverError::Unsupported(
                    "Braiins OS has no low/normal/high modes; set a power target instead".into(),
                ));
            }
            _ => control::send_rpc(target, command).await?,
        };
        match command {
            Command::Sleep => self.paused.insert(target.rpc_addr()),
            Command::Wake => self.paused.remove(target.rpc_addr()),
            _ => {}
        }
        Ok(ack)
    }
}

impl BraiinsDriver {
    async fn poll_rpc(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        let paused = self.paused.contains(addr);
        if !self.single.contains(addr) {
            let raw = request(target, POLL_COMMAND, None).await?;
            if let Some(snap) = parse::parse_braiins_multi(&raw, crate::now_unix_ms(), paused)? {
                return Ok(snap);
            }
            tracing::debug!(%addr, "multi-command refused; using single commands");
            self.single.insert(addr);
        }
        self.poll_single(target, paused).await
    }
}
