//! Simulated devices: protocol-faithful twins of the miners hashmesh drives, a physical model
//! behind them, fault injection, and a fleet that binds many loopback addresses.
//!
//! A simulator shares only the core domain types with its driver, never wire code: the
//! replies here are built by this crate's own writer ([`reply`]) so a framing or parsing bug
//! in a driver cannot be agreed on by both sides.
//!
//! Start one device with [`spawn_device`] and compare a driver's snapshot with
//! [`RunningDevice::truth`]; start thousands with [`fleet`].
//!
//! Map of the crate:
//! * [`family`] – which firmware a device speaks ([`Family`]).
//! * [`nameplate`] – hardware figures of the models we simulate.
//! * [`model`] – the physical model: hashrate, power, temperatures, fans, pools, reboots.
//! * [`faults`] – what can go wrong with a device ([`Fault`]).
//! * [`reply`] – the cgminer-style reply writer (JSON and text forms).
//! * [`rpc`] – the cgminer RPC server logic of each family (TCP 4028).
//! * [`device`] – one device on a TCP listener ([`spawn_device`], [`RunningDevice`]).
//! * [`fleet`] – a whole site laid out in containers and racks: every family at its real ports,
//!   and each container's power meters.
//! * [`whatsminer`] – MicroBT Whatsminer (API v2 on 4028, API v3 on 4433), its own servers.
//! * [`web`] – HTTP devices: the Antminer CGI interface and Bitaxe AxeOS.
//! * [`meter`] – Modbus TCP power meters (ABB, Schneider, Satec) on a physical load.

#![warn(missing_docs)]

pub mod device;
pub mod family;
pub mod faults;
pub mod fleet;
pub mod meter;
pub mod model;
pub mod nameplate;
pub mod reply;
pub mod rpc;
pub mod web;
pub mod whatsminer;

pub use device::{DeviceConfig, RunningDevice, spawn_device};
pub use family::Family;
pub use faults::Fault;
pub use fleet::{FleetFamily, FleetSpec};
pub use model::Timing;
pub use nameplate::Nameplate;
pub use whatsminer::{RunningWhatsminer, WhatsminerApi, WhatsminerConfig, spawn_whatsminer};
