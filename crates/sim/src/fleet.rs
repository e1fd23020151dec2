//! A simulated site: N miners on consecutive loopback addresses, laid out in sites,
//! containers, racks, shelves and slots, with a family mix, faults for a share of them, and the
//! power meters of each container after them.
//!
//! Every device is a pure function of the spec and its index ([`FleetSpec::entry`]), so a
//! worker process can start its own range without anyone sending it the whole plan.
//!
//! Each device listens at its real ports: the cgminer-style RPC on [`FleetSpec::port`] (4028),
//! a stock Antminer's web interface and a Braiins OS device's REST API on
//! [`FleetSpec::web_port`] (80), each attached to its RPC device so a write over the web shows
//! in the RPC telemetry, a Bitaxe's AxeOS API on the web port too, a Whatsminer with API v3 on
//! [`FleetSpec::v3_port`] (4433) besides its degraded v2 service on the RPC port, and meters on
//! [`FleetSpec::modbus_port`] (502).
//!
//! Logins are the factory ones (PROTOCOLS.md §0): `root`/`root` on Antminer web interfaces;
//! `root` with an empty password on half the Braiins devices and `root`/`root` on the other
//! half (both are Braiins defaults, so clients must try them in order); `admin` / `super` on
//! Whatsminers.
//!
//! Meters are not part of the mix: a container has [`FleetSpec::meters_per_container`] meters
//! (one by default, on its incoming feeder, as most container sites meter them), each measuring
//! its share of the container's nameplate power. They take the addresses after the last miner,
//! container by container; behind each address one meter answers at its RS-485 address: 1 for
//! the first meter of a container (the factory default), 2 for the second, and so on.

use crate::device::{
    DeviceConfig, RunningDevice, default_pools, mac_for, serial_for, spawn_device,
};
use crate::family::Family;
use crate::faults::{Fault, FaultPlan};
use crate::meter::registers::SatecScales;
use crate::meter::{MeterFault, MeterKind, MeterSimConfig, RunningMeter, spawn_meter};
use crate::model::{Timing, mix, unit};
use crate::nameplate;
use crate::web::WebFault;
use crate::web::antminer::{AntminerWebConfig, RunningAntminerWeb, spawn_antminer_web};
use crate::web::bitaxe::{BitaxeConfig, RunningBitaxe, spawn_bitaxe};
use crate::web::braiins::{BraiinsWebConfig, RunningBraiinsWeb, spawn_braiins_web};
use crate::whatsminer::{RunningWhatsminer, WhatsminerApi, WhatsminerConfig, spawn_whatsminer};
use hashmesh_core::Location;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

/// Devices per rack: 4 shelves of 8 slots.
pub const RACK_DEVICES: usize = 32;
/// Slots per shelf.
pub const SHELF_SLOTS: usize = 8;
/// Racks per container (256 devices).
pub const CONTAINER_RACKS: usize = 8;
/// Miners per container.
pub const CONTAINER_DEVICES: usize = RACK_DEVICES * CONTAINER_RACKS;
/// Containers per site (51,200 devices).
pub const SITE_CONTAINERS: usize = 200;

/// Why a fleet spec cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// The base address is outside 127.0.0.0/8 (the simulator only binds loopback).
    #[error("base address {0} is not in 127.0.0.0/8")]
    NotLoopback(Ipv4Addr),
    /// The base address ends in .0 or .255 (not a host address in its /24).
    #[error("base address {0} must end in .1 to .254")]
    BadHost(Ipv4Addr),
    /// The fleet would run past 127.255.255.254.
    #[error("{0} devices from {1} run past the end of 127.0.0.0/8")]
    TooMany(usize, Ipv4Addr),
    /// The mix has no family with a positive weight.
    #[error("the family mix is empty")]
    EmptyMix,
    /// Two services of a device would share one port.
    #[error("ports clash: {0}")]
    PortClash(String),
}

/// What a miner of the fleet runs: a cgminer-RPC firmware, or one with its own servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FleetFamily {
    /// A firmware with a cgminer-style RPC (and for stock Antminer and Braiins OS, its web
    /// interface).
    Rpc(Family),
    /// MicroBT Whatsminer: API v2 on the RPC port, or v3 on 4433 plus a degraded v2.
    Whatsminer,
    /// Bitaxe-class AxeOS device: HTTP only, on the web port.
    Bitaxe,
}

impl FleetFamily {
    /// Every miner family of the fleet, in a stable order.
    pub const ALL: [FleetFamily; 8] = [
        FleetFamily::Rpc(Family::Cgminer),
        FleetFamily::Rpc(Family::Bfgminer),
        FleetFamily::Rpc(Family::Antminer),
        FleetFamily::Rpc(Family::Avalon),
        FleetFamily::Rpc(Family::Braiins),
        FleetFamily::Rpc(Family::LuxOs),
        FleetFamily::Whatsminer,
        FleetFamily::Bitaxe,
    ];

    /// Lower-case name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetFamily::Rpc(f) => f.as_str(),
            FleetFamily::Whatsminer => "whatsminer",
            FleetFamily::Bitaxe => "bitaxe",
        }
    }

    /// Nameplate models a fleet of this family is made of, with relative weights.
    fn models(self) -> &'static [(&'static str, u32)] {
        match self {
            FleetFamily::Rpc(f) => nameplate::fleet_models(f),
            FleetFamily::Whatsminer => &[
                ("Whatsminer M30S++", 35),
                ("Whatsminer M50S", 30),
                ("Whatsminer M60S", 25),
                ("Whatsminer M63S", 10),
            ],
            FleetFamily::Bitaxe => &[
                ("Bitaxe Gamma", 40),
                ("Bitaxe Supra", 25),
                ("Bitaxe Ultra", 15),
                ("NerdQAxe++", 20),
            ],
        }
    }

    /// The faults this family's simulator can show; others in a plan are not applied to it.
    pub fn supports(self, fault: Fault) -> bool {
        match self {
            FleetFamily::Rpc(_) => true,
            // The Whatsminer servers have no reset and no oversized reply.
            FleetFamily::Whatsminer => !matches!(fault, Fault::Reset | Fault::Oversized),
            // AxeOS: no listener, slow or hanging HTTP, and the model's hardware faults.
            FleetFamily::Bitaxe => matches!(
                fault,
                Fault::Offline
                    | Fault::Slow
                    | Fault::Hang
                    | Fault::DeadBoard
                    | Fault::FanFail
                    | Fault::Overheat
            ),
        }
    }
}

