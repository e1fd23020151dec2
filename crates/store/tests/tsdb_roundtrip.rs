//! Round trips through every stage of the store on real files: head, L0 chunks after a seal,
//! L1 chunks after compaction, and a reopen; plus retention, schema checks and bad input.

mod tsdb_common;

use hashmesh_store::tsdb::{Agg, Resolution, SeriesId, Store, StoreConfig, StoreError};
use tsdb_common::*;

fn value(s: u32, i: i64, c: usize) -> f64 {
    if (i + i64::from(s)) % 13 == 0 && c == 1 {
        f64::NAN
    } else {
        f64::from(s) * 100.0 + i as f64 * 0.25 + c as f64
    }
}

/// Appends `n` rows every 10 s from `start` for each series.
fn fill(store: &Store, ids: &[SeriesId], start: i64, n: i64) {
    for i in 0..n {
        let rows: Vec<Vec<f64>> = ids
            .iter()
            .map(|s| (0..2).map(|c| value(s.0, i, c)).collect())
            .collect();
        let batch: Vec<(SeriesId, i64, &[f64])> = ids
            .iter()
            .zip(&rows)
            .map(|(s, r)| (*s, start + i * 10_000, r.as_slice()))
            .collect();
        store.append_batch(&batch).unwrap();
    }
}

fn check(store: &Store, ids: &[SeriesId], start: i64, n: i64) {
    for s in ids {
        for (c, col) in ["hashrate_ths", "power_w"].iter().enumerate() {
            let pts = store
                .query_series(*s, col, start, start + n * 10_000, Resolution::Raw)
                .unwrap();
            let want: Vec<(i64, f64)> = (0..n)
                .map(|i| (start + i * 10_000, value(s.0, i, c)))
                .filter(|(_, v)| !v.is_nan())
                .collect();
            let got: Vec<(i64, f64)> = pts.iter().map(|p| (p.time_unix_ms, p.value)).collect();
            assert_eq!(got, want, "series {} column {col}", s.0);
        }
    }
}

#[test]
fn rows_survive_seal_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 720; // two hours at 10 s
    let ids: Vec<SeriesId>;
    {
        let store = open(dir.path(), &["hashrate_ths", "power_w"]);
        ids = (0..300)
            .map(|i| store.series(&format!("dev-{i}")).unwrap())
            .collect();
        assert_eq!(store.series("dev-7").unwrap(), ids[7]);
        fill(&store, &ids, T0, n);
        check(&store, &ids, T0, n); // from the head
        store.tick(T0 + 2 * HOUR + 60_000).unwrap();
        store.seal().unwrap();
        assert_eq!(store.stats().head_rows, 0);
        check(&store, &ids, T0, n); // from L0 chunks
        store.compact_all(T0 + 2 * HOUR + 60_000).unwrap();
        check(&store, &ids, T0, n); // from L1 chunks
        assert!(dir.path().join("chunks/2025-10-09.redb").exists());
        let st = store.stats();
        assert_eq!(st.rows_ingested, 300 * n as u64);
        assert_eq!(st.corrupt_chunks_skipped, 0);
        assert!(st.chunk_bytes > 0);
        // More rows in the head on top, then close without sealing.
        fill(&store, &ids[..5], T0 + 2 * HOUR, 10);
    }
    let store = open(dir.path(), &["hashrate_ths", "power_w"]);
    assert_eq!(store.series("dev-7").unwrap(), ids[7]);
    check(&store, &ids, T0, n);
    check(&store, &ids[..5], T0 + 2 * HOUR, 10);
    assert_eq!(store.latest(ids[3]).unwrap().0, T0 + 2 * HOUR + 9 * 10_000);
    // Downsampled: mean per minute of six rows.
    let m = store
        .query_series(ids[2], "hashrate_ths", T0, T0 + 120_000, Resolution::Min1)
        .unwrap();
    assert_eq!(m.len(), 2);
    let want: f64 = (0..6).map(|i| value(2, i, 0)).sum::<f64>() / 6.0;
    assert!((m[0].value - want).abs() < 1e-9);
    assert_eq!(m[1].time_unix_ms, T0 + 60_000);
}

