//! A chunked table: rows keyed by an id (a series, or a group for rollups) and a time, stored
//! in two stages.
//!
//! * **L0**: each seal writes the head's rows as small chunks (blocks of [`L0_BLOCK`] ids, pco
//!   level [`L0_LEVEL`]) into the state file, table `<name>_l0`, key
//!   `(period start, L0 block, column slot, seal sequence)`.
//! * **L1**: once a period (an hour of raw rows, say) can no longer change, compaction merges
//!   its L0 chunks, and any L1 chunk already there, into one chunk per [`L1_BLOCK`] ids at pco
//!   level [`L1_LEVEL`], in the period's file (table `l1`, key `(period start, L1 block,
//!   column slot)`), then deletes the L0 chunks. The L1 chunk records the highest seal
//!   sequence it absorbed, so an L0 chunk left behind by a crash between the two commits is
//!   recognised and ignored.
//!
//! Column slot 0 is the chunk's index section, slot `1 + c` column `c` (see [`super::codec`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::codec::{ChunkData, ChunkIndex, decode_chunk, encode_chunk};
use super::error::StoreError;
use super::files::{FileCache, FileSpan};

/// Ids per L0 chunk.
pub const L0_BLOCK: u32 = 1024;
/// Ids per L1 chunk.
pub const L1_BLOCK: u32 = 128;
/// pco level of L0 chunks: fast, they live for about an hour.
pub const L0_LEVEL: usize = 4;
/// pco level of L1 chunks: they are kept for weeks.
pub const L1_LEVEL: usize = 8;

/// Key of a piece of an L1 section: period start, L1 block, column slot, piece.
pub const L1_TABLE: TableDefinition<(i64, u32, u16, u16), &[u8]> = TableDefinition::new("l1");
/// Key of a piece of an L0 section: period start, L0 block, column slot, seal sequence, piece.
pub type L0Def = TableDefinition<'static, (i64, u32, u16, u64, u16), &'static [u8]>;

/// Sections are stored in pieces of at most this many bytes. redb gives a value larger than
/// a page a power-of-two run of pages of its own, which wastes a quarter of the space on
/// average; pieces that fit one 4 KiB page (with redb's leaf header) waste almost nothing.
pub const PIECE: usize = 3968;

type L1Key = (i64, u32, u16, u16);
type L0Key = (i64, u32, u16, u64, u16);
type Bytes = &'static [u8];

fn put_l1(
    t: &mut redb::Table<'_, L1Key, Bytes>,
    (p, b, slot): (i64, u32, u16),
    bytes: &[u8],
) -> Result<(), redb::StorageError> {
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        t.insert((p, b, slot, i as u16), piece)?;
    }
    Ok(())
}

/// Reassembles an L1 section from its pieces (`None` if it has none).
fn get_l1(
    t: &impl ReadableTable<L1Key, Bytes>,
    (p, b, slot): (i64, u32, u16),
) -> Result<Option<Vec<u8>>, redb::StorageError> {
    let mut out: Option<Vec<u8>> = None;
    for e in t.range((p, b, slot, 0u16)..=(p, b, slot, u16::MAX))? {
        let (_, v) = e?;
        out.get_or_insert_with(Vec::new)
            .extend_from_slice(v.value());
    }
    Ok(out)
}

fn put_l0(
    t: &mut redb::Table<'_, L0Key, Bytes>,
    (p, b, slot, seq): (i64, u32, u16, u64),
    bytes: &[u8],
) -> Result<(), redb::StorageError> {
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        t.insert((p, b, slot, seq, i as u16), piece)?;
    }
    Ok(())
}

/// Reassembles an L0 section from its pieces (`None` if it has none).
fn get_l0(
    t: &impl ReadableTable<L0Key, Bytes>,
    (p, b, slot, seq): (i64, u32, u16, u64),
) -> Result<Option<Vec<u8>>, redb::StorageError> {
    let mut out: Option<Vec<u8>> = None;
    for e in t.range((p, b, slot, seq, 0u16)..=(p, b, slot, seq, u16::MAX))? {
        let (_, v) = e?;
        out.get_or_insert_with(Vec::new)
            .extend_from_slice(v.value());
    }
    Ok(out)
}