impl fmt::Display for FleetFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FleetFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "meter" || lower == "meters" {
            return Err(
                "meters are not part of the mix: a container has --meters-per-container of them"
                    .into(),
            );
        }
        FleetFamily::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| {
                format!(
                    "unknown family '{s}' (expected cgminer, bfgminer, antminer, avalon, braiins, luxos, whatsminer or bitaxe)"
                )
            })
    }
}

/// What a fleet looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSpec {
    /// Number of miners (meters come on top, see [`FleetSpec::meters`]).
    pub devices: usize,
    /// Address of the first device; the rest follow, skipping .0 and .255 of each /24.
    pub base: Ipv4Addr,
    /// RPC port of every miner that has one (4028 on hardware).
    pub port: u16,
    /// HTTP port of Antminer web interfaces, Braiins OS REST APIs and Bitaxe devices (80 on
    /// hardware).
    pub web_port: u16,
    /// Whatsminer API v3 port (4433 on hardware).
    pub v3_port: u16,
    /// Modbus TCP port of the meters (502 on hardware).
    pub modbus_port: u16,
    /// Power meters per container (0: none).
    pub meters_per_container: usize,
    /// Families with relative weights.
    pub mix: Vec<(FleetFamily, u32)>,
    /// Which devices get faults.
    pub faults: FaultPlan,
    /// Seed of the whole fleet.
    pub seed: u64,
    /// Timing of every device.
    pub timing: Timing,
}

/// The default family mix: every supported family, roughly in the shares of a large site.
pub const DEFAULT_MIX: &str =
    "antminer=35,whatsminer=15,avalon=15,braiins=10,luxos=10,bitaxe=5,cgminer=5,bfgminer=5";

/// Parses `antminer=40,avalon=20,…` into families with weights; a bare family name
/// (`--mix avalon`) has weight 1.
pub fn parse_mix(spec: &str) -> Result<Vec<(FleetFamily, u32)>, String> {
    let mut mix = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = item.split_once('=').unwrap_or((item, "1"));
        let family: FleetFamily = name.parse()?;
        let weight: u32 = weight
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("bad weight in '{item}'"))?;
        mix.push((family, weight));
    }
    if mix.iter().all(|(_, w)| *w == 0) {
        return Err("the family mix is empty".into());
    }
    Ok(mix)
}

/// One miner of a fleet, fully determined by the spec and its index.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetDevice {
    /// Position in the fleet, from 0.
    pub index: usize,
    /// Address.
    pub ip: Ipv4Addr,
    /// The port a client polls: the RPC port, or for a Bitaxe (which has no RPC) its web port.
    pub port: u16,
    /// HTTP port, for a stock Antminer (web interface), a Braiins OS device (REST API) and a
    /// Bitaxe (AxeOS API).
    pub web_port: Option<u16>,
    /// API v3 port, for a Whatsminer on v3 firmware.
    pub v3_port: Option<u16>,
    /// Firmware family.
    pub family: FleetFamily,
    /// Nameplate model.
    pub model: &'static str,
    /// Faults at start (only those the family's simulator can show).
    pub faults: Vec<Fault>,
    /// Site / container / rack / shelf / slot.
    pub location: Location,
    /// MAC address.
    pub mac: String,
    /// Serial number.
    pub serial: String,
    /// Per-device seed.
    pub seed: u64,
    /// Sends the malformed JSON its real firmware is known for (a third of Avalons).
    pub quirks: bool,
}

impl FleetDevice {
    /// Listening sockets this device holds while it serves.
    pub fn listeners(&self) -> usize {
        1 + usize::from(self.web_port.is_some() && self.family != FleetFamily::Bitaxe)
            + usize::from(self.v3_port.is_some())
    }

    /// The Whatsminer API this device speaks (`None` for other families).
    pub fn whatsminer_api(&self) -> Option<WhatsminerApi> {
        match (self.family, self.v3_port) {
            (FleetFamily::Whatsminer, Some(_)) => Some(WhatsminerApi::V3),
            (FleetFamily::Whatsminer, None) => Some(WhatsminerApi::V2),
            _ => None,
        }
    }
}

/// Which register map a fleet meter has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetMeterModel {
    /// ABB B23/B24.
    AbbB2x,
    /// Schneider PowerLogic PM5340.
    SchneiderPm5xxx,
    /// Satec PM180 with [`satec_scales`] ranges.
    SatecPm180,
}

impl FleetMeterModel {
    /// Stable name of the register map (`abb_b2x`, `schneider_pm5xxx`, `satec_pm180`).
    pub fn as_str(self) -> &'static str {
        match self {
            FleetMeterModel::AbbB2x => "abb_b2x",
            FleetMeterModel::SchneiderPm5xxx => "schneider_pm5xxx",
            FleetMeterModel::SatecPm180 => "satec_pm180",
        }
    }

    /// The model name an operator sees on the nameplate.
    pub fn model_name(self) -> &'static str {
        match self {
            FleetMeterModel::AbbB2x => "ABB B23",
            FleetMeterModel::SchneiderPm5xxx => "Schneider PM5340",
            FleetMeterModel::SatecPm180 => "Satec PM180",
        }
    }
}

