//! The on-disk queue of remote-write batches: one checksummed file per batch, oldest first.
//!
//! A batch file is named `<sequence, 20 digits>.rwb` and holds a 24-byte header and the
//! snappy-compressed `WriteRequest`:
//!
//! ```text
//! 0..4    magic "HMRW"        4       format version (1)     5..8  zero
//! 8..16   samples (u64 LE)    16..20  payload length (u32 LE)
//! 20..24  CRC-32 of bytes 0..20 and the payload (u32 LE)
//! ```
//!
//! Files are written as `.tmp`, synced, renamed and the folder synced, so a batch is either
//! whole on disk or absent. A file whose checksum fails is renamed to `.corrupt` (kept for a
//! person to look at, not sent, not counted against the bound). The folder is locked with
//! `flock` so that two writers never send the same files. The bound (`queue_max_bytes`) holds
//! after each append: the oldest batches not being sent at that moment are dropped and counted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::export::ExportError;

const MAGIC: &[u8; 4] = b"HMRW";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 24;
const EXT: &str = "rwb";
const LOCK_FILE: &str = "lock";

/// One batch ready to be queued: its snappy-compressed `WriteRequest` and sample count.
pub(crate) struct NewBatch {
    pub(crate) payload: Vec<u8>,
    pub(crate) samples: u64,
}

/// One queued batch as the queue tracks it in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) file_bytes: u64,
    pub(crate) samples: u64,
    in_flight: bool,
}

/// A batch read back from disk.
pub(crate) struct Loaded {
    pub(crate) payload: Vec<u8>,
    pub(crate) samples: u64,
}

/// Why a batch file could not be read back.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The bytes on disk are not a whole, matching batch.
    Corrupt(String),
    /// The file could not be read at all.
    Io(std::io::Error),
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    bytes: u64,
    samples: u64,
    next_seq: u64,
}

/// Counters of data the queue itself gave up on.
#[derive(Default)]
pub(crate) struct QueueCounters {
    pub(crate) dropped_batches: AtomicU64,
    pub(crate) dropped_samples: AtomicU64,
    pub(crate) corrupt_batches: AtomicU64,
}

/// The queue folder, its in-memory index and its bound.
pub(crate) struct Queue {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    pub(crate) counters: QueueCounters,
}

/// An exclusive `flock` on the queue folder, released when dropped.
pub(crate) struct QueueLock {
    _file: File,
}

/// What the queue holds right now.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Depth {
    pub(crate) batches: u64,
    pub(crate) bytes: u64,
    pub(crate) samples: u64,
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::Queue {
        path,
        action,
        source,
    }
}

