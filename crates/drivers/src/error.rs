//! The one error type drivers return: each variant is a device state an operator can act on.

use std::time::Duration;

/// Why talking to a device failed. Every variant names what came back, never panics upstream.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Nothing accepted the connection (refused, unreachable).
    #[error("connection refused or unreachable: {0}")]
    Connect(std::io::Error),
    /// The device did not finish in time.
    #[error("timed out after {0:?} ({1})")]
    Timeout(Duration, &'static str),
    /// The connection broke mid-exchange.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The reply exceeded the size cap.
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
    /// The reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The device refused our credentials.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The device answered with an error status.
    #[error("device refused: {0}")]
    Rejected(String),
    /// This device or driver cannot do that.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl DriverError {
    /// A short machine-readable kind, for metrics and JSON (`timeout`, `malformed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            DriverError::Connect(_) => "connect",
            DriverError::Timeout(..) => "timeout",
            DriverError::Io(_) => "io",
            DriverError::TooLarge(_) => "too_large",
            DriverError::Malformed(_) => "malformed",
            DriverError::Auth(_) => "auth",
            DriverError::Rejected(_) => "rejected",
            DriverError::Unsupported(_) => "unsupported",
        }
    }

    /// Whether the device should be shown as offline (not answering) rather than in error.
    pub fn is_offline(&self) -> bool {
        matches!(self, DriverError::Connect(_) | DriverError::Timeout(..))
    }
}