/// The ranges a fleet Satec PM180 is configured with: a container feeder of up to 1.8 MW
/// (the meter's factory ranges stop at 300 kW, too little for a full container).
pub fn satec_scales() -> SatecScales {
    SatecScales {
        volts: (0.0, 500.0),
        amps: (0.0, 3000.0),
        phase_kw: (-600.0, 600.0),
        total_kw: (-1800.0, 1800.0),
        pf: (-1.0, 1.0),
        hz: (0.0, 100.0),
    }
}

/// One power meter of a fleet, fully determined by the spec and its meter number.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetMeter {
    /// Position in the fleet's entries (after every miner), from 0.
    pub index: usize,
    /// Address (of the meter's Modbus TCP gateway).
    pub ip: Ipv4Addr,
    /// Modbus TCP port.
    pub modbus_port: u16,
    /// Modbus unit id the meter answers to.
    pub unit_id: u8,
    /// Register map.
    pub model: FleetMeterModel,
    /// The container the meter measures (0-based over the fleet).
    pub container: usize,
    /// Power the meter measures: its share of the container's nameplate power, W.
    pub load_w: f64,
    /// Faults at start (offline, slow, hang, truncated).
    pub faults: Vec<Fault>,
    /// Site and container.
    pub location: Location,
    /// MAC address of the gateway.
    pub mac: String,
    /// Serial number in the identification registers.
    pub serial: u32,
}

impl FleetMeter {
    /// The simulator configuration of this meter.
    pub fn config(&self, timing: &Timing) -> MeterSimConfig {
        let kind = match self.model {
            FleetMeterModel::AbbB2x => MeterKind::AbbB2x,
            FleetMeterModel::SchneiderPm5xxx => MeterKind::SchneiderPm5xxx,
            FleetMeterModel::SatecPm180 => MeterKind::SatecPm180 {
                scales: satec_scales(),
                delta: false,
            },
        };
        let mut cfg = MeterSimConfig::new(kind);
        cfg.unit_id = self.unit_id;
        cfg.load = crate::meter::load::Load::grid_50hz(self.load_w);
        cfg.serial = self.serial;
        cfg.initial_import_kwh = f64::from(self.serial % 900_000) + 10_000.0;
        cfg.slow_reply = timing.slow_reply_min;
        cfg.faults = self
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::Slow => Some(MeterFault::Slow),
                Fault::Hang => Some(MeterFault::Hang),
                Fault::Truncated => Some(MeterFault::Truncated),
                _ => None,
            })
            .collect();
        cfg
    }
}

/// One entry of a fleet: a miner or a meter.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetEntry {
    /// A miner (entries `0..devices`).
    Miner(FleetDevice),
    /// A power meter (entries `devices..`).
    Meter(FleetMeter),
}

impl FleetEntry {
    /// Listening sockets this entry holds while it serves.
    pub fn listeners(&self) -> usize {
        match self {
            FleetEntry::Miner(d) => d.listeners(),
            FleetEntry::Meter(_) => 1,
        }
    }
}

/// Position of an address among host addresses (x.y.z.1 … x.y.z.254) counted from 0.0.0.1.
fn host_index(ip: Ipv4Addr) -> u64 {
    let v = u32::from(ip);
    u64::from(v >> 8) * 254 + u64::from(v & 0xff) - 1
}

fn host_at(index: u64) -> Option<Ipv4Addr> {
    let net = index / 254;
    let host = index % 254 + 1;
    u32::try_from((net << 8) | host).ok().map(Ipv4Addr::from)
}

impl FleetSpec {
    /// `devices` miners from `base` at the real ports, the default mix, one meter per
    /// container and no faults.
    pub fn new(devices: usize, base: Ipv4Addr) -> Self {
        FleetSpec {
            devices,
            base,
            port: 4028,
            web_port: 80,
            v3_port: 4433,
            modbus_port: 502,
            meters_per_container: 1,
            mix: parse_mix(DEFAULT_MIX).unwrap_or_default(),
            faults: FaultPlan::default(),
            seed: 1,
            timing: Timing::realistic(),
        }
    }

    /// Containers the miners fill (the last one may be partly filled).
    pub fn containers(&self) -> usize {
        self.devices.div_ceil(CONTAINER_DEVICES)
    }

    /// Number of power meters.
    pub fn meters(&self) -> usize {
        self.containers() * self.meters_per_container
    }

    /// Miners and meters together: the number of [`FleetSpec::entry`] indices.
    pub fn entries(&self) -> usize {
        self.devices + self.meters()
    }

    /// Checks the addresses stay inside 127.0.0.0/8, the ports do not clash and the mix is
    /// usable.
    pub fn validate(&self) -> Result<(), FleetError> {
        if self.base.octets()[0] != 127 {
            return Err(FleetError::NotLoopback(self.base));
        }
        if matches!(self.base.octets()[3], 0 | 255) {
            return Err(FleetError::BadHost(self.base));
        }
        let entries = self.entries();
        if entries > 0 {
            let last = self.address(entries - 1);
            if last.is_none_or(|ip| ip.octets()[0] != 127) {
                return Err(FleetError::TooMany(entries, self.base));
            }
        }
        if self.mix.iter().all(|(_, w)| *w == 0) {
            return Err(FleetError::EmptyMix);
        }
        // A miner holds the RPC port with either its web or its v3 port on one address.
        for (name, other) in [("web", self.web_port), ("v3", self.v3_port)] {
            if other == self.port {
                return Err(FleetError::PortClash(format!(
                    "the {name} port equals the RPC port {other}"
                )));
            }
        }
        Ok(())
    }

    /// The address of entry `index` (miners first, then meters).
    pub fn address(&self, index: usize) -> Option<Ipv4Addr> {
        host_at(host_index(self.base) + index as u64)
    }

