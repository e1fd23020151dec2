//! [`Store`]: ties the WAL, the head, the rollup levels and the chunked tables together, and
//! answers queries by merging what is on disk with what is still in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::error::StoreError;
use super::files::{DAY_MS, FileCache, FileSpan};
use super::registry::Registry;
use super::rollup::{
    COUNT, Cell, LEVEL_MS, Level, MAX, MIN, RollupRow, STATS, SUM, round_mantissa,
};
use super::table::{L0Def, Rows, Shared, Table};
use super::types::{Agg, Point, Resolution, SeriesId, StoreConfig, StoreStats};
use super::wal::{self, WalRecord, WalWriter};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SERIES: TableDefinition<u32, &str> = TableDefinition::new("series");
const GROUPS: TableDefinition<u32, &str> = TableDefinition::new("groups");
const MEMBERS: TableDefinition<u32, &[u8]> = TableDefinition::new("members");
const RAW_L0: L0Def = TableDefinition::new("raw_l0");
const ROLL_L0: [L0Def; 3] = [
    TableDefinition::new("min1_l0"),
    TableDefinition::new("min5_l0"),
    TableDefinition::new("hour1_l0"),
];
const ROLL_NAMES: [&str; 3] = ["min1", "min5", "hour1"];

/// The head is sealed early when it holds this many rows, whatever the seal interval.
const HEAD_MAX_ROWS: usize = 2_000_000;
/// Rows compacted per `tick` at most (one L0 block more is always allowed).
const COMPACT_ROWS_PER_TICK: usize = 400_000;
/// redb page cache of each chunk or rollup file. Chunks are read once per query and their
/// sections are large; a bigger cache only held pages nobody read again.
const FILE_CACHE_BYTES: usize = 8 << 20;
/// redb page cache of the state file (registry, L0 chunks read once by compaction).
const STATE_CACHE_BYTES: usize = 16 << 20;
/// Open chunk and rollup files kept beyond those in use.
const FILES_KEPT_OPEN: usize = 16;

/// The newest row of each series: time and values.
type Latest = Vec<Option<(i64, Box<[f64]>)>>;

/// Rows frozen by a seal in progress: still served from memory until their chunks commit.
struct Frozen {
    seq: u64,
    raw: Vec<(u32, Rows)>,
    roll: [Vec<RollupRow>; 3],
    /// The last WAL segment whose rows are all in this seal.
    segment: u64,
    /// Rollup watermarks matching the closed buckets in `roll`.
    watermarks: [i64; 3],
}

/// Everything the ingest path touches, behind one lock.
struct Ingest {
    wal: WalWriter,
    reg: Registry,
    head: Vec<Rows>,
    head_rows: usize,
    latest: Latest,
    levels: [Level; 3],
    roll_head: [Vec<RollupRow>; 3],
    frozen: Option<Arc<Frozen>>,
    /// Highest seal sequence whose chunks are committed.
    committed_seq: u64,
    next_seq: u64,
    /// Rollup watermarks as of the last committed seal.
    sealed_watermarks: [i64; 3],
    last_seal_ms: Option<i64>,
    last_retention_ms: i64,
    /// A row's values after rounding (reused between rows).
    scratch: Vec<f64>,
}

#[derive(Default)]
struct Counters {
    rows: AtomicU64,
    late: AtomicU64,
    dropped: AtomicU64,
    seals: AtomicU64,
    wal_truncations: AtomicU64,
    files_deleted: AtomicU64,
}