#[test]
fn groups_roll_up_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), &["hashrate_ths", "power_w"]);
        let a = store.series("a").unwrap();
        let b = store.series("b").unwrap();
        store.set_groups(a, &columns(&["all", "rack=1"])).unwrap();
        store.set_groups(b, &columns(&["all", "rack=2"])).unwrap();
        // a: 100 and 110 in minute 0; b: 50 in minute 0; then both 10 in minute 1.
        store.append(a, T0 + 1_000, &[100.0, 1.0]).unwrap();
        store.append(b, T0 + 2_000, &[50.0, 1.0]).unwrap();
        store.append(a, T0 + 30_000, &[110.0, 1.0]).unwrap();
        store.append(a, T0 + 61_000, &[10.0, 1.0]).unwrap();
        store.append(b, T0 + 62_000, &[10.0, 1.0]).unwrap();
        let sum = store
            .query_group(
                "all",
                "hashrate_ths",
                Agg::Sum,
                T0,
                T0 + 120_000,
                Resolution::Min1,
            )
            .unwrap();
        assert_eq!(sum.len(), 2);
        assert_eq!((sum[0].value, sum[1].value), (155.0, 20.0));
        store.tick(T0 + 200_000).unwrap();
        store.seal().unwrap();
    }
    let store = open(dir.path(), &["hashrate_ths", "power_w"]);
    let q = |g: &str, agg| {
        store
            .query_group(g, "hashrate_ths", agg, T0, T0 + 120_000, Resolution::Min1)
            .unwrap()
            .iter()
            .map(|p| p.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(q("all", Agg::Sum), vec![155.0, 20.0]);
    assert_eq!(q("all", Agg::Avg), vec![77.5, 10.0]);
    assert_eq!(q("all", Agg::Min), vec![50.0, 10.0]);
    assert_eq!(q("all", Agg::Max), vec![105.0, 10.0]);
    assert_eq!(q("all", Agg::Count), vec![2.0, 2.0]);
    assert_eq!(q("rack=1", Agg::Sum), vec![105.0, 10.0]);
    let hour = store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + HOUR,
            Resolution::Hour1,
        )
        .unwrap();
    // Hour means: a (100+110+10)/3, b (50+10)/2.
    assert!((hour[0].value - (220.0 / 3.0 + 30.0)).abs() < 1e-4);
    assert!(matches!(
        store.query_group(
            "nope",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + 1,
            Resolution::Min1
        ),
        Err(StoreError::UnknownGroup(_))
    ));
    assert!(matches!(
        store.query_group("all", "hashrate_ths", Agg::Sum, T0, T0 + 1, Resolution::Raw),
        Err(StoreError::InvalidArgument(_))
    ));
}

#[test]
fn a_device_that_moves_rolls_up_into_its_new_rack() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &["hashrate_ths"]);
    let a = store.series("a").unwrap();
    store.set_groups(a, &columns(&["rack=1"])).unwrap();
    store.append(a, T0, &[100.0]).unwrap();
    store.tick(T0 + 120_000).unwrap();
    store.set_groups(a, &columns(&["rack=2"])).unwrap();
    store.append(a, T0 + 120_000, &[7.0]).unwrap();
    store.tick(T0 + 240_000).unwrap();
    let r1 = store
        .query_group(
            "rack=1",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + 600_000,
            Resolution::Min1,
        )
        .unwrap();
    let r2 = store
        .query_group(
            "rack=2",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + 600_000,
            Resolution::Min1,
        )
        .unwrap();
    assert_eq!(
        r1.iter()
            .map(|p| (p.time_unix_ms, p.value))
            .collect::<Vec<_>>(),
        vec![(T0, 100.0)]
    );
    assert_eq!(
        r2.iter()
            .map(|p| (p.time_unix_ms, p.value))
            .collect::<Vec<_>>(),
        vec![(T0 + 120_000, 7.0)]
    );
}

#[test]
fn retention_deletes_old_day_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &["hashrate_ths"]);
    let a = store.series("a").unwrap();
    store.set_groups(a, &columns(&["all"])).unwrap();
    for d in 0..20 {
        for i in 0..3 {
            store
                .append(a, T0 + d * DAY + i * 60_000, &[d as f64])
                .unwrap();
        }
        store.tick(T0 + d * DAY + 2 * HOUR).unwrap();
        store.seal().unwrap();
        store.compact_all(T0 + d * DAY + 2 * HOUR).unwrap();
    }
    let day_files = |sub: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let now = T0 + 19 * DAY + 2 * HOUR;
    store.tick(now + 61_000).unwrap();
    let raw = day_files("chunks");
    // Raw keeps 14 days: the day files that ended before now - 14 d are gone.
    assert_eq!(
        raw.first().map(String::as_str),
        Some("2025-10-14.redb"),
        "{raw:?}"
    );
    assert_eq!(raw.len(), 15);
    let min1 = day_files("rollups/min1");
    assert_eq!(min1.len(), 20, "1-minute rollups are kept 30 days");
    assert!(store.stats().files_deleted >= 5);
    let old = store
        .query_series(a, "hashrate_ths", T0, T0 + DAY, Resolution::Raw)
        .unwrap();
    assert!(old.is_empty());
    let recent = store
        .query_series(
            a,
            "hashrate_ths",
            T0 + 19 * DAY,
            T0 + 20 * DAY,
            Resolution::Raw,
        )
        .unwrap();
    assert_eq!(recent.len(), 3);
    let roll = store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Max,
            T0,
            T0 + DAY,
            Resolution::Min1,
        )
        .unwrap();
    assert_eq!(roll.len(), 3, "rollups outlive raw rows");
}

