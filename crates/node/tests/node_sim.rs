//! A node against a simulated fleet over real sockets, with its inventory and store on real
//! files: discovery, polling, history, `/metrics` over HTTP, devices that hang, vanish or move.

use hashmesh_core::DeviceKind;
use hashmesh_node::config::Config;
use hashmesh_node::discovery;
use hashmesh_node::live::DeviceStatus;
use hashmesh_node::{Node, NodeInner};
use hashmesh_sim::fleet::{self, FleetEntry, FleetSpec, RunningEntry};
use hashmesh_store::tsdb::{Agg, Resolution};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RPC: u16 = 24028;
const WEB: u16 = 24080;
const MODBUS: u16 = 25020;

fn spec(devices: usize, base: Ipv4Addr, mix: &str) -> FleetSpec {
    let mut spec = FleetSpec::new(devices, base);
    spec.port = RPC;
    spec.web_port = WEB;
    // Scans look for Whatsminer API v3 at its real port only.
    spec.v3_port = 4433;
    spec.modbus_port = MODBUS;
    spec.timing = hashmesh_sim::Timing::fast();
    spec.mix = fleet::parse_mix(mix).unwrap();
    spec
}

fn config(dir: &std::path::Path, range: &str, interval_s: f64) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    c.discovery.ranges = vec![range.parse().unwrap()];
    c.discovery.interval_s = 0;
    c.discovery.rpc_port = RPC;
    c.discovery.web_port = WEB;
    c.discovery.modbus_port = MODBUS;
    c.poll.interval_s = interval_s;
    c.poll.offline_backoff_max_s = interval_s * 4.0;
    c.poll.timeout_ms = 800;
    c.poll.connect_timeout_ms = 500;
    c.store.flush_interval_ms = 200;
    // These tests read /metrics without logging in; the API tests cover auth.
    c.auth.anonymous_read = true;
    c
}

async fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The value of the first `/metrics` line starting with `prefix`.
fn metric(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Vendors spell one model differently on the wire and on the nameplate (`AvalonMiner 1566`,
/// `Avalon A1566`): the same when one contains the other or their numbers agree.
fn same_model(a: &str, b: &str) -> bool {
    let numbers = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    a.contains(b) || b.contains(a) || (!numbers(a).is_empty() && numbers(a) == numbers(b))
}

fn polled_ok(node: &NodeInner) -> usize {
    node.live
        .all()
        .iter()
        .filter(|d| d.state().reading.is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_polls_stores_and_exports_a_mixed_fleet() {
    let spec = spec(
        40,
        Ipv4Addr::new(127, 70, 0, 1),
        "antminer=3,whatsminer=2,avalon=2,braiins=1,luxos=1,bitaxe=1,cgminer=1,bfgminer=1",
    );
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "127.70.0.0/24", 1.0))
        .await
        .unwrap();
    let inner = node.inner().clone();
    let summary = discovery::scan_once(&inner).await.unwrap();
    assert_eq!(summary.found as usize, spec.entries(), "{summary:?}");
    // The scan the node runs at start may have recorded some of them first.
    assert_eq!(inner.inventory.len().unwrap(), spec.entries());

    // Every device is identified as what the fleet says it is.
    for i in 0..spec.entries() {
        let (ip, model) = match spec.entry(i) {
            FleetEntry::Miner(d) => (d.ip, d.model.to_string()),
            FleetEntry::Meter(m) => (m.ip, m.model.model_name().to_string()),
        };
        let rec = inner
            .inventory
            .find(&hashmesh_store::meta::DeviceKey::Ip(ip.into()))
            .unwrap()
            .unwrap_or_else(|| panic!("{ip} not in the inventory"));
        assert!(
            same_model(&rec.model, &model),
            "{ip}: {} vs {model}",
            rec.model
        );
    }

    wait_for("every device polled", 20, || {
        polled_ok(&inner) == spec.entries()
    })
    .await;
    let miners: Vec<_> = inner
        .live
        .all()
        .into_iter()
        .filter(|d| d.info().kind == DeviceKind::Miner)
        .collect();
    assert_eq!(miners.len(), 40);

    // The node's fleet total agrees with the simulators' own ground truth.
    let truth: f64 = running
        .iter()
        .filter_map(|r| match r {
            RunningEntry::Rpc(d, _) => d.truth().hashrate_ths,
            _ => None,
        })
        .sum();
    let seen: f64 = miners
        .iter()
        .filter(|d| {
            matches!(
                &*d.info().family,
                "antminer" | "avalon" | "braiins" | "luxos" | "cgminer" | "bfgminer"
            )
        })
        .filter_map(|d| match d.state().reading {
            Some(hashmesh_node::live::Reading::Miner(s)) => s.hashrate_ths,
            _ => None,
        })
        .sum();
    assert!(truth > 100.0, "{truth}");
    assert!(
        (seen - truth).abs() / truth < 0.05,
        "node {seen} vs truth {truth}"
    );

    // /metrics over real HTTP.
    let page = get(node.local_addr(), "/metrics").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let total = metric(&page, "hashmesh_group_hashrate_ths{level=\"node\"}").unwrap();
    assert!(total > truth * 0.9, "{total} vs {truth}");
    let mining = metric(
        &page,
        "hashmesh_group_devices{level=\"node\",kind=\"miner\",status=\"mining\"}",
    )
    .unwrap();
    assert!(mining >= 30.0, "{mining}");
    assert!(metric(&page, "hashmesh_poller_polls_total").unwrap() >= 40.0);
    assert!(page.contains("hashmesh_meter_group_power_w{level=\"node\"}"));
    // Per-device series are opt-in.
    assert!(!page.contains("hashmesh_device_hashrate_ths"));

    // History: rows for each device and rollups for the node.
    wait_for("rows in the store", 20, || {
        inner
            .ingest
            .rows_total
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 80
    })
    .await;
    inner.store.flush().unwrap();
    let now = hashmesh_drivers::now_unix_ms();
    let first = &miners[0];
    let series = inner.store.series(&first.info().id.0).unwrap();
    let points = inner
        .store
        .query_series(
            series,
            "status_code",
            now - 60_000,
            now + 1000,
            Resolution::Raw,
        )
        .unwrap();
    assert!(points.len() >= 2, "{points:?}");
    let fleet = inner
        .store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Sum,
            now - 120_000,
            now + 60_000,
            Resolution::Min1,
        )
        .unwrap();
    let last = fleet.last().map(|p| p.value).unwrap_or(0.0);
    assert!(
        last > total * 0.5,
        "rollup {last} vs live {total}: {fleet:?}"
    );
    node.shutdown().await;
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_devices_do_not_delay_the_others() {
    let mut spec = spec(20, Ipv4Addr::new(127, 71, 0, 1), "antminer=1,avalon=1");
    spec.meters_per_container = 0;
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "127.71.0.0/24", 1.0);
    // Three hanging devices could hold three of the four slots at once.
    c.poll.concurrency = 4;
    let node = Node::start(c).await.unwrap();
    let inner = node.inner().clone();
    discovery::scan_once(&inner).await.unwrap();
    assert_eq!(inner.live.len(), 20);
    let hanging = ["127.71.0.3", "127.71.0.4", "127.71.0.5"];
    for r in &running {
        if let RunningEntry::Rpc(d, _) = r
            && hanging.contains(&d.local_addr().ip().to_string().as_str())
        {
            d.set_faults(vec![hashmesh_sim::faults::Fault::Hang]);
        }
    }
    // Two full cycles with the hangs in place.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = hashmesh_drivers::now_unix_ms();
    for d in inner.live.all() {
        let ip = d.info().ip.to_string();
        let s = d.state();
        if hanging.contains(&ip.as_str()) {
            assert_eq!(s.status, DeviceStatus::Offline, "{ip}");
            assert_eq!(s.failure.map(|f| f.kind), Some("timeout"), "{ip}");
            continue;
        }
        assert_eq!(s.status, DeviceStatus::Mining, "{ip}: {:?}", s.failure);
        let last = s.last_poll_unix_ms.unwrap();
        assert!(now - last < 2_000, "{ip} last polled {} ms ago", now - last);
    }
    let cycle = inner.poller.stats().last_cycle().unwrap();
    assert_eq!(cycle.late, 0, "{cycle:?}");
    node.shutdown().await;
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_that_wait_for_a_free_slot_are_counted() {
    let mut spec = spec(4, Ipv4Addr::new(127, 77, 0, 1), "antminer=1");
    spec.meters_per_container = 0;
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "127.77.0.0/24", 1.0);
    c.poll.concurrency = 1;
    let node = Node::start(c).await.unwrap();
    let inner = node.inner().clone();
    discovery::scan_once(&inner).await.unwrap();
    assert_eq!(inner.live.len(), 4);
    let waits = || {
        inner
            .poller
            .stats()
            .slot_waits_total
            .load(Ordering::Relaxed)
    };
    // Healthy devices answer in a few ms: one slot is enough and nobody waits for long.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = waits();
    // A hanging device holds the only slot until its deadline (800 ms) in every interval, so
    // the others, falling due meanwhile, wait for it.
    if let Some(RunningEntry::Rpc(d, _)) = running.first() {
        d.set_faults(vec![hashmesh_sim::faults::Fault::Hang]);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        waits() > before,
        "{} waits before the hang, {} after",
        before,
        waits()
    );
    node.shutdown().await;
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_devices_get_a_clear_state() {
    let mut spec = spec(12, Ipv4Addr::new(127, 72, 0, 1), "antminer=1");
    spec.meters_per_container = 0;
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "127.72.0.0/24", 0.5))
        .await
        .unwrap();
    let inner = node.inner().clone();
    discovery::scan_once(&inner).await.unwrap();
    assert_eq!(inner.live.len(), 12);
    let dev = |i: usize| match &running[i] {
        RunningEntry::Rpc(d, _) => d.clone(),
        _ => panic!("not an RPC device"),
    };
    use hashmesh_sim::faults::Fault;
    dev(0).set_faults(vec![Fault::Hang]);
    dev(1).set_faults(vec![Fault::Garbage]);
    dev(2).set_faults(vec![Fault::Offline]);
    dev(3).set_faults(vec![Fault::Truncated]);
    let state = |i: usize| {
        inner
            .live
            .by_id(
                &inner
                    .inventory
                    .find(&hashmesh_store::meta::DeviceKey::Ip(
                        spec.address(i).unwrap().into(),
                    ))
                    .unwrap()
                    .unwrap()
                    .id,
            )
            .unwrap()
            .state()
    };
    wait_for("fault states", 20, || {
        state(0).status == DeviceStatus::Offline
            && state(1).status == DeviceStatus::Error
            && state(2).status == DeviceStatus::Offline
    })
    .await;
    assert_eq!(state(0).failure.unwrap().kind, "timeout");
    assert_eq!(state(1).failure.unwrap().kind, "malformed");
    // The others keep mining.
    for i in 4..12 {
        assert_eq!(state(i).status, DeviceStatus::Mining, "device {i}");
    }
    // A device that recovers is back at the next poll, after backing off at most a few intervals.
    dev(2).set_faults(vec![]);
    wait_for("recovery", 20, || state(2).status == DeviceStatus::Mining).await;
    node.shutdown().await;
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_devices_stay_and_moved_ones_keep_their_identity() {
    let mut spec = spec(6, Ipv4Addr::new(127, 73, 0, 1), "avalon=1");
    spec.meters_per_container = 0;
    let mut running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "127.73.0.0/24", 0.5))
        .await
        .unwrap();
    let inner: Arc<NodeInner> = node.inner().clone();
    discovery::scan_once(&inner).await.unwrap();
    assert_eq!(inner.live.len(), 6);

    // Device 5 is unplugged and comes back at another address (DHCP gave it a new lease):
    // the same simulated hardware (same MAC) at 127.73.0.50.
    let FleetEntry::Miner(d5) = spec.entry(5) else {
        panic!()
    };
    running.pop();
    let key = hashmesh_store::meta::DeviceKey::Ip(d5.ip.into());
    let id = inner.inventory.find(&key).unwrap().unwrap().id;
    // Device 4 is switched off for good.
    running.pop();
    let gone_ip = spec.address(4).unwrap();
    let gone = inner
        .inventory
        .find(&hashmesh_store::meta::DeviceKey::Ip(gone_ip.into()))
        .unwrap()
        .unwrap()
        .id;

    let mut moved = d5.clone();
    moved.ip = Ipv4Addr::new(127, 73, 0, 50);
    let _back = fleet::spawn_entry(&spec, &FleetEntry::Miner(moved))
        .await
        .unwrap();
    let summary = discovery::scan_once(&inner).await.unwrap();
    assert_eq!(summary.moved, 1, "{summary:?}");
    assert_eq!(summary.missing, 1, "{summary:?}");
    assert_eq!(inner.inventory.len().unwrap(), 6);

    let rec = inner.inventory.get(&id).unwrap().unwrap();
    assert_eq!(rec.ip.to_string(), "127.73.0.50");
    let history = inner.inventory.ip_history(&id).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        inner.live.by_id(&id).unwrap().info().ip.to_string(),
        "127.73.0.50"
    );
    let gone_rec = inner.inventory.get(&gone).unwrap().unwrap();
    assert!(gone_rec.missing_since_unix_ms.is_some());

    wait_for(
        "moved device polled at its new address and the vanished one offline",
        20,
        || {
            inner.live.by_id(&id).unwrap().state().status == DeviceStatus::Mining
                && inner.live.by_id(&gone).unwrap().state().status == DeviceStatus::Offline
        },
    )
    .await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_knows_its_devices_and_history() {
    let mut spec = spec(5, Ipv4Addr::new(127, 74, 0, 1), "braiins=1");
    spec.meters_per_container = 0;
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "127.74.0.0/24", 0.5);
    let node = Node::start(c.clone()).await.unwrap();
    discovery::scan_once(node.inner()).await.unwrap();
    let inner = node.inner().clone();
    wait_for("rows", 20, || {
        inner
            .ingest
            .rows_total
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 15
    })
    .await;
    let id = inner.live.get(0).unwrap().info().id.clone();
    node.shutdown().await;
    drop(inner);

    // No discovery this time: the inventory alone brings the devices back.
    let mut c2 = c;
    c2.discovery.ranges.clear();
    let node = Node::start(c2).await.unwrap();
    let inner = node.inner().clone();
    assert_eq!(inner.live.len(), 5);
    let series = inner.store.series(&id.0).unwrap();
    let now = hashmesh_drivers::now_unix_ms();
    let before = inner
        .store
        .query_series(
            series,
            "hashrate_ths",
            now - 600_000,
            now + 1000,
            Resolution::Raw,
        )
        .unwrap();
    assert!(
        before.len() >= 2,
        "history survived the restart: {before:?}"
    );
    wait_for("polling resumes", 20, || polled_ok(&inner) == 5).await;
    node.shutdown().await;
    drop(running);
}
