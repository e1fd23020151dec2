//! The chunk format: how a block of series' rows is laid out column by column and compressed
//! with pco, and how it is checked and read back.
//!
//! A chunk holds, for a block of series, some rows of each series. It is stored as separate
//! *sections* so a query reads only the columns it needs:
//!
//! * the **index section** (column slot 0): series ids, rows per series, how the series are
//!   grouped into pages, and the timestamps;
//! * one **value section** per column (slot `1 + column`).
//!
//! Within a section the values of all series are concatenated (series by series, each in time
//! order) and compressed as one pco chunk split into pages of whole series, so one series can
//! be decoded without the others. Every section starts with a magic, a format version and a
//! CRC32 of the header and everything after the checksum field: a section whose checksum does not match is
//! never decoded.
//!
//! ```text
//! index:  "HMIX" ver u8 0 0 0 | crc32 u32 | seq u64 | n_series u32 | n_pages u32 |
//!         series ids u32 × n_series | rows u32 × n_series | first series of page u32 × n_pages |
//!         pco block (timestamps, i64)
//! values: "HMCV" ver u8 0 0 0 | crc32 u32 | pco block (values, f64)
//! pco block: n_pages u32 | page offset u32 × n_pages | length u32 | pco wrapped bytes
//! ```
//! All integers are little-endian. `seq` is the seal sequence of an L0 chunk, or for a
//! compacted (L1) chunk the highest L0 seal sequence merged into it.

use pco::ChunkConfig;
use pco::PagingSpec;
use pco::wrapped::{FileCompressor, FileDecompressor};

const INDEX_MAGIC: &[u8; 4] = b"HMIX";
const VALUES_MAGIC: &[u8; 4] = b"HMCV";
const VERSION: u8 = 1;
/// Series are grouped into pages of at least this many values, so that one series is found
/// by decoding about this much and page overhead stays small.
const PAGE_MIN_VALUES: usize = 1024;
/// Bound on the rows one chunk may claim, so damaged input cannot ask for huge allocations.
const MAX_CHUNK_ROWS: usize = 1 << 26;

/// Why a section could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The section is shorter than its own header says.
    #[error("truncated section ({0})")]
    Truncated(&'static str),
    /// Wrong magic or unknown version.
    #[error("not a chunk section of a known version")]
    BadHeader,
    /// The CRC32 does not match the content.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// Checksum in the section.
        stored: u32,
        /// Checksum of the bytes found.
        computed: u32,
    },
    /// Counts or offsets that contradict each other.
    #[error("inconsistent section: {0}")]
    Inconsistent(&'static str),
    /// pco rejected the compressed bytes.
    #[error("pco: {0}")]
    Pco(String),
}

/// One chunk encoded: the index section and one section per column.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    /// The index section (ids, row counts, pages, timestamps).
    pub index: Vec<u8>,
    /// One section per column, in schema order.
    pub columns: Vec<Vec<u8>>,
}

/// Rows of several series laid out column-wise, ready to encode or just decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkData {
    /// Series ids, ascending.
    pub series: Vec<u32>,
    /// Rows of each series.
    pub rows: Vec<u32>,
    /// Timestamps of all rows, series after series.
    pub ts: Vec<i64>,
    /// One vector per column, in the same row order as `ts`.
    pub columns: Vec<Vec<f64>>,
}

/// Groups series into pages of whole series with at least `PAGE_MIN_VALUES` values each.
fn plan_pages(rows: &[u32]) -> (Vec<u32>, Vec<usize>) {
    let mut first = Vec::new();
    let mut sizes = Vec::new();
    let mut acc = 0usize;
    for (i, &r) in rows.iter().enumerate() {
        if acc == 0 {
            first.push(i as u32);
        }
        acc += r as usize;
        if acc >= PAGE_MIN_VALUES {
            sizes.push(acc);
            acc = 0;
        }
    }
    if acc > 0 {
        sizes.push(acc);
    }
    (first, sizes)
}

