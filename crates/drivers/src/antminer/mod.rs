//! Antminer stock firmware (Bitmain bmminer) over the cgminer RPC on 4028 (PROTOCOLS.md §2.1):
//! `version` for identity, one `summary+stats+pools` request per poll (single commands for
//! firmwares that refuse multi-commands, remembered per device), and both `stats` layouts.
//!
//! Stock firmware reports no power, so the snapshot carries a nameplate estimate (J/TH ×
//! hashrate, marked `Nameplate`). Writes over 4028 are limited to `restart` and pools; the web
//! interface (sleep, mode, LED, reboot) is to be added as `web.rs`, called from [`Driver::send`].

pub mod control;
pub mod parse;

use crate::cgminer::control::request;
use crate::cgminer::parse::{PoolsReply, SummaryReply};
use crate::cgminer::reply::{Decoded, decode};
use crate::cgminer::{SingleCommandDevices, proto};
use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use async_trait::async_trait;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot};
use parse::AntStats;

/// Driver for Antminer stock firmware (name `antminer`).
#[derive(Debug, Default)]
pub struct AntminerDriver {
    single: SingleCommandDevices,
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
        // Only what bmminer's 4028 interface allows; sleep, modes, LED and reboot need port 80.
        Capabilities {
            restart_mining: true,
            set_pools: true,
            ..Capabilities::default()
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let raw = request(target, "version", None).await?;
        parse::antminer_identity(&raw)
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
        control::send_rpc(target, command).await
    }
}
