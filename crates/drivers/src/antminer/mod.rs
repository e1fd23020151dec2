//! Antminer stock firmware (Bitmain bmminer) over the cgminer RPC on 4028 (PROTOCOLS.md §2.1):
//! `version` for identity, one `summary+stats+pools` request per poll (single commands for
//! firmwares that refuse multi-commands, remembered per device), and both `stats` layouts.
//!
//! Stock firmware reports no power, so the snapshot carries a nameplate estimate (J/TH ×
//! hashrate, marked `Nameplate`). Telemetry comes from 4028; writes go to the web CGI interface
//! on the target's web port ([`web`]: sleep/wake and modes via `miner-mode`, pools, the locate
//! LED, reboot), except `restart`, which only the RPC has. Identity adds MAC, serial and host
//! name from `get_system_info.cgi` when the web interface answers.

pub mod control;
pub mod parse;
pub mod web;

use crate::cgminer::control::request;
use crate::cgminer::parse::{PoolsReply, SummaryReply};
use crate::cgminer::reply::{Decoded, decode};
use crate::cgminer::{SingleCommandDevices, proto};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use crate::verify::VerifyPolicy;
use async_trait::async_trait;
use hashmesh_core::{Command, CommandOutcome, DeviceIdentity, MinerSnapshot};
use parse::AntStats;
use web::WebClient;

/// Driver for Antminer stock firmware (name `antminer`).
#[derive(Debug, Default)]
pub struct AntminerDriver {
    single: SingleCommandDevices,
    /// Keep-alive connections and Digest logins of the web interfaces.
    web: WebClient,
}

impl AntminerDriver {
    /// A driver with no per-device memory yet.
    pub fn new() -> Self {
        AntminerDriver::default()
    }

    /// Reads summary, stats and pools as three single commands.
    async fn poll_single(
        &self,
        target: &Target,
    ) -> Result<(SummaryReply, AntStats, PoolsReply, bool), DriverError> {
        let (summary, stats, pools) = tokio::join!(
            request(target, "summary", None),
            request(target, "stats", None),
            request(target, "pools", None),
        );
        let summary: Decoded<SummaryReply> = decode(&summary?)?;
        let (stats, stats_cut) = parse::parse_legacy_stats(&stats?)?;
        let pools: Decoded<PoolsReply> = decode(&pools?)?;
        let partial = summary.truncated || stats_cut || pools.truncated;
        Ok((summary.value, stats, pools.value, partial))
    }
}

#[async_trait]
impl Driver for AntminerDriver {
    fn name(&self) -> &'static str {
        "antminer"
    }

    fn capabilities(&self) -> Capabilities {
        // `restart` over 4028 (when api-allow grants writes); the rest over the web CGI API.
        // Stock firmware has modes but no watt target, and no high-power mode.
        Capabilities {
            reboot: true,
            restart_mining: true,
            set_pools: true,
            power_mode: true,
            power_target: false,
            sleep_wake: true,
            locate_led: true,
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let raw = request(target, "version", None).await?;
        let mut id = parse::antminer_identity(&raw)?;
        // The web details are a bonus: a device with its web interface off or other
        // credentials is still identified by its RPC.
        match web::system_info(&self.web, target).await {
            Ok(info) => {
                id.mac = info.macaddr.non_empty().map(str::to_owned);
                id.serial = info.serinum.non_empty().map(str::to_owned);
                id.hostname = info.hostname.non_empty().map(str::to_owned);
            }
            Err(e) => tracing::debug!(addr = %target.web_addr(), "no web identity: {e}"),
        }
        Ok(id)
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        let now_ms = crate::now_unix_ms();
        let (summary, mut stats, pools, mut partial) = 'read: {
            if !self.single.contains(addr) {
                let raw = request(target, "summary+stats+pools", None).await?;
                if let Some(parts) = parse::decode_antminer_multi(&raw)? {
                    break 'read parts;
                }
                tracing::debug!(%addr, "multi-command refused; using single commands");
                self.single.insert(addr);
            }
            self.poll_single(target).await?
        };
        if stats.chains.is_empty() {
            // Newer X19/X21 builds may keep board data only in the `new_api` layout.
            let req = proto::json_request_with("stats", "\"new_api\":true");
            let fetched = proto::exchange(addr, &req, &target.timeouts).await;
            if let Ok((new_stats, cut)) = fetched.and_then(|raw| parse::parse_new_api_stats(&raw))
                && !new_stats.chains.is_empty()
            {
                stats = new_stats;
                partial |= cut;
            }
        }
        parse::antminer_snapshot(now_ms, Some(&summary), &stats, Some(&pools), partial)
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        control::send(&self.web, target, command).await
    }

    fn housekeep(&self) {
        self.web.housekeep();
    }

    async fn execute(
        &self,
        target: &Target,
        command: &Command,
        policy: &VerifyPolicy,
    ) -> CommandOutcome {
        match command {
            // The LED state is only on the web interface, not in the 4028 snapshot.
            Command::LocateLed { on } => {
                control::execute_led(self, &self.web, target, *on, policy).await
            }
            Command::Sleep | Command::Wake | Command::SetPowerMode { .. } => {
                let outcome = crate::verify::execute(self, target, command, policy).await;
                control::confirm_conf_mode(&self.web, target, command, outcome).await
            }
            _ => crate::verify::execute(self, target, command, policy).await,
        }
    }
}
