//! Domain types shared by every hashmesh crate: who a device is, what a poll of it saw, and what
//! an operator can ask it to do. Plain data with serde; no I/O and no vendor logic.
//!
//! Units are part of every field name (`hashrate_ths`, `power_w`, `chip_temp_c`), so a value
//! never needs a comment to be read correctly.

pub mod command;
pub mod device;
pub mod intern;
pub mod meter;
pub mod snapshot;

pub use command::{Command, CommandOutcome, CommandResult, PoolConfig, PowerMode};
pub use device::{
    DeviceId, DeviceIdentity, DeviceKind, Firmware, FirmwareKind, Location, Model, Vendor,
};
pub use intern::intern;
pub use meter::{MeterIdentity, MeterSnapshot};
pub use snapshot::{
    BoardSnapshot, MinerSnapshot, MinerStatus, PoolSnapshot, PoolStatus, PowerSource, VendorError,
};