fn pco_err(e: pco::errors::PcoError) -> ChunkError {
    ChunkError::Pco(e.to_string())
}

/// Compresses `values` as one pco chunk split into pages of `page_sizes` values.
fn encode_pco<T: pco::data_types::Number>(
    values: &[T],
    page_sizes: &[usize],
    level: usize,
    out: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    let start = out.len();
    out.extend_from_slice(&(page_sizes.len() as u32).to_le_bytes());
    let offsets_at = out.len();
    out.resize(offsets_at + 4 * page_sizes.len() + 4, 0);
    let body_at = out.len();
    let mut body = Vec::with_capacity(values.len() * 2 + 64);
    let fc = FileCompressor::default();
    fc.write_header(&mut body).map_err(pco_err)?;
    let config = ChunkConfig::default()
        .with_compression_level(level)
        .with_paging_spec(PagingSpec::Exact(page_sizes.to_vec()));
    let mut cc = fc.chunk_compressor(values, &config).map_err(pco_err)?;
    cc.write_meta(&mut body).map_err(pco_err)?;
    for page in 0..page_sizes.len() {
        let off = body.len() as u32;
        out[offsets_at + 4 * page..offsets_at + 4 * page + 4].copy_from_slice(&off.to_le_bytes());
        cc.write_page(page, &mut body).map_err(pco_err)?;
    }
    let len_at = offsets_at + 4 * page_sizes.len();
    out[len_at..len_at + 4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len(), body_at);
    out.extend_from_slice(&body);
    let _ = start;
    Ok(())
}

/// Encodes rows of a block of series into sections, compressing at pco `level` (0-12).
pub fn encode_chunk(seq: u64, data: &ChunkData, level: usize) -> Result<EncodedChunk, ChunkError> {
    let total: usize = data.rows.iter().map(|&r| r as usize).sum();
    if data.series.len() != data.rows.len()
        || data.ts.len() != total
        || data.columns.iter().any(|c| c.len() != total)
        || data.rows.contains(&0)
        || total == 0
    {
        return Err(ChunkError::Inconsistent("rows do not add up"));
    }
    let (first, sizes) = plan_pages(&data.rows);
    let mut index = Vec::with_capacity(64 + 12 * data.series.len() + total * 2);
    index.extend_from_slice(INDEX_MAGIC);
    index.extend_from_slice(&[VERSION, 0, 0, 0]);
    index.extend_from_slice(&[0; 4]);
    index.extend_from_slice(&seq.to_le_bytes());
    index.extend_from_slice(&(data.series.len() as u32).to_le_bytes());
    index.extend_from_slice(&(first.len() as u32).to_le_bytes());
    for s in &data.series {
        index.extend_from_slice(&s.to_le_bytes());
    }
    for r in &data.rows {
        index.extend_from_slice(&r.to_le_bytes());
    }
    for f in &first {
        index.extend_from_slice(&f.to_le_bytes());
    }
    encode_pco(&data.ts, &sizes, level, &mut index)?;
    seal_crc(&mut index);
    let mut columns = Vec::with_capacity(data.columns.len());
    for col in &data.columns {
        let mut out = Vec::with_capacity(16 + total);
        out.extend_from_slice(VALUES_MAGIC);
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        out.extend_from_slice(&[0; 4]);
        encode_pco(col, &sizes, level, &mut out)?;
        seal_crc(&mut out);
        columns.push(out);
    }
    Ok(EncodedChunk { index, columns })
}

/// CRC32 of a section: its first 8 bytes and everything after the checksum field.
fn section_crc(section: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&section[..8]);
    h.update(&section[12..]);
    h.finalize()
}

/// Rewrites a section's checksum to match its content (lets fuzzing reach the decoder).
pub fn fix_checksum(section: &mut [u8]) {
    if section.len() >= 12 {
        seal_crc(section);
    }
}

