//! Store benchmarks (run on purpose: `cargo bench -p hashmesh-store --bench tsdb`); prints
//! figures against the budgets of DESIGN.md.
//!
//! 1. **Ingest and bytes on disk**: 24 h of a realistic simulated fleet (default 1,000
//!    devices, 16 columns, one poll every 10 s, the node's poll cycle) appended in poll-cycle
//!    batches with `tick` every cycle, on one thread, so seals, rollups and compaction are all
//!    paid inside the measured time. Samples/s counts rows × columns over the time spent in
//!    the store (data generation excluded). Bytes per sample is every file under the store
//!    folder after the day is sealed and compacted, divided by the samples.
//! 2. **One device over 24 h**, raw, on that store.
//! 3. **Node-wide hashrate over 24 h at 1-min steps with 100,000 devices**: a second store
//!    with 100k devices registered (site, container, rack, model, vendor groups), fed one
//!    column (hashrate) once a minute for 24 h, so the 1-minute rollups hold what 100k devices
//!    produce while the raw volume stays small enough for bench time. The query runs while
//!    the last minute is still open, so it also pays the partial-bucket scan over 100k devices.
//!
//! Environment: `TSDB_BENCH_DEVICES` (default 1000), `TSDB_BENCH_QUERY_DEVICES` (100000).

use std::time::{Duration, Instant};

use hashmesh_store::tsdb::{Agg, Resolution, SeriesId, Store, StoreConfig};

/// 2025-10-09T00:00:00Z.
const T0: i64 = 1_759_968_000_000;
const DAY_MS: i64 = 86_400_000;

const COLUMNS: [&str; 16] = [
    "hashrate_ths",
    "hashrate_avg_ths",
    "expected_hashrate_ths",
    "power_w",
    "chip_temp_c",
    "board_temp_c",
    "inlet_temp_c",
    "outlet_temp_c",
    "fan_rpm",
    "frequency_mhz",
    "voltage_v",
    "accepted_shares",
    "rejected_shares",
    "hardware_errors",
    "uptime_s",
    "chips_working",
];

/// (name, vendor, nominal TH/s, nominal W, chips)
const MODELS: [(&str, &str, f64, f64, f64); 6] = [
    ("Antminer S19 Pro", "bitmain", 110.0, 3250.0, 342.0),
    ("Antminer S19j Pro", "bitmain", 104.0, 3068.0, 378.0),
    ("Antminer S21", "bitmain", 200.0, 3500.0, 324.0),
    ("Whatsminer M30S++", "microbt", 112.0, 3472.0, 330.0),
    ("Whatsminer M50", "microbt", 118.0, 3306.0, 315.0),
    ("Avalon A1246", "canaan", 90.0, 3420.0, 342.0),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u = self.f().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.f()).cos()
    }
}

/// Creates a series for each of `devices` miners, in its site, container, rack and model groups.
fn register(store: &Store, devices: usize) -> Vec<SeriesId> {
    (0..devices)
        .map(|d| {
            let id = store.series(&format!("miner-{d:06}")).expect("series");
            store.set_groups(id, &groups_for(d)).expect("groups");
            id
        })
        .collect()
}

/// One simulated miner: a true hashrate that wanders around nominal, a 5-second reading with
/// measurement noise (2 decimals in GH/s, as stock firmware prints it), power following the
/// true hashrate, temperatures drifting with a daily ambient cycle (whole degrees), fans in
/// 120 rpm steps, share and error counters, uptime, and the odd offline stretch (NaN rows).
struct Miner {
    rng: Rng,
    model: usize,
    nominal: f64,
    truth: f64,
    avg: f64,
    temp: f64,
    fan: f64,
    volt: f64,
    acc: f64,
    rej: f64,
    hw: f64,
    up: f64,
    offline: bool,
    flaky: bool,
}

