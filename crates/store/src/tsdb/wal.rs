//! The write-ahead log: every accepted row, series registration and group change is appended
//! here first, so that a restart after `kill -9` replays what the last seal did not cover.
//!
//! The log is a folder of segment files `wal/<segment>.wal` (segment number, 20 digits). A new
//! segment starts at each seal; a segment is deleted once the state file records it as sealed.
//!
//! ```text
//! segment: "HMWAL001" | segment u64 | record*
//! record:  length u32 | crc32(payload) u32 | payload (length bytes)
//! payload: kind u8 | ...
//!   1 rows:    ncols u16 | nrows u32 | (series u32 | time_unix_ms i64 | ncols × f64) × nrows
//!   2 series:  id u32 | key length u16 | key (UTF-8)
//!   3 group:   id u32 | name length u16 | name (UTF-8)
//!   4 members: series u32 | count u16 | group id u32 × count
//! ```
//! Replay stops at the first record that is short, too long or fails its checksum; the file is
//! cut back to the last good record and a warning names the file and the offset.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::StoreError;

const MAGIC: &[u8; 8] = b"HMWAL001";
const HEADER_LEN: usize = 16;
/// Records above this size are taken as damage (a batch of 100k rows × 16 columns is ~14 MB).
const MAX_RECORD: usize = 256 << 20;
/// Buffered bytes that trigger a write to the file before the flush interval is up.
const WRITE_THRESHOLD: usize = 256 << 10;

const KIND_ROWS: u8 = 1;
const KIND_SERIES: u8 = 2;
const KIND_GROUP: u8 = 3;
const KIND_MEMBERS: u8 = 4;

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// A batch of rows, `values` row-major with `ncols` values per row.
    Rows {
        /// Values per row.
        ncols: usize,
        /// Series of each row.
        series: Vec<u32>,
        /// Time of each row.
        ts: Vec<i64>,
        /// Values, row after row.
        values: Vec<f64>,
    },
    /// A series id was handed out for a key.
    Series {
        /// The id.
        id: u32,
        /// The device key.
        key: String,
    },
    /// A group id was handed out for a name.
    Group {
        /// The id.
        id: u32,
        /// The group name.
        name: String,
    },
    /// A series' groups were replaced.
    Members {
        /// The series.
        series: u32,
        /// Its groups from now on.
        groups: Vec<u32>,
    },
}

/// How a segment decode ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentScan {
    /// Records that decoded, in order.
    pub records: Vec<WalRecord>,
    /// Bytes up to the end of the last good record.
    pub good_len: usize,
    /// Why decoding stopped early, if it did.
    pub damage: Option<String>,
}

/// Decodes a whole segment file's bytes; never panics on damaged input.
pub fn decode_segment(bytes: &[u8]) -> SegmentScan {
    let mut scan = SegmentScan {
        records: Vec::new(),
        good_len: 0,
        damage: None,
    };
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        scan.damage = Some("missing or damaged segment header".into());
        return scan;
    }
    let mut pos = HEADER_LEN;
    scan.good_len = pos;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 8) else {
            scan.damage = Some("record header cut short".into());
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_RECORD {
            scan.damage = Some(format!("implausible record length {len}"));
            break;
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            scan.damage = Some("record cut short".into());
            break;
        };
        if crc32fast::hash(payload) != crc {
            scan.damage = Some("record checksum mismatch".into());
            break;
        }
        match decode_payload(payload) {
            Some(r) => scan.records.push(r),
            None => {
                scan.damage = Some("record does not decode".into());
                break;
            }
        }
        pos += 8 + len;
        scan.good_len = pos;
    }
    scan
}

fn decode_payload(p: &[u8]) -> Option<WalRecord> {
    let mut r = Reader { b: p, pos: 1 };
    let rec = match *p.first()? {
        KIND_ROWS => {
            let ncols = r.u16()? as usize;
            let nrows = r.u32()? as usize;
            let row_len = 12 + 8 * ncols;
            if p.len() != 7 + nrows.checked_mul(row_len)? {
                return None;
            }
            let mut series = Vec::with_capacity(nrows);
            let mut ts = Vec::with_capacity(nrows);
            let mut values = Vec::with_capacity(nrows * ncols);
            for _ in 0..nrows {
                series.push(r.u32()?);
                ts.push(r.u64()? as i64);
                for _ in 0..ncols {
                    values.push(f64::from_bits(r.u64()?));
                }
            }
            WalRecord::Rows {
                ncols,
                series,
                ts,
                values,
            }
        }
        KIND_SERIES | KIND_GROUP => {
            let id = r.u32()?;
            let n = r.u16()? as usize;
            let s = std::str::from_utf8(r.take(n)?).ok()?.to_string();
            if p[0] == KIND_SERIES {
                WalRecord::Series { id, key: s }
            } else {
                WalRecord::Group { id, name: s }
            }
        }
        KIND_MEMBERS => {
            let series = r.u32()?;
            let n = r.u16()? as usize;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                groups.push(r.u32()?);
            }
            WalRecord::Members { series, groups }
        }
        _ => return None,
    };
    (r.pos == p.len()).then_some(rec)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