#[test]
fn bad_input_gets_clear_errors_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), &["a", "b"]);
        let s = store.series("x").unwrap();
        assert!(matches!(
            store.append(s, T0, &[1.0]),
            Err(StoreError::RowWidth {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            store.append(SeriesId(9), T0, &[1.0, 2.0]),
            Err(StoreError::UnknownSeries(9))
        ));
        assert!(matches!(
            store.query_series(s, "c", T0, T0 + 1, Resolution::Raw),
            Err(StoreError::UnknownColumn(_))
        ));
        assert!(store.series("").is_err());
        store.append(s, T0, &[1.0, 2.0]).unwrap();
    }
    // Columns may be appended to the schema, not changed.
    let err = Store::open(StoreConfig::new(dir.path(), columns(&["b", "a"]))).err();
    assert!(
        matches!(err, Some(StoreError::SchemaMismatch { .. })),
        "{err:?}"
    );
    let store = open(dir.path(), &["a", "b", "c"]);
    let s = store.series("x").unwrap();
    let pts = store
        .query_series(s, "b", T0, T0 + 1, Resolution::Raw)
        .unwrap();
    assert_eq!(
        pts,
        vec![hashmesh_store::tsdb::Point {
            time_unix_ms: T0,
            value: 2.0
        }]
    );
    assert!(
        store
            .query_series(s, "c", T0, T0 + 1, Resolution::Raw)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn store_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

/// Queries running while another thread ingests, seals and compacts see every row of the
/// finished hours exactly once (a row moving from head to L0 to L1 is never lost or doubled).
#[test]
fn queries_during_ingest_and_maintenance_see_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path(), columns(&["v"]));
    config.seal_interval = std::time::Duration::from_secs(30);
    let store = std::sync::Arc::new(Store::open(config).unwrap());
    let ids: Vec<SeriesId> = (0..40)
        .map(|i| store.series(&format!("d{i}")).unwrap())
        .collect();
    let rows = 2_000i64; // 10 s apart: five and a half hours
    let writer = {
        let store = store.clone();
        let ids = ids.clone();
        std::thread::spawn(move || {
            for k in 0..rows {
                let vals: Vec<[f64; 1]> = ids.iter().map(|_| [k as f64]).collect();
                let batch: Vec<(SeriesId, i64, &[f64])> = ids
                    .iter()
                    .zip(&vals)
                    .map(|(s, v)| (*s, T0 + k * 10_000, &v[..]))
                    .collect();
                store.append_batch(&batch).unwrap();
                store.tick(T0 + k * 10_000).unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() {
        let pts = store
            .query_series(
                ids[checks % 40],
                "v",
                T0,
                T0 + rows * 10_000,
                Resolution::Raw,
            )
            .unwrap();
        for (i, p) in pts.iter().enumerate() {
            assert_eq!(
                p.value, i as f64,
                "row {i} seen once, in order, none missing"
            );
        }
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 10);
    assert!(store.stats().seals > 10);
    assert!(
        dir.path().join("chunks/2025-10-09.redb").exists(),
        "compaction ran"
    );
    let pts = store
        .query_series(ids[0], "v", T0, T0 + rows * 10_000, Resolution::Raw)
        .unwrap();
    assert_eq!(pts.len(), rows as usize);
}

#[test]
fn columns_with_a_precision_are_stored_rounded_and_replayed_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path(), vec!["hashrate_ths".into(), "power_w".into()]);
    config.precision_bits = vec![("hashrate_ths".into(), 12)];
    let raw = [123.456_789_f64, 0.987_654_321, 199.999_9];
    let s;
    {
        let store = Store::open(config.clone()).unwrap();
        s = store.series("dev-1").unwrap();
        for (i, v) in raw.iter().enumerate() {
            store
                .append(s, T0 + i as i64 * 10_000, &[*v, 3_250.123_456])
                .unwrap();
        }
        store.flush().unwrap();
        // Dropped without a seal: the reopened store has these rows from its WAL only.
    }
    let store = Store::open(config.clone()).unwrap();
    let got = store
        .query_series(s, "hashrate_ths", T0, T0 + 30_000, Resolution::Raw)
        .unwrap();
    assert_eq!(got.len(), raw.len());
    for (p, v) in got.iter().zip(raw) {
        // 12 kept bits: within 2^-13 of the value, and not the value itself.
        assert!(
            ((p.value - v) / v).abs() <= 1.0 / 8192.0,
            "{} vs {v}",
            p.value
        );
        assert_ne!(p.value, v);
        assert_eq!(p.value.to_bits() & ((1u64 << 40) - 1), 0, "{}", p.value);
    }
    let power = store
        .query_series(s, "power_w", T0, T0 + 30_000, Resolution::Raw)
        .unwrap();
    assert!(
        power.iter().all(|p| p.value == 3_250.123_456),
        "other columns exact"
    );
    drop(store);

    config.precision_bits = vec![("hashrate".into(), 12)];
    let err = Store::open(config.clone())
        .err()
        .expect("unknown column refused");
    assert!(err.to_string().contains("'hashrate'"), "{err}");
    config.precision_bits = vec![("power_w".into(), 0)];
    let err = Store::open(config).err().expect("zero bits refused");
    assert!(err.to_string().contains("1 to 52"), "{err}");
}

#[test]
fn a_finished_day_file_is_closed_and_its_unused_space_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("chunks/2025-10-09.redb");
    let store = open(dir.path(), &["hashrate_ths", "power_w"]);
    let ids: Vec<SeriesId> = (0..200)
        .map(|i| store.series(&format!("dev-{i}")).unwrap())
        .collect();
    let per_hour = 360;
    for h in 0..24 {
        fill(&store, &ids, T0 + h * HOUR, per_hour);
        // Maintenance as the node runs it, a while after the hour.
        let now = T0 + (h + 1) * HOUR + 61_000;
        store.tick(now).unwrap();
        store.seal().unwrap();
        store.compact_all(now).unwrap();
        if (2..23).contains(&h) {
            // The day is still being written: the store holds its file.
            assert!(
                redb::Database::open(&day).is_err(),
                "hour {h}: the day file should be open in the store"
            );
        }
    }
    // The last hour's rollups close a while after it; then the day is finished.
    let now = T0 + DAY + 2 * HOUR;
    store.tick(now).unwrap();
    store.seal().unwrap();
    store.compact_all(now).unwrap();
    let closed_len = std::fs::metadata(&day).unwrap().len();
    let payload: usize = {
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::Database::open(&day).expect("the store closed the finished day's file");
        let txn = db.begin_read().unwrap();
        let l1: redb::TableDefinition<(i64, u32, u16, u16), &[u8]> =
            redb::TableDefinition::new("l1");
        let t = txn.open_table(l1).unwrap();
        t.iter().unwrap().map(|e| e.unwrap().1.value().len()).sum()
    };
    // An open file that was written to carries up to half its size of unused space.
    assert!(
        (closed_len as usize) < payload * 5 / 4 + (64 << 10),
        "closed {closed_len} B for {payload} B of chunks"
    );
    // Queries reopen it, and find every row.
    for s in [ids[0], ids[199]] {
        for (c, col) in ["hashrate_ths", "power_w"].iter().enumerate() {
            let pts = store
                .query_series(s, col, T0, T0 + DAY, Resolution::Raw)
                .unwrap();
            let want = (0..24)
                .flat_map(|_| 0..per_hour)
                .filter(|&i| !value(s.0, i, c).is_nan())
                .count();
            assert_eq!(pts.len(), want, "series {} column {col}", s.0);
        }
    }
    assert_eq!(store.stats().corrupt_chunks_skipped, 0);
}

#[test]
fn a_store_without_latest_rows_still_keeps_and_replays_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = StoreConfig::new(dir.path(), columns(&["hashrate_ths", "power_w"]));
        c.keep_latest = false;
        c
    };
    let ids: Vec<SeriesId>;
    {
        let store = Store::open(config()).unwrap();
        ids = (0..20)
            .map(|i| store.series(&format!("dev-{i}")).unwrap())
            .collect();
        fill(&store, &ids, T0, 30);
        assert_eq!(store.latest(ids[0]), None);
        check(&store, &ids, T0, 30);
        store.flush().unwrap();
    }
    // Reopened from the WAL alone.
    let store = Store::open(config()).unwrap();
    assert_eq!(store.latest(ids[3]), None);
    check(&store, &ids, T0, 30);
    drop(store);
    // The same files opened with latest rows kept: the replayed rows fill them.
    let store = open(dir.path(), &["hashrate_ths", "power_w"]);
    assert_eq!(store.latest(ids[3]).unwrap().0, T0 + 29 * 10_000);
}
