//! Modbus TCP power meters (PROTOCOLS.md §7): ABB B23/B24, Schneider PowerLogic PM5xxx and
//! Satec PM180, read with function code 03 on TCP 502.
//!
//! The miner [`Driver`](crate::Driver) trait does not fit a meter (no pools, no commands), so
//! meters have their own small API: [`MeterDriver::poll`] → [`MeterSnapshot`],
//! [`MeterDriver::identify`] → [`MeterIdentity`], and [`probe`] to tell which map a meter at an
//! address speaks.
//!
//! * [`map`] – the register maps as data, one table per model, and the read batching.
//! * [`parse`] – register blocks → snapshot / identity (pure).
//! * [`proto`] – the Modbus TCP transport and its error mapping.
//!
//! One connection per meter (address + unit id) stays open between polls; it is dropped and
//! re-opened after a timeout or a reply that does not match its request.

pub mod map;
pub mod parse;
pub mod proto;

use crate::error::DriverError;
use crate::target::Timeouts;
use hashmesh_core::{MeterIdentity, MeterSnapshot};
use map::{RegisterMap, SatecConfig};
use parse::RegisterBlock;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tokio_modbus::client::Context;

/// The Modbus TCP port of real meters and gateways.
pub const MODBUS_TCP_PORT: u16 = 502;

/// Which register map a meter speaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeterModel {
    /// ABB B23 / B24 (also A43/A44).
    AbbB2x,
    /// Schneider PowerLogic PM5100/5300/5340/5500/5560.
    SchneiderPm5xxx,
    /// Satec PM180 basic block (also PM130/PM135/PM17x), with the meter's configured ranges.
    SatecPm180(SatecConfig),
}

impl MeterModel {
    /// Short stable name of the register map: `abb_b2x`, `schneider_pm5xxx` or `satec_pm180`.
    pub fn name(&self) -> &'static str {
        match self {
            MeterModel::AbbB2x => "abb_b2x",
            MeterModel::SchneiderPm5xxx => "schneider_pm5xxx",
            MeterModel::SatecPm180(_) => "satec_pm180",
        }
    }

    /// The register map a poll of this model reads.
    pub fn register_map(&self) -> RegisterMap {
        match self {
            MeterModel::AbbB2x => map::abb_b2x(),
            MeterModel::SchneiderPm5xxx => map::schneider_pm5xxx(),
            MeterModel::SatecPm180(config) => map::satec_pm180(config),
        }
    }
}

/// One meter to talk to.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterTarget {
    /// Address of the meter or of its Modbus TCP gateway.
    pub addr: SocketAddr,
    /// Modbus unit id (slave address) of the meter behind that address.
    pub unit_id: u8,
    /// The meter's register map.
    pub model: MeterModel,
    /// Deadlines: `connect` for the TCP connect, `total` for the whole poll.
    pub timeouts: Timeouts,
}

impl MeterTarget {
    /// A meter at `ip` on the real-device port 502.
    pub fn new(ip: IpAddr, unit_id: u8, model: MeterModel) -> Self {
        MeterTarget::at(SocketAddr::new(ip, MODBUS_TCP_PORT), unit_id, model)
    }

    /// A meter at an explicit socket address (a simulator, a gateway on another port).
    pub fn at(addr: SocketAddr, unit_id: u8, model: MeterModel) -> Self {
        MeterTarget {
            addr,
            unit_id,
            model,
            timeouts: Timeouts::default(),
        }
    }
}

/// A meter's connection slot: `None` until connected, and again after a fatal read error.
type Slot = Arc<tokio::sync::Mutex<Option<Context>>>;

/// Polls Modbus TCP power meters, keeping one connection per meter open between polls.
#[derive(Default)]
pub struct MeterDriver {
    /// Open connections by (address, unit id).
    connections: Mutex<HashMap<(SocketAddr, u8), Slot>>,
}

impl std::fmt::Debug for MeterDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.connections.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("MeterDriver")
            .field("meters", &open)
            .finish()
    }
}

impl MeterDriver {
    /// A driver with no open connections.
    pub fn new() -> Self {
        MeterDriver::default()
    }

    fn slot(&self, addr: SocketAddr, unit_id: u8) -> Slot {
        match self.connections.lock() {
            Ok(mut map) => map.entry((addr, unit_id)).or_default().clone(),
            // A poisoned map only means another poll panicked; a fresh slot is still correct.
            Err(_) => Slot::default(),
        }
    }

    /// Closes the connection to a meter (the next poll opens a new one).
    pub fn disconnect(&self, addr: SocketAddr, unit_id: u8) {
        if let Ok(mut map) = self.connections.lock() {
            map.remove(&(addr, unit_id));
        }
    }

