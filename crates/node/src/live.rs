//! Live state: every managed device with what its latest poll saw, in memory, for the API,
//! `/metrics` and the exporters. The poller writes it; everyone else reads it.
//!
//! Devices have a dense index (their position in the table) so the poller and the store can
//! refer to them with a `u32`; the table only grows (a device that vanished stays, offline).

use hashmesh_core::{DeviceId, DeviceKind, Location, MeterSnapshot, MinerSnapshot, MinerStatus};
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

/// What a device is and where it stands (from the inventory).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    /// Stable id.
    pub id: DeviceId,
    /// Current address.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// Kind of equipment.
    pub kind: DeviceKind,
    /// Driver family, or meter register map.
    #[schema(value_type = String)]
    pub family: Arc<str>,
    /// Hardware maker.
    #[schema(value_type = String)]
    pub vendor: Arc<str>,
    /// Hardware model.
    #[schema(value_type = String)]
    pub model: Arc<str>,
    /// Firmware and build.
    #[schema(value_type = String)]
    pub firmware: Arc<str>,
    /// MAC address.
    pub mac: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Modbus unit id, for meters.
    pub unit_id: Option<u8>,
    /// Where it stands.
    pub location: Location,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Credential group it logs in with, when not its own entry.
    pub credentials_ref: Option<String>,
    /// Discovery no longer finds it (since this time, unix ms).
    pub missing_since_unix_ms: Option<i64>,
}

/// The state a device is in, as the dashboard and alerts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Not polled yet.
    Unknown,
    /// Hashing normally.
    Mining,
    /// Answering normally (power meters and other equipment that does not hash).
    Online,
    /// Deliberately idle.
    Sleeping,
    /// Hashing with a problem.
    Degraded,
    /// Answering but not hashing, or answering nonsense.
    Error,
    /// The device refused every credential we have.
    AuthFailed,
    /// Not answering.
    Offline,
}

impl DeviceStatus {
    /// Every status, in display order.
    pub const ALL: [DeviceStatus; 8] = [
        DeviceStatus::Mining,
        DeviceStatus::Online,
        DeviceStatus::Degraded,
        DeviceStatus::Sleeping,
        DeviceStatus::Error,
        DeviceStatus::AuthFailed,
        DeviceStatus::Offline,
        DeviceStatus::Unknown,
    ];

    /// Lower-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Unknown => "unknown",
            DeviceStatus::Mining => "mining",
            DeviceStatus::Online => "online",
            DeviceStatus::Sleeping => "sleeping",
            DeviceStatus::Degraded => "degraded",
            DeviceStatus::Error => "error",
            DeviceStatus::AuthFailed => "auth_failed",
            DeviceStatus::Offline => "offline",
        }
    }

    /// The status a successful miner poll reports.
    pub fn from_miner(s: MinerStatus) -> DeviceStatus {
        match s {
            MinerStatus::Mining => DeviceStatus::Mining,
            MinerStatus::Sleeping => DeviceStatus::Sleeping,
            MinerStatus::Degraded => DeviceStatus::Degraded,
            MinerStatus::Error => DeviceStatus::Error,
            MinerStatus::Offline => DeviceStatus::Offline,
        }
    }

    /// A small number for storing the status as a time series.
    pub fn code(self) -> f64 {
        match self {
            DeviceStatus::Unknown => 0.0,
            DeviceStatus::Mining => 1.0,
            DeviceStatus::Sleeping => 2.0,
            DeviceStatus::Degraded => 3.0,
            DeviceStatus::Error => 4.0,
            DeviceStatus::AuthFailed => 5.0,
            DeviceStatus::Offline => 6.0,
            DeviceStatus::Online => 7.0,
        }
    }

    /// The device answers (whatever it says).
    pub fn is_online(self) -> bool {
        !matches!(self, DeviceStatus::Offline | DeviceStatus::Unknown)
    }
}

/// The latest successful reading of a device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "snapshot", rename_all = "snake_case")]
pub enum Reading {
    /// A miner's snapshot.
    Miner(Arc<MinerSnapshot>),
    /// A power meter's snapshot.
    Meter(Arc<MeterSnapshot>),
}

/// Why the last poll failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PollFailure {
    /// Machine-readable kind (`timeout`, `connect`, `auth`, `malformed`, …).
    pub kind: &'static str,
    /// What happened, in words.
    pub message: String,
}

/// What the poller knows about a device now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceState {
    /// Current status.
    pub status: DeviceStatus,
    /// The last successful reading (kept while the device is offline, marked stale by time).
    pub reading: Option<Reading>,
    /// When the last poll finished, unix ms.
    pub last_poll_unix_ms: Option<i64>,
    /// When the last successful poll finished, unix ms.
    pub last_ok_unix_ms: Option<i64>,
    /// Why the last poll failed, when it did.
    pub failure: Option<PollFailure>,
    /// Failed polls in a row.
    pub consecutive_failures: u32,
    /// How long the last poll took, ms.
    pub last_poll_ms: Option<f64>,
}

impl Default for DeviceState {
    fn default() -> Self {
        DeviceState {
            status: DeviceStatus::Unknown,
            reading: None,
            last_poll_unix_ms: None,
            last_ok_unix_ms: None,
            failure: None,
            consecutive_failures: 0,
            last_poll_ms: None,
        }
    }
}

/// One managed device: its identity and its current state.
#[derive(Debug)]
pub struct LiveDevice {
    /// Position in the live table.
    pub index: u32,
    info: RwLock<Arc<DeviceInfo>>,
    state: Mutex<DeviceState>,
}

impl LiveDevice {
    /// Identity and location (cheap clone of an `Arc`).
    pub fn info(&self) -> Arc<DeviceInfo> {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces identity and location.
    pub fn set_info(&self, info: DeviceInfo) {
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(info);
    }

    /// A copy of the current state.
    pub fn state(&self) -> DeviceState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on the state under its lock.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut DeviceState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Every managed device.
#[derive(Debug, Default)]
pub struct LiveState {
    inner: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    devices: Vec<Arc<LiveDevice>>,
    by_id: HashMap<DeviceId, u32>,
}

impl LiveState {
    /// An empty table.
    pub fn new() -> Self {
        LiveState::default()
    }

    /// Adds a device, or updates the identity of a known one; returns it and whether it is new.
    pub fn upsert(&self, info: DeviceInfo) -> (Arc<LiveDevice>, bool) {
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&i) = t.by_id.get(&info.id) {
            let d = t.devices[i as usize].clone();
            d.set_info(info);
            return (d, false);
        }
        let index = t.devices.len() as u32;
        t.by_id.insert(info.id.clone(), index);
        let d = Arc::new(LiveDevice {
            index,
            info: RwLock::new(Arc::new(info)),
            state: Mutex::new(DeviceState::default()),
        });
        t.devices.push(d.clone());
        (d, true)
    }

    /// A device by index.
    pub fn get(&self, index: u32) -> Option<Arc<LiveDevice>> {
        let t = self.inner.read().unwrap_or_else(|e| e.into_inner());
        t.devices.get(index as usize).cloned()
    }

    /// A device by id.
    pub fn by_id(&self, id: &DeviceId) -> Option<Arc<LiveDevice>> {
        let t = self.inner.read().unwrap_or_else(|e| e.into_inner());
        t.by_id
            .get(id)
            .and_then(|&i| t.devices.get(i as usize).cloned())
    }

    /// Every device, in index order.
    pub fn all(&self) -> Vec<Arc<LiveDevice>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .devices
            .clone()
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .devices
            .len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