impl Queue {
    /// Opens (creating it if needed) and locks the queue folder, removes half-written files,
    /// verifies every batch, sets aside corrupt ones and applies the bound.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<(Queue, QueueLock), ExportError> {
        fs::create_dir_all(dir).map_err(io_err(dir, "create folder"))?;
        let lock = lock_folder(dir)?;
        let queue = Queue {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(State::default()),
            counters: QueueCounters::default(),
        };
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        let mut max_seq = None;
        for item in fs::read_dir(dir).map_err(io_err(dir, "list folder"))? {
            let item = item.map_err(io_err(dir, "list folder"))?;
            let path = item.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(seq) = stem.parse::<u64>() else {
                continue;
            };
            match ext {
                // A push that never returned Ok: nothing was promised for it.
                "tmp" => fs::remove_file(&path).map_err(io_err(&path, "remove partial file"))?,
                EXT => found.push((seq, path)),
                _ => {}
            }
            max_seq = max_seq.max(Some(seq));
        }
        found.sort_unstable_by_key(|(seq, _)| *seq);
        let mut state = State {
            next_seq: max_seq.map_or(0, |s| s + 1),
            ..State::default()
        };
        for (seq, path) in found {
            match read_batch(&path) {
                Ok(loaded) => {
                    let file_bytes = (HEADER_LEN + loaded.payload.len()) as u64;
                    state.bytes += file_bytes;
                    state.samples += loaded.samples;
                    state.entries.push_back(Entry {
                        seq,
                        file_bytes,
                        samples: loaded.samples,
                        in_flight: false,
                    });
                }
                Err(ReadFailure::Corrupt(why)) => queue.set_aside(&path, &why),
                Err(ReadFailure::Io(e)) => return Err(io_err(&path, "read batch")(e)),
            }
        }
        queue.evict_over_bound(&mut state);
        *queue.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        Ok((queue, lock))
    }

    /// Writes `batches` durably (in order, after everything already queued), then drops the
    /// oldest batches while the queue is over its bound. Nothing is queued if any write fails.
    pub(crate) fn append(&self, batches: Vec<NewBatch>) -> Result<(), ExportError> {
        if batches.is_empty() {
            return Ok(());
        }
        for batch in &batches {
            let batch_bytes = (HEADER_LEN + batch.payload.len()) as u64;
            if batch_bytes > self.max_bytes {
                return Err(ExportError::BatchTooLarge {
                    batch_bytes,
                    max_bytes: self.max_bytes,
                });
            }
        }
        let first_seq = {
            let mut state = self.lock();
            let first = state.next_seq;
            state.next_seq += batches.len() as u64;
            first
        };
        // Write every file under a temporary name first: a failure part-way leaves no batch of
        // this push in the queue, so a caller that retries the push sends nothing twice.
        let mut written: Vec<(PathBuf, Entry)> = Vec::with_capacity(batches.len());
        let mut result = Ok(());
        for (i, batch) in batches.iter().enumerate() {
            let seq = first_seq + i as u64;
            let tmp = self.dir.join(format!("{seq:020}.tmp"));
            match write_batch(&tmp, batch) {
                Ok(file_bytes) => written.push((
                    tmp,
                    Entry {
                        seq,
                        file_bytes,
                        samples: batch.samples,
                        in_flight: false,
                    },
                )),
                Err(e) => {
                    result = Err(io_err(&tmp, "write batch")(e));
                    let _ = fs::remove_file(&tmp);
                    break;
                }
            }
        }
        if result.is_ok() {
            for (tmp, entry) in &written {
                let path = self.path_of(entry.seq);
                if let Err(e) = fs::rename(tmp, &path) {
                    result = Err(io_err(&path, "rename batch")(e));
                    break;
                }
            }
        }
        if let Err(e) = result {
            for (tmp, entry) in &written {
                let _ = fs::remove_file(tmp);
                let _ = fs::remove_file(self.path_of(entry.seq));
            }
            return Err(e);
        }
        sync_folder(&self.dir)?;
        let mut state = self.lock();
        for (_, entry) in written {
            // Concurrent pushes may finish out of order; keep the deque sorted by sequence.
            let at = state.entries.partition_point(|e| e.seq < entry.seq);
            state.bytes += entry.file_bytes;
            state.samples += entry.samples;
            state.entries.insert(at, entry);
        }
        self.evict_over_bound(&mut state);
        Ok(())
    }

    /// Marks the oldest batches in flight, as many as fit in `max_samples` (at least one), and
    /// returns them; `None` when the queue is empty or already has batches in flight.
    pub(crate) fn take(&self, max_samples: u64) -> Option<Vec<Entry>> {
        let mut state = self.lock();
        if state.entries.front()?.in_flight {
            return None;
        }
        let mut taken = Vec::new();
        let mut samples = 0;
        for entry in state.entries.iter_mut() {
            if !taken.is_empty() && samples + entry.samples > max_samples {
                break;
            }
            entry.in_flight = true;
            samples += entry.samples;
            taken.push(*entry);
        }
        Some(taken)
    }

    /// Reads one taken batch back from disk and checks it.
    pub(crate) fn load(&self, entry: &Entry) -> Result<Loaded, ReadFailure> {
        read_batch(&self.path_of(entry.seq))
    }

    /// Removes batches that were delivered or given up on.
    pub(crate) fn remove(&self, entries: &[Entry]) {
        let mut state = self.lock();
        for entry in entries {
            if let Some(i) = state.entries.iter().position(|e| e.seq == entry.seq) {
                let e = state.entries.remove(i).expect("index from position");
                state.bytes -= e.file_bytes;
                state.samples -= e.samples;
            }
            let path = self.path_of(entry.seq);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != ErrorKind::NotFound
            {
                // The batch is delivered; a file we cannot delete would be sent again after a
                // restart, so say so loudly.
                tracing::error!(path = %path.display(), error = %e, "cannot delete sent remote-write batch");
            }
        }
    }

    /// Returns taken batches to the queue after a failure that will be retried.
    pub(crate) fn release(&self, entries: &[Entry]) {
        let mut state = self.lock();
        for entry in state.entries.iter_mut() {
            if entries.iter().any(|e| e.seq == entry.seq) {
                entry.in_flight = false;
            }
        }
        self.evict_over_bound(&mut state);
    }

    /// Takes a batch whose file turned out corrupt out of the queue and sets the file aside.
    pub(crate) fn quarantine(&self, entry: &Entry, why: &str) {
        {
            let mut state = self.lock();
            if let Some(i) = state.entries.iter().position(|e| e.seq == entry.seq) {
                let e = state.entries.remove(i).expect("index from position");
                state.bytes -= e.file_bytes;
                state.samples -= e.samples;
            }
        }
        self.set_aside(&self.path_of(entry.seq), why);
    }

    /// How much is queued.
    pub(crate) fn depth(&self) -> Depth {
        let state = self.lock();
        Depth {
            batches: state.entries.len() as u64,
            bytes: state.bytes,
            samples: state.samples,
        }
    }

    fn set_aside(&self, path: &Path, why: &str) {
        self.counters
            .corrupt_batches
            .fetch_add(1, Ordering::Relaxed);
        let aside = path.with_extension("corrupt");
        tracing::warn!(path = %path.display(), reason = why, "skipping corrupt remote-write batch; kept as {}", aside.display());
        if let Err(e) = fs::rename(path, &aside) {
            tracing::warn!(path = %path.display(), error = %e, "cannot set corrupt batch aside; removing it");
            let _ = fs::remove_file(path);
        }
    }

    fn evict_over_bound(&self, state: &mut State) {
        while state.bytes > self.max_bytes {
            // Batches in flight are being sent right now; dropping them would count as lost
            // data that may in fact arrive. Drop the oldest of the rest.
            let Some(i) = state.entries.iter().position(|e| !e.in_flight) else {
                return;
            };
            let e = state.entries.remove(i).expect("index from position");
            state.bytes -= e.file_bytes;
            state.samples -= e.samples;
            self.counters
                .dropped_batches
                .fetch_add(1, Ordering::Relaxed);
            self.counters
                .dropped_samples
                .fetch_add(e.samples, Ordering::Relaxed);
            let path = self.path_of(e.seq);
            tracing::warn!(path = %path.display(), samples = e.samples, "remote-write queue over its bound; dropping the oldest batch");
            if let Err(err) = fs::remove_file(&path)
                && err.kind() != ErrorKind::NotFound
            {
                tracing::error!(path = %path.display(), error = %err, "cannot delete dropped remote-write batch");
            }
        }
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXT}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the index half-updated in a way that
        // matters more than stopping exports: keep going with what is there.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn header(samples: u64, payload: &[u8]) -> Result<[u8; HEADER_LEN], std::io::Error> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "batch larger than 4 GiB"))?;
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[8..16].copy_from_slice(&samples.to_le_bytes());
    h[16..20].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&h[..20], payload);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    Ok(h)
}

