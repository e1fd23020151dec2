//! `hashmesh node` killed with SIGKILL while it ingests: on restart its store opens cleanly,
//! holds every row the node had written more than one flush interval before the kill, serves
//! nothing corrupt, and the node carries on polling the same devices.

use hashmesh_node::row::COLUMNS;
use hashmesh_store::meta::Inventory;
use hashmesh_store::tsdb::{Resolution, Store, StoreConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_metric(port: u16, name: &str, at_least: f64) -> f64 {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = metric(port, name)
            && v >= at_least
        {
            return v;
        }
        assert!(Instant::now() < until, "{name} never reached {at_least}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_node(dir: &std::path::Path, port: u16) -> Kill {
    Kill(
        Command::new(BIN)
            .arg("node")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--scan", "127.76.0.0/24"])
            .args(["--set", "discovery.rpc_port=14031"])
            .args(["--set", "discovery.web_port=14081"])
            .args(["--set", "discovery.meters=false"])
            .args(["--set", "poll.interval_s=0.5"])
            .args(["--set", "store.flush_interval_ms=200"])
            .args(["--set", "auth.anonymous_read=true"])
            .env("HASHMESH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hashmesh node"),
    )
}

#[test]
fn a_killed_node_loses_at_most_one_flush_interval() {
    let mut sim = Command::new(BIN)
        .args(["sim", "--devices", "30", "--base", "127.76.0.1"])
        .args(["--port", "14031", "--web-port", "14081", "--fast"])
        .args(["--mix", "antminer=1,avalon=1,braiins=1"])
        .args(["--meters-per-container", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hashmesh sim");
    let out = sim.stdout.take().expect("sim stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let _sim = Kill(sim);

    let dir = tempfile_dir();
    let port = free_port();
    let mut node = start_node(&dir, port);
    wait_metric(port, "hashmesh_discovery_scans_total", 1.0);
    // Enough rows that several flushes and a seal or two have happened.
    let acknowledged = wait_metric(port, "hashmesh_ingest_rows_total", 150.0);
    // Rows counted then are older than one flush interval by the time of the kill.
    std::thread::sleep(Duration::from_millis(600));
    node.0.kill().unwrap();
    node.0.wait().unwrap();
    drop(node);

    {
        let inv = Inventory::open(&dir.join("inventory.sqlite")).unwrap();
        let devices = inv.list().unwrap();
        assert_eq!(devices.len(), 30);
        let store = Store::open(StoreConfig::new(
            dir.join("tsdb"),
            COLUMNS.iter().map(|c| c.to_string()).collect(),
        ))
        .unwrap();
        let now = hashmesh_drivers::now_unix_ms();
        let mut rows = 0;
        for d in &devices {
            let s = store.series(&d.id.0).unwrap();
            let points = store
                .query_series(s, "status_code", 0, now + 1000, Resolution::Raw)
                .unwrap();
            // Every row is a whole row: a status and, for a miner that answered, a hashrate.
            let hash = store
                .query_series(s, "hashrate_ths", 0, now + 1000, Resolution::Raw)
                .unwrap();
            assert!(hash.len() <= points.len());
            rows += points.len();
        }
        assert!(
            rows as f64 >= acknowledged,
            "{rows} rows after the kill, {acknowledged} written before it"
        );
        assert_eq!(store.stats().corrupt_chunks_skipped, 0);
    }

    // The node starts again on the same data and goes on.
    let node = start_node(&dir, port);
    let before = wait_metric(port, "hashmesh_ingest_rows_total", 1.0);
    wait_metric(port, "hashmesh_ingest_rows_total", before + 60.0);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hashmesh-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