fn seal_crc(section: &mut [u8]) {
    let crc = section_crc(section);
    section[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Checks magic, version and checksum; returns the bytes after the checksum.
fn open_section<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Result<&'a [u8], ChunkError> {
    if bytes.len() < 12 {
        return Err(ChunkError::Truncated("header"));
    }
    if &bytes[0..4] != magic || bytes[4] != VERSION {
        return Err(ChunkError::BadHeader);
    }
    let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let computed = section_crc(bytes);
    if stored != computed {
        return Err(ChunkError::Checksum { stored, computed });
    }
    Ok(&bytes[12..])
}

/// A little-endian reader over a byte slice that reports truncation instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ChunkError> {
        let end = self.pos.checked_add(n).ok_or(ChunkError::Truncated(what))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(ChunkError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ChunkError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn u32s(&mut self, n: usize, what: &'static str) -> Result<Vec<u32>, ChunkError> {
        let len = n.checked_mul(4).ok_or(ChunkError::Truncated(what))?;
        let b = self.take(len, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// The page directory and compressed bytes of one pco block.
#[derive(Debug, Clone)]
struct PcoBlock<'a> {
    offsets: Vec<u32>,
    body: &'a [u8],
}

impl<'a> PcoBlock<'a> {
    fn parse(cur: &mut Cursor<'a>, n_pages: usize) -> Result<Self, ChunkError> {
        let pages = cur.u32("page count")? as usize;
        if pages != n_pages {
            return Err(ChunkError::Inconsistent(
                "page count differs from the index",
            ));
        }
        let offsets = cur.u32s(pages, "page offsets")?;
        let len = cur.u32("pco length")? as usize;
        let body = cur.take(len, "pco bytes")?;
        if offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&o| o as usize > len)
        {
            return Err(ChunkError::Inconsistent("page offsets out of order"));
        }
        Ok(PcoBlock { offsets, body })
    }

    fn page<T: pco::data_types::Number + Default>(
        &self,
        page: usize,
        n: usize,
    ) -> Result<Vec<T>, ChunkError> {
        let off = *self
            .offsets
            .get(page)
            .ok_or(ChunkError::Inconsistent("no such page"))? as usize;
        let end = self
            .offsets
            .get(page + 1)
            .map_or(self.body.len(), |&o| o as usize);
        let (fd, rest) = FileDecompressor::new(self.body).map_err(pco_err)?;
        let (mut cd, _) = fd.chunk_decompressor::<T, _>(rest).map_err(pco_err)?;
        let src = self
            .body
            .get(off..end)
            .ok_or(ChunkError::Inconsistent("page outside block"))?;
        let mut pd = cd.page_decompressor(src, n).map_err(pco_err)?;
        let mut dst = vec![T::default(); n];
        let progress = pd.read(&mut dst).map_err(pco_err)?;
        if progress.n_processed != n {
            return Err(ChunkError::Inconsistent("page shorter than its row count"));
        }
        Ok(dst)
    }
}

/// A checked index section, ready to find a series and decode its timestamps.
#[derive(Debug, Clone)]
pub struct ChunkIndex<'a> {
    /// Seal sequence (L0) or highest merged seal sequence (L1).
    pub seq: u64,
    /// Series ids, ascending.
    pub series: Vec<u32>,
    /// Rows per series.
    pub rows: Vec<u32>,
    /// Index into `series` of the first series of each page.
    page_first: Vec<u32>,
    ts: PcoBlock<'a>,
}

/// Where one series sits in a chunk: its page, the page's value count, and its rows in the page.
#[derive(Debug, Clone, Copy)]
pub struct SeriesSlot {
    page: usize,
    page_values: usize,
    start: usize,
    len: usize,
}

impl<'a> ChunkIndex<'a> {
    /// Checks and parses an index section.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let body = open_section(bytes, INDEX_MAGIC)?;
        let mut cur = Cursor {
            bytes: body,
            pos: 0,
        };
        let seq = cur.u64("seq")?;
        let n_series = cur.u32("series count")? as usize;
        let n_pages = cur.u32("page count")? as usize;
        if n_series == 0 || n_pages == 0 || n_pages > n_series {
            return Err(ChunkError::Inconsistent(
                "empty chunk or more pages than series",
            ));
        }
        let series = cur.u32s(n_series, "series ids")?;
        let rows = cur.u32s(n_series, "row counts")?;
        let page_first = cur.u32s(n_pages, "pages")?;
        if series.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ChunkError::Inconsistent("series ids not ascending"));
        }
        if page_first[0] != 0
            || page_first.windows(2).any(|w| w[0] >= w[1])
            || page_first.last().is_some_and(|&l| l as usize >= n_series)
        {
            return Err(ChunkError::Inconsistent("page table"));
        }
        let mut total = 0usize;
        for &r in &rows {
            if r == 0 {
                return Err(ChunkError::Inconsistent("series without rows"));
            }
            total += r as usize;
            if total > MAX_CHUNK_ROWS {
                return Err(ChunkError::Inconsistent("too many rows"));
            }
        }
        let ts = PcoBlock::parse(&mut cur, n_pages)?;
        if cur.pos != body.len() {
            return Err(ChunkError::Inconsistent("trailing bytes"));
        }
        Ok(ChunkIndex {
            seq,
            series,
            rows,
            page_first,
            ts,
        })
    }

    /// Total rows in the chunk.
    pub fn total_rows(&self) -> usize {
        self.rows.iter().map(|&r| r as usize).sum()
    }

    fn page_range(&self, page: usize) -> (usize, usize) {
        let a = self.page_first[page] as usize;
        let b = self
            .page_first
            .get(page + 1)
            .map_or(self.series.len(), |&x| x as usize);
        (a, b)
    }

    fn page_values(&self, page: usize) -> usize {
        let (a, b) = self.page_range(page);
        self.rows[a..b].iter().map(|&r| r as usize).sum()
    }

    /// Finds a series in the chunk.
    pub fn slot(&self, series: u32) -> Option<SeriesSlot> {
        let i = self.series.binary_search(&series).ok()?;
        let page = self.page_first.partition_point(|&f| f as usize <= i) - 1;
        let (a, _) = self.page_range(page);
        let start = self.rows[a..i].iter().map(|&r| r as usize).sum();
        Some(SeriesSlot {
            page,
            page_values: self.page_values(page),
            start,
            len: self.rows[i] as usize,
        })
    }

    /// Timestamps of one series.
    pub fn series_ts(&self, slot: SeriesSlot) -> Result<Vec<i64>, ChunkError> {
        let page = self.ts.page::<i64>(slot.page, slot.page_values)?;
        Ok(page[slot.start..slot.start + slot.len].to_vec())
    }

    /// Timestamps of every row, series after series.
    pub fn all_ts(&self) -> Result<Vec<i64>, ChunkError> {
        let mut out = Vec::with_capacity(self.total_rows());
        for p in 0..self.page_first.len() {
            out.extend(self.ts.page::<i64>(p, self.page_values(p))?);
        }
        Ok(out)
    }

    /// Checks and parses a value section belonging to this index.
    pub fn values<'b>(&self, bytes: &'b [u8]) -> Result<ValueSection<'b>, ChunkError> {
        let body = open_section(bytes, VALUES_MAGIC)?;
        let mut cur = Cursor {
            bytes: body,
            pos: 0,
        };
        let block = PcoBlock::parse(&mut cur, self.page_first.len())?;
        if cur.pos != body.len() {
            return Err(ChunkError::Inconsistent("trailing bytes"));
        }
        Ok(ValueSection { block })
    }

    /// Values of one series from a value section of this chunk.
    pub fn series_values(
        &self,
        section: &ValueSection<'_>,
        slot: SeriesSlot,
    ) -> Result<Vec<f64>, ChunkError> {
        let page = section.block.page::<f64>(slot.page, slot.page_values)?;
        Ok(page[slot.start..slot.start + slot.len].to_vec())
    }

    /// Every value of a value section, series after series.
    pub fn all_values(&self, section: &ValueSection<'_>) -> Result<Vec<f64>, ChunkError> {
        let mut out = Vec::with_capacity(self.total_rows());
        for p in 0..self.page_first.len() {
            out.extend(section.block.page::<f64>(p, self.page_values(p))?);
        }
        Ok(out)
    }
}

