//! Device-table and summary costs at 100,000 devices: building the table from live state, and
//! one request's filter, sort and page. Run with `cargo bench -p hashmesh-node --bench api`.

use hashmesh_core::{
    BoardSnapshot, DeviceId, DeviceKind, Location, MinerSnapshot, MinerStatus, PoolSnapshot,
    PoolStatus,
};
use hashmesh_node::api::devices::{ListQuery, RowCache, page};
use hashmesh_node::live::{DeviceInfo, DeviceStatus, LiveState, Reading};
use std::sync::Arc;
use std::time::Instant;

const DEVICES: usize = 100_000;
const MODELS: [&str; 6] = [
    "Antminer S19 Pro",
    "Antminer S21",
    "Whatsminer M50S",
    "AvalonMiner 1566",
    "Antminer S19 XP",
    "Whatsminer M60S",
];
const STATUSES: [DeviceStatus; 4] = [
    DeviceStatus::Mining,
    DeviceStatus::Mining,
    DeviceStatus::Degraded,
    DeviceStatus::Offline,
];

fn fleet() -> LiveState {
    let live = LiveState::new();
    for i in 0..DEVICES {
        let model = MODELS[i % MODELS.len()];
        let ip =
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 20, 0, 1)) + i as u32);
        let info = DeviceInfo {
            id: DeviceId(format!(
                "mac:02:00:{:02x}:{:02x}:{:02x}:{:02x}",
                (i >> 24) & 255,
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )),
            ip: ip.into(),
            kind: DeviceKind::Miner,
            family: "antminer".into(),
            vendor: model.split(' ').next().unwrap_or("").into(),
            model: model.into(),
            firmware: "stock 2024.1".into(),
            mac: None,
            serial: Some(format!("SN{i:08}")),
            unit_id: None,
            location: Location {
                site: Some(format!("site-{}", i / 50_000 + 1)),
                container: Some(format!("C{:03}", i / 500 + 1)),
                rack: Some(format!("R{:02}", i % 500 / 40 + 1)),
                shelf: Some((i % 40 / 8 + 1) as u16),
                slot: Some((i % 8 + 1) as u16),
            },
            tags: vec![],
            credentials_ref: None,
            missing_since_unix_ms: None,
        };
        let (d, _) = live.upsert(info);
        let mut s = MinerSnapshot::empty(0, MinerStatus::Mining);
        let h = 100.0 + (i % 97) as f64 * 0.3;
        s.hashrate_ths = Some(h);
        s.expected_hashrate_ths = Some(110.0);
        s.power_w = Some(3250.0 + (i % 13) as f64);
        s.derive_efficiency();
        s.fans_rpm = vec![5400, 5460, 5520, 5580];
        s.boards = (0..3)
            .map(|b| BoardSnapshot {
                index: b,
                hashrate_ths: Some(h / 3.0),
                chip_temp_c: Some(60.0 + (i % 23) as f64),
                ..Default::default()
            })
            .collect();
        s.pools = vec![PoolSnapshot {
            index: 0,
            url: "stratum+tcp://pool.example:3333".into(),
            user: format!("farm.worker{i}"),
            status: PoolStatus::Alive,
            accepted: 1000,
            rejected: 1,
            stale: 0,
            active: true,
        }];
        d.with_state(|st| {
            st.status = STATUSES[i % STATUSES.len()];
            st.reading = Some(Reading::Miner(Arc::new(s)));
        });
    }
    live
}

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut best = f64::MAX;
    let mut total = 0.0;
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f());
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        best = best.min(ms);
        total += ms;
    }
    println!(
        "{label:<62} best {best:>7.2} ms   mean {:>7.2} ms",
        total / runs as f64
    );
}

fn main() {
    let t = Instant::now();
    let live = Arc::new(fleet());
    println!(
        "{DEVICES} devices in live state ({:.1} s to build)",
        t.elapsed().as_secs_f64()
    );
    time(
        "build the device table from live state (once a second at most)",
        10,
        || Arc::new(RowCache::default()).get(&live),
    );
    let rows = Arc::new(RowCache::default()).get(&live);
    let q = |f: &dyn Fn(&mut ListQuery)| {
        let mut q = ListQuery::default();
        f(&mut q);
        q
    };
    let cases: Vec<(&str, ListQuery)> = vec![
        ("first page, default order (by IP)", q(&|_| {})),
        ("status=offline", q(&|q| q.status = Some("offline".into()))),
        (
            "model + container filter",
            q(&|q| {
                q.model = Some("Antminer S21".into());
                q.container = Some("C007".into());
            }),
        ),
        ("ip prefix 10.20.1.", q(&|q| q.ip = Some("10.20.1.".into()))),
        ("free text 'SN0004'", q(&|q| q.q = Some("SN0004".into()))),
        (
            "sort by hashrate desc, first page",
            q(&|q| {
                q.sort = Some("hashrate_ths".into());
                q.order = Some("desc".into());
            }),
        ),
        (
            "status=mining,degraded sorted by chip temp, page 100",
            q(&|q| {
                q.status = Some("mining,degraded".into());
                q.sort = Some("chip_temp_max_c".into());
                q.order = Some("desc".into());
                q.offset = Some(20_000);
            }),
        ),
        (
            "sort by rack (natural order), limit 5000",
            q(&|q| {
                q.sort = Some("rack".into());
                q.limit = Some(5000);
            }),
        ),
    ];
    for (label, query) in &cases {
        time(&format!("GET /api/v1/devices: {label}"), 10, || {
            page(&rows, query).map(|p| p.matched).unwrap_or(0)
        });
    }
}
