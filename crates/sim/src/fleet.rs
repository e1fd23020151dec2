//! A simulated site: N devices on consecutive loopback addresses, laid out in sites,
//! containers, racks, shelves and slots, with a family mix and faults for a share of them.
//!
//! Every device is a pure function of the spec and its index ([`FleetSpec::device`]), so a
//! worker process can start its own range without anyone sending it the whole plan.

use crate::device::{
    DeviceConfig, RunningDevice, default_pools, mac_for, serial_for, spawn_device,
};
use crate::family::Family;
use crate::faults::{Fault, FaultPlan};
use crate::model::{Timing, mix, unit};
use crate::nameplate;
use hashmesh_core::Location;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;

/// Devices per rack: 4 shelves of 8 slots.
pub const RACK_DEVICES: usize = 32;
/// Slots per shelf.
pub const SHELF_SLOTS: usize = 8;
/// Racks per container (256 devices).
pub const CONTAINER_RACKS: usize = 8;
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
}

/// What a fleet looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSpec {
    /// Number of devices.
    pub devices: usize,
    /// Address of the first device; the rest follow, skipping .0 and .255 of each /24.
    pub base: Ipv4Addr,
    /// RPC port every device listens on.
    pub port: u16,
    /// Families with relative weights.
    pub mix: Vec<(Family, u32)>,
    /// Which devices get faults.
    pub faults: FaultPlan,
    /// Seed of the whole fleet.
    pub seed: u64,
    /// Timing of every device.
    pub timing: Timing,
}

/// The default family mix: `antminer=40,avalon=20,braiins=15,luxos=15,cgminer=5,bfgminer=5`.
pub const DEFAULT_MIX: &str = "antminer=40,avalon=20,braiins=15,luxos=15,cgminer=5,bfgminer=5";

/// Parses `antminer=40,avalon=20,…` into families with weights; a bare family name
/// (`--mix avalon`) has weight 1.
pub fn parse_mix(spec: &str) -> Result<Vec<(Family, u32)>, String> {
    let mut mix = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = item.split_once('=').unwrap_or((item, "1"));
        let family: Family = name.parse()?;
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

/// One device of a fleet, fully determined by the spec and its index.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetDevice {
    /// Position in the fleet, from 0.
    pub index: usize,
    /// Address.
    pub ip: Ipv4Addr,
    /// RPC port.
    pub port: u16,
    /// Firmware family.
    pub family: Family,
    /// Nameplate model.
    pub model: &'static str,
    /// Faults at start.
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
    /// `devices` devices from `base` on port 4028 with the default mix and no faults.
    pub fn new(devices: usize, base: Ipv4Addr) -> Self {
        FleetSpec {
            devices,
            base,
            port: 4028,
            mix: parse_mix(DEFAULT_MIX).unwrap_or_default(),
            faults: FaultPlan::default(),
            seed: 1,
            timing: Timing::realistic(),
        }
    }

    /// Checks the addresses stay inside 127.0.0.0/8 and the mix is usable.
    pub fn validate(&self) -> Result<(), FleetError> {
        if self.base.octets()[0] != 127 {
            return Err(FleetError::NotLoopback(self.base));
        }
        if matches!(self.base.octets()[3], 0 | 255) {
            return Err(FleetError::BadHost(self.base));
        }
        if self.devices > 0 {
            let last = self.address(self.devices - 1);
            if last.is_none_or(|ip| ip.octets()[0] != 127) {
                return Err(FleetError::TooMany(self.devices, self.base));
            }
        }
        if self.mix.iter().all(|(_, w)| *w == 0) {
            return Err(FleetError::EmptyMix);
        }
        Ok(())
    }

    /// The address of device `index`.
    pub fn address(&self, index: usize) -> Option<Ipv4Addr> {
        host_at(host_index(self.base) + index as u64)
    }

    fn family_at(&self, index: usize) -> Family {
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
            .map_or(Family::Cgminer, |(f, _)| *f)
    }

    /// Device `index`: address, family, model, faults, location, MAC and serial.
    pub fn device(&self, index: usize) -> FleetDevice {
        let seed = mix(self.seed, 80, index as u64);
        let family = self.family_at(index);
        let models = nameplate::fleet_models(family);
        let total: u32 = models.iter().map(|(_, w)| *w).sum();
        let mut pick = (mix(seed, 81, 0) % u64::from(total.max(1))) as u32;
        let mut model = family.default_model();
        for (m, w) in models {
            if pick < *w {
                model = m;
                break;
            }
            pick -= w;
        }
        let ip = self.address(index).unwrap_or(self.base);
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
        FleetDevice {
            index,
            ip,
            port: self.port,
            family,
            model,
            faults,
            location: location(index),
            mac: mac_for(seed),
            serial: serial_for(family, seed),
            seed,
            quirks: family == Family::Avalon && unit(seed, 82, 0) < 1.0 / 3.0,
        }
    }

    /// The device configuration of `d`. `with_location` false leaves the location empty, which
    /// saves memory in workers (the location is on no wire, only in the manifest).
    pub fn config(&self, d: &FleetDevice, with_location: bool) -> DeviceConfig {
        DeviceConfig {
            family: d.family,
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
            rpc_write_access: d.family != Family::Antminer,
            pools: default_pools(d.seed),
            firmware_quirks: d.quirks,
        }
    }
}

