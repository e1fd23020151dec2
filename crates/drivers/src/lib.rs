//! The hashmesh device SDK: a [`Driver`] trait every device family implements, the families
//! themselves (one folder each: `mod.rs` driver, `proto.rs` wire format, `parse.rs` raw reply to
//! snapshot, `control.rs` commands), identification of an unknown device and network scans.
//!
//! Usable on its own: open a [`Target`], pick a driver from the [`Registry`], and poll.

pub mod driver;
pub mod error;
pub mod health;
pub mod registry;
pub mod target;
pub mod verify;

pub mod antminer;
pub mod avalon;
pub mod bitaxe;
pub mod braiins;
pub mod cgminer;
pub mod credentials;
pub mod http;
pub mod identify;
pub mod luxos;
pub mod modbus;
pub mod scan;
pub mod whatsminer;

pub use driver::{Ack, Capabilities, Driver};
pub use error::DriverError;
pub use registry::Registry;
pub use target::{CredentialSet, Credentials, Target, Timeouts};
pub use verify::{Verdict, VerifyPolicy};

/// Current wall-clock time in unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