/// A checked value section (one column of a chunk).
#[derive(Debug, Clone)]
pub struct ValueSection<'a> {
    block: PcoBlock<'a>,
}

/// Decodes a whole chunk from its index and column sections (used by compaction and fuzzing).
pub fn decode_chunk(index: &[u8], columns: &[&[u8]]) -> Result<(u64, ChunkData), ChunkError> {
    let idx = ChunkIndex::decode(index)?;
    let ts = idx.all_ts()?;
    let mut cols = Vec::with_capacity(columns.len());
    for c in columns {
        let sec = idx.values(c)?;
        cols.push(idx.all_values(&sec)?);
    }
    Ok((
        idx.seq,
        ChunkData {
            series: idx.series.clone(),
            rows: idx.rows.clone(),
            ts,
            columns: cols,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: &[u32], rows_each: u32) -> ChunkData {
        let mut d = ChunkData {
            series: series.to_vec(),
            rows: vec![rows_each; series.len()],
            columns: vec![Vec::new(), Vec::new()],
            ..Default::default()
        };
        for &s in series {
            for r in 0..rows_each {
                d.ts.push(1_700_000_000_000 + i64::from(r) * 10_000 + i64::from(s % 7));
                d.columns[0].push(100.0 + f64::from(s) + f64::from(r % 5) * 0.01);
                d.columns[1].push(if r % 9 == 0 { f64::NAN } else { f64::from(r) });
            }
        }
        d
    }

    #[test]
    fn round_trip_whole_chunk_and_one_series() {
        let d = sample(&[1, 5, 9, 200, 201, 4000], 700);
        let enc = encode_chunk(42, &d, 8).unwrap();
        let cols: Vec<&[u8]> = enc.columns.iter().map(|c| c.as_slice()).collect();
        let (seq, back) = decode_chunk(&enc.index, &cols).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(back.series, d.series);
        assert_eq!(back.ts, d.ts);
        for (a, b) in back.columns.iter().zip(&d.columns) {
            let a: Vec<u64> = a.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u64> = b.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b);
        }
        let idx = ChunkIndex::decode(&enc.index).unwrap();
        let slot = idx.slot(200).unwrap();
        let ts = idx.series_ts(slot).unwrap();
        assert_eq!(ts, d.ts[3 * 700..4 * 700]);
        let sec = idx.values(&enc.columns[0]).unwrap();
        assert_eq!(
            idx.series_values(&sec, slot).unwrap(),
            d.columns[0][3 * 700..4 * 700]
        );
        assert!(idx.slot(2).is_none());
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let d = sample(&[3, 4], 50);
        let enc = encode_chunk(1, &d, 4).unwrap();
        for i in 0..enc.index.len() {
            let mut bad = enc.index.clone();
            bad[i] ^= 0x10;
            assert!(
                ChunkIndex::decode(&bad).is_err(),
                "flip at {i} went unnoticed"
            );
        }
        let idx = ChunkIndex::decode(&enc.index).unwrap();
        for i in 0..enc.columns[0].len() {
            let mut bad = enc.columns[0].clone();
            bad[i] ^= 0x01;
            assert!(idx.values(&bad).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn pages_hold_whole_series() {
        let (first, sizes) = plan_pages(&[600, 600, 10, 2000, 5]);
        assert_eq!(first, vec![0, 2, 4]);
        assert_eq!(sizes, vec![1200, 2010, 5]);
    }
}
