//! The binary end to end: `hashmesh sim` starts a fleet in its own process, `hashmesh scan`
//! finds it, `hashmesh miner get` reads one device and `hashmesh miner do` commands one.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");
const PORT: &str = "14029";

/// A `hashmesh sim` child, killed on drop.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(devices: usize, base: &str, faults: &str, manifest: &std::path::Path) -> Sim {
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--devices",
            &devices.to_string(),
            "--base",
            base,
            "--port",
            PORT,
            "--fast",
        ])
        .args(["--faults", faults])
        .arg("--manifest")
        .arg(manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hashmesh sim");
    let stdout = child.stdout.take().expect("sim stdout");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    let started = Instant::now();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read sim output");
        assert!(n > 0, "hashmesh sim exited before it was ready");
        if line.starts_with("ready") {
            assert_eq!(line.trim(), format!("ready {devices} devices"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "sim not ready");
    }
    Sim(child)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run hashmesh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sim_scan_get_and_command_end_to_end() {
    let dir = std::env::temp_dir().join(format!("hashmesh-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manifest_path = dir.join("manifest.json");
    let _sim = start_sim(24, "127.63.0.1", "127.63.0.5=hang", &manifest_path);
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest"))
            .expect("manifest is a JSON array");
    // The miners, then the container's power meter (Modbus, not scanned here).
    let manifest: Vec<Value> = entries
        .iter()
        .filter(|e| e["kind"] == "miner")
        .cloned()
        .collect();
    assert_eq!(manifest.len(), 24);
    assert_eq!(entries.len(), 25);
    assert_eq!(entries[24]["kind"], "meter");

    // Scan: one JSON object per line, every device found, the hanging one unidentified.
    let (ok, stdout, stderr) = run(&["scan", "127.63.0.0/27", "--port", PORT, "--json"]);
    assert!(ok, "scan failed: {stderr}");
    let hits: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(hits.len(), 24, "{stdout}");
    for dev in &manifest {
        let ip = dev["ip"].as_str().expect("ip");
        let hit = hits
            .iter()
            .find(|h| h["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip} missing from scan"));
        if ip == "127.63.0.5" {
            assert_eq!(hit["identified"], false, "{hit}");
            continue;
        }
        assert_eq!(hit["identified"], true, "{hit}");
        for key in ["vendor", "model", "firmware", "hashrate_ths", "power_w"] {
            assert!(hit.get(key).is_some(), "{ip}: no {key} in {hit}");
        }
        let model = dev["model"].as_str().expect("model");
        let family = dev["family"].as_str().expect("family");
        // A Bitaxe hashes at 0.5–5 TH/s on 12–80 W; everything else is a rack miner.
        let (min_ths, min_w) = if family == "bitaxe" {
            (0.3, 5.0)
        } else {
            (1.0, 100.0)
        };
        assert!(
            hit["hashrate_ths"].as_f64().unwrap_or(0.0) > min_ths,
            "{hit}"
        );
        if !matches!(family, "cgminer" | "bfgminer") {
            let bare = model
                .trim_start_matches("Antminer ")
                .trim_start_matches("Avalon A");
            assert!(
                hit["model"].as_str().unwrap_or("").contains(bare),
                "{hit} should be a {model}"
            );
            assert!(hit["power_w"].as_f64().unwrap_or(0.0) > min_w, "{hit}");
        }
    }

    // The human table lists the same devices.
    let (ok, table, _) = run(&["scan", "127.63.0.0/27", "--port", PORT]);
    assert!(ok);
    assert!(
        table.lines().next().unwrap_or("").starts_with("IP"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 25, "{table}");

    // One device in full.
    let first = &manifest[0];
    let ip = first["ip"].as_str().expect("ip");
    let (ok, stdout, stderr) = run(&["miner", "get", ip, "--port", PORT, "--json"]);
    assert!(ok, "miner get failed: {stderr}");
    let got: Value = serde_json::from_str(&stdout).expect("miner get --json is JSON");
    assert_eq!(got["identity"]["mac"], first["mac"], "{got}");
    let boards = got["snapshot"]["boards"].as_array().expect("boards");
    assert!(!boards.is_empty());
    assert!(
        !got["snapshot"]["pools"]
            .as_array()
            .expect("pools")
            .is_empty()
    );

    // A command confirmed by read-back, on a family that has a locate LED.
    let led = manifest
        .iter()
        .find(|d| matches!(d["family"].as_str(), Some("avalon" | "luxos")))
        .expect("an LED-capable device");
    let ip = led["ip"].as_str().expect("ip");
    let (ok, stdout, stderr) = run(&[
        "miner",
        "do",
        ip,
        "--port",
        PORT,
        "--json",
        "--verify-timeout-s",
        "20",
        "led",
        "on",
    ]);
    assert!(ok, "led on failed: {stdout} {stderr}");
    let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
    assert_eq!(outcome["result"], "confirmed", "{outcome}");
    let (_, stdout, _) = run(&["miner", "get", ip, "--port", PORT, "--json"]);
    let got: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(got["snapshot"]["locate_led_on"], true);

    // A command the device cannot do is refused, not faked.
    let cg = manifest
        .iter()
        .find(|d| d["family"] == "cgminer")
        .map(|d| d["ip"].as_str().unwrap_or_default().to_string());
    if let Some(ip) = cg {
        let (ok, stdout, _) = run(&["miner", "do", &ip, "--port", PORT, "--json", "led", "on"]);
        assert!(!ok, "plain cgminer has no LED: {stdout}");
        let outcome: Value = serde_json::from_str(&stdout).expect("outcome JSON");
        assert_eq!(outcome["result"], "unsupported");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (ok, _, stderr) = run(&["scan", "not-a-range"]);
    assert!(!ok);
    assert!(stderr.contains("neither a CIDR range"), "{stderr}");
    let (ok, _, stderr) = run(&["sim", "--devices", "1", "--base", "10.0.0.1"]);
    assert!(!ok, "a fleet outside loopback must be refused");
    assert!(stderr.contains("127"), "{stderr}");
    let (ok, _, stderr) = run(&["miner", "get", "127.63.1.1", "--port", "1"]);
    assert!(!ok);
    assert!(stderr.contains("127.63.1.1"), "{stderr}");
}
