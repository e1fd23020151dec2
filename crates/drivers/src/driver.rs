//! The [`Driver`] trait: what every device family implements to be identified, polled and
//! commanded. Adding a vendor is copying a neighbouring family folder and implementing this.

use crate::error::DriverError;
use crate::target::Target;
use crate::verify::{self, Verdict, VerifyPolicy};
use async_trait::async_trait;
use hashmesh_core::{Command, CommandOutcome, DeviceIdentity, MinerSnapshot};

/// Which commands a driver can carry out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Reboot the controller.
    pub reboot: bool,
    /// Restart the mining process only.
    pub restart_mining: bool,
    /// Replace the pool list.
    pub set_pools: bool,
    /// Switch discrete power modes.
    pub power_mode: bool,
    /// Tune to a watt target.
    pub power_target: bool,
    /// Sleep and wake.
    pub sleep_wake: bool,
    /// Locate LED.
    pub locate_led: bool,
}

impl Capabilities {
    /// Whether `command` is among these capabilities.
    pub fn allows(&self, command: &Command) -> bool {
        match command {
            Command::Reboot => self.reboot,
            Command::RestartMining => self.restart_mining,
            Command::SetPools { .. } => self.set_pools,
            Command::SetPowerMode { .. } => self.power_mode,
            Command::SetPowerTarget { .. } => self.power_target,
            Command::Sleep | Command::Wake => self.sleep_wake,
            Command::LocateLed { .. } => self.locate_led,
        }
    }
}

/// What the device said when it received a command, before any read-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The device's own words (status message), or a description of a silent close.
    pub message: String,
    /// The device gave no reply (some firmwares close the socket on reboot or soft-on).
    pub silent: bool,
}

/// A device family's driver.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Short stable name of the family (`cgminer`, `antminer`, `avalon`, …).
    fn name(&self) -> &'static str;

    /// Commands this family supports.
    fn capabilities(&self) -> Capabilities;

    /// Who the device at `target` is: make, model, firmware, MAC, serial.
    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError>;

    /// One full telemetry read.
    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError>;

    /// Sends a command and returns the device's acknowledgement, without verifying it.
    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError>;

    /// Whether `after` shows that `command` took effect, given the state `before` it was sent.
    /// Families override this where their read-back differs from the generic snapshot check.
    fn check(
        &self,
        command: &Command,
        before: Option<&MinerSnapshot>,
        after: &MinerSnapshot,
    ) -> Verdict {
        verify::check(command, before, after)
    }

    /// Lets go of per-device state the driver no longer needs (logins unused for long, say).
    /// The node calls it once per poll cycle; it must be quick.
    fn housekeep(&self) {}

    /// Sends a command and reads the device's state back until it shows the effect, or the
    /// policy's deadline passes.
    async fn execute(
        &self,
        target: &Target,
        command: &Command,
        policy: &VerifyPolicy,
    ) -> CommandOutcome {
        verify::execute(self, target, command, policy).await
    }
}