    fn family_at(&self, index: usize) -> FleetFamily {
        // A golden-ratio sequence spreads the mix evenly over any prefix of the fleet, so a
        // 10-device fleet still gets roughly the right families.
        let total: u32 = self.mix.iter().map(|(_, w)| *w).sum();
        let x = (index as f64 * 0.618_033_988_749_895 + unit(self.seed, 90, 0)).fract()
            * f64::from(total);
        let mut acc = 0.0;
        for (family, w) in &self.mix {
            acc += f64::from(*w);
            if x < acc {
                return *family;
            }
        }
        self.mix
            .iter()
            .rev()
            .find(|(_, w)| *w > 0)
            .map_or(FleetFamily::Rpc(Family::Cgminer), |(f, _)| *f)
    }

    /// Faults planned for entry `index` at `ip`, before a family filters them.
    fn planned_faults(&self, index: usize, ip: Ipv4Addr) -> Vec<Fault> {
        let mut faults: Vec<Fault> = self
            .faults
            .shares
            .iter()
            .filter(|(f, share)| unit(self.seed, 100 + *f as u64, index as u64) < *share)
            .map(|(f, _)| *f)
            .collect();
        faults.extend(
            self.faults
                .pinned
                .iter()
                .filter(|(a, _)| *a == ip)
                .map(|(_, f)| *f),
        );
        faults.sort();
        faults.dedup();
        faults
    }

    /// Miner `index`: address, ports, family, model, faults, location, MAC and serial.
    pub fn device(&self, index: usize) -> FleetDevice {
        let seed = mix(self.seed, 80, index as u64);
        let family = self.family_at(index);
        let models = family.models();
        let total: u32 = models.iter().map(|(_, w)| *w).sum();
        let mut pick = (mix(seed, 81, 0) % u64::from(total.max(1))) as u32;
        let mut model = models.first().map_or("cgminer", |(m, _)| *m);
        if let FleetFamily::Rpc(f) = family {
            model = f.default_model();
        }
        for (m, w) in models {
            if pick < *w {
                model = m;
                break;
            }
            pick -= w;
        }
        let ip = self.address(index).unwrap_or(self.base);
        let mut faults = self.planned_faults(index, ip);
        faults.retain(|f| family.supports(*f));
        // Half the Whatsminers run firmware from 2024-11 on (API v3), half older (v2).
        let v3 = family == FleetFamily::Whatsminer && unit(seed, 83, 0) < 0.5;
        let (port, web_port) = match family {
            FleetFamily::Bitaxe => (self.web_port, Some(self.web_port)),
            FleetFamily::Rpc(Family::Antminer | Family::Braiins) => {
                (self.port, Some(self.web_port))
            }
            _ => (self.port, None),
        };
        let (mac, serial) = match family {
            FleetFamily::Rpc(f) => (mac_for(seed), serial_for(f, seed)),
            FleetFamily::Whatsminer => (mac_for(seed), crate::whatsminer::serial_for(seed)),
            // AxeOS reports its ESP32's MAC in capitals and has no serial: use the MAC.
            FleetFamily::Bitaxe => {
                let mac = mac_for(seed).to_ascii_uppercase();
                (mac.clone(), mac.replace(':', ""))
            }
        };
        FleetDevice {
            index,
            ip,
            port,
            web_port,
            v3_port: v3.then_some(self.v3_port),
            family,
            model,
            faults,
            location: location(index),
            mac,
            serial,
            seed,
            quirks: family == FleetFamily::Rpc(Family::Avalon) && unit(seed, 82, 0) < 1.0 / 3.0,
        }
    }

    /// Meter `n` (0-based over the fleet's meters).
    pub fn meter(&self, n: usize) -> FleetMeter {
        let per = self.meters_per_container.max(1);
        let container = n / per;
        let index = self.devices + n;
        let seed = mix(self.seed, 84, n as u64);
        // A site buys one make of meter per container: the container seed picks it.
        let model = match mix(self.seed, 85, container as u64) % 3 {
            0 => FleetMeterModel::AbbB2x,
            1 => FleetMeterModel::SchneiderPm5xxx,
            _ => FleetMeterModel::SatecPm180,
        };
        let first = container * CONTAINER_DEVICES;
        let last = (first + CONTAINER_DEVICES).min(self.devices);
        let container_w: f64 = (first..last)
            .map(|i| nameplate::find(self.device(i).model).map_or(0.0, |n| n.power_w))
            .sum();
        let ip = self.address(index).unwrap_or(self.base);
        let mut faults = self.planned_faults(index, ip);
        faults.retain(|f| {
            matches!(
                f,
                Fault::Offline | Fault::Slow | Fault::Hang | Fault::Truncated
            )
        });
        let mut loc = location(first);
        loc.rack = None;
        loc.shelf = None;
        loc.slot = None;
        FleetMeter {
            index,
            ip,
            modbus_port: self.modbus_port,
            // Meters of a container share its RS-485 bus, numbered from the factory address 1
            // (Modbus allows 1–247).
            unit_id: 1 + (n % per % 247) as u8,
            model,
            container,
            load_w: container_w / per as f64,
            faults,
            location: loc,
            mac: mac_for(seed),
            serial: 20_000_000 + (mix(seed, 87, 0) % 9_999_999) as u32,
        }
    }

    /// Entry `index`: a miner below [`FleetSpec::devices`], a meter from there on.
    pub fn entry(&self, index: usize) -> FleetEntry {
        if index < self.devices {
            FleetEntry::Miner(self.device(index))
        } else {
            FleetEntry::Meter(self.meter(index - self.devices))
        }
    }

    /// The device configuration of `d`. `with_location` false leaves the location empty, which
    /// saves memory in workers (the location is on no wire, only in the manifest).
    pub fn config(&self, d: &FleetDevice, with_location: bool) -> DeviceConfig {
        let family = match d.family {
            FleetFamily::Rpc(f) => f,
            FleetFamily::Whatsminer | FleetFamily::Bitaxe => Family::Cgminer,
        };
        DeviceConfig {
            family,
            model: d.model.to_string(),
            seed: d.seed,
            faults: d.faults.clone(),
            timing: self.timing,
            location: if with_location {
                d.location.clone()
            } else {
                Location::default()
            },
            mac: d.mac.clone(),
            serial: d.serial.clone(),
            rpc_write_access: family != Family::Antminer,
            pools: default_pools(d.seed),
            firmware_quirks: d.quirks,
        }
    }
}

