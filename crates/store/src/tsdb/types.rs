//! The small value types of the store's public API: ids, aggregations, resolutions, points,
//! configuration and statistics.

use std::path::PathBuf;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// Where the store lives, what a row holds, and how long each resolution is kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Folder that holds everything (WAL, state, chunk and rollup files).
    pub dir: PathBuf,
    /// The row schema by name, e.g. `["hashrate_ths", "power_w"]`; columns may be appended later.
    pub columns: Vec<String>,
    /// WAL write-and-fsync cadence: at most this much acknowledged data is lost on `kill -9`.
    pub flush_interval: Duration,
    /// How long each resolution is kept.
    pub retention: Retention,
    /// How much data time the in-memory head covers before it is sealed into a chunk; bounds
    /// memory (about `columns × 8 bytes × polls per interval` per device).
    pub seal_interval: Duration,
    /// How long after a rollup bucket ends rows for it are still awaited before it is closed.
    pub rollup_grace: Duration,
    /// Mantissa bits kept of the named columns' values (the rest are stored exactly): noise
    /// below a reading's meaningful precision costs disk and says nothing.
    pub precision_bits: Vec<(String, u32)>,
    /// Keep each series' newest row in memory for [`Store::latest`](super::Store::latest)
    /// (a row of `columns × 8 bytes` per series). An application that holds the latest
    /// readings itself turns it off.
    pub keep_latest: bool,
}

impl StoreConfig {
    /// A configuration with the defaults: flush every second, seal every minute, 30 s grace.
    pub fn new(dir: impl Into<PathBuf>, columns: Vec<String>) -> Self {
        StoreConfig {
            dir: dir.into(),
            columns,
            flush_interval: Duration::from_secs(1),
            retention: Retention::default(),
            seal_interval: Duration::from_secs(60),
            rollup_grace: Duration::from_secs(30),
            precision_bits: Vec::new(),
            keep_latest: true,
        }
    }
}

/// How long each resolution is kept; whole files are deleted once they fall out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw rows (one per device per poll).
    pub raw: Duration,
    /// 1-minute group rollups.
    pub min1: Duration,
    /// 5-minute group rollups.
    pub min5: Duration,
    /// 1-hour group rollups.
    pub hour1: Duration,
}

impl Default for Retention {
    /// Raw 14 days, 1 min 30 days, 5 min 1 year, 1 h 5 years. One month of 1-minute rollups
    /// covers the "last weeks" charts at full detail for a few percent of the raw volume; past
    /// that, 5-minute buckets are as fine as a year-long chart can show.
    fn default() -> Self {
        Retention {
            raw: DAY * 14,
            min1: DAY * 30,
            min5: DAY * 365,
            hour1: DAY * 365 * 5,
        }
    }
}

/// The store's handle for one device's series; stable once flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

/// How a group's devices are combined in one bucket (each device counts with its bucket mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    /// Sum over devices of each device's mean (node hashrate in TH/s).
    Sum,
    /// Mean over devices of each device's mean.
    Avg,
    /// Smallest device mean.
    Min,
    /// Largest device mean.
    Max,
    /// Number of devices that reported a value in the bucket.
    Count,
}

/// Time resolution of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Every stored row (series queries only).
    Raw,
    /// 1-minute buckets.
    Min1,
    /// 5-minute buckets.
    Min5,
    /// 1-hour buckets.
    Hour1,
}

impl Resolution {
    /// Bucket width in milliseconds (`None` for raw).
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Resolution::Raw => None,
            Resolution::Min1 => Some(60_000),
            Resolution::Min5 => Some(300_000),
            Resolution::Hour1 => Some(3_600_000),
        }
    }
}

/// One value at one time; for bucketed results the time is the bucket start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix time in milliseconds.
    pub time_unix_ms: i64,
    /// The value.
    pub value: f64,
}

/// Counters and sizes that tell an operator how the store is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows accepted since open (including rows replayed from the WAL).
    pub rows_ingested: u64,
    /// Values accepted since open (rows × columns).
    pub samples_ingested: u64,
    /// Series known to the store.
    pub series: u64,
    /// Groups known to the store.
    pub groups: u64,
    /// Rows in the in-memory head, not yet sealed.
    pub head_rows: u64,
    /// Bytes of all files under the store folder.
    pub bytes_on_disk: u64,
    /// Bytes of raw chunk files (`chunks/`).
    pub chunk_bytes: u64,
    /// Bytes of rollup files (`rollups/`).
    pub rollup_bytes: u64,
    /// Bytes of the WAL segments.
    pub wal_bytes: u64,
    /// Bytes of the state file (registry and chunks not yet compacted).
    pub state_bytes: u64,
    /// Seals done since open.
    pub seals: u64,
    /// Chunks written since open (sealed and compacted, raw and rollup).
    pub chunks_written: u64,
    /// Chunks whose checksum did not match (or that did not decode) since open; never served.
    pub corrupt_chunks_skipped: u64,
    /// WAL segments cut short at a damaged record since open.
    pub wal_truncations: u64,
    /// Rows that arrived after their rollup bucket was closed: stored raw, left out of rollups.
    pub late_rows: u64,
    /// Rows older than the raw retention when they would have been written: dropped.
    pub rows_dropped_retention: u64,
    /// Files deleted by retention since open.
    pub files_deleted: u64,
}
