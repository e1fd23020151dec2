//! Device identity: what a device is (kind, make, model, firmware) and where it stands.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable identifier of a device, kept across IP changes (MAC or serial based when known).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct DeviceId(pub String);

impl DeviceId {
    /// An id derived from a MAC address, normalised to lower-case colon form.
    pub fn from_mac(mac: &str) -> Option<Self> {
        let hex: String = mac.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if hex.len() != 12 {
            return None;
        }
        let lower = hex.to_ascii_lowercase();
        let parts: Vec<&str> = (0..6).map(|i| &lower[i * 2..i * 2 + 2]).collect();
        Some(DeviceId(format!("mac:{}", parts.join(":"))))
    }

    /// An id derived from an address, for devices that expose no MAC or serial.
    pub fn from_addr(addr: std::net::IpAddr) -> Self {
        DeviceId(format!("ip:{addr}"))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What sort of equipment a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// An ASIC miner or a small open miner such as a Bitaxe.
    Miner,
    /// A power meter (Modbus TCP).
    PowerMeter,
    /// A cooling container or immersion unit.
    Container,
    /// A stand-alone sensor.
    Sensor,
}

/// The company that made the hardware (not the firmware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    /// Bitmain (Antminer).
    Bitmain,
    /// MicroBT (Whatsminer).
    MicroBt,
    /// Canaan (Avalon).
    Canaan,
    /// Open-hardware Bitaxe and its derivatives.
    Bitaxe,
    /// Hardware of unknown make behind a generic interface (plain cgminer or BFGMiner).
    Unknown,
}

impl Vendor {
    /// The name an operator knows the vendor by.
    pub fn display_name(self) -> &'static str {
        match self {
            Vendor::Bitmain => "Bitmain",
            Vendor::MicroBt => "MicroBT",
            Vendor::Canaan => "Canaan",
            Vendor::Bitaxe => "Bitaxe",
            Vendor::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A hardware model as the vendor names it, e.g. `Antminer S19 Pro` or `AvalonMiner 1346`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Model(pub String);

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The firmware family running on a device; third-party firmware differs from stock in API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FirmwareKind {
    /// The vendor's own firmware (bmminer, Canaan cgminer, btminer).
    Stock,
    /// Braiins OS (bosminer / BOSer).
    BraiinsOs,
    /// LuxOS (LUXminer).
    LuxOs,
    /// Plain cgminer.
    Cgminer,
    /// BFGMiner.
    Bfgminer,
    /// VNish (Anthill).
    Vnish,
    /// Bitaxe ESP-Miner / AxeOS.
    AxeOs,
}

impl FirmwareKind {
    /// The name an operator knows the firmware by.
    pub fn display_name(self) -> &'static str {
        match self {
            FirmwareKind::Stock => "stock",
            FirmwareKind::BraiinsOs => "Braiins OS",
            FirmwareKind::LuxOs => "LuxOS",
            FirmwareKind::Cgminer => "cgminer",
            FirmwareKind::Bfgminer => "BFGMiner",
            FirmwareKind::Vnish => "VNish",
            FirmwareKind::AxeOs => "AxeOS",
        }
    }
}

/// Firmware family and the build string the device reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Firmware {
    /// Which firmware family.
    pub kind: FirmwareKind,
    /// The version or build string as reported (e.g. `49.0.1.3`, `2025.4.8.220305-57b389c7`).
    pub version: String,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(self.kind.display_name())
        } else {
            write!(f, "{} {}", self.kind.display_name(), self.version)
        }
    }
}

/// Where a device physically stands: site / container-or-room / rack / shelf / slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    /// The site (a farm).
    pub site: Option<String>,
    /// A container or a room within the site.
    pub container: Option<String>,
    /// A rack within the container.
    pub rack: Option<String>,
    /// Shelf number within the rack, from the top, starting at 1.
    pub shelf: Option<u16>,
    /// Slot number on the shelf, from the left, starting at 1.
    pub slot: Option<u16>,
}

/// Who a device is: what identification found at an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceIdentity {
    /// Kind of equipment.
    pub kind: DeviceKind,
    /// Hardware maker.
    pub vendor: Vendor,
    /// Hardware model.
    pub model: Model,
    /// Firmware family and build.
    pub firmware: Firmware,
    /// MAC address as reported, when the device tells it.
    pub mac: Option<String>,
    /// Serial number, when the device tells it.
    pub serial: Option<String>,
    /// Host name, when the device tells it.
    pub hostname: Option<String>,
    /// The model is not one we know; telemetry is read generically.
    pub partially_supported: bool,
}

impl DeviceIdentity {
    /// The stable id for this device: from its MAC, else its serial, else its address.
    pub fn device_id(&self, addr: std::net::IpAddr) -> DeviceId {
        if let Some(id) = self.mac.as_deref().and_then(DeviceId::from_mac) {
            return id;
        }
        if let Some(serial) = self.serial.as_deref().filter(|s| !s.is_empty()) {
            return DeviceId(format!("sn:{serial}"));
        }
        DeviceId::from_addr(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_ids_normalise() {
        assert_eq!(
            DeviceId::from_mac("AA-BB-CC-00-11-22").map(|d| d.0),
            Some("mac:aa:bb:cc:00:11:22".to_string())
        );
        assert_eq!(
            DeviceId::from_mac("aabbcc001122").map(|d| d.0),
            Some("mac:aa:bb:cc:00:11:22".to_string())
        );
        assert_eq!(DeviceId::from_mac("aa:bb"), None);
    }
}
