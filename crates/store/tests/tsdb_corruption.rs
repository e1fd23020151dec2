//! Damaged files: a corrupt WAL tail is cut off with a warning and the rows before it kept; a
//! corrupt chunk (L1 in a day file, or L0 in the state file) is detected by its checksum,
//! skipped with a warning, counted, and never served.

mod tsdb_common;

use hashmesh_store::tsdb::{Resolution, SeriesId, Store};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tsdb_common::*;

const L1: TableDefinition<(i64, u32, u16, u16), &[u8]> = TableDefinition::new("l1");
const RAW_L0: TableDefinition<(i64, u32, u16, u64, u16), &[u8]> = TableDefinition::new("raw_l0");

fn ingest(store: &Store, n_series: u32, rows: i64) -> Vec<SeriesId> {
    let ids: Vec<SeriesId> = (0..n_series)
        .map(|i| store.series(&format!("d{i}")).unwrap())
        .collect();
    for i in 0..rows {
        let vals: Vec<[f64; 1]> = ids.iter().map(|s| [f64::from(s.0) + i as f64]).collect();
        let batch: Vec<(SeriesId, i64, &[f64])> = ids
            .iter()
            .zip(&vals)
            .map(|(s, v)| (*s, T0 + i * 10_000, &v[..]))
            .collect();
        store.append_batch(&batch).unwrap();
    }
    ids
}

fn count(store: &Store, s: SeriesId) -> usize {
    store
        .query_series(s, "v", T0, T0 + 2 * HOUR, Resolution::Raw)
        .unwrap()
        .len()
}

/// Flips one byte in the middle of `value` where it sits in `file`.
fn flip_in_file(file: &std::path::Path, value: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let mid = value.len() / 2;
    let needle = &value[mid - 32..mid + 32];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("value bytes found in the file");
    bytes[at + 32] ^= 0x5A;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn corrupt_wal_tail_is_cut_and_earlier_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s;
    {
        let store = open(dir.path(), &["v"]);
        s = store.series("d").unwrap();
        for i in 0..100 {
            store.append(s, T0 + i * 1000, &[i as f64]).unwrap();
        }
        store.flush().unwrap();
    }
    let wal_dir = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    // The newest segment is the empty one the closed store had just started; damage the one
    // holding the rows, inside its last record.
    let seg = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 100)
        .unwrap()
        .clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 4] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let logs = capture_logs();
    let store = open(dir.path(), &["v"]);
    let pts = store
        .query_series(s, "v", T0, T0 + HOUR, Resolution::Raw)
        .unwrap();
    assert_eq!(
        pts.len(),
        99,
        "every record before the damaged one is replayed"
    );
    assert_eq!(pts[98].value, 98.0);
    assert_eq!(store.stats().wal_truncations, 1);
    let text = logs.text();
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        text.contains(name) && text.contains("offset"),
        "log names file and offset: {text}"
    );
    assert!(std::fs::metadata(&seg).unwrap().len() < n as u64);
    // The cut segment is sound now: a second open replays the same rows without complaint.
    drop(store);
    let store = open(dir.path(), &["v"]);
    assert_eq!(store.stats().wal_truncations, 0);
    assert_eq!(count(&store, s), 99);
}

#[test]
fn corrupt_l1_chunk_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ids;
    {
        let store = open(dir.path(), &["v"]);
        ids = ingest(&store, 200, 360);
        store.tick(T0 + 2 * HOUR).unwrap();
        store.seal().unwrap();
        store.compact_all(T0 + 2 * HOUR).unwrap();
        assert_eq!(count(&store, ids[5]), 360);
    }
    let day = dir.path().join("chunks/2025-10-09.redb");
    let value = {
        let db = redb::Database::create(&day).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(L1).unwrap();
        t.get((T0, 0u32, 1u16, 0u16))
            .unwrap()
            .unwrap()
            .value()
            .to_vec()
    };
    flip_in_file(&day, &value);
    let logs = capture_logs();
    let store = open(dir.path(), &["v"]);
    assert_eq!(count(&store, ids[5]), 0, "a damaged chunk is never served");
    assert_eq!(count(&store, ids[150]), 360, "other blocks are unaffected");
    assert!(store.stats().corrupt_chunks_skipped >= 1);
    assert!(logs.text().contains("failed its check"), "{}", logs.text());
    assert!(logs.text().contains("2025-10-09.redb"));
}

#[test]
fn corrupt_l0_chunk_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ids;
    {
        let store = open(dir.path(), &["v"]);
        ids = ingest(&store, 50, 200);
        store.tick(T0 + 200 * 10_000).unwrap();
        store.seal().unwrap();
    }
    let state = dir.path().join("state.redb");
    let value = {
        let db = redb::Database::create(&state).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(RAW_L0).unwrap();
        let (_, v) = t
            .iter()
            .unwrap()
            .find(|e| e.as_ref().unwrap().0.value().2 == 1)
            .unwrap()
            .unwrap();
        v.value().to_vec()
    };
    flip_in_file(&state, &value);
    let logs = capture_logs();
    let store = open(dir.path(), &["v"]);
    for s in &ids {
        assert_eq!(
            count(&store, *s),
            0,
            "rows of the damaged chunk are not served"
        );
    }
    assert!(store.stats().corrupt_chunks_skipped >= 1);
    assert!(logs.text().contains("raw_l0"), "{}", logs.text());
}