/// Where miner `index` stands.
pub fn location(index: usize) -> Location {
    let rack_global = index / RACK_DEVICES;
    let container_global = rack_global / CONTAINER_RACKS;
    let site = container_global / SITE_CONTAINERS;
    let container = container_global % SITE_CONTAINERS + 1;
    let rack = rack_global % CONTAINER_RACKS + 1;
    let in_rack = index % RACK_DEVICES;
    let site_name = if site < 26 {
        format!("site-{}", (b'a' + site as u8) as char)
    } else {
        format!("site-{site}")
    };
    Location {
        site: Some(site_name),
        container: Some(format!("C{container:03}")),
        rack: Some(format!("C{container:03}-R{rack:02}")),
        shelf: Some((in_rack / SHELF_SLOTS + 1) as u16),
        slot: Some((in_rack % SHELF_SLOTS + 1) as u16),
    }
}

/// One manifest entry of a miner: kind, ip, port (RPC, or web for a Bitaxe), the other ports
/// it has, family, model, faults, location, mac, serial.
pub fn manifest_entry(d: &FleetDevice) -> serde_json::Value {
    let mut v = serde_json::json!({
        "kind": "miner",
        "ip": d.ip.to_string(),
        "port": d.port,
        "family": d.family.as_str(),
        "model": d.model,
        "faults": d.faults.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "location": d.location,
        "mac": d.mac,
        "serial": d.serial,
        "quirks": d.quirks,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(p) = d.web_port {
            obj.insert("web_port".into(), p.into());
        }
        if let Some(p) = d.v3_port {
            obj.insert("v3_port".into(), p.into());
        }
        if let Some(api) = d.whatsminer_api() {
            let name = match api {
                WhatsminerApi::V2 => "v2",
                WhatsminerApi::V3 => "v3",
            };
            obj.insert("api".into(), name.into());
        }
    }
    v
}

/// One manifest entry of a meter: kind, ip, modbus_port, unit_id, family `meter`, model (the
/// register map's name in `meter_map`), load, faults, location, mac, serial.
pub fn meter_manifest_entry(m: &FleetMeter) -> serde_json::Value {
    let mut v = serde_json::json!({
        "kind": "meter",
        "ip": m.ip.to_string(),
        "modbus_port": m.modbus_port,
        "unit_id": m.unit_id,
        "family": "meter",
        "model": m.model.model_name(),
        "meter_map": m.model.as_str(),
        "load_w": m.load_w.round(),
        "faults": m.faults.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "location": m.location,
        "mac": m.mac,
        "serial": m.serial.to_string(),
    });
    if m.model == FleetMeterModel::SatecPm180
        && let Some(obj) = v.as_object_mut()
    {
        let s = satec_scales();
        obj.insert(
            "satec_ranges".into(),
            serde_json::json!({
                "voltage_v": [s.volts.0, s.volts.1],
                "current_a": [s.amps.0, s.amps.1],
                "phase_power_kw": [s.phase_kw.0, s.phase_kw.1],
                "total_power_kw": [s.total_kw.0, s.total_kw.1],
                "power_factor": [s.pf.0, s.pf.1],
                "frequency_hz": [s.hz.0, s.hz.1],
            }),
        );
    }
    v
}

/// Writes the manifest of the whole fleet as a JSON array, one object per line: the miners,
/// then the meters.
pub fn write_manifest(spec: &FleetSpec, mut out: impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"[\n")?;
    let entries = spec.entries();
    for i in 0..entries {
        let entry = match spec.entry(i) {
            FleetEntry::Miner(d) => manifest_entry(&d),
            FleetEntry::Meter(m) => meter_manifest_entry(&m),
        };
        serde_json::to_writer(&mut out, &entry)?;
        out.write_all(if i + 1 < entries { b",\n" } else { b"\n" })?;
    }
    out.write_all(b"]\n")?;
    out.flush()
}

/// The web service attached to an RPC miner of the fleet.
pub enum RunningWeb {
    /// A stock Antminer's CGI interface.
    Antminer(RunningAntminerWeb),
    /// A Braiins OS device's REST API.
    Braiins(RunningBraiinsWeb),
}

impl RunningWeb {
    /// The address it serves on.
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            RunningWeb::Antminer(w) => w.local_addr(),
            RunningWeb::Braiins(w) => w.local_addr(),
        }
    }
}

/// One serving fleet entry; dropping it stops every service it runs.
pub enum RunningEntry {
    /// A cgminer-RPC miner, with its web interface for a stock Antminer or Braiins OS device.
    Rpc(Arc<RunningDevice>, Option<RunningWeb>),
    /// A Whatsminer (v2, or v3 with its degraded v2).
    Whatsminer(RunningWhatsminer),
    /// A Bitaxe-class AxeOS device.
    Bitaxe(RunningBitaxe),
    /// A power meter.
    Meter(RunningMeter),
    /// A device with the `offline` fault whose simulator has no offline mode: nothing bound.
    Offline,
}

/// Starts one fleet entry at its ports.
pub async fn spawn_entry(spec: &FleetSpec, entry: &FleetEntry) -> std::io::Result<RunningEntry> {
    match entry {
        FleetEntry::Miner(d) => spawn_miner(spec, d).await,
        FleetEntry::Meter(m) => {
            if m.faults.contains(&Fault::Offline) {
                return Ok(RunningEntry::Offline);
            }
            let addr = SocketAddr::new(m.ip.into(), m.modbus_port);
            Ok(RunningEntry::Meter(
                spawn_meter(m.config(&spec.timing), addr).await?,
            ))
        }
    }
}

