//! Metrics export: Prometheus text exposition and remote-write.
//!
//! The node decides *what* to export; this module holds the two reusable mechanisms:
//!
//! - [`prometheus`]: a [`prometheus::TextEncoder`] that writes the text exposition format 0.0.4
//!   served at `/metrics`.
//! - [`remote_write`]: a [`remote_write::RemoteWriter`] that pushes series to a Prometheus
//!   remote-write receiver (VictoriaMetrics, Prometheus, Mimir, …) through a bounded on-disk
//!   queue, so that an outage of the receiver loses nothing.
//!
//! Both follow the Prometheus naming rules checked in [`names`].

pub mod names;
pub mod prometheus;
pub mod remote_write;

use std::path::PathBuf;

/// What can go wrong when configuring or feeding an exporter.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A setting of [`remote_write::RemoteWriteConfig`] cannot be used.
    #[error("remote-write config: {field}: {reason}")]
    InvalidConfig {
        /// The config field at fault.
        field: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// A series handed to [`remote_write::RemoteWriter::push`] breaks the remote-write rules;
    /// nothing of that push was queued.
    #[error("remote-write series #{index} ({name}): {reason}")]
    InvalidSeries {
        /// Position of the series in the pushed vector.
        index: usize,
        /// Its `__name__` label, or `?` when it has none.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the on-disk queue failed.
    #[error("remote-write queue {path}: {action}: {source}")]
    Queue {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the queue was doing.
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another live writer holds this queue folder.
    #[error("remote-write queue {dir} is in use by another writer")]
    QueueLocked {
        /// The queue folder.
        dir: PathBuf,
    },
    /// One batch alone is larger than the whole queue may be.
    #[error(
        "remote-write batch of {batch_bytes} bytes does not fit in queue_max_bytes = {max_bytes}; \
         raise queue_max_bytes or lower batch_max_samples"
    )]
    BatchTooLarge {
        /// Size of the encoded batch file.
        batch_bytes: u64,
        /// The configured bound.
        max_bytes: u64,
    },
    /// [`remote_write::RemoteWriter::spawn`] was called outside a tokio runtime.
    #[error("remote-write needs a tokio runtime to start its sender task")]
    NoRuntime,
    /// The TLS settings could not be loaded.
    #[error("remote-write TLS: {0}")]
    Tls(String),
}
