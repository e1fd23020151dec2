//! The embedded time-series store: one row per device per poll, rollups per group computed at
//! ingest, usable on its own (no node needed).
//!
//! # How data flows
//!
//! `append` → **WAL** (fsynced every flush interval) → **head** (per-series row buffers in
//! memory) and the **rollup accumulators** (per device, per 1 min / 5 min / 1 h bucket) →
//! every seal interval the head becomes **L0 chunks** in the state file → once an hour can no
//! longer change, **compaction** merges its L0 chunks into **L1 chunks** in that day's file.
//! Closed rollup buckets take the same road into their own tables. Queries merge the files, the
//! state file and memory. `table.rs` describes the two stages and [`codec`] the chunk format.
//!
//! # On disk
//!
//! ```text
//! <dir>/
//!   wal/<segment, 20 digits>.wal    rows and registry changes since the last seal (see wal)
//!   state.redb                      schema, series and group registry, memberships, seal
//!                                   state (last sealed WAL segment, next seal sequence, rollup
//!                                   watermarks) and the L0 chunks of every table
//!   chunks/YYYY-MM-DD.redb          raw rows of one UTC day: L1 chunks, one per hour and
//!                                   block of 128 series (table "l1")
//!   rollups/min1/YYYY-MM-DD.redb    1-minute group rollups, one L1 chunk per hour and block
//!                                   of 128 groups
//!   rollups/min5/YYYY-MM.redb       5-minute rollups, one L1 chunk per day
//!   rollups/hour1/YYYY.redb         1-hour rollups, one L1 chunk per day
//! ```
//! A rollup row holds, per column, the sum, count, minimum and maximum of the member devices'
//! bucket means. Retention deletes whole files once they end more than the retention ago. A
//! period file is closed once its last period is compacted: redb returns the unused tail of a
//! file it grew only on close (about 45 % of a finished day of raw rows).
//!
//! # Durability
//!
//! A seal writes the head's chunks, the registry changes and the rollup watermarks in one
//! redb transaction, together with the number of the WAL segment it covers; only then are
//! those segments deleted. After a crash, open replays the remaining segments (a damaged tail
//! is cut off with a warning naming the file and offset) and rebuilds the open rollup buckets
//! from the L0 chunks and the WAL. Every chunk section carries a CRC32; one that does not match
//! is skipped with a warning, counted in [`StoreStats::corrupt_chunks_skipped`], never served.
//!
//! # Rollup semantics
//!
//! In each bucket a device counts with the mean of its values there; a group's `Sum` is the
//! sum of those means over its member devices, `Avg` their mean, `Min`/`Max` their extremes,
//! `Count` the number of devices with a value. NaN values are skipped. A device's bucket rolls
//! up into the groups it belongs to when the bucket closes, so after `set_groups` the device
//! counts in its new groups from its current bucket on. Closed rollups are kept at f32
//! precision (24 significant bits); raw rows are kept exactly.

pub mod codec;
mod error;
mod files;
mod registry;
mod rollup;
mod store;
mod table;
mod types;
pub mod wal;

pub use error::StoreError;
pub use store::Store;
pub use types::{Agg, Point, Resolution, Retention, SeriesId, StoreConfig, StoreStats};