/// The embedded time-series store. `Send + Sync`; every method takes `&self`.
pub struct Store {
    config: StoreConfig,
    ncols: usize,
    col_index: HashMap<String, usize>,
    /// Mantissa bits kept per column (52: exact); empty when every column is exact.
    precision: Vec<u32>,
    shared: Shared,
    raw: Table,
    roll: [Table; 3],
    ingest: Mutex<Ingest>,
    maint: Mutex<()>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn level_of(res: Resolution) -> Option<usize> {
    match res {
        Resolution::Raw => None,
        Resolution::Min1 => Some(0),
        Resolution::Min5 => Some(1),
        Resolution::Hour1 => Some(2),
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn get_u64(t: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Option<u64> {
    let v = t.get(key).ok()??;
    let b: [u8; 8] = v.value().try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

impl Store {
    /// Opens (or creates) the store in `config.dir`, replaying the WAL.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        if config.columns.is_empty() || config.columns.iter().any(|c| c.is_empty()) {
            return Err(StoreError::InvalidArgument(
                "the schema needs at least one named column".into(),
            ));
        }
        // Checked before anything is opened or created: a configuration error has no effect.
        let mut precision = Vec::new();
        for (name, bits) in &config.precision_bits {
            let Some(c) = config.columns.iter().position(|n| n == name) else {
                return Err(StoreError::InvalidArgument(format!(
                    "precision for '{name}', which is not a column"
                )));
            };
            if !(1..=52).contains(bits) {
                return Err(StoreError::InvalidArgument(format!(
                    "precision of '{name}': {bits} bits (expected 1 to 52)"
                )));
            }
            precision.resize(config.columns.len(), 52);
            precision[c] = *bits;
        }
        let dir = config.dir.clone();
        let wal_dir = dir.join("wal");
        for d in [&dir, &wal_dir, &dir.join("chunks"), &dir.join("rollups")] {
            std::fs::create_dir_all(d).map_err(StoreError::io(d))?;
        }
        let state_path = dir.join("state.redb");
        let state = Database::builder()
            .set_cache_size(STATE_CACHE_BYTES)
            .create(&state_path)
            .map_err(StoreError::db(&state_path))?;
        let ncols = config.columns.len();
        let col_index = config
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let r = &config.retention;
        let raw = Table {
            name: "raw",
            l0: RAW_L0,
            dir: dir.join("chunks"),
            span: FileSpan::Day,
            period_ms: 3_600_000,
            width: ncols,
            retention_ms: ms(r.raw),
            pending: Default::default(),
            files_written: Default::default(),
        };
        let roll_spec = [
            (FileSpan::Day, 3_600_000, r.min1),
            (FileSpan::Month, DAY_MS, r.min5),
            (FileSpan::Year, DAY_MS, r.hour1),
        ];
        let roll = std::array::from_fn(|i| Table {
            name: ROLL_NAMES[i],
            l0: ROLL_L0[i],
            dir: dir.join("rollups").join(ROLL_NAMES[i]),
            span: roll_spec[i].0,
            period_ms: roll_spec[i].1,
            width: ncols * STATS,
            retention_ms: ms(roll_spec[i].2),
            pending: Default::default(),
            files_written: Default::default(),
        });
        let shared = Shared {
            state,
            state_path: state_path.clone(),
            files: FileCache::new(FILE_CACHE_BYTES),
            corrupt: AtomicU64::new(0),
            chunks_written: AtomicU64::new(0),
        };

        // Schema, registry and watermarks from the state file.
        let mut reg = Registry::default();
        let (sealed_segment, next_seq, watermarks) = load_state(&shared, &config, &mut reg)?;
        raw.load_pending(&shared)?;
        for t in &roll {
            t.load_pending(&shared)?;
        }
        let levels = std::array::from_fn(|i| Level::new(LEVEL_MS[i], ncols, watermarks[i]));
        let mut segments = wal::list_segments(&wal_dir)?;
        let newest = segments.last().copied().unwrap_or(0).max(sealed_segment);
        let existing: u64 = segments
            .iter()
            .filter(|&&n| n > sealed_segment)
            .map(|&n| {
                std::fs::metadata(wal::segment_path(&wal_dir, n))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum();
        let wal = WalWriter::create(&wal_dir, newest + 1, existing)?;
        let store = Store {
            ncols,
            col_index,
            precision,
            shared,
            raw,
            roll,
            ingest: Mutex::new(Ingest {
                wal,
                reg,
                head: Vec::new(),
                head_rows: 0,
                latest: Vec::new(),
                levels,
                roll_head: Default::default(),
                frozen: None,
                committed_seq: next_seq.saturating_sub(1),
                next_seq,
                sealed_watermarks: watermarks,
                last_seal_ms: None,
                last_retention_ms: i64::MIN,
                scratch: Vec::new(),
            }),
            maint: Mutex::new(()),
            counters: Counters::default(),
            config,
        };

        // Rebuild open rollup buckets and latest rows from the sealed-but-not-compacted rows,
        // then replay the WAL written after the last seal.
        {
            let mut ing = lock(&store.ingest);
            let ing = &mut *ing;
            let keep_latest = store.config.keep_latest;
            store.raw.for_each_l0(&store.shared, |_, data| {
                let mut at = 0usize;
                let mut row = vec![f64::NAN; ncols];
                for (&id, &n) in data.series.iter().zip(&data.rows) {
                    for i in at..at + n as usize {
                        for (c, v) in row.iter_mut().enumerate() {
                            *v = data.columns.get(c).map_or(f64::NAN, |col| col[i]);
                        }
                        feed_rollups(ing, id, data.ts[i], &row);
                        if keep_latest {
                            set_latest(&mut ing.latest, id, data.ts[i], &row);
                        }
                    }
                    at += n as usize;
                }
            })?;
        }
        segments.retain(|&n| {
            if n <= sealed_segment {
                let _ = std::fs::remove_file(wal::segment_path(&wal_dir, n));
                false
            } else {
                true
            }
        });
        for n in segments {
            let path = wal::segment_path(&wal_dir, n);
            let (records, cut) = wal::replay_segment(&path)?;
            if cut {
                store
                    .counters
                    .wal_truncations
                    .fetch_add(1, Ordering::Relaxed);
            }
            store.replay(&path, records);
        }
        Ok(store)
    }

    fn replay(&self, path: &Path, records: Vec<WalRecord>) {
        let mut ing = lock(&self.ingest);
        let ing = &mut *ing;
        for rec in records {
            match rec {
                WalRecord::Series { id, key } => {
                    let new = ing.reg.series_id(&key).is_none();
                    if ing.reg.add_series(id, &key) {
                        if new {
                            ing.reg.dirty.series.push((id, key));
                        }
                    } else {
                        tracing::warn!(file = %path.display(), "WAL names series {id} {key:?}, which contradicts the registry; ignored");
                    }
                }
                WalRecord::Group { id, name } => {
                    let new = ing.reg.group_id(&name).is_none();
                    if ing.reg.add_group(id, &name) {
                        if new {
                            ing.reg.dirty.groups.push((id, name));
                        }
                    } else {
                        tracing::warn!(file = %path.display(), "WAL names group {id} {name:?}, which contradicts the registry; ignored");
                    }
                }
                WalRecord::Members { series, groups } => {
                    ing.reg.set_members(series, &groups);
                }
                WalRecord::Rows {
                    ncols,
                    series,
                    ts,
                    values,
                } => {
                    let mut row = vec![f64::NAN; self.ncols];
                    for (i, (&s, &t)) in series.iter().zip(&ts).enumerate() {
                        if s as usize >= ing.reg.series_count() {
                            tracing::warn!(file = %path.display(), "WAL row for unknown series {s}; skipped");
                            continue;
                        }
                        for (c, v) in row.iter_mut().enumerate() {
                            *v = if c < ncols {
                                values[i * ncols + c]
                            } else {
                                f64::NAN
                            };
                        }
                        self.apply_row(ing, s, t, &row);
                    }
                }
            }
        }
    }

    /// Stable id for a device key (e.g. the device id string); persisted.
    pub fn series(&self, key: &str) -> Result<SeriesId, StoreError> {
        if key.is_empty() || key.len() > u16::MAX as usize {
            return Err(StoreError::InvalidArgument(format!(
                "a series key must be 1 to 65535 bytes, got {}",
                key.len()
            )));
        }
        let mut ing = lock(&self.ingest);
        if let Some(id) = ing.reg.series_id(key) {
            return Ok(SeriesId(id));
        }
        let id = ing.reg.new_series(key);
        ing.wal.log_name(false, id, key)?;
        Ok(SeriesId(id))
    }

    /// The groups a series rolls up into from now on (e.g. `["all", "site=A"]`); persisted.
    pub fn set_groups(&self, series: SeriesId, groups: &[String]) -> Result<(), StoreError> {
        if let Some(bad) = groups
            .iter()
            .find(|g| g.is_empty() || g.len() > u16::MAX as usize)
        {
            return Err(StoreError::InvalidArgument(format!(
                "bad group name {bad:?}"
            )));
        }
        let mut ing = lock(&self.ingest);
        if series.0 as usize >= ing.reg.series_count() {
            return Err(StoreError::UnknownSeries(series.0));
        }
        let mut ids = Vec::with_capacity(groups.len());
        for g in groups {
            let id = match ing.reg.group_id(g) {
                Some(id) => id,
                None => {
                    let id = ing.reg.new_group(g);
                    ing.wal.log_name(true, id, g)?;
                    id
                }
            };
            ids.push(id);
        }
        if ing.reg.set_members(series.0, &ids) {
            let now = ing.reg.groups_of(series.0).to_vec();
            ing.wal.log_members(series.0, &now)?;
        }
        Ok(())
    }

    /// Appends one row; `values[i]` is column i; NaN means "not measured this poll".
    pub fn append(
        &self,
        series: SeriesId,
        time_unix_ms: i64,
        values: &[f64],
    ) -> Result<(), StoreError> {
        self.append_batch(&[(series, time_unix_ms, values)])
    }

    /// Appends many rows at once (the poller hands off batches).
    pub fn append_batch(&self, rows: &[(SeriesId, i64, &[f64])]) -> Result<(), StoreError> {
        if let Some((s, _, v)) = rows.iter().find(|(_, _, v)| v.len() != self.ncols) {
            return Err(StoreError::RowWidth {
                series: s.0,
                expected: self.ncols,
                got: v.len(),
            });
        }
        let sync = {
            let mut ing = lock(&self.ingest);
            let known = ing.reg.series_count();
            if let Some((s, _, _)) = rows.iter().find(|(s, _, _)| s.0 as usize >= known) {
                return Err(StoreError::UnknownSeries(s.0));
            }
            let logged: Vec<(u32, i64, &[f64])> =
                rows.iter().map(|(s, t, v)| (s.0, *t, *v)).collect();
            ing.wal.log_rows(self.ncols, &logged)?;
            for (s, t, v) in rows {
                self.apply_row(&mut ing, s.0, *t, v);
            }
            if ing.wal.last_sync().elapsed() >= self.config.flush_interval {
                ing.wal.write_out()?;
                Some(ing.wal.sync_handle()?)
            } else {
                None
            }
        };
        if let Some((file, path)) = sync {
            self.finish_sync(file, &path)?;
        }
        Ok(())
    }

    fn apply_row(&self, ing: &mut Ingest, s: u32, t: i64, values: &[f64]) {
        let i = s as usize;
        if ing.head.len() <= i {
            ing.head.resize_with(i + 1, Rows::default);
        }
        // Rounded here rather than before the WAL: a replay rounds the same way.
        let mut rounded = std::mem::take(&mut ing.scratch);
        let values =
            if self.precision.is_empty() {
                values
            } else {
                rounded.clear();
                rounded.extend(values.iter().enumerate().map(|(c, &v)| {
                    round_mantissa(v, self.precision.get(c).copied().unwrap_or(52))
                }));
                &rounded[..]
            };
        let h = &mut ing.head[i];
        h.ts.push(t);
        h.vals.extend_from_slice(values);
        ing.head_rows += 1;
        if self.config.keep_latest {
            set_latest(&mut ing.latest, s, t, values);
        }
        if !feed_rollups(ing, s, t, values) {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
        }
        ing.scratch = rounded;
        self.counters.rows.fetch_add(1, Ordering::Relaxed);
    }

    fn finish_sync(&self, file: std::fs::File, path: &Path) -> Result<(), StoreError> {
        let started = Instant::now();
        file.sync_data().map_err(StoreError::io(path))?;
        let mut ing = lock(&self.ingest);
        if ing.wal.last_sync() < started {
            ing.wal.mark_synced(started);
        }
        Ok(())
    }

    /// Forces the WAL to disk now (also done every flush interval by `tick` and `append`).
    pub fn flush(&self) -> Result<(), StoreError> {
        let (file, path) = {
            let mut ing = lock(&self.ingest);
            ing.wal.write_out()?;
            ing.wal.sync_handle()?
        };
        self.finish_sync(file, &path)
    }

    /// Housekeeping: flush the WAL if due, close finished rollup buckets, seal the head when
    /// due, compact periods that can no longer change, apply retention. Call about once a
    /// second with the current time; it can take a while (compaction), so call it where
    /// blocking is fine.
    pub fn tick(&self, now_unix_ms: i64) -> Result<(), StoreError> {
        let _m = lock(&self.maint);
        let (due_flush, due_seal, do_retention) = {
            let mut ing = lock(&self.ingest);
            let ing = &mut *ing;
            let cutoff = now_unix_ms.saturating_sub(ms(self.config.rollup_grace));
            for (i, level) in ing.levels.iter_mut().enumerate() {
                let rows = level.close_until(cutoff, &ing.reg);
                ing.roll_head[i].extend(rows);
            }
            let last = *ing.last_seal_ms.get_or_insert(now_unix_ms);
            let due_seal = now_unix_ms.saturating_sub(last) >= ms(self.config.seal_interval)
                || ing.head_rows >= HEAD_MAX_ROWS
                || ing.frozen.is_some();
            let do_retention = now_unix_ms.saturating_sub(ing.last_retention_ms) >= 60_000;
            if do_retention {
                ing.last_retention_ms = now_unix_ms;
            }
            (
                ing.wal.last_sync().elapsed() >= self.config.flush_interval,
                due_seal,
                do_retention,
            )
        };
        if due_flush {
            self.flush()?;
        }
        if due_seal {
            self.seal_locked(now_unix_ms)?;
        }
        self.compact_some(now_unix_ms)?;
        if do_retention {
            let mut deleted = self.raw.apply_retention(&self.shared, now_unix_ms)?;
            for t in &self.roll {
                deleted += t.apply_retention(&self.shared, now_unix_ms)?;
            }
            self.counters
                .files_deleted
                .fetch_add(deleted, Ordering::Relaxed);
        }
        self.shared.files.trim(FILES_KEPT_OPEN);
        Ok(())
    }

    /// Seals the head now: writes it as L0 chunks and drops the WAL it came from.
    pub fn seal(&self) -> Result<(), StoreError> {
        let _m = lock(&self.maint);
        let now = lock(&self.ingest).last_seal_ms.unwrap_or(0);
        self.seal_locked(now)
    }

    fn seal_locked(&self, now_ms: i64) -> Result<(), StoreError> {
        // Freeze (or retry a frozen seal that failed to commit).
        let (frozen, dirty) = {
            let mut ing = lock(&self.ingest);
            let ing = &mut *ing;
            ing.last_seal_ms = Some(now_ms);
            let frozen = match &ing.frozen {
                Some(f) => f.clone(),
                None => {
                    let nothing = ing.head_rows == 0
                        && ing.roll_head.iter().all(|r| r.is_empty())
                        && ing.reg.dirty.series.is_empty()
                        && ing.reg.dirty.groups.is_empty()
                        && ing.reg.dirty.members.is_empty()
                        && ing
                            .levels
                            .iter()
                            .zip(&ing.sealed_watermarks)
                            .all(|(l, w)| l.watermark == *w);
                    if nothing {
                        return Ok(());
                    }
                    let seq = ing.next_seq;
                    let segment = ing.wal.segment();
                    ing.wal.rotate(segment + 1)?;
                    ing.next_seq += 1;
                    let head = std::mem::take(&mut ing.head);
                    ing.head.resize_with(head.len(), Rows::default);
                    ing.head_rows = 0;
                    let raw: Vec<(u32, Rows)> = head
                        .into_iter()
                        .enumerate()
                        .filter(|(_, r)| !r.ts.is_empty())
                        .map(|(i, r)| (i as u32, r))
                        .collect();
                    let roll = std::array::from_fn(|i| std::mem::take(&mut ing.roll_head[i]));
                    let watermarks = std::array::from_fn(|i| ing.levels[i].watermark);
                    let f = Arc::new(Frozen {
                        seq,
                        raw,
                        roll,
                        segment,
                        watermarks,
                    });
                    ing.frozen = Some(f.clone());
                    f
                }
            };
            // Registry changes logged after the freeze are persisted early; that is harmless.
            let dirty = std::mem::take(&mut ing.reg.dirty);
            let members: Vec<(u32, Vec<u32>)> = dirty
                .members
                .iter()
                .map(|&s| (s, ing.reg.groups_of(s).to_vec()))
                .collect();
            (frozen, (dirty, members))
        };
        let (watermarks, sealed_segment) = (frozen.watermarks, frozen.segment);
        let result = self.write_seal(&frozen, &dirty, watermarks, sealed_segment);
        let mut ing = lock(&self.ingest);
        match result {
            Ok(()) => {
                ing.committed_seq = frozen.seq;
                ing.frozen = None;
                ing.sealed_watermarks = watermarks;
                ing.wal.remove_below(sealed_segment + 1)?;
                self.counters.seals.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Keep the frozen rows served from memory and the WAL segments on disk; the
                // registry changes go back to be written with the next attempt.
                let (d, _) = dirty;
                ing.reg.dirty.series.extend(d.series);
                ing.reg.dirty.groups.extend(d.groups);
                ing.reg.dirty.members.extend(d.members);
                Err(e)
            }
        }
    }

    fn write_seal(
        &self,
        frozen: &Frozen,
        dirty: &(super::registry::Dirty, Vec<(u32, Vec<u32>)>),
        watermarks: [i64; 3],
        sealed_segment: u64,
    ) -> Result<(), StoreError> {
        let path = &self.shared.state_path;
        let mut txn = self
            .shared
            .state
            .begin_write()
            .map_err(StoreError::db(path))?;
        txn.set_durability(Durability::Immediate)
            .map_err(StoreError::db(path))?;
        self.raw
            .write_l0(&txn, &self.shared, frozen.seq, &frozen.raw)?;
        for (i, rows) in frozen.roll.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let mut by_group: BTreeMap<u32, Rows> = BTreeMap::new();
            for r in rows {
                let e = by_group.entry(r.group).or_default();
                e.ts.push(r.bucket);
                e.vals.extend_from_slice(&r.values);
            }
            let runs: Vec<(u32, Rows)> = by_group.into_iter().collect();
            self.roll[i].write_l0(&txn, &self.shared, frozen.seq, &runs)?;
        }
        {
            let (d, members) = dirty;
            let mut t = txn.open_table(SERIES).map_err(StoreError::db(path))?;
            for (id, key) in &d.series {
                t.insert(*id, key.as_str()).map_err(StoreError::db(path))?;
            }
            let mut t = txn.open_table(GROUPS).map_err(StoreError::db(path))?;
            for (id, name) in &d.groups {
                t.insert(*id, name.as_str()).map_err(StoreError::db(path))?;
            }
            let mut t = txn.open_table(MEMBERS).map_err(StoreError::db(path))?;
            for (s, groups) in members {
                let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
                t.insert(*s, bytes.as_slice())
                    .map_err(StoreError::db(path))?;
            }
            let mut t = txn.open_table(META).map_err(StoreError::db(path))?;
            t.insert("sealed_segment", sealed_segment.to_le_bytes().as_slice())
                .map_err(StoreError::db(path))?;
            t.insert("next_seq", (frozen.seq + 1).to_le_bytes().as_slice())
                .map_err(StoreError::db(path))?;
            for (i, w) in watermarks.iter().enumerate() {
                t.insert(ROLL_NAMES[i], w.to_le_bytes().as_slice())
                    .map_err(StoreError::db(path))?;
            }
        }
        txn.commit().map_err(StoreError::db(path))?;
        Ok(())
    }

    /// Compacts periods whose rows can no longer change, within the per-tick budget.
    fn compact_some(&self, now: i64) -> Result<(), StoreError> {
        let wm = lock(&self.ingest).sealed_watermarks;
        let mut budget = COMPACT_ROWS_PER_TICK as i64;
        // Raw rows of an hour are needed to rebuild open buckets of every level after a
        // restart, so the hour waits until all three levels are closed past it.
        let raw_limit = wm.iter().copied().min().unwrap_or(i64::MIN);
        let mut work: Vec<(&Table, i64, u32)> = Vec::new();
        for (p, b) in self
            .raw
            .pending_before(raw_limit.saturating_sub(self.raw.period_ms - 1))
        {
            if p + self.raw.period_ms <= raw_limit {
                work.push((&self.raw, p, b));
            }
        }
        for (i, t) in self.roll.iter().enumerate() {
            for (p, b) in t.pending_before(wm[i]) {
                if p + t.period_ms <= wm[i] {
                    work.push((t, p, b));
                }
            }
        }
        for (t, p, b) in work {
            if budget <= 0 {
                break;
            }
            let (written, dropped) = t.compact(&self.shared, p, b, now)?;
            if t.name == "raw" {
                self.counters
                    .dropped
                    .fetch_add(dropped as u64, Ordering::Relaxed);
            }
            budget -= written.max(1) as i64;
        }
        self.raw.close_finished(&self.shared, raw_limit);
        for (i, t) in self.roll.iter().enumerate() {
            t.close_finished(&self.shared, wm[i]);
        }
        Ok(())
    }

    /// Compacts everything that can be compacted now, ignoring the per-tick budget.
    pub fn compact_all(&self, now_unix_ms: i64) -> Result<(), StoreError> {
        let _m = lock(&self.maint);
        loop {
            let before: usize = std::iter::once(&self.raw)
                .chain(self.roll.iter())
                .map(|t| t.pending_before(i64::MAX).len())
                .sum();
            self.compact_some(now_unix_ms)?;
            let after: usize = std::iter::once(&self.raw)
                .chain(self.roll.iter())
                .map(|t| t.pending_before(i64::MAX).len())
                .sum();
            if after == before {
                return Ok(());
            }
        }
    }

    fn column(&self, name: &str) -> Result<usize, StoreError> {
        self.col_index
            .get(name)
            .copied()
            .ok_or_else(|| StoreError::UnknownColumn(name.to_string()))
    }

    /// One device's column between two times (`[from, to)`), raw or downsampled (mean per
    /// bucket, bucket start as time). Values that were not measured (NaN) are left out.
    pub fn query_series(
        &self,
        series: SeriesId,
        column: &str,
        from_ms: i64,
        to_ms: i64,
        resolution: Resolution,
    ) -> Result<Vec<Point>, StoreError> {
        let col = self.column(column)?;
        let s = series.0;
        // In memory: the head and a seal in progress, each with the seal sequence it will get.
        let (mem, committed) = {
            let ing = lock(&self.ingest);
            if s as usize >= ing.reg.series_count() {
                return Err(StoreError::UnknownSeries(s));
            }
            let mut mem: Vec<(u64, i64, f64)> = Vec::new();
            let w = self.ncols;
            let mut take = |seq: u64, r: &Rows| {
                for (i, &t) in r.ts.iter().enumerate() {
                    if t >= from_ms && t < to_ms {
                        mem.push((seq, t, r.vals[i * w + col]));
                    }
                }
            };
            if let Some(f) = &ing.frozen
                && let Ok(i) = f.raw.binary_search_by_key(&s, |(id, _)| *id)
            {
                take(f.seq, &f.raw[i].1);
            }
            if let Some(r) = ing.head.get(s as usize) {
                take(ing.next_seq, r);
            }
            (mem, ing.committed_seq)
        };
        let disk = self
            .raw
            .read(&self.shared, s, &[col], from_ms, to_ms, committed)?;
        let absorbed = disk.absorbed;
        let mut rows: Vec<(i64, f64)> = disk
            .ts
            .into_iter()
            .zip(disk.cols.into_iter().flatten())
            .collect();
        for (seq, t, v) in mem {
            if absorbed.get(&self.raw.period(t)).is_some_and(|&a| a >= seq) {
                continue;
            }
            rows.push((t, v));
        }
        rows.retain(|(_, v)| !v.is_nan());
        rows.sort_by_key(|r| r.0);
        let Some(bucket) = resolution.bucket_ms() else {
            return Ok(rows
                .into_iter()
                .map(|(t, v)| Point {
                    time_unix_ms: t,
                    value: v,
                })
                .collect());
        };
        let mut out: Vec<Point> = Vec::new();
        let mut n = 0u32;
        for (t, v) in rows {
            let b = t.div_euclid(bucket) * bucket;
            match out.last_mut() {
                Some(p) if p.time_unix_ms == b => {
                    n += 1;
                    p.value += (v - p.value) / f64::from(n);
                }
                _ => {
                    n = 1;
                    out.push(Point {
                        time_unix_ms: b,
                        value: v,
                    });
                }
            }
        }
        Ok(out)
    }

    /// A group's aggregate of a column, one point per bucket of `resolution` whose start is in
    /// `[from, to)`; the open bucket gives its partial value. Buckets without data are left out.
    pub fn query_group(
        &self,
        group: &str,
        column: &str,
        agg: Agg,
        from_ms: i64,
        to_ms: i64,
        resolution: Resolution,
    ) -> Result<Vec<Point>, StoreError> {
        let col = self.column(column)?;
        let level = level_of(resolution).ok_or_else(|| {
            StoreError::InvalidArgument("group queries need Min1, Min5 or Hour1 resolution".into())
        })?;
        let mut cells: BTreeMap<i64, Cell> = BTreeMap::new();
        let stat_cols = [
            col * STATS + SUM,
            col * STATS + COUNT,
            col * STATS + MIN,
            col * STATS + MAX,
        ];
        let to_cell = |v: &[f64]| Cell {
            sum: v[0],
            count: v[1] as u32,
            min: v[2],
            max: v[3],
        };
        let (gid, mem, committed) = {
            let ing = lock(&self.ingest);
            let gid = ing
                .reg
                .group_id(group)
                .ok_or_else(|| StoreError::UnknownGroup(group.to_string()))?;
            let mut mem: Vec<(u64, i64, Cell)> = Vec::new();
            let mut take = |seq: u64, rows: &[RollupRow]| {
                for r in rows {
                    if r.group == gid && r.bucket >= from_ms && r.bucket < to_ms {
                        let v: Vec<f64> = stat_cols.iter().map(|&c| r.values[c]).collect();
                        mem.push((seq, r.bucket, to_cell(&v)));
                    }
                }
            };
            if let Some(f) = &ing.frozen {
                take(f.seq, &f.roll[level]);
            }
            take(ing.next_seq, &ing.roll_head[level]);
            for (b, c) in ing.levels[level].partial(gid, col, from_ms, to_ms, &ing.reg) {
                cells.insert(b, c);
            }
            (gid, mem, ing.committed_seq)
        };
        let table = &self.roll[level];
        let disk = table.read(&self.shared, gid, &stat_cols, from_ms, to_ms, committed)?;
        let absorbed = disk.absorbed;
        for (i, &t) in disk.ts.iter().enumerate() {
            let v = [
                disk.cols[0][i],
                disk.cols[1][i],
                disk.cols[2][i],
                disk.cols[3][i],
            ];
            cells.entry(t).or_insert(Cell::EMPTY).merge(&to_cell(&v));
        }
        for (seq, t, c) in mem {
            if absorbed.get(&table.period(t)).is_some_and(|&a| a >= seq) {
                continue;
            }
            cells.entry(t).or_insert(Cell::EMPTY).merge(&c);
        }
        Ok(cells
            .into_iter()
            .filter(|(_, c)| c.count > 0)
            .map(|(t, c)| Point {
                time_unix_ms: t,
                value: match agg {
                    Agg::Sum => c.sum,
                    Agg::Avg => c.sum / f64::from(c.count),
                    Agg::Min => c.min,
                    Agg::Max => c.max,
                    Agg::Count => f64::from(c.count),
                },
            })
            .collect())
    }

    /// The newest row of a series: time and values (from rows seen since open, including
    /// those replayed at open); always `None` when the store was opened with
    /// [`StoreConfig::keep_latest`] off.
    pub fn latest(&self, series: SeriesId) -> Option<(i64, Vec<f64>)> {
        let ing = lock(&self.ingest);
        ing.latest
            .get(series.0 as usize)?
            .as_ref()
            .map(|(t, v)| (*t, v.to_vec()))
    }

    /// The configured columns, in row order.
    pub fn columns(&self) -> &[String] {
        &self.config.columns
    }

    /// Counters and sizes.
    pub fn stats(&self) -> StoreStats {
        let (series, groups, head_rows, wal_bytes) = {
            let ing = lock(&self.ingest);
            (
                ing.reg.series_count() as u64,
                ing.reg.group_count() as u64,
                ing.head_rows as u64,
                ing.wal.bytes(),
            )
        };
        let dir = &self.config.dir;
        let chunk_bytes = dir_bytes(&dir.join("chunks"));
        let rollup_bytes = dir_bytes(&dir.join("rollups"));
        let state_bytes = std::fs::metadata(&self.shared.state_path)
            .map(|m| m.len())
            .unwrap_or(0);
        let wal_disk = dir_bytes(&dir.join("wal"));
        let rows = self.counters.rows.load(Ordering::Relaxed);
        StoreStats {
            rows_ingested: rows,
            samples_ingested: rows * self.ncols as u64,
            series,
            groups,
            head_rows,
            bytes_on_disk: chunk_bytes + rollup_bytes + state_bytes + wal_disk,
            chunk_bytes,
            rollup_bytes,
            wal_bytes: wal_bytes.max(wal_disk),
            state_bytes,
            seals: self.counters.seals.load(Ordering::Relaxed),
            chunks_written: self.shared.chunks_written.load(Ordering::Relaxed),
            corrupt_chunks_skipped: self.shared.corrupt.load(Ordering::Relaxed),
            wal_truncations: self.counters.wal_truncations.load(Ordering::Relaxed),
            late_rows: self.counters.late.load(Ordering::Relaxed),
            rows_dropped_retention: self.counters.dropped.load(Ordering::Relaxed),
            files_deleted: self.counters.files_deleted.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("could not flush the WAL while closing the store: {e}");
        }
    }
}

/// Feeds a row to the three rollup levels; false if it was late for any of them.
fn feed_rollups(ing: &mut Ingest, s: u32, t: i64, values: &[f64]) -> bool {
    let mut ok = true;
    for level in ing.levels.iter_mut() {
        ok &= level.add_row(s, t, values, &ing.reg);
    }
    ok
}

fn set_latest(latest: &mut Latest, s: u32, t: i64, values: &[f64]) {
    let i = s as usize;
    if latest.len() <= i {
        latest.resize_with(i + 1, || None);
    }
    match &mut latest[i] {
        Some((lt, lv)) if *lt <= t => {
            *lt = t;
            lv.copy_from_slice(values);
        }
        Some(_) => {}
        slot @ None => *slot = Some((t, values.into())),
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(ft) if ft.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn missing_ok<T>(r: Result<T, TableError>) -> Result<Option<T>, TableError> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Loads schema, registry and seal state; writes the schema for a new store.
fn load_state(
    shared: &Shared,
    config: &StoreConfig,
    reg: &mut Registry,
) -> Result<(u64, u64, [i64; 3]), StoreError> {
    let path: &PathBuf = &shared.state_path;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.clone(),
        detail,
    };
    let txn = shared.state.begin_read().map_err(StoreError::db(path))?;
    let mut stored_cols: Option<Vec<String>> = None;
    let mut sealed_segment = 0;
    let mut next_seq = 1;
    let mut wm = [i64::MIN; 3];
    if let Some(t) = missing_ok(txn.open_table(META)).map_err(StoreError::db(path))? {
        if let Some(v) = t.get("columns").map_err(StoreError::db(path))? {
            let s = std::str::from_utf8(v.value())
                .map_err(|_| corrupt("column list is not UTF-8".into()))?;
            stored_cols = Some(s.split('\0').map(str::to_string).collect());
        }
        sealed_segment = get_u64(&t, "sealed_segment").unwrap_or(0);
        next_seq = get_u64(&t, "next_seq").unwrap_or(1);
        for (i, w) in wm.iter_mut().enumerate() {
            if let Some(v) = get_u64(&t, ROLL_NAMES[i]) {
                *w = v as i64;
            }
        }
    }
    if let Some(stored) = &stored_cols
        && (stored.len() > config.columns.len() || stored[..] != config.columns[..stored.len()])
    {
        return Err(StoreError::SchemaMismatch {
            path: path.clone(),
            stored: stored.clone(),
            configured: config.columns.clone(),
        });
    }
    if let Some(t) = missing_ok(txn.open_table(SERIES)).map_err(StoreError::db(path))? {
        for e in t.iter().map_err(StoreError::db(path))? {
            let (k, v) = e.map_err(StoreError::db(path))?;
            if !reg.add_series(k.value(), v.value()) {
                return Err(corrupt(format!(
                    "series table: id {} out of order",
                    k.value()
                )));
            }
        }
    }
    if let Some(t) = missing_ok(txn.open_table(GROUPS)).map_err(StoreError::db(path))? {
        for e in t.iter().map_err(StoreError::db(path))? {
            let (k, v) = e.map_err(StoreError::db(path))?;
            if !reg.add_group(k.value(), v.value()) {
                return Err(corrupt(format!(
                    "group table: id {} out of order",
                    k.value()
                )));
            }
        }
    }
    if let Some(t) = missing_ok(txn.open_table(MEMBERS)).map_err(StoreError::db(path))? {
        for e in t.iter().map_err(StoreError::db(path))? {
            let (k, v) = e.map_err(StoreError::db(path))?;
            let groups: Vec<u32> = v
                .value()
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            reg.set_members(k.value(), &groups);
        }
    }
    reg.dirty = Default::default();
    drop(txn);
    if stored_cols.as_ref() != Some(&config.columns) {
        let txn = shared.state.begin_write().map_err(StoreError::db(path))?;
        {
            let mut t = txn.open_table(META).map_err(StoreError::db(path))?;
            let joined = config.columns.join("\0");
            t.insert("columns", joined.as_bytes())
                .map_err(StoreError::db(path))?;
        }
        txn.commit().map_err(StoreError::db(path))?;
    }
    Ok((sealed_segment, next_seq, wm))
}
