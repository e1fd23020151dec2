//! The cgminer RPC family (TCP 4028): the transport every fork shares (`proto`), the repair pass
//! for the malformed JSON real firmwares send (`repair`), shared reply pieces (`reply`), the
//! sections every fork shares and their mapping to snapshots (`parse`), cgminer-level commands
//! (`control`), and [`CgminerDriver`], the driver for plain cgminer and BFGMiner.
//!
//! Plain cgminer knows nothing of the hardware it drives: it reports hashrate, devices (boards),
//! pools and shares, but no fans, power or nominal rate, and it has no sleep, LED or power
//! commands. The driver claims only what it can do: restart the mining process and set pools.

pub mod control;
pub mod parse;
pub mod proto;
pub mod repair;
pub mod reply;

use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::target::Target;
use async_trait::async_trait;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot};
use parse::{CgminerMulti, DevsReply, PoolsReply, SummaryReply};
use reply::{CODE_ACCESS_DENIED, Decoded, StatusEntry, decode};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

/// A set of devices (by RPC address) a driver remembers something about, shared safely between
/// concurrent polls; a poisoned lock still gives its data (a set of addresses cannot be left
/// half-written).
#[derive(Debug, Default)]
pub struct DeviceSet(Mutex<HashSet<SocketAddr>>);

impl DeviceSet {
    fn with<R>(&self, f: impl FnOnce(&mut HashSet<SocketAddr>) -> R) -> R {
        match self.0.lock() {
            Ok(mut set) => f(&mut set),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.with(|set| set.contains(&addr))
    }

    /// Adds `addr`.
    pub fn insert(&self, addr: SocketAddr) {
        self.with(|set| set.insert(addr));
    }

    /// Removes `addr`.
    pub fn remove(&self, addr: SocketAddr) {
        self.with(|set| set.remove(&addr));
    }
}

/// Devices that do not answer multi-command requests (`summary+pools`), remembered so their
/// later polls go straight to single commands (PROTOCOLS.md §1.4).
pub type SingleCommandDevices = DeviceSet;

/// What a multi-command reply without the expected sections means: access denied is an error
/// to report; anything else (Code 14 invalid command, a fork answering only one command) means
/// the device wants single commands.
pub fn multi_refusal(status: Option<&StatusEntry>) -> Result<(), DriverError> {
    match status {
        Some(s) if s.code() == Some(CODE_ACCESS_DENIED) => Err(DriverError::Auth(s.msg.0.clone())),
        _ => Ok(()),
    }
}

/// [`multi_refusal`] for forks that always refuse a multi-command with an error STATUS (Avalon,
/// LuxOS): `Ok` means fall back to single commands; access denied is `Auth`; a reply with
/// neither the sections nor an error STATUS is `Malformed` (`raw` quoted in the message).
pub fn multi_refusal_strict(status: Option<&StatusEntry>, raw: &[u8]) -> Result<(), DriverError> {
    match status {
        Some(s) if s.is_error() => match reply::check_status(Some(s)) {
            Err(auth @ DriverError::Auth(_)) => Err(auth),
            _ => Ok(()),
        },
        _ => Err(DriverError::Malformed(format!(
            "poll reply has no summary or stats: {}",
            reply::excerpt(raw)
        ))),
    }
}

/// Driver for plain cgminer and BFGMiner (name `cgminer`).
#[derive(Debug, Default)]
pub struct CgminerDriver {
    single: SingleCommandDevices,
}

impl CgminerDriver {
    /// A driver with no per-device memory yet.
    pub fn new() -> Self {
        CgminerDriver::default()
    }

    async fn poll_single(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let (summary, pools, devs) = tokio::join!(
            control::request(target, "summary", None),
            control::request(target, "pools", None),
            control::request(target, "devs", None),
        );
        let summary: Decoded<SummaryReply> = decode(&summary?)?;
        let pools: Decoded<PoolsReply> = decode(&pools?)?;
        // Devices are optional: a fork without `devs` still has a summary worth reporting.
        let devs: Option<Decoded<DevsReply>> = devs.ok().and_then(|raw| decode(&raw).ok());
        let partial =
            summary.truncated || pools.truncated || devs.as_ref().is_some_and(|d| d.truncated);
        parse::cgminer_snapshot(
            crate::now_unix_ms(),
            Some(&summary.value),
            Some(&pools.value),
            devs.as_ref().map(|d| &d.value),
            partial,
        )
    }
}

#[async_trait]
impl Driver for CgminerDriver {
    fn name(&self) -> &'static str {
        "cgminer"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            restart_mining: true,
            set_pools: true,
            ..Capabilities::default()
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        let (version, devdetails) = tokio::join!(
            control::request(target, "version", None),
            control::request(target, "devdetails", None),
        );
        parse::cgminer_identity(&version?, devdetails.ok().as_deref())
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let addr = target.rpc_addr();
        if !self.single.contains(addr) {
            let raw = control::request(target, "summary+pools+devs", None).await?;
            let d: Decoded<CgminerMulti> = decode(&raw)?;
            if d.value.summary.get().is_some() {
                let m = &d.value;
                return parse::cgminer_snapshot(
                    crate::now_unix_ms(),
                    m.summary.get(),
                    m.pools.get(),
                    m.devs.get(),
                    d.truncated || parse::cut_at_cap(m.id),
                );
            }
            multi_refusal(d.value.status.get())?;
            tracing::debug!(%addr, "multi-command refused; using single commands");
            self.single.insert(addr);
        }
        self.poll_single(target).await
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        match command {
            Command::RestartMining => control::restart(target).await,
            Command::SetPools { pools } => control::set_pools(target, pools).await,
            other => Err(DriverError::Unsupported(format!(
                "cgminer cannot {}",
                other.name()
            ))),
        }
    }
}