/// Seal sequences of the L0 chunks of (period, block) up to `max_seq`, ascending.
fn l0_seqs(
    t: &impl ReadableTable<L0Key, Bytes>,
    p: i64,
    b: u32,
    max_seq: u64,
) -> Result<Vec<u64>, redb::StorageError> {
    let mut seqs: Vec<u64> = Vec::new();
    for e in t.range((p, b, 0u16, 0u64, 0u16)..=(p, b, 0u16, max_seq, u16::MAX))? {
        let (k, _) = e?;
        let seq = k.value().3;
        if seqs.last() != Some(&seq) {
            seqs.push(seq);
        }
    }
    Ok(seqs)
}

/// The rows of one id, `vals` row-major with the table's width per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Times.
    pub ts: Vec<i64>,
    /// Values, row after row.
    pub vals: Vec<f64>,
}

impl Rows {
    /// Sorts rows by time (stable: equal times keep their order).
    pub fn sort(&mut self, width: usize) {
        if self.ts.is_sorted() {
            return;
        }
        let mut order: Vec<usize> = (0..self.ts.len()).collect();
        order.sort_by_key(|&i| self.ts[i]);
        let ts = order.iter().map(|&i| self.ts[i]).collect();
        let mut vals = Vec::with_capacity(self.vals.len());
        for &i in &order {
            vals.extend_from_slice(&self.vals[i * width..(i + 1) * width]);
        }
        self.ts = ts;
        self.vals = vals;
    }
}

/// What every table shares: the state file, the open period files, and counters.
pub struct Shared {
    /// The state file (registry, L0 chunks, watermarks).
    pub state: Database,
    /// Its path, for messages.
    pub state_path: PathBuf,
    /// Open period files.
    pub files: FileCache,
    /// Chunks that failed their checks.
    pub corrupt: AtomicU64,
    /// Chunks written.
    pub chunks_written: AtomicU64,
}

impl Shared {
    /// Logs and counts a chunk that failed its check.
    pub fn corrupt_chunk(&self, file: &Path, key: &str, why: &dyn std::fmt::Display) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            file = %file.display(),
            chunk = key,
            "chunk {key} in {} failed its check ({why}); skipped, never served",
            file.display()
        );
    }
}

/// Static description of one table.
pub struct Table {
    /// Name for messages (`raw`, `min1`, ...).
    pub name: &'static str,
    /// Its L0 table in the state file.
    pub l0: L0Def,
    /// Folder of its period files.
    pub dir: PathBuf,
    /// Time covered by one file.
    pub span: FileSpan,
    /// Time covered by one L1 chunk (divides the file span).
    pub period_ms: i64,
    /// Values per row.
    pub width: usize,
    /// Files ending this long before now are deleted.
    pub retention_ms: i64,
    /// Periods with L0 chunks waiting for compaction, and their L0 blocks.
    pub pending: std::sync::Mutex<BTreeMap<i64, BTreeSet<u32>>>,
    /// Period files compaction wrote to since they were last closed (by file start).
    pub files_written: std::sync::Mutex<BTreeSet<i64>>,
}

/// Rows found for one id, with where they came from (for de-duplication).
struct Found {
    period: i64,
    seq: u64,
    ts: Vec<i64>,
    cols: Vec<Vec<f64>>,
}

/// Rows read for one id: times ascending, one vector per requested column.
#[derive(Debug, Default)]
pub struct ReadRows {
    /// Times, ascending.
    pub ts: Vec<i64>,
    /// Values of each requested column, aligned with `ts`.
    pub cols: Vec<Vec<f64>>,
    /// Per period, the highest seal sequence its L1 chunk absorbed (rows the caller holds in
    /// memory from a seal at or below it are already on disk).
    pub absorbed: BTreeMap<i64, u64>,
}