fn checksum(head: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(head);
    hasher.update(payload);
    hasher.finalize()
}

/// Writes and syncs one batch file; returns its size.
fn write_batch(path: &Path, batch: &NewBatch) -> Result<u64, std::io::Error> {
    let h = header(batch.samples, &batch.payload)?;
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(&h)?;
    file.write_all(&batch.payload)?;
    file.sync_all()?;
    Ok((HEADER_LEN + batch.payload.len()) as u64)
}

/// Reads one batch file and checks magic, version, length and checksum.
fn read_batch(path: &Path) -> Result<Loaded, ReadFailure> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(ReadFailure::Io)?;
    if bytes.len() < HEADER_LEN {
        return Err(ReadFailure::Corrupt(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    let (h, payload) = bytes.split_at(HEADER_LEN);
    if &h[0..4] != MAGIC || h[4] != VERSION {
        return Err(ReadFailure::Corrupt("not a version 1 batch file".into()));
    }
    let field =
        |r: std::ops::Range<usize>| h[r].iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b));
    let samples = field(8..16);
    let len = field(16..20) as usize;
    let crc = field(20..24) as u32;
    if payload.len() != len {
        return Err(ReadFailure::Corrupt(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    if checksum(&h[..20], payload) != crc {
        return Err(ReadFailure::Corrupt("checksum mismatch".into()));
    }
    let mut payload_vec = bytes;
    payload_vec.drain(..HEADER_LEN);
    Ok(Loaded {
        payload: payload_vec,
        samples,
    })
}

fn sync_folder(dir: &Path) -> Result<(), ExportError> {
    // The renames are durable only once the folder itself is synced.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "sync folder"))
}

fn lock_folder(dir: &Path) -> Result<QueueLock, ExportError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path, "open lock file"))?;
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == ErrorKind::WouldBlock {
            return Err(ExportError::QueueLocked {
                dir: dir.to_path_buf(),
            });
        }
        return Err(io_err(&path, "lock")(err));
    }
    Ok(QueueLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(samples: u64, len: usize) -> NewBatch {
        NewBatch {
            payload: (0..len).map(|i| (i * 7 + samples as usize) as u8).collect(),
            samples,
        }
    }

    fn files(dir: &Path, ext: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(&format!(".{ext}")))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn batches_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
            q.append(vec![batch(1, 10), batch(2, 20)]).unwrap();
            q.append(vec![batch(3, 30)]).unwrap();
        }
        let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
        let d = q.depth();
        assert_eq!((d.batches, d.samples), (3, 6));
        assert_eq!(d.bytes, (3 * HEADER_LEN + 60) as u64);
        let taken = q.take(100).unwrap();
        let samples: Vec<u64> = taken.iter().map(|e| e.samples).collect();
        assert_eq!(samples, [1, 2, 3]);
        let loaded = q.load(&taken[1]).unwrap();
        assert_eq!(loaded.payload, batch(2, 20).payload);
        q.remove(&taken);
        assert_eq!(q.depth().batches, 0);
        assert!(files(dir.path(), EXT).is_empty());
        // New sequence numbers continue after the old ones, so order holds across restarts.
        q.append(vec![batch(4, 4)]).unwrap();
        assert_eq!(files(dir.path(), EXT), [format!("{:020}.{EXT}", 3)]);
    }

    #[test]
    fn take_respects_the_sample_limit_but_always_takes_one() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
        q.append(vec![batch(5, 1), batch(4, 1), batch(50, 1), batch(1, 1)])
            .unwrap();
        let first = q.take(10).unwrap();
        assert_eq!(first.iter().map(|e| e.samples).collect::<Vec<_>>(), [5, 4]);
        assert!(
            q.take(10).is_none(),
            "nothing more while a request is in flight"
        );
        q.remove(&first);
        let big = q.take(10).unwrap();
        assert_eq!(big.iter().map(|e| e.samples).collect::<Vec<_>>(), [50]);
        q.release(&big);
        assert_eq!(q.take(10).unwrap().len(), 1);
    }

    #[test]
    fn the_bound_drops_the_oldest_batches_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = (HEADER_LEN + 100) as u64;
        let (q, _lock) = Queue::open(dir.path(), 3 * file).unwrap();
        q.append(vec![batch(1, 100), batch(2, 100), batch(3, 100)])
            .unwrap();
        q.append(vec![batch(4, 100), batch(5, 100)]).unwrap();
        let d = q.depth();
        assert_eq!((d.batches, d.bytes, d.samples), (3, 3 * file, 12));
        assert_eq!(q.counters.dropped_batches.load(Ordering::Relaxed), 2);
        assert_eq!(q.counters.dropped_samples.load(Ordering::Relaxed), 3);
        assert_eq!(files(dir.path(), EXT).len(), 3);
        let kept: Vec<u64> = q.take(100).unwrap().iter().map(|e| e.samples).collect();
        assert_eq!(kept, [3, 4, 5]);

        // A batch being sent is not dropped; the next oldest goes instead.
        let dir = tempfile::tempdir().unwrap();
        let (q, _lock) = Queue::open(dir.path(), 2 * file).unwrap();
        q.append(vec![batch(1, 100), batch(2, 100)]).unwrap();
        let sending = q.take(1).unwrap();
        q.append(vec![batch(3, 100)]).unwrap();
        q.remove(&sending);
        let kept: Vec<u64> = q.take(100).unwrap().iter().map(|e| e.samples).collect();
        assert_eq!(kept, [3]);
        assert_eq!(q.counters.dropped_samples.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_batch_larger_than_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _lock) = Queue::open(dir.path(), 50).unwrap();
        let err = q.append(vec![batch(1, 100)]).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::BatchTooLarge {
                    batch_bytes: 124,
                    max_bytes: 50
                }
            ),
            "{err}"
        );
        assert!(files(dir.path(), EXT).is_empty());
    }

    #[test]
    fn corrupt_and_partial_files_are_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
            q.append(vec![batch(1, 40), batch(2, 40), batch(3, 40), batch(4, 40)])
                .unwrap();
        }
        let names = files(dir.path(), EXT);
        // Flip one payload bit of the second, cut the third short, and leave a half-written file.
        let second = dir.path().join(&names[1]);
        let mut bytes = fs::read(&second).unwrap();
        bytes[HEADER_LEN + 3] ^= 0x10;
        fs::write(&second, bytes).unwrap();
        let third = dir.path().join(&names[2]);
        let bytes = fs::read(&third).unwrap();
        fs::write(&third, &bytes[..30]).unwrap();
        fs::write(dir.path().join(format!("{:020}.tmp", 9)), b"half").unwrap();

        let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.counters.corrupt_batches.load(Ordering::Relaxed), 2);
        let kept: Vec<u64> = q.take(100).unwrap().iter().map(|e| e.samples).collect();
        assert_eq!(kept, [1, 4]);
        assert_eq!(files(dir.path(), "corrupt").len(), 2);
        assert!(files(dir.path(), "tmp").is_empty());
        assert_eq!(q.depth().bytes, 2 * (HEADER_LEN + 40) as u64);
    }

    #[test]
    fn a_file_corrupted_after_opening_is_reported_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _lock) = Queue::open(dir.path(), 1 << 20).unwrap();
        q.append(vec![batch(7, 40)]).unwrap();
        let path = dir.path().join(&files(dir.path(), EXT)[0]);
        let mut bytes = fs::read(&path).unwrap();
        bytes[9] ^= 1; // the sample count
        fs::write(&path, bytes).unwrap();
        let taken = q.take(10).unwrap();
        match q.load(&taken[0]) {
            Err(ReadFailure::Corrupt(why)) => assert!(why.contains("checksum"), "{why}"),
            Err(ReadFailure::Io(e)) => panic!("io error {e}"),
            Ok(_) => panic!("corruption not detected"),
        }
        q.quarantine(&taken[0], "checksum mismatch");
        assert_eq!(q.depth().batches, 0);
        assert_eq!(files(dir.path(), "corrupt").len(), 1);
    }

    #[test]
    fn a_second_writer_on_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_q, lock) = Queue::open(dir.path(), 1 << 20).unwrap();
        let err = Queue::open(dir.path(), 1 << 20).err().unwrap();
        assert!(matches!(err, ExportError::QueueLocked { .. }), "{err}");
        drop(lock);
        assert!(Queue::open(dir.path(), 1 << 20).is_ok());
    }
}