impl Miner {
    fn new(d: usize) -> Miner {
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ (d as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let model = d % MODELS.len();
        let nominal = MODELS[model].2 * (1.0 + (rng.f() - 0.5) * 0.06);
        Miner {
            model,
            nominal,
            truth: nominal,
            avg: nominal,
            temp: 65.0 + rng.f() * 10.0,
            fan: 4800.0 + (rng.next() % 20) as f64 * 60.0,
            volt: 13.4 + (rng.next() % 20) as f64 * 0.01,
            acc: (rng.next() % 100_000) as f64,
            rej: (rng.next() % 100) as f64,
            hw: (rng.next() % 1000) as f64,
            up: (100_000 + rng.next() % 1_000_000) as f64,
            offline: false,
            flaky: d % 50 == 7,
            rng,
        }
    }

    fn poll(&mut self, t: i64, step_s: f64, out: &mut [f64]) {
        let r = &mut self.rng;
        if self.flaky && r.next().is_multiple_of(200) {
            self.offline = !self.offline;
        }
        if self.offline {
            out.fill(f64::NAN);
            return;
        }
        let (_, _, nom_h, nom_p, chips) = MODELS[self.model];
        self.truth += (self.nominal - self.truth) * 0.05 + self.nominal * 0.002 * r.gauss();
        let ghs = (self.truth * (1.0 + 0.015 * r.gauss()) * 100_000.0).round() / 100.0;
        let ths = ghs / 1000.0;
        self.up += step_s;
        self.avg += (ths - self.avg) * step_s / self.up;
        let avg = (self.avg * 100_000.0).round() / 100_000.0;
        let power = (nom_p * (self.truth / nom_h).powf(0.9) + 3.0 * r.gauss()).round();
        let ambient = 25.0 + 5.0 * ((t as f64) / DAY_MS as f64 * 2.0 * std::f64::consts::PI).sin();
        self.temp += (ambient + 45.0 - self.temp) * 0.01 + 0.2 * r.gauss();
        let chip = self.temp.round();
        if chip > 78.0 && self.fan < 6600.0 {
            self.fan += 120.0;
        } else if chip < 70.0 && self.fan > 3600.0 {
            self.fan -= 120.0;
        }
        self.acc += (ths / 10.0 * step_s / 10.0 + r.gauss() * 3.0)
            .max(0.0)
            .round();
        if r.next().is_multiple_of(200) {
            self.rej += 1.0;
        }
        if r.next().is_multiple_of(20) {
            self.hw += (r.next() % 5) as f64;
        }
        if r.next().is_multiple_of(5000) {
            self.volt = 13.4 + (r.next() % 20) as f64 * 0.01;
        }
        let values = [
            ths,
            avg,
            (self.nominal * 100.0).round() / 100.0,
            power,
            chip,
            (self.temp - 8.0 + 0.5 * r.gauss()).round(),
            (ambient + 0.3 * r.gauss()).round(),
            (ambient + 20.0 + 0.5 * r.gauss()).round(),
            self.fan,
            [525.0, 485.0, 550.0][self.model % 3],
            (self.volt * 100.0).round() / 100.0,
            self.acc,
            self.rej,
            self.hw,
            self.up.round(),
            if r.next().is_multiple_of(2000) {
                chips - 1.0
            } else {
                chips
            },
        ];
        out.copy_from_slice(&values);
    }
}

fn groups_for(d: usize) -> Vec<String> {
    let (model, vendor, ..) = MODELS[d % MODELS.len()];
    let site = if d < 50_000 { "A" } else { "B" };
    let container = d / 250;
    let rack = d / 40;
    vec![
        "all".into(),
        format!("site={site}"),
        format!("container={site}/C{container:03}"),
        format!("rack={site}/C{container:03}/R{rack:04}"),
        format!("model={model}"),
        format!("vendor={vendor}"),
    ]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of the calling thread (user + system).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let s = Instant::now();
        last = Some(f());
        times.push(s.elapsed());
    }
    times.sort();
    (
        times[runs / 2],
        times[runs - 1],
        last.expect("at least one run"),
    )
}