/// Path of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.wal"))
}

/// Segment numbers present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let entry = entry.map_err(StoreError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads a segment, cutting it back to its last good record if the tail is damaged.
/// Returns its records and whether it had to be cut.
pub fn replay_segment(path: &Path) -> Result<(Vec<WalRecord>, bool), StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(StoreError::io(path))?;
    let scan = decode_segment(&bytes);
    let mut cut = false;
    if let Some(why) = &scan.damage {
        tracing::warn!(
            file = %path.display(),
            offset = scan.good_len,
            "WAL segment damaged at byte {} of {} ({why}); cutting it back to the last good record",
            scan.good_len,
            bytes.len()
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(StoreError::io(path))?;
        f.set_len(scan.good_len as u64)
            .and_then(|_| f.sync_all())
            .map_err(StoreError::io(path))?;
        cut = true;
    }
    Ok((scan.records, cut))
}

/// The open, current segment and its buffer.
pub struct WalWriter {
    dir: PathBuf,
    segment: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file that are known good.
    file_len: u64,
    buf: Vec<u8>,
    last_sync: Instant,
    /// Bytes written to all segments still on disk (for stats).
    bytes_on_disk: u64,
}

impl WalWriter {
    /// Starts segment `segment` (a fresh file) in `dir`.
    pub fn create(dir: &Path, segment: u64, existing_bytes: u64) -> Result<WalWriter, StoreError> {
        let path = segment_path(dir, segment);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&segment.to_le_bytes());
        file.write_all(&header).map_err(StoreError::io(&path))?;
        file.sync_all().map_err(StoreError::io(&path))?;
        sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            segment,
            path,
            file,
            file_len: HEADER_LEN as u64,
            buf: Vec::with_capacity(WRITE_THRESHOLD * 2),
            last_sync: Instant::now(),
            bytes_on_disk: existing_bytes + HEADER_LEN as u64,
        })
    }

    /// The current segment number.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Bytes of WAL on disk plus buffered.
    pub fn bytes(&self) -> u64 {
        self.bytes_on_disk + self.buf.len() as u64
    }

    /// When the log was last forced to disk.
    pub fn last_sync(&self) -> Instant {
        self.last_sync
    }

    fn frame(&mut self, payload_start: usize) {
        let len = (self.buf.len() - payload_start) as u32;
        let crc = crc32fast::hash(&self.buf[payload_start..]);
        self.buf[payload_start - 8..payload_start - 4].copy_from_slice(&len.to_le_bytes());
        self.buf[payload_start - 4..payload_start].copy_from_slice(&crc.to_le_bytes());
    }

    /// Starts a record; returns where its payload starts (its frame starts 8 bytes earlier).
    fn begin(&mut self, kind: u8) -> usize {
        self.buf.extend_from_slice(&[0; 8]);
        let start = self.buf.len();
        self.buf.push(kind);
        start
    }

    /// Buffers a batch of rows (`values` row-major, `ncols` per row).
    pub fn log_rows(
        &mut self,
        ncols: usize,
        rows: &[(u32, i64, &[f64])],
    ) -> Result<(), StoreError> {
        let start = self.begin(KIND_ROWS);
        self.buf.extend_from_slice(&(ncols as u16).to_le_bytes());
        self.buf
            .extend_from_slice(&(rows.len() as u32).to_le_bytes());
        self.buf.reserve(rows.len() * (12 + 8 * ncols));
        for (s, t, v) in rows {
            self.buf.extend_from_slice(&s.to_le_bytes());
            self.buf.extend_from_slice(&t.to_le_bytes());
            for x in v.iter() {
                self.buf.extend_from_slice(&x.to_bits().to_le_bytes());
            }
        }
        self.frame(start);
        self.maybe_write(start - 8)
    }

    /// Buffers a series or group registration.
    pub fn log_name(&mut self, group: bool, id: u32, name: &str) -> Result<(), StoreError> {
        let start = self.begin(if group { KIND_GROUP } else { KIND_SERIES });
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.frame(start);
        self.maybe_write(start - 8)
    }

    /// Buffers a change of a series' groups.
    pub fn log_members(&mut self, series: u32, groups: &[u32]) -> Result<(), StoreError> {
        let start = self.begin(KIND_MEMBERS);
        self.buf.extend_from_slice(&series.to_le_bytes());
        self.buf
            .extend_from_slice(&(groups.len() as u16).to_le_bytes());
        for g in groups {
            self.buf.extend_from_slice(&g.to_le_bytes());
        }
        self.frame(start);
        self.maybe_write(start - 8)
    }

    /// Writes the buffer out once it is large; if that fails, the record that started at
    /// `record_start` is taken back out, so a row reported as failed is never replayed.
    fn maybe_write(&mut self, record_start: usize) -> Result<(), StoreError> {
        if self.buf.len() >= WRITE_THRESHOLD
            && let Err(e) = self.write_out()
        {
            self.buf.truncate(record_start);
            return Err(e);
        }
        Ok(())
    }

    /// Hands the buffer to the operating system (survives a process kill, not a power cut).
    pub fn write_out(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Cut off whatever part of the buffer made it, so the segment ends on a record.
            let _ = self.file.set_len(self.file_len);
            let _ = self.file.seek(SeekFrom::Start(self.file_len));
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        self.file_len += self.buf.len() as u64;
        self.bytes_on_disk += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// A second handle on the current segment, to fsync it without holding the ingest lock.
    pub fn sync_handle(&self) -> Result<(File, PathBuf), StoreError> {
        let f = self.file.try_clone().map_err(StoreError::io(&self.path))?;
        Ok((f, self.path.clone()))
    }

    /// Records that the log was forced to disk now.
    pub fn mark_synced(&mut self, at: Instant) {
        self.last_sync = at;
    }

    /// Writes and fsyncs the current segment, then starts segment `next`.
    pub fn rotate(&mut self, next: u64) -> Result<(), StoreError> {
        self.write_out()?;
        self.file.sync_data().map_err(StoreError::io(&self.path))?;
        let fresh = WalWriter::create(&self.dir, next, self.bytes_on_disk)?;
        *self = fresh;
        Ok(())
    }

    /// Removes sealed segments (all below `below`) and forgets their size.
    pub fn remove_below(&mut self, below: u64) -> Result<(), StoreError> {
        for n in list_segments(&self.dir)? {
            if n >= below {
                continue;
            }
            let p = segment_path(&self.dir, n);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&p) {
                Ok(()) => self.bytes_on_disk = self.bytes_on_disk.saturating_sub(len),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { path: p, source: e }),
            }
        }
        Ok(())
    }
}