    /// Reads `batches` over the meter's connection, connecting first when needed; drops the
    /// connection after a timeout or a reply out of step with the request.
    async fn read_batches(
        &self,
        addr: SocketAddr,
        unit_id: u8,
        timeouts: &Timeouts,
        batches: &[map::ReadBatch],
    ) -> Result<Vec<RegisterBlock>, DriverError> {
        let deadline = Instant::now() + timeouts.total;
        let slot = self.slot(addr, unit_id);
        // Another poll of the same meter holds the connection; wait for it within our deadline.
        let mut guard = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|_| DriverError::Timeout(timeouts.total, "modbus connection busy"))?;
        if guard.is_none() {
            let connect_deadline = timeouts.connect.min(timeouts.total);
            *guard = Some(proto::connect(addr, unit_id, connect_deadline).await?);
        }
        let mut blocks = Vec::with_capacity(batches.len());
        for batch in batches {
            let Some(ctx) = guard.as_mut() else {
                return Err(DriverError::Malformed("modbus connection lost".into()));
            };
            match proto::read_holding(ctx, batch.start, batch.count, deadline, timeouts.total).await
            {
                Ok(registers) => blocks.push(RegisterBlock {
                    start: batch.start,
                    registers,
                }),
                Err(e) => {
                    if e.drop_connection {
                        *guard = None;
                    }
                    return Err(e.error);
                }
            }
        }
        Ok(blocks)
    }

    /// `count` registers from `start` over the meter's connection.
    async fn read_one(
        &self,
        target: &MeterTarget,
        start: u16,
        count: u16,
    ) -> Result<Vec<u16>, DriverError> {
        let batch = [map::ReadBatch { start, count }];
        let blocks = self
            .read_batches(target.addr, target.unit_id, &target.timeouts, &batch)
            .await?;
        Ok(blocks
            .into_iter()
            .next()
            .map(|b| b.registers)
            .unwrap_or_default())
    }

    /// One reading of the meter: every register of its map, in batches of ≤ 125 registers.
    pub async fn poll(&self, target: &MeterTarget) -> Result<MeterSnapshot, DriverError> {
        let map = target.model.register_map();
        let blocks = self
            .read_batches(
                target.addr,
                target.unit_id,
                &target.timeouts,
                &map.read_plan(),
            )
            .await?;
        parse::decode(&map, &blocks, crate::now_unix_ms())
    }

    /// The meter's identity from its identification registers (Satec's basic block has none:
    /// its identity is the configured model, confirmed by a successful read of register 256).
    pub async fn identify(&self, target: &MeterTarget) -> Result<MeterIdentity, DriverError> {
        let read = |start, count| self.read_one(target, start, count);
        match target.model {
            MeterModel::AbbB2x => {
                let block = read(parse::ABB_IDENT_START, parse::ABB_IDENT_COUNT).await?;
                parse::decode_abb_identity(&block)
            }
            MeterModel::SchneiderPm5xxx => {
                let block =
                    read(parse::SCHNEIDER_IDENT_START, parse::SCHNEIDER_IDENT_COUNT).await?;
                // Firmware registers are missing on some models; identity stands without them.
                let firmware = read(parse::SCHNEIDER_FIRMWARE_START, 3).await.ok();
                parse::decode_schneider_identity(&block, firmware.as_deref())
            }
            MeterModel::SatecPm180(_) => {
                read(256, 1).await?;
                Ok(MeterIdentity {
                    manufacturer: "Satec".into(),
                    model: "PM180".into(),
                    serial: None,
                    firmware: None,
                })
            }
        }
    }
}

/// Identifies the meter at `addr` (unit `unit_id`): Schneider by its product name (wire
/// address 29), else ABB by its serial number (0x8900). Returns the model and identity, or
/// `Ok(None)` when the device answers Modbus but neither map (a Satec needs its configured
/// ranges, so it is added by configuration, not found by probing).
///
/// Needs: TCP 502 (or the gateway's port) and the unit id; sends at most three FC 03 reads.
pub async fn probe(
    addr: SocketAddr,
    unit_id: u8,
    timeouts: Timeouts,
) -> Result<Option<(MeterModel, MeterIdentity)>, DriverError> {
    let driver = MeterDriver::new();
    let mut last_error = None;
    for model in [MeterModel::SchneiderPm5xxx, MeterModel::AbbB2x] {
        let target = MeterTarget {
            addr,
            unit_id,
            model,
            timeouts,
        };
        match driver.identify(&target).await {
            Ok(identity) => return Ok(Some((model, identity))),
            // An exception or odd content means "not this map": try the next one.
            Err(e @ (DriverError::Rejected(_) | DriverError::Malformed(_))) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    match last_error {
        Some(DriverError::Malformed(m)) if m.contains("another unit id") => {
            Err(DriverError::Malformed(m))
        }
        _ => Ok(None),
    }
}