async fn spawn_miner(spec: &FleetSpec, d: &FleetDevice) -> std::io::Result<RunningEntry> {
    let offline = d.faults.contains(&Fault::Offline);
    let rpc_addr = SocketAddr::new(d.ip.into(), spec.port);
    match d.family {
        FleetFamily::Rpc(family) => {
            let dev = Arc::new(spawn_device(spec.config(d, false), rpc_addr).await?);
            // A powered-off miner serves no web page either.
            let web = match d.web_port {
                Some(port) if !offline => {
                    spawn_web(d, family, dev.clone(), SocketAddr::new(d.ip.into(), port)).await?
                }
                _ => None,
            };
            Ok(RunningEntry::Rpc(dev, web))
        }
        FleetFamily::Whatsminer => {
            let api = d.whatsminer_api().unwrap_or(WhatsminerApi::V2);
            let mut cfg = WhatsminerConfig::new(api, d.model);
            cfg.device = spec.config(d, false);
            cfg.v3_port = d.v3_port.unwrap_or(spec.v3_port);
            Ok(RunningEntry::Whatsminer(
                spawn_whatsminer(cfg, rpc_addr).await?,
            ))
        }
        FleetFamily::Bitaxe => {
            if offline {
                return Ok(RunningEntry::Offline);
            }
            let mut cfg = BitaxeConfig::new(d.model);
            cfg.seed = d.seed;
            cfg.timing = spec.timing;
            cfg.mac = d.mac.clone();
            cfg.hostname = format!("bitaxe-{}", &d.serial[d.serial.len().saturating_sub(4)..])
                .to_ascii_lowercase();
            cfg.pools = default_pools(d.seed).into_iter().take(2).collect();
            cfg.faults = d
                .faults
                .iter()
                .filter_map(|f| match f {
                    Fault::Slow => Some(WebFault::Slow),
                    Fault::Hang => Some(WebFault::Hang),
                    _ => None,
                })
                .collect();
            cfg.hardware_faults = d
                .faults
                .iter()
                .copied()
                .filter(|f| matches!(f, Fault::DeadBoard | Fault::FanFail | Fault::Overheat))
                .collect();
            let addr = SocketAddr::new(d.ip.into(), d.port);
            Ok(RunningEntry::Bitaxe(spawn_bitaxe(cfg, addr).await?))
        }
    }
}

/// The web service of an RPC miner with one: a stock Antminer's CGI interface or a Braiins OS
/// device's REST API, at its factory login (see the module documentation).
async fn spawn_web(
    d: &FleetDevice,
    family: Family,
    dev: Arc<RunningDevice>,
    addr: SocketAddr,
) -> std::io::Result<Option<RunningWeb>> {
    Ok(match family {
        Family::Antminer => {
            let cfg = AntminerWebConfig {
                hostname: format!("Antminer-{}", &d.serial[d.serial.len().saturating_sub(6)..]),
                ..AntminerWebConfig::default()
            };
            Some(RunningWeb::Antminer(
                spawn_antminer_web(dev, cfg, addr).await?,
            ))
        }
        Family::Braiins => {
            let cfg = BraiinsWebConfig {
                password: braiins_password(d).into(),
                ..BraiinsWebConfig::default()
            };
            Some(RunningWeb::Braiins(
                spawn_braiins_web(dev, cfg, addr).await?,
            ))
        }
        _ => None,
    })
}

/// The factory password a fleet Braiins OS device has: empty or `root`, half and half.
pub fn braiins_password(d: &FleetDevice) -> &'static str {
    if unit(d.seed, 86, 0) < 0.5 {
        ""
    } else {
        "root"
    }
}

/// Starts entries `range` of the fleet (miners, then meters). Fails on the first address that
/// cannot be bound.
pub async fn spawn_range(
    spec: &FleetSpec,
    range: Range<usize>,
) -> std::io::Result<Vec<RunningEntry>> {
    let mut running = Vec::with_capacity(range.len());
    for i in range {
        let entry = spec.entry(i);
        let dev = spawn_entry(spec, &entry).await.map_err(|e| {
            let ip = match &entry {
                FleetEntry::Miner(d) => d.ip,
                FleetEntry::Meter(m) => m.ip,
            };
            std::io::Error::new(e.kind(), format!("entry {i} at {ip}: {e}"))
        })?;
        running.push(dev);
    }
    Ok(running)
}

