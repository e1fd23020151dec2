//! The crash test: a child process (this test binary, re-executed) ingests continuously with a
//! 50 ms flush interval while sealing and compacting; it is killed with SIGKILL at a random
//! moment; the store then reopens and must hold every row acknowledged more than one flush
//! interval before the kill, with correct values, no duplicates and no corrupt chunks. Three
//! kill-and-restart cycles run on the same store.

mod tsdb_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashmesh_store::tsdb::{Agg, Resolution, SeriesId, Store, StoreConfig};
use tsdb_common::*;

const SERIES: u32 = 20;
const FLUSH: Duration = Duration::from_millis(50);
const STEP_MS: i64 = 10_000;

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir, columns(&["hashrate_ths"]));
    c.flush_interval = FLUSH;
    c
}

fn value(s: u32, k: i64) -> f64 {
    f64::from(s) * 1000.0 + k as f64
}

/// The child: ingests batch after batch from `CRASH_START`, printing each acknowledged batch.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("TSDB_CRASH_DIR") else {
        return; // only runs when re-executed by the parent test
    };
    let start: i64 = std::env::var("TSDB_CRASH_START").unwrap().parse().unwrap();
    let store = Store::open(config(std::path::Path::new(&dir))).unwrap();
    let ids: Vec<SeriesId> = (0..SERIES)
        .map(|s| store.series(&format!("miner-{s}")).unwrap())
        .collect();
    for s in &ids {
        store.set_groups(*s, &columns(&["all"])).unwrap();
    }
    let mut out = std::io::stdout().lock();
    let mut k = start;
    loop {
        let t = T0 + k * STEP_MS;
        let vals: Vec<[f64; 1]> = ids.iter().map(|s| [value(s.0, k)]).collect();
        let batch: Vec<(SeriesId, i64, &[f64])> = ids
            .iter()
            .zip(&vals)
            .map(|(s, v)| (*s, t, &v[..]))
            .collect();
        store.append_batch(&batch).unwrap();
        writeln!(out, "ack {k}").unwrap();
        out.flush().unwrap();
        store.tick(t).unwrap();
        k += 1;
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Checks the reopened store; returns the last batch present.
fn verify(dir: &std::path::Path, must_have: i64) -> i64 {
    let store = Store::open(config(dir)).unwrap();
    let mut last = None;
    for s in 0..SERIES {
        let id = store.series(&format!("miner-{s}")).unwrap();
        let pts = store
            .query_series(
                id,
                "hashrate_ths",
                T0,
                T0 + 10_000_000 * STEP_MS,
                Resolution::Raw,
            )
            .unwrap();
        for (k, p) in pts.iter().enumerate() {
            let k = k as i64;
            assert_eq!(
                p.time_unix_ms,
                T0 + k * STEP_MS,
                "series {s}: rows contiguous, no duplicates"
            );
            assert_eq!(p.value, value(s, k), "series {s} batch {k}");
        }
        let n = pts.len() as i64 - 1;
        assert!(
            n >= must_have,
            "series {s}: last row {n}, but {must_have} was acknowledged in time"
        );
        match last {
            None => last = Some(n),
            Some(l) => assert_eq!(l, n, "a batch is all or nothing"),
        }
    }
    let last = last.unwrap();
    // Closed 1-minute buckets: 20 devices, the sum of their means.
    let mins = store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Count,
            T0,
            T0 + (last - 12) * STEP_MS,
            Resolution::Min1,
        )
        .unwrap();
    assert!(mins.iter().all(|p| p.value == 20.0), "{mins:?}");
    let sums = store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + (last - 12) * STEP_MS,
            Resolution::Min1,
        )
        .unwrap();
    for p in &sums {
        let k0 = (p.time_unix_ms - T0) / STEP_MS;
        let mean_k = k0 as f64 + 2.5;
        let want: f64 = (0..SERIES).map(|s| f64::from(s) * 1000.0 + mean_k).sum();
        assert!(
            (p.value - want).abs() <= want * 1e-6,
            "minute at batch {k0}: {} vs {want}",
            p.value
        );
    }
    assert_eq!(store.stats().corrupt_chunks_skipped, 0);
    last
}

#[test]
fn kill_during_ingest_loses_at_most_one_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut next = 0i64;
    for (cycle, run_ms) in [900u64, 1700, 1300].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("TSDB_CRASH_DIR", dir.path())
            .env("TSDB_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acks: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
        let reader = {
            let acks = acks.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(k) = line.strip_prefix("ack ").and_then(|k| k.parse().ok()) {
                        acks.lock().unwrap().push((k, Instant::now()));
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(run_ms));
        let killed_at = Instant::now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acks = acks.lock().unwrap();
        let must_have = acks
            .iter()
            .filter(|(_, at)| *at + FLUSH <= killed_at)
            .map(|(k, _)| *k)
            .max()
            .unwrap_or(next - 1);
        let acked = acks.last().map_or(-1, |a| a.0);
        assert!(
            acked > next + 100,
            "cycle {cycle}: the child ingested too little ({acked})"
        );
        let last = verify(dir.path(), must_have);
        assert!(last <= acked + 1);
        eprintln!(
            "cycle {cycle}: acknowledged up to {acked}, {must_have} in time, store has up to {last}"
        );
        next = last + 1;
    }
    // The child crossed hours, so compaction ran and day files exist.
    assert!(dir.path().join("chunks").read_dir().unwrap().count() > 0);
}