fn fleet_day(devices: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path(), COLUMNS.iter().map(|c| c.to_string()).collect());
    // As the node configures its store: measured hashrates keep 12 mantissa bits.
    config.precision_bits = vec![("hashrate_ths".into(), 12), ("hashrate_avg_ths".into(), 12)];
    let store = Store::open(config).expect("open store");
    let ids = register(&store, devices);
    let mut miners: Vec<Miner> = (0..devices).map(Miner::new).collect();
    let step_ms = 10_000;
    let polls = DAY_MS / step_ms;
    let mut values = vec![0.0; devices * COLUMNS.len()];
    let mut in_store = Duration::ZERO;
    let mut store_cpu = Duration::ZERO;
    let mut gen_time = Duration::ZERO;
    for k in 0..polls {
        let g = Instant::now();
        let base = T0 + k * step_ms;
        let times: Vec<i64> = (0..devices)
            .map(|d| base + ((d as i64 * 7919 + k * 31) % 300))
            .collect();
        for (d, m) in miners.iter_mut().enumerate() {
            m.poll(
                times[d],
                10.0,
                &mut values[d * COLUMNS.len()..(d + 1) * COLUMNS.len()],
            );
        }
        let batch: Vec<(SeriesId, i64, &[f64])> = ids
            .iter()
            .enumerate()
            .map(|(d, id)| {
                (
                    *id,
                    times[d],
                    &values[d * COLUMNS.len()..(d + 1) * COLUMNS.len()],
                )
            })
            .collect();
        gen_time += g.elapsed();
        let s = Instant::now();
        let c = thread_cpu();
        store.append_batch(&batch).expect("append");
        store.tick(base + step_ms).expect("tick");
        store_cpu += thread_cpu().saturating_sub(c);
        in_store += s.elapsed();
    }
    // Close the day: last buckets, last seal, compaction of the last hours.
    let s = Instant::now();
    let c = thread_cpu();
    let end = T0 + DAY_MS + 2 * 3_600_000;
    store.tick(end).expect("tick");
    store.seal().expect("seal");
    store.compact_all(end).expect("compact");
    store_cpu += thread_cpu().saturating_sub(c);
    in_store += s.elapsed();
    let st = store.stats();
    let samples = st.samples_ingested as f64;
    println!(
        "== ingest: {devices} devices x {} columns, 24 h at one poll per 10 s",
        COLUMNS.len()
    );
    println!(
        "  {} rows, {:.0} M samples: {:.1} s of CPU in the store = {:.2} M samples/s per core (budget >= 2.0)",
        st.rows_ingested,
        samples / 1e6,
        store_cpu.as_secs_f64(),
        samples / store_cpu.as_secs_f64() / 1e6,
    );
    println!(
        "  wall time in the store {:.1} s = {:.2} M samples/s (includes waiting for {} seals' and every second's fsyncs on this disk); data generation {:.1} s, not counted",
        in_store.as_secs_f64(),
        samples / in_store.as_secs_f64() / 1e6,
        st.seals,
        gen_time.as_secs_f64(),
    );
    println!(
        "  on disk: {:.1} MB total = {:.3} bytes/sample (budget <= 0.5); raw chunks {:.3} B/sample, rollups {:.3}, state {:.3}, WAL {:.3}",
        st.bytes_on_disk as f64 / 1e6,
        st.bytes_on_disk as f64 / samples,
        st.chunk_bytes as f64 / samples,
        st.rollup_bytes as f64 / samples,
        st.state_bytes as f64 / samples,
        st.wal_bytes as f64 / samples,
    );
    let id = ids[devices / 3];
    let (med, max, pts) = timed(30, || {
        store
            .query_series(id, "hashrate_ths", T0, T0 + DAY_MS, Resolution::Raw)
            .expect("query")
    });
    println!(
        "== one device, hashrate, 24 h raw: {} points, median {:.2} ms, max {:.2} ms (budget 5 ms)",
        pts.len(),
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    let (med, _, pts) = timed(30, || {
        store
            .query_group(
                "all",
                "hashrate_ths",
                Agg::Sum,
                T0,
                T0 + DAY_MS,
                Resolution::Min1,
            )
            .expect("query")
    });
    println!(
        "  ({devices}-device fleet, node hashrate 24 h at 1 min: {} points, median {:.2} ms)",
        pts.len(),
        med.as_secs_f64() * 1e3
    );
    drop(store);
    let (payload, pieces, files) = l1_payload(&dir.path().join("chunks"));
    println!(
        "  (raw chunk files: {files} holding {:.3} B/sample of chunk sections in {pieces} pieces; the files are {:.3} B/sample)",
        payload as f64 / samples,
        st.chunk_bytes as f64 / samples,
    );
}