/// Splits the fleet's entries into consecutive ranges that each hold at most
/// `listeners_per_range` listening sockets (a range holds at least one entry).
pub fn split_by_listeners(spec: &FleetSpec, listeners_per_range: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut held = 0;
    for i in 0..spec.entries() {
        let n = spec.entry(i).listeners();
        if i > start && held + n > listeners_per_range {
            ranges.push(start..i);
            start = i;
            held = 0;
        }
        held += n;
    }
    if start < spec.entries() {
        ranges.push(start..spec.entries());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_network_and_broadcast() {
        let spec = FleetSpec::new(600, Ipv4Addr::new(127, 20, 0, 253));
        assert_eq!(spec.address(0), Some(Ipv4Addr::new(127, 20, 0, 253)));
        assert_eq!(spec.address(1), Some(Ipv4Addr::new(127, 20, 0, 254)));
        assert_eq!(spec.address(2), Some(Ipv4Addr::new(127, 20, 1, 1)));
        assert_eq!(spec.address(255), Some(Ipv4Addr::new(127, 20, 1, 254)));
        assert_eq!(spec.address(256), Some(Ipv4Addr::new(127, 20, 2, 1)));
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn refuses_non_loopback_overflow_and_clashing_ports() {
        let spec = FleetSpec::new(10, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            spec.validate(),
            Err(FleetError::NotLoopback(Ipv4Addr::new(10, 0, 0, 1)))
        );
        let spec = FleetSpec::new(10, Ipv4Addr::new(127, 0, 0, 0));
        assert!(matches!(spec.validate(), Err(FleetError::BadHost(_))));
        let spec = FleetSpec::new(1000, Ipv4Addr::new(127, 255, 255, 1));
        assert!(matches!(spec.validate(), Err(FleetError::TooMany(..))));
        // 253 miners fill .1–.253 of the last /24; their meter would need .254 … then more.
        let mut spec = FleetSpec::new(253, Ipv4Addr::new(127, 255, 255, 1));
        assert_eq!(spec.validate(), Ok(()));
        spec.meters_per_container = 2;
        assert!(matches!(spec.validate(), Err(FleetError::TooMany(255, _))));
        let spec = FleetSpec::new(100_000, Ipv4Addr::new(127, 20, 0, 1));
        assert_eq!(spec.validate(), Ok(()));
        let mut spec = FleetSpec::new(10, Ipv4Addr::new(127, 20, 0, 1));
        spec.web_port = spec.port;
        assert!(matches!(spec.validate(), Err(FleetError::PortClash(_))));
    }

    #[test]
    fn mix_and_faults_follow_the_spec() {
        let mut spec = FleetSpec::new(10_000, Ipv4Addr::new(127, 20, 0, 1));
        spec.faults =
            FaultPlan::parse("offline=1%,hang=0.5%,127.20.0.3=fan-fail").unwrap_or_default();
        let devices: Vec<FleetDevice> = (0..spec.devices).map(|i| spec.device(i)).collect();
        let count = |f: FleetFamily| devices.iter().filter(|d| d.family == f).count();
        for (family, share) in [
            (FleetFamily::Rpc(Family::Antminer), 3500),
            (FleetFamily::Whatsminer, 1500),
            (FleetFamily::Rpc(Family::Avalon), 1500),
            (FleetFamily::Bitaxe, 500),
            (FleetFamily::Rpc(Family::Bfgminer), 500),
        ] {
            let n = count(family) as i64;
            assert!((n - share).abs() < 50, "{family}: {n}");
        }
        let offline = devices
            .iter()
            .filter(|d| d.faults.contains(&Fault::Offline))
            .count();
        assert!((60..=140).contains(&offline), "{offline}");
        assert!(devices[2].faults.contains(&Fault::FanFail));
        for d in &devices[..400] {
            assert!(
                nameplate::find(d.model).is_some_and(|n| match d.family {
                    FleetFamily::Rpc(f) => n.fits(f),
                    FleetFamily::Whatsminer => n.vendor == hashmesh_core::Vendor::MicroBt,
                    FleetFamily::Bitaxe => n.vendor == hashmesh_core::Vendor::Bitaxe,
                }),
                "{d:?}"
            );
        }
        // Whatsminers split between API v2 and v3 firmware.
        let v3 = devices.iter().filter(|d| d.v3_port == Some(4433)).count();
        assert!((600..=900).contains(&v3), "{v3}");
        assert!(
            devices
                .iter()
                .filter(|d| d.v3_port.is_some())
                .all(|d| d.family == FleetFamily::Whatsminer)
        );
        // A small fleet still gets a spread of families.
        let small = FleetSpec::new(10, Ipv4Addr::new(127, 20, 0, 1));
        let families: std::collections::BTreeSet<FleetFamily> =
            (0..10).map(|i| small.device(i).family).collect();
        assert!(families.len() >= 5, "{families:?}");
        // The same spec gives the same fleet.
        assert_eq!(spec.device(1234), spec.device(1234));
    }

    #[test]
    fn faults_a_family_cannot_show_are_not_planned_for_it() {
        let mut spec = FleetSpec::new(2000, Ipv4Addr::new(127, 20, 0, 1));
        spec.faults = FaultPlan::parse("reset=100%,slow=100%").unwrap_or_default();
        for i in 0..spec.devices {
            let d = spec.device(i);
            match d.family {
                FleetFamily::Rpc(_) => assert_eq!(d.faults, vec![Fault::Slow, Fault::Reset]),
                FleetFamily::Whatsminer | FleetFamily::Bitaxe => {
                    assert_eq!(d.faults, vec![Fault::Slow], "{d:?}")
                }
            }
        }
        let m = spec.meter(0);
        assert_eq!(m.faults, vec![Fault::Slow]);
        assert_eq!(m.config(&spec.timing).faults, vec![MeterFault::Slow]);
    }

    #[test]
    fn ports_follow_the_family() {
        let mut spec = FleetSpec::new(3000, Ipv4Addr::new(127, 20, 0, 1));
        spec.port = 14029;
        spec.web_port = 18080;
        for i in 0..spec.devices {
            let d = spec.device(i);
            let (port, web, v3, listeners) = match d.family {
                FleetFamily::Rpc(Family::Antminer | Family::Braiins) => {
                    (14029, Some(18080), None, 2)
                }
                FleetFamily::Bitaxe => (18080, Some(18080), None, 1),
                FleetFamily::Whatsminer if d.v3_port.is_some() => (14029, None, Some(4433), 2),
                _ => (14029, None, None, 1),
            };
            assert_eq!((d.port, d.web_port, d.v3_port), (port, web, v3), "{d:?}");
            assert_eq!(d.listeners(), listeners);
        }
    }

    #[test]
    fn meters_one_per_container_after_the_miners() {
        let spec = FleetSpec::new(600, Ipv4Addr::new(127, 20, 0, 1));
        assert_eq!(
            (spec.containers(), spec.meters(), spec.entries()),
            (3, 3, 603)
        );
        let m = spec.meter(1);
        assert_eq!(m.index, 601);
        assert_eq!(Some(m.ip), spec.address(601));
        assert_eq!((m.modbus_port, m.container), (502, 1));
        assert_eq!(m.unit_id, 1);
        assert_eq!(m.location.container.as_deref(), Some("C002"));
        assert_eq!(m.location.rack, None);
        // A full container of big miners draws hundreds of kW; the partial last one less.
        assert!(
            m.load_w > 300_000.0 && m.load_w < 1_500_000.0,
            "{}",
            m.load_w
        );
        assert!(spec.meter(2).load_w < m.load_w);
        assert!(matches!(spec.entry(599), FleetEntry::Miner(_)));
        assert!(matches!(spec.entry(600), FleetEntry::Meter(_)));
        let models: std::collections::HashSet<FleetMeterModel> = (0..40)
            .map(|c| FleetSpec::new(256 * 40, spec.base).meter(c).model)
            .collect();
        assert_eq!(models.len(), 3, "{models:?}");
        let mut three = spec.clone();
        three.meters_per_container = 3;
        let ids: Vec<u8> = (0..6).map(|n| three.meter(n).unit_id).collect();
        assert_eq!(ids, vec![1, 2, 3, 1, 2, 3]);
        assert_eq!(three.meter(4).container, 1);
        let mut none = spec.clone();
        none.meters_per_container = 0;
        assert_eq!(none.entries(), 600);
    }

    #[test]
    fn workers_split_by_listeners() {
        let spec = FleetSpec::new(5000, Ipv4Addr::new(127, 20, 0, 1));
        let ranges = split_by_listeners(&spec, 1000);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(spec.entries()));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        let mut total = 0;
        for r in &ranges {
            let held: usize = r.clone().map(|i| spec.entry(i).listeners()).sum();
            assert!(held <= 1000, "{r:?} holds {held}");
            total += held;
        }
        // Antminers, Braiins devices and v3 Whatsminers hold two listeners: more than one per
        // entry overall.
        assert!(total > spec.entries() + 1000, "{total}");
        assert!(ranges.len() >= total.div_ceil(1000));
    }

    #[test]
    fn mixes_parse() {
        assert_eq!(
            parse_mix("antminer=3, luxos=1, whatsminer=2, bitaxe"),
            Ok(vec![
                (FleetFamily::Rpc(Family::Antminer), 3),
                (FleetFamily::Rpc(Family::LuxOs), 1),
                (FleetFamily::Whatsminer, 2),
                (FleetFamily::Bitaxe, 1)
            ])
        );
        assert_eq!(
            parse_mix("avalon"),
            Ok(vec![(FleetFamily::Rpc(Family::Avalon), 1)])
        );
        for bad in ["", "antminer=0", "meter=1", "antminer=x", "innosilicon"] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
        let default = parse_mix(DEFAULT_MIX).unwrap_or_default();
        for f in FleetFamily::ALL {
            assert!(default.iter().any(|(g, w)| *g == f && *w > 0), "{f}");
        }
        let mut spec = FleetSpec::new(50, Ipv4Addr::new(127, 20, 0, 1));
        spec.mix = parse_mix("braiins").unwrap_or_default();
        assert!((0..50).all(|i| spec.device(i).family == FleetFamily::Rpc(Family::Braiins)));
    }

    #[test]
    fn braiins_devices_have_either_factory_password() {
        let mut spec = FleetSpec::new(200, Ipv4Addr::new(127, 20, 0, 1));
        spec.mix = parse_mix("braiins").unwrap_or_default();
        let empty = (0..200)
            .filter(|&i| braiins_password(&spec.device(i)).is_empty())
            .count();
        assert!(
            (60..=140).contains(&empty),
            "{empty} of 200 with an empty password"
        );
        assert!((0..200).all(|i| matches!(braiins_password(&spec.device(i)), "" | "root")));
    }

    #[test]
    fn layout_in_racks_and_containers() {
        assert_eq!(location(0).rack.as_deref(), Some("C001-R01"));
        assert_eq!((location(0).shelf, location(0).slot), (Some(1), Some(1)));
        assert_eq!((location(31).shelf, location(31).slot), (Some(4), Some(8)));
        assert_eq!(location(32).rack.as_deref(), Some("C001-R02"));
        assert_eq!(location(256).container.as_deref(), Some("C002"));
        assert_eq!(location(51_200).site.as_deref(), Some("site-b"));
    }

    #[test]
    fn manifest_is_a_json_array_with_ports_per_kind() {
        let mut spec = FleetSpec::new(50, Ipv4Addr::new(127, 20, 0, 1));
        spec.mix = parse_mix("antminer,whatsminer,bitaxe,avalon,braiins").unwrap_or_default();
        let mut buf = Vec::new();
        write_manifest(&spec, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
        let list = v.as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 51);
        assert_eq!(v[1]["ip"], "127.20.0.2");
        assert!(v[1]["location"]["rack"].is_string());
        let mut families = std::collections::BTreeSet::new();
        for e in &list[..50] {
            assert_eq!(e["kind"], "miner", "{e}");
            families.insert(e["family"].as_str().unwrap_or_default().to_owned());
            match e["family"].as_str() {
                Some("antminer" | "braiins") => {
                    assert_eq!(
                        (e["port"].as_u64(), e["web_port"].as_u64()),
                        (Some(4028), Some(80))
                    )
                }
                Some("bitaxe") => {
                    assert_eq!(
                        (e["port"].as_u64(), e["web_port"].as_u64()),
                        (Some(80), Some(80))
                    )
                }
                Some("whatsminer") => {
                    assert_eq!(e["port"], 4028);
                    let v3 = e["api"] == "v3";
                    assert_eq!(e["v3_port"].as_u64(), v3.then_some(4433), "{e}");
                }
                Some("avalon") => {
                    assert_eq!(e["port"], 4028);
                    assert!(e.get("web_port").is_none() && e.get("v3_port").is_none());
                }
                other => panic!("unexpected family {other:?}"),
            }
        }
        assert_eq!(families.len(), 5, "{families:?}");
        let meter = &list[50];
        assert_eq!(meter["kind"], "meter");
        assert_eq!(meter["ip"], "127.20.0.51");
        assert_eq!(meter["modbus_port"], 502);
        assert!(
            meter["unit_id"]
                .as_u64()
                .is_some_and(|u| (1..=4).contains(&u))
        );
        assert!(meter.get("port").is_none());
    }
}
