//! The simulated fleet's Braiins OS devices over the real binary: `hashmesh sim` serves their
//! REST API on port 80 beside the RPC on 4028; `hashmesh scan` still reports them as Braiins OS
//! (the RPC is asked first); the REST login answers on port 80; and `hashmesh miner do` sets a
//! power target over REST with the factory logins tried in order (the fleet gives half its
//! Braiins devices an empty root password, half `root`).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");

/// A `hashmesh sim` child, killed on drop.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("HASHMESH_DATA_DIR")
        .output()
        .expect("run hashmesh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// POST /api/v1/auth/login as root with `password` on port 80: the HTTP status.
fn rest_login(ip: &str, password: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect((ip, 80)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let body = serde_json::json!({"username": "root", "password": password}).to_string();
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fleet_braiins_devices_serve_rest_and_scan_as_braiins() {
    let dir = std::env::temp_dir().join(format!("hashmesh-cli-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manifest_path = dir.join("manifest.json");
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--devices",
            "12",
            "--base",
            "127.69.0.1",
            "--mix",
            "braiins=3,antminer=1",
            "--meters-per-container",
            "0",
            "--fast",
            "--manifest",
        ])
        .arg(&manifest_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hashmesh sim");
    let stdout = child.stdout.take().expect("sim stdout");
    let sim = Sim(child);
    let mut line = String::new();
    let started = Instant::now();
    let mut reader = BufReader::new(stdout);
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read sim output");
        assert!(n > 0, "hashmesh sim exited before it was ready");
        if line.starts_with("ready") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "sim not ready");
    }
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest"))
            .expect("manifest JSON");
    let braiins: Vec<&Value> = manifest
        .iter()
        .filter(|e| e["family"] == "braiins")
        .collect();
    assert!(braiins.len() >= 4, "{manifest:?}");
    for e in &braiins {
        assert_eq!(
            (e["port"].as_u64(), e["web_port"].as_u64()),
            (Some(4028), Some(80)),
            "{e}"
        );
    }

    // Scan: Braiins devices are Braiins OS, found over the RPC even with a web server on 80.
    let (ok, stdout, stderr) = run(&["scan", "127.69.0.0/28", "--json"]);
    assert!(ok, "{stderr}");
    let hits: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(hits.len(), manifest.len(), "{stdout}");
    for e in &braiins {
        let ip = e["ip"].as_str().expect("ip");
        let hit = hits
            .iter()
            .find(|h| h["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip} not found"));
        assert_eq!(hit["identified"], true, "{hit}");
        assert_eq!(hit["family"], "braiins", "{hit}");
        assert!(
            hit["firmware"]
                .as_str()
                .unwrap_or("")
                .starts_with("Braiins OS"),
            "{hit}"
        );
        // The REST login answers on port 80: one of the two factory passwords works.
        let statuses = (rest_login(ip, ""), rest_login(ip, "root"));
        assert!(
            statuses == (200, 401) || statuses == (401, 200),
            "{ip}: logins gave {statuses:?}"
        );
    }

    // A power target over REST, on a device whose password is the second factory one, and on
    // one whose password is the first: both confirmed.
    let mut done = std::collections::BTreeSet::new();
    for e in &braiins {
        let ip = e["ip"].as_str().expect("ip");
        let empty_pw = rest_login(ip, "") == 200;
        if !done.insert(empty_pw) {
            continue;
        }
        let empty = dir.join("no-store");
        let (ok, stdout, stderr) = run(&[
            "miner",
            "do",
            ip,
            "--json",
            "--verify-timeout-s",
            "10",
            "--data-dir",
            empty.to_str().expect("utf-8"),
            "power-target",
            "3000",
        ]);
        assert!(ok, "{ip}: {stdout} {stderr}");
        let out: Value = serde_json::from_str(&stdout).expect("outcome JSON");
        assert_eq!(out["result"], "confirmed", "{out}");
        let (ok, stdout, _) = run(&["miner", "get", ip, "--json"]);
        assert!(ok);
        let got: Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(got["snapshot"]["power_target_w"], 3000.0, "{got}");
    }
    assert_eq!(done.len(), 2, "both factory passwords seen");
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