/// Where device `index` stands.
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

/// One manifest entry: ip, port, family, model, faults, location, mac, serial.
pub fn manifest_entry(d: &FleetDevice) -> serde_json::Value {
    serde_json::json!({
        "ip": d.ip.to_string(),
        "port": d.port,
        "family": d.family.as_str(),
        "model": d.model,
        "faults": d.faults.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "location": d.location,
        "mac": d.mac,
        "serial": d.serial,
        "quirks": d.quirks,
    })
}

/// Writes the manifest of the whole fleet as a JSON array, one object per line.
pub fn write_manifest(spec: &FleetSpec, mut out: impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"[\n")?;
    for i in 0..spec.devices {
        let entry = manifest_entry(&spec.device(i));
        serde_json::to_writer(&mut out, &entry)?;
        out.write_all(if i + 1 < spec.devices { b",\n" } else { b"\n" })?;
    }
    out.write_all(b"]\n")?;
    out.flush()
}

/// Starts devices `range` of the fleet. Fails on the first address that cannot be bound.
pub async fn spawn_range(
    spec: &FleetSpec,
    range: Range<usize>,
) -> std::io::Result<Vec<RunningDevice>> {
    let mut running = Vec::with_capacity(range.len());
    for i in range {
        let d = spec.device(i);
        let addr = SocketAddr::new(d.ip.into(), d.port);
        let dev = spawn_device(spec.config(&d, false), addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("device {i} at {addr}: {e}")))?;
        running.push(dev);
    }
    Ok(running)
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
    fn refuses_non_loopback_and_overflow() {
        let spec = FleetSpec::new(10, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            spec.validate(),
            Err(FleetError::NotLoopback(Ipv4Addr::new(10, 0, 0, 1)))
        );
        let spec = FleetSpec::new(10, Ipv4Addr::new(127, 0, 0, 0));
        assert!(matches!(spec.validate(), Err(FleetError::BadHost(_))));
        let spec = FleetSpec::new(1000, Ipv4Addr::new(127, 255, 255, 1));
        assert!(matches!(spec.validate(), Err(FleetError::TooMany(..))));
        let spec = FleetSpec::new(100_000, Ipv4Addr::new(127, 20, 0, 1));
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn mix_and_faults_follow_the_spec() {
        let mut spec = FleetSpec::new(10_000, Ipv4Addr::new(127, 20, 0, 1));
        spec.faults =
            FaultPlan::parse("offline=1%,hang=0.5%,127.20.0.3=fan-fail").unwrap_or_default();
        let devices: Vec<FleetDevice> = (0..spec.devices).map(|i| spec.device(i)).collect();
        let count = |f: Family| devices.iter().filter(|d| d.family == f).count();
        assert!(
            (count(Family::Antminer) as i64 - 4000).abs() < 50,
            "{}",
            count(Family::Antminer)
        );
        assert!(
            (count(Family::Avalon) as i64 - 2000).abs() < 50,
            "{}",
            count(Family::Avalon)
        );
        assert!(
            (count(Family::Bfgminer) as i64 - 500).abs() < 50,
            "{}",
            count(Family::Bfgminer)
        );
        let offline = devices
            .iter()
            .filter(|d| d.faults.contains(&Fault::Offline))
            .count();
        assert!((60..=140).contains(&offline), "{offline}");
        assert!(devices[2].faults.contains(&Fault::FanFail));
        for d in &devices[..200] {
            assert!(
                nameplate::find(d.model).is_some_and(|n| n.fits(d.family)),
                "{d:?}"
            );
        }
        // A small fleet still gets a spread of families.
        let small = FleetSpec::new(10, Ipv4Addr::new(127, 20, 0, 1));
        let families: std::collections::BTreeSet<Family> =
            (0..10).map(|i| small.device(i).family).collect();
        assert!(families.len() >= 4, "{families:?}");
        // The same spec gives the same fleet.
        assert_eq!(spec.device(1234), spec.device(1234));
    }

    #[test]
    fn mixes_parse() {
        assert_eq!(
            parse_mix("antminer=3, luxos=1"),
            Ok(vec![(Family::Antminer, 3), (Family::LuxOs, 1)])
        );
        assert_eq!(parse_mix("avalon"), Ok(vec![(Family::Avalon, 1)]));
        for bad in ["", "antminer=0", "whatsminer=1", "antminer=x"] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
        let mut spec = FleetSpec::new(50, Ipv4Addr::new(127, 20, 0, 1));
        spec.mix = parse_mix("braiins").unwrap_or_default();
        assert!((0..50).all(|i| spec.device(i).family == Family::Braiins));
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
    fn manifest_is_a_json_array() {
        let spec = FleetSpec::new(3, Ipv4Addr::new(127, 20, 0, 1));
        let mut buf = Vec::new();
        write_manifest(&spec, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
        assert_eq!(v.as_array().map(Vec::len), Some(3));
        assert_eq!(v[1]["ip"], "127.20.0.2");
        assert_eq!(v[1]["port"], 4028);
        assert!(v[1]["location"]["rack"].is_string());
    }
}