/// Bytes of chunk sections stored in the L1 tables of the redb files under `dir`, the number
/// of pieces they are stored in, and the number of files (to tell payload from file overhead).
fn l1_payload(dir: &std::path::Path) -> (u64, u64, usize) {
    use redb::{ReadableDatabase, ReadableTable};
    let l1: redb::TableDefinition<(i64, u32, u16, u16), &[u8]> = redb::TableDefinition::new("l1");
    let mut total = 0u64;
    let mut pieces = 0u64;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("chunks dir").flatten() {
        let db = redb::Database::open(entry.path()).expect("open chunk file");
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(l1).expect("l1 table");
        for e in t.iter().expect("iter") {
            let (_, v) = e.expect("entry");
            total += v.value().len() as u64;
            pieces += 1;
        }
        files += 1;
    }
    (total, pieces, files)
}

fn node_query(devices: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path(), vec!["hashrate_ths".to_string()]);
    // One row per device per minute: a 10-minute head is 10 rows per device, and ten times
    // fewer seals keep the fill inside bench time.
    config.seal_interval = Duration::from_secs(600);
    let store = Store::open(config).expect("open store");
    let ids = register(&store, devices);
    let nominal: Vec<[f64; 1]> = (0..devices).map(|d| [MODELS[d % MODELS.len()].2]).collect();
    let s = Instant::now();
    let c = thread_cpu();
    let minutes = DAY_MS / 60_000;
    for m in 0..=minutes {
        let t = T0 + m * 60_000;
        let batch: Vec<(SeriesId, i64, &[f64])> = ids
            .iter()
            .zip(&nominal)
            .map(|(id, v)| (*id, t + 1_000, &v[..]))
            .collect();
        store.append_batch(&batch).expect("append");
        store.tick(t + 2_000).expect("tick");
    }
    let fill = s.elapsed();
    let fill_cpu = thread_cpu().saturating_sub(c);
    let st = store.stats();
    let (med, max, pts) = timed(30, || {
        store
            .query_group(
                "all",
                "hashrate_ths",
                Agg::Sum,
                T0 + 60_000,
                T0 + DAY_MS + 60_000,
                Resolution::Min1,
            )
            .expect("query")
    });
    let want: f64 = nominal.iter().map(|v| v[0]).sum();
    assert!(
        pts.iter().all(|p| (p.value - want).abs() < want * 1e-6),
        "rollup sums are right"
    );
    println!(
        "== node hashrate, 24 h at 1-min steps, {devices} devices: {} points (the last one the open minute), median {:.2} ms, max {:.2} ms (budget 20 ms)",
        pts.len(),
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    println!(
        "  (filled with {} rows of one column, one per device per minute, in {:.0} s, {:.0} s of CPU; {} groups)",
        st.rows_ingested,
        fill.as_secs_f64(),
        fill_cpu.as_secs_f64(),
        st.groups
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    fleet_day(env_usize("TSDB_BENCH_DEVICES", 1000));
    node_query(env_usize("TSDB_BENCH_QUERY_DEVICES", 100_000));
}