/// Makes a new or removed directory entry durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_stops_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 7, 0).unwrap();
        w.log_name(false, 0, "dev-a").unwrap();
        w.log_name(true, 3, "site=A").unwrap();
        w.log_members(0, &[3]).unwrap();
        let vals = [1.5, f64::NAN];
        w.log_rows(2, &[(0, 1000, &vals[..]), (0, 2000, &vals[..])])
            .unwrap();
        w.write_out().unwrap();
        let path = segment_path(dir.path(), 7);
        let bytes = std::fs::read(&path).unwrap();
        let scan = decode_segment(&bytes);
        assert_eq!(scan.damage, None);
        assert_eq!(scan.records.len(), 4);
        assert_eq!(
            scan.records[0],
            WalRecord::Series {
                id: 0,
                key: "dev-a".into()
            }
        );
        match &scan.records[3] {
            WalRecord::Rows {
                ncols,
                series,
                ts,
                values,
            } => {
                assert_eq!(
                    (*ncols, series.as_slice(), ts.as_slice()),
                    (2, &[0, 0][..], &[1000, 2000][..])
                );
                assert_eq!(values[0], 1.5);
                assert!(values[1].is_nan());
            }
            other => panic!("unexpected {other:?}"),
        }
        // Damage inside the last record: replay keeps the first three and cuts the file.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 3] ^= 0xFF;
        std::fs::write(&path, &bad).unwrap();
        let (records, cut) = replay_segment(&path).unwrap();
        assert!(cut);
        assert_eq!(records.len(), 3);
        let new_len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(new_len < n);
        assert_eq!(decode_segment(&std::fs::read(&path).unwrap()).damage, None);
    }

    #[test]
    fn garbage_is_not_a_segment() {
        assert!(decode_segment(b"not a wal at all").damage.is_some());
        assert!(decode_segment(&[]).damage.is_some());
    }
}