fn missing_ok<T>(r: Result<T, TableError>) -> Result<Option<T>, TableError> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Table {
    /// Start of the period holding `t`.
    pub fn period(&self, t: i64) -> i64 {
        t.div_euclid(self.period_ms) * self.period_ms
    }

    /// The file holding period `p`.
    pub fn file_for(&self, p: i64) -> PathBuf {
        self.dir.join(self.span.name(self.span.start(p)))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, BTreeSet<u32>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn files_written(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        self.files_written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the L0 chunks already in the state file (at open).
    pub fn load_pending(&self, shared: &Shared) -> Result<(), StoreError> {
        let path = &shared.state_path;
        let txn = shared.state.begin_read().map_err(StoreError::db(path))?;
        let Some(t) = missing_ok(txn.open_table(self.l0)).map_err(StoreError::db(path))? else {
            return Ok(());
        };
        let mut pending = self.pending();
        for entry in t.iter().map_err(StoreError::db(path))? {
            let (k, _) = entry.map_err(StoreError::db(path))?;
            let (p, b, ..) = k.value();
            pending.entry(p).or_default().insert(b);
        }
        Ok(())
    }

    /// Writes rows as L0 chunks with seal sequence `seq` in an open state transaction.
    /// `runs` are (id, rows), ids ascending. Returns the number of chunks.
    pub fn write_l0(
        &self,
        txn: &redb::WriteTransaction,
        shared: &Shared,
        seq: u64,
        runs: &[(u32, Rows)],
    ) -> Result<usize, StoreError> {
        let path = &shared.state_path;
        let w = self.width;
        // (period, L0 block) -> ids with their rows in that period.
        let mut groups: BTreeMap<(i64, u32), Vec<(u32, Rows)>> = BTreeMap::new();
        for (id, rows) in runs {
            let id = *id;
            if rows.ts.is_empty() {
                continue;
            }
            let sorted;
            let rows = if rows.ts.is_sorted() {
                rows
            } else {
                let mut r = rows.clone();
                r.sort(w);
                sorted = r;
                &sorted
            };
            let mut i = 0;
            while i < rows.ts.len() {
                let p = self.period(rows.ts[i]);
                let mut j = i;
                while j < rows.ts.len() && self.period(rows.ts[j]) == p {
                    j += 1;
                }
                let part = Rows {
                    ts: rows.ts[i..j].to_vec(),
                    vals: rows.vals[i * w..j * w].to_vec(),
                };
                groups
                    .entry((p, id / L0_BLOCK))
                    .or_default()
                    .push((id, part));
                i = j;
            }
        }
        let mut table = txn.open_table(self.l0).map_err(StoreError::db(path))?;
        let mut chunks = 0;
        for ((p, block), ids) in groups {
            let data = to_chunk(&ids, w);
            let enc = encode_chunk(seq, &data, L0_LEVEL).map_err(|e| StoreError::Codec {
                context: format!("{} L0", self.name),
                detail: e.to_string(),
            })?;
            put_l0(&mut table, (p, block, 0, seq), &enc.index).map_err(StoreError::db(path))?;
            for (c, sec) in enc.columns.iter().enumerate() {
                put_l0(&mut table, (p, block, 1 + c as u16, seq), sec)
                    .map_err(StoreError::db(path))?;
            }
            self.pending().entry(p).or_default().insert(block);
            chunks += 1;
        }
        shared
            .chunks_written
            .fetch_add(chunks as u64, Ordering::Relaxed);
        Ok(chunks)
    }

    /// Rows of one id in `[from, to)`, columns `cols`, from L0 chunks with sequence at most
    /// `max_seq` and from L1 chunks, sorted by time.
    pub fn read(
        &self,
        shared: &Shared,
        id: u32,
        cols: &[usize],
        from: i64,
        to: i64,
        max_seq: u64,
    ) -> Result<ReadRows, StoreError> {
        let mut out = ReadRows {
            cols: vec![Vec::new(); cols.len()],
            ..Default::default()
        };
        if from >= to {
            return Ok(out);
        }
        let first = self.period(from);
        let last = self.period(to - 1);
        let mut found: Vec<Found> = Vec::new();
        // L0 first, then L1: compaction commits L1 before it deletes L0, so a row moving from
        // one to the other is seen in at least one of them, and in both only when the L1
        // chunk's absorbed sequence says so.
        self.read_l0(shared, id, cols, first, last, max_seq, &mut found)?;
        let mut l1: Vec<Found> = Vec::new();
        // Only periods inside files that exist: a query from 1970 must not walk 500,000 hours.
        let (mut p, last) = match self.file_bounds() {
            Some((lo, hi)) => (first.max(self.period(lo)), last.min(hi)),
            None => (1, 0),
        };
        while p <= last {
            if let Some((seq, rows)) = self.read_l1(shared, id, cols, p)? {
                out.absorbed.insert(p, seq);
                l1.extend(rows);
            }
            p += self.period_ms;
        }
        let absorbed = &out.absorbed;
        found.retain(|f| absorbed.get(&f.period).is_none_or(|&a| f.seq > a));
        found.extend(l1);
        let mut order: Vec<(i64, u32, u32)> = Vec::new();
        for (fi, f) in found.iter().enumerate() {
            for (i, &t) in f.ts.iter().enumerate() {
                if t >= from && t < to {
                    order.push((t, fi as u32, i as u32));
                }
            }
        }
        order.sort_by_key(|o| o.0);
        out.ts = order.iter().map(|o| o.0).collect();
        for (c, col) in out.cols.iter_mut().enumerate() {
            *col = order
                .iter()
                .map(|&(_, fi, i)| found[fi as usize].cols[c][i as usize])
                .collect();
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_l0(
        &self,
        shared: &Shared,
        id: u32,
        cols: &[usize],
        first: i64,
        last: i64,
        max_seq: u64,
        found: &mut Vec<Found>,
    ) -> Result<(), StoreError> {
        let path = &shared.state_path;
        let block = id / L0_BLOCK;
        let periods: Vec<i64> = self
            .pending()
            .range(first..=last)
            .filter(|(_, blocks)| blocks.contains(&block))
            .map(|(p, _)| *p)
            .collect();
        if periods.is_empty() {
            return Ok(());
        }
        let txn = shared.state.begin_read().map_err(StoreError::db(path))?;
        let Some(t) = missing_ok(txn.open_table(self.l0)).map_err(StoreError::db(path))? else {
            return Ok(());
        };
        for p in periods {
            for seq in l0_seqs(&t, p, block, max_seq).map_err(StoreError::db(path))? {
                let key = format!("{}_l0 {p}/{block}/{seq}", self.name);
                let res: Result<Option<Found>, String> = (|| {
                    let Some(index) = get_l0(&t, (p, block, 0, seq)).map_err(|e| e.to_string())?
                    else {
                        return Ok(None);
                    };
                    let idx = ChunkIndex::decode(&index).map_err(|e| e.to_string())?;
                    let Some(slot) = idx.slot(id) else {
                        return Ok(None);
                    };
                    let ts = idx.series_ts(slot).map_err(|e| e.to_string())?;
                    let mut out = Vec::with_capacity(cols.len());
                    for &c in cols {
                        if c >= self.width {
                            out.push(vec![f64::NAN; ts.len()]);
                            continue;
                        }
                        let sec = get_l0(&t, (p, block, 1 + c as u16, seq))
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("column {c} missing"))?;
                        let vs = idx.values(&sec).map_err(|e| e.to_string())?;
                        out.push(idx.series_values(&vs, slot).map_err(|e| e.to_string())?);
                    }
                    Ok(Some(Found {
                        period: p,
                        seq,
                        ts,
                        cols: out,
                    }))
                })();
                match res {
                    Ok(Some(f)) => found.push(f),
                    Ok(None) => {}
                    Err(e) => shared.corrupt_chunk(path, &key, &e),
                }
            }
        }
        Ok(())
    }

    /// The L1 chunk of one id's block in period `p`: its absorbed seal sequence, and the id's
    /// rows if it has any there.
    fn read_l1(
        &self,
        shared: &Shared,
        id: u32,
        cols: &[usize],
        p: i64,
    ) -> Result<Option<(u64, Option<Found>)>, StoreError> {
        let path = self.file_for(p);
        let Some(db) = shared.files.get(&path)? else {
            return Ok(None);
        };
        let txn = db.begin_read().map_err(StoreError::db(&path))?;
        let Some(t) = missing_ok(txn.open_table(L1_TABLE)).map_err(StoreError::db(&path))? else {
            return Ok(None);
        };
        let block = id / L1_BLOCK;
        let Some(index) = get_l1(&t, (p, block, 0)).map_err(StoreError::db(&path))? else {
            return Ok(None);
        };
        let key = format!("{} l1 {p}/{block}", self.name);
        let idx = match ChunkIndex::decode(&index) {
            Ok(i) => i,
            Err(e) => {
                shared.corrupt_chunk(&path, &key, &e);
                return Ok(None);
            }
        };
        let Some(slot) = idx.slot(id) else {
            return Ok(Some((idx.seq, None)));
        };
        let res: Result<Found, String> = (|| {
            let ts = idx.series_ts(slot).map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(cols.len());
            for &c in cols {
                match get_l1(&t, (p, block, 1 + c as u16)).map_err(|e| e.to_string())? {
                    Some(sec) if c < self.width => {
                        let vs = idx.values(&sec).map_err(|e| e.to_string())?;
                        out.push(idx.series_values(&vs, slot).map_err(|e| e.to_string())?);
                    }
                    // A column added to the schema after this chunk was written.
                    _ => out.push(vec![f64::NAN; ts.len()]),
                }
            }
            Ok(Found {
                period: p,
                seq: idx.seq,
                ts,
                cols: out,
            })
        })();
        match res {
            Ok(f) => Ok(Some((idx.seq, Some(f)))),
            Err(e) => {
                shared.corrupt_chunk(&path, &key, &e);
                Ok(Some((idx.seq, None)))
            }
        }
    }

    /// Calls `f(period, chunk)` for every L0 chunk, by period, block and seal order, skipping
    /// (and counting) damaged ones.
    pub fn for_each_l0(
        &self,
        shared: &Shared,
        mut f: impl FnMut(i64, &ChunkData),
    ) -> Result<(), StoreError> {
        let spath = &shared.state_path;
        let txn = shared.state.begin_read().map_err(StoreError::db(spath))?;
        let Some(t) = missing_ok(txn.open_table(self.l0)).map_err(StoreError::db(spath))? else {
            return Ok(());
        };
        let keys: Vec<(i64, u32)> = self
            .pending()
            .iter()
            .flat_map(|(p, bs)| bs.iter().map(move |b| (*p, *b)))
            .collect();
        for (p, block) in keys {
            for seq in l0_seqs(&t, p, block, u64::MAX).map_err(StoreError::db(spath))? {
                if let Some((_, data)) = self.load_l0(&t, shared, p, block, seq)? {
                    f(p, &data);
                }
            }
        }
        Ok(())
    }

    fn load_l0(
        &self,
        t: &impl ReadableTable<L0Key, Bytes>,
        shared: &Shared,
        p: i64,
        block: u32,
        seq: u64,
    ) -> Result<Option<(u64, ChunkData)>, StoreError> {
        let spath = &shared.state_path;
        let key = format!("{}_l0 {p}/{block}/{seq}", self.name);
        let mut secs = Vec::with_capacity(self.width + 1);
        for slot in 0..=self.width as u16 {
            secs.push(get_l0(t, (p, block, slot, seq)).map_err(StoreError::db(spath))?);
        }
        let Some(Some(index)) = secs.first() else {
            return Ok(None);
        };
        let cols: Option<Vec<&[u8]>> = secs[1..].iter().map(|s| s.as_deref()).collect();
        let Some(cols) = cols else {
            shared.corrupt_chunk(spath, &key, &"a column section is missing");
            return Ok(None);
        };
        match decode_chunk(index, &cols) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                shared.corrupt_chunk(spath, &key, &e);
                Ok(None)
            }
        }
    }

    /// Periods with L0 chunks that start before `before`, oldest first.
    pub fn pending_before(&self, before: i64) -> Vec<(i64, u32)> {
        self.pending()
            .range(..before)
            .flat_map(|(p, blocks)| blocks.iter().map(move |b| (*p, *b)))
            .collect()
    }

    /// Merges the L0 chunks of one (period, L0 block) into L1 and deletes them.
    /// Returns the rows written and the rows dropped because their file is past retention.
    pub fn compact(
        &self,
        shared: &Shared,
        p: i64,
        block: u32,
        now: i64,
    ) -> Result<(usize, usize), StoreError> {
        let spath = &shared.state_path;
        let w = self.width;
        // Everything in L0 for this (period, block), in seal order.
        let mut l0: Vec<(u64, ChunkData)> = Vec::new();
        {
            let txn = shared.state.begin_read().map_err(StoreError::db(spath))?;
            if let Some(t) = missing_ok(txn.open_table(self.l0)).map_err(StoreError::db(spath))? {
                for seq in l0_seqs(&t, p, block, u64::MAX).map_err(StoreError::db(spath))? {
                    if let Some(d) = self.load_l0(&t, shared, p, block, seq)? {
                        l0.push(d);
                    }
                }
            }
        }
        let file_start = self.span.start(p);
        let expired = self.span.end(file_start) <= now.saturating_sub(self.retention_ms);
        let mut written = 0;
        let dropped = if expired {
            l0.iter().map(|(_, d)| d.ts.len()).sum()
        } else {
            0
        };
        if !l0.is_empty() && !expired {
            let path = self.file_for(p);
            let db = shared.files.get_or_create(&path)?;
            self.files_written().insert(file_start);
            let max_seq = l0.iter().map(|(s, _)| *s).max().unwrap_or(0);
            let mut l1_blocks: BTreeSet<u32> = BTreeSet::new();
            for (_, d) in &l0 {
                l1_blocks.extend(d.series.iter().map(|s| s / L1_BLOCK));
            }
            let mut txn = db.begin_write().map_err(StoreError::db(&path))?;
            txn.set_durability(Durability::Immediate)
                .map_err(StoreError::db(&path))?;
            {
                let mut t = txn.open_table(L1_TABLE).map_err(StoreError::db(&path))?;
                for b in l1_blocks {
                    let mut merged: BTreeMap<u32, Rows> = BTreeMap::new();
                    let mut absorbed = 0u64;
                    if let Some(existing) = read_l1_block(&t, p, b, w, &path, shared, self.name)? {
                        absorbed = existing.0;
                        spread(&existing.1, w, &mut merged);
                    }
                    for (seq, d) in &l0 {
                        if *seq > absorbed {
                            spread_block(d, w, b, &mut merged);
                        }
                    }
                    let runs: Vec<(u32, Rows)> = merged
                        .into_iter()
                        .map(|(id, mut r)| {
                            r.sort(w);
                            (id, r)
                        })
                        .collect();
                    if runs.is_empty() {
                        continue;
                    }
                    written += runs.iter().map(|(_, r)| r.ts.len()).sum::<usize>();
                    let data = to_chunk(&runs, w);
                    let enc =
                        encode_chunk(absorbed.max(max_seq), &data, L1_LEVEL).map_err(|e| {
                            StoreError::Codec {
                                context: format!("{} L1", self.name),
                                detail: e.to_string(),
                            }
                        })?;
                    // Replace every piece of the block, so no stale tail piece survives.
                    t.retain_in((p, b, 0u16, 0u16)..=(p, b, u16::MAX, u16::MAX), |_, _| {
                        false
                    })
                    .map_err(StoreError::db(&path))?;
                    put_l1(&mut t, (p, b, 0), &enc.index).map_err(StoreError::db(&path))?;
                    for (c, sec) in enc.columns.iter().enumerate() {
                        put_l1(&mut t, (p, b, 1 + c as u16), sec).map_err(StoreError::db(&path))?;
                    }
                    shared.chunks_written.fetch_add(1, Ordering::Relaxed);
                }
            }
            txn.commit().map_err(StoreError::db(&path))?;
        }
        // Now the L0 chunks are redundant. Their deletion need not be durable at once (the
        // next seal's commit makes it so): if a crash loses it, the L1 chunk's absorbed
        // sequence hides them and the next compaction only deletes them again.
        let mut txn = shared.state.begin_write().map_err(StoreError::db(spath))?;
        txn.set_durability(Durability::None)
            .map_err(StoreError::db(spath))?;
        {
            let mut t = txn.open_table(self.l0).map_err(StoreError::db(spath))?;
            t.retain_in(
                (p, block, 0u16, 0u64, 0u16)..=(p, block, u16::MAX, u64::MAX, u16::MAX),
                |_, _| false,
            )
            .map_err(StoreError::db(spath))?;
        }
        txn.commit().map_err(StoreError::db(spath))?;
        let mut pending = self.pending();
        if let Some(blocks) = pending.get_mut(&p) {
            blocks.remove(&block);
            if blocks.is_empty() {
                pending.remove(&p);
            }
        }
        Ok((written, dropped))
    }

    /// Closes the files compaction wrote to whose periods are all compacted and end at or
    /// before `limit` (no row can reach them any more). redb grows a file it writes to in
    /// large steps and gives the unused tail back only when the file is closed: a finished
    /// day of raw rows is ~45 % smaller closed than open. Queries reopen them read-only,
    /// which does not grow them. A file a query holds is closed at a later call.
    pub fn close_finished(&self, shared: &Shared, limit: i64) {
        let first_pending = self.pending().keys().next().copied().unwrap_or(i64::MAX);
        let done = limit.min(first_pending);
        self.files_written().retain(|&start| {
            self.span.end(start) > done || !shared.files.close_if_unused(&self.file_for(start))
        });
    }

    /// Start of the earliest and the last period of the period files on disk, if any.
    fn file_bounds(&self) -> Option<(i64, i64)> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        let starts: Vec<i64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| self.span.parse(n)))
            .collect();
        let lo = *starts.iter().min()?;
        let hi = *starts.iter().max()?;
        Some((lo, self.span.end(hi) - 1))
    }

    /// Deletes files that ended more than the retention before `now`; returns how many.
    pub fn apply_retention(&self, shared: &Shared, now: i64) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(self.retention_ms);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut deleted = 0;
        for entry in entries {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(start) = self.span.parse(name) else {
                continue;
            };
            if self.span.end(start) <= cutoff {
                let path = entry.path();
                shared.files.remove(&path)?;
                tracing::info!(file = %path.display(), "retention: deleted {} file {name}", self.name);
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Reads a whole L1 chunk inside a write transaction (compaction).
fn read_l1_block(
    t: &redb::Table<'_, L1Key, Bytes>,
    p: i64,
    b: u32,
    w: usize,
    path: &Path,
    shared: &Shared,
    name: &str,
) -> Result<Option<(u64, ChunkData)>, StoreError> {
    let Some(index) = get_l1(t, (p, b, 0)).map_err(StoreError::db(path))? else {
        return Ok(None);
    };
    let mut cols = Vec::with_capacity(w);
    for c in 0..w {
        cols.push(get_l1(t, (p, b, 1 + c as u16)).map_err(StoreError::db(path))?);
    }
    let key = format!("{name} l1 {p}/{b}");
    let present: Vec<&[u8]> = cols.iter().flatten().map(|c| c.as_slice()).collect();
    match decode_chunk(&index, &present) {
        Ok((seq, mut data)) => {
            // Columns added to the schema later read as NaN.
            let n = data.ts.len();
            let mut it = std::mem::take(&mut data.columns).into_iter();
            data.columns = cols
                .iter()
                .map(|c| match c {
                    Some(_) => it.next().unwrap_or_default(),
                    None => vec![f64::NAN; n],
                })
                .collect();
            Ok(Some((seq, data)))
        }
        Err(e) => {
            shared.corrupt_chunk(path, &key, &e);
            Ok(None)
        }
    }
}

/// Builds chunk data from (id, rows) runs with ascending ids.
fn to_chunk(runs: &[(u32, Rows)], w: usize) -> ChunkData {
    let total: usize = runs.iter().map(|(_, r)| r.ts.len()).sum();
    let mut d = ChunkData {
        series: Vec::with_capacity(runs.len()),
        rows: Vec::with_capacity(runs.len()),
        ts: Vec::with_capacity(total),
        columns: vec![Vec::with_capacity(total); w],
    };
    for (id, r) in runs {
        d.series.push(*id);
        d.rows.push(r.ts.len() as u32);
        d.ts.extend_from_slice(&r.ts);
        for row in r.vals.chunks_exact(w) {
            for (c, v) in row.iter().enumerate() {
                d.columns[c].push(*v);
            }
        }
    }
    d
}

/// Appends every id's rows of a chunk to `into`.
fn spread(d: &ChunkData, w: usize, into: &mut BTreeMap<u32, Rows>) {
    spread_filtered(d, w, into, |_| true);
}

/// Appends the rows of ids in L1 block `b` of a chunk to `into`.
fn spread_block(d: &ChunkData, w: usize, b: u32, into: &mut BTreeMap<u32, Rows>) {
    spread_filtered(d, w, into, |id| id / L1_BLOCK == b);
}

fn spread_filtered(
    d: &ChunkData,
    w: usize,
    into: &mut BTreeMap<u32, Rows>,
    keep: impl Fn(u32) -> bool,
) {
    let mut at = 0usize;
    for (&id, &n) in d.series.iter().zip(&d.rows) {
        let n = n as usize;
        if keep(id) {
            let r = into.entry(id).or_default();
            r.ts.extend_from_slice(&d.ts[at..at + n]);
            for i in at..at + n {
                for c in 0..w {
                    r.vals.push(d.columns.get(c).map_or(f64::NAN, |col| col[i]));
                }
            }
        }
        at += n;
    }
}
