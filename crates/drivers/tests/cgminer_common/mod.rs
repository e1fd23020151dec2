//! Shared runner for the table-driven parse tests of the cgminer-family drivers.
//!
//! A case is a set of files under `tests/data/<family>/` sharing a name:
//! `<case>.poll.reply` / `<case>.newapi.reply` / `<case>.version.reply` (+ `<case>.devdetails.reply`)
//! hold a captured-shape reply; `<case>.expected.json` (snapshot) or `<case>.identity.json`
//! (identity) list the expected values: every key given must match (numbers to 1e-6 relative),
//! arrays must have the same length, and keys left out are not checked; `<case>.err` holds the
//! expected error kind (`malformed`, `auth`, `rejected`, …).
//!
//! The Avalon and LuxOS tables use a second layout ([`json_cases`]): `<case>.json` holds the reply
//! and `<case>.expect.json` the expected fields, or `{"error": kind}`, or `{"fallback": true}`
//! for a refused multi-command. [`sim`] holds the driver-versus-simulator helpers and [`props`]
//! the fixtures and mutations of the property tests.

#![allow(dead_code)]

use hashmesh_core::{DeviceIdentity, DeviceKind, MinerSnapshot};
use hashmesh_drivers::DriverError;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What a case's parser produced.
pub enum Outcome {
    /// A snapshot or identity, as JSON.
    Value(Value),
    /// An error.
    Error(DriverError),
}

/// Directory of a family's data.
pub fn data_dir(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(family)
}

/// Reads a file or panics with its path (test-only input written by us).
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks that `got` contains every value of `want`: objects recursively as subsets, arrays
/// element by element with equal length, numbers within 1e-6 relative.
pub fn assert_subset(want: &Value, got: &Value, path: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or(&Value::Null);
                assert_subset(wv, gv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "{path}: length (got {got})");
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                assert_subset(wv, gv, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            let (w, g) = (
                w.as_f64().unwrap_or(f64::NAN),
                g.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (w - g).abs() <= 1e-6 * w.abs().max(g.abs()).max(1.0),
                "{path}: want {w}, got {g}"
            );
        }
        _ => assert_eq!(want, got, "{path}"),
    }
}

/// Runs every case in `family`'s data directory through `parse(kind, case_path)`, where kind is
/// `poll`, `newapi` or `version`, and returns how many cases ran.
pub fn run_cases(family: &str, parse: impl Fn(&str, &Path) -> Outcome) -> usize {
    let dir = data_dir(family);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut ran = 0;
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some(stem) = name.strip_suffix(".reply") else {
            continue;
        };
        let Some((case, kind)) = stem.rsplit_once('.') else {
            continue;
        };
        if kind == "devdetails" {
            continue;
        }
        let base = dir.join(case);
        let outcome = parse(kind, &base);
        let err_file = dir.join(format!("{case}.err"));
        let want_file = dir.join(format!(
            "{case}.{}",
            if kind == "version" {
                "identity.json"
            } else {
                "expected.json"
            }
        ));
        match outcome {
            Outcome::Error(e) => {
                assert!(err_file.exists(), "{family}/{case}: unexpected error {e}");
                let want = String::from_utf8_lossy(&read(&err_file)).trim().to_owned();
                assert_eq!(e.kind(), want, "{family}/{case}: error {e}");
            }
            Outcome::Value(got) => {
                assert!(
                    !err_file.exists(),
                    "{family}/{case}: expected an error, got {got}"
                );
                let want: Value = serde_json::from_slice(&read(&want_file))
                    .unwrap_or_else(|e| panic!("{}: {e}", want_file.display()));
                assert_subset(&want, &got, &format!("{family}/{case}"));
            }
        }
        ran += 1;
    }
    ran
}

/// The devdetails reply of a case, if it has one.
pub fn devdetails(base: &Path) -> Option<Vec<u8>> {
    let p = base.with_file_name(format!("{}.devdetails.reply", base.file_name()?.to_str()?));
    p.exists().then(|| read(&p))
}

/// The reply of a case for `kind`.
pub fn reply(base: &Path, kind: &str) -> Vec<u8> {
    let name = base
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    read(&base.with_file_name(format!("{name}.{kind}.reply")))
}

/// Turns a result into an outcome.
pub fn outcome<T: serde::Serialize>(r: Result<T, DriverError>) -> Outcome {
    match r {
        Ok(v) => Outcome::Value(serde_json::to_value(v).unwrap_or(Value::Null)),
        Err(e) => Outcome::Error(e),
    }
}

/// The `(case name, reply, expectation)` triples of a `<case>.json` / `<case>.expect.json`
/// table directory under `tests/data/`, sorted by name.
pub fn json_cases(dir: &str) -> Vec<(String, Vec<u8>, Value)> {
    let root = data_dir(dir);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".expect.json")
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases in {}", root.display());
    names
        .into_iter()
        .map(|reply| {
            let expect = reply.with_extension("expect.json");
            let name = reply
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let want: Value = serde_json::from_slice(&read(&expect))
                .unwrap_or_else(|e| panic!("{}: {e}", expect.display()));
            (name, read(&reply), want)
        })
        .collect()
}

/// Runs every poll case of a [`json_cases`] directory through `parse(reply, now_ms)`, where
/// `Ok(None)` means the multi-command was refused: an `error` case must fail with that kind, a
/// `fallback` case must give `Ok(None)`, any other must give a snapshot stamped `now_ms` that
/// contains the expected fields.
pub fn poll_table(
    dir: &str,
    now_ms: i64,
    parse: impl Fn(&[u8], i64) -> Result<Option<MinerSnapshot>, DriverError>,
) {
    for (name, raw, want) in json_cases(dir) {
        let got = parse(&raw, now_ms);
        if let Some(kind) = want.get("error") {
            match got {
                Err(e) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
                Ok(s) => panic!("{name}: expected a {kind} error, got {s:?}"),
            }
        } else if want.get("fallback").is_some() {
            assert!(
                matches!(got, Ok(None)),
                "{name}: expected a fall-back to single commands, got {got:?}"
            );
        } else {
            let snapshot = got
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .unwrap_or_else(|| panic!("{name}: no snapshot"));
            assert_eq!(snapshot.time_unix_ms, now_ms, "{name}");
            let value = serde_json::to_value(&snapshot).unwrap_or_default();
            assert_subset(&want, &value, &format!("{name}: snapshot"));
        }
    }
}

/// Runs every identity case of a [`json_cases`] directory through `parse`: an `error` case
/// must fail with that kind, any other must name a miner with the expected fields.
pub fn identity_table(dir: &str, parse: impl Fn(&[u8]) -> Result<DeviceIdentity, DriverError>) {
    for (name, raw, want) in json_cases(dir) {
        match (parse(&raw), want.get("error")) {
            (Err(e), Some(kind)) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
            (Ok(id), None) => {
                assert_eq!(id.kind, DeviceKind::Miner, "{name}");
                let value = serde_json::to_value(&id).unwrap_or_default();
                assert_subset(&want, &value, &format!("{name}: identity"));
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

/// Fixtures and input mutations for the parsers' property tests.
pub mod props {
    use proptest::prelude::*;

    /// A captured reply under `tests/data/<family>/`.
    pub fn fixture(family: &str, name: &str) -> Vec<u8> {
        super::read(&super::data_dir(family).join(name))
    }

    /// A captured reply with one mutation: flip, insert, delete or truncate at a position.
    pub fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let len = base.len().max(1);
        (0..4u8, 0..len, any::<u8>()).prop_map(move |(op, at, byte)| {
            let mut v = base.clone();
            let at = at.min(v.len().saturating_sub(1));
            match op {
                0 if !v.is_empty() => v[at] = byte,
                1 => v.insert(at, byte),
                2 if !v.is_empty() => {
                    v.remove(at);
                }
                _ => v.truncate(at),
            }
            v
        })
    }
}

/// Helpers for driver-versus-simulator tests.
pub mod sim {
    use hashmesh_core::{Command, CommandOutcome, CommandResult, MinerSnapshot, PoolSnapshot};
    use hashmesh_drivers::{Driver, Target, Timeouts, VerifyPolicy};
    use hashmesh_sim::{DeviceConfig, Family, Fault, RunningDevice, Timing, spawn_device};
    use std::time::{Duration, Instant};

    /// A read-back policy polling every 200 ms, giving up after `timeout` (`restart_timeout`
    /// for commands that restart the miner).
    pub fn policy(timeout: Duration, restart_timeout: Duration) -> VerifyPolicy {
        VerifyPolicy {
            timeout,
            interval: Duration::from_millis(200),
            restart_timeout,
        }
    }

    /// Whether two optional readings agree within `rel` (relative) or `abs`, or are both absent.
    pub fn near(a: Option<f64>, b: Option<f64>, rel: f64, abs: f64) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= abs.max(rel * a.abs().max(b.abs())),
            (None, None) => true,
            _ => false,
        }
    }

    /// Runs `command` through `Driver::execute` and asserts the read-back confirmed it.
    pub async fn run_confirmed(
        driver: &dyn Driver,
        target: &Target,
        command: Command,
        policy: &VerifyPolicy,
    ) -> CommandOutcome {
        let out = driver.execute(target, &command, policy).await;
        assert_eq!(
            out.result,
            CommandResult::Confirmed,
            "{}: {}",
            command.name(),
            out.message
        );
        out
    }

    /// Asserts the telemetry every cgminer-family driver reads agrees with the simulator's
    /// truth: status, hashrates (1 %), expected rate (0.1 %), per-board hashrate and failure,
    /// fan count, power (2 %), locate LED, uptime (3 s) and pools (url, user, active). Each
    /// family's test checks its own extra fields.
    pub fn assert_shared_telemetry(snap: &MinerSnapshot, truth: &MinerSnapshot) {
        assert_eq!(snap.status, truth.status);
        assert!(
            near(snap.hashrate_ths, truth.hashrate_ths, 0.01, 0.01),
            "{:?} vs {:?}",
            snap.hashrate_ths,
            truth.hashrate_ths
        );
        assert!(near(
            snap.hashrate_avg_ths,
            truth.hashrate_avg_ths,
            0.01,
            0.01
        ));
        assert!(near(
            snap.expected_hashrate_ths,
            truth.expected_hashrate_ths,
            0.001,
            0.01
        ));
        assert_eq!(snap.boards.len(), truth.boards.len());
        for (b, t) in snap.boards.iter().zip(&truth.boards) {
            assert!(
                near(b.hashrate_ths, t.hashrate_ths, 0.01, 0.01),
                "board {}: {:?} vs {:?}",
                b.index,
                b.hashrate_ths,
                t.hashrate_ths
            );
            assert_eq!(b.failed, t.failed, "board {} failed", b.index);
        }
        assert_eq!(snap.fans_rpm.len(), truth.fans_rpm.len());
        assert!(
            near(snap.power_w, truth.power_w, 0.02, 2.0),
            "{:?} vs {:?}",
            snap.power_w,
            truth.power_w
        );
        assert_eq!(snap.locate_led_on, truth.locate_led_on);
        assert!(near(
            snap.uptime_s.map(|u| u as f64),
            truth.uptime_s.map(|u| u as f64),
            0.0,
            3.0
        ));
        let pools = |p: &[PoolSnapshot]| {
            p.iter()
                .map(|p| (p.url.clone(), p.user.clone(), p.active))
                .collect::<Vec<_>>()
        };
        assert_eq!(pools(&snap.pools), pools(&truth.pools));
    }

    /// Every fault a poll must fail on, whatever the error.
    pub const POLL_FAULTS_ANY_ERROR: &[(Fault, &[&str])] = &[
        (Fault::Hang, &[]),
        (Fault::Garbage, &[]),
        (Fault::Reset, &[]),
        (Fault::Oversized, &[]),
        (Fault::Offline, &[]),
    ];

    /// Sets each fault in turn and polls: the poll must fail within `limit`, with one of the
    /// listed error kinds (any error when the list is empty).
    pub async fn assert_faults_fail_within(
        dev: &RunningDevice,
        driver: &dyn Driver,
        target: &Target,
        cases: &[(Fault, &[&str])],
        limit: Duration,
    ) {
        for (fault, kinds) in cases {
            dev.set_faults(vec![*fault]);
            let started = Instant::now();
            let got = driver.poll(target).await;
            assert!(
                started.elapsed() < limit,
                "{fault:?} took {:?}",
                started.elapsed()
            );
            match got {
                Err(e) => assert!(
                    kinds.is_empty() || kinds.contains(&e.kind()),
                    "{fault:?}: {e}"
                ),
                Ok(s) => panic!("{fault:?}: expected an error, got {s:?}"),
            }
        }
    }

    /// Starts a simulated device on an ephemeral loopback port, with fast timing.
    pub async fn spawn(family: Family, model: &str, write_access: bool) -> (RunningDevice, Target) {
        let mut cfg = DeviceConfig::new(family, model);
        cfg.timing = Timing::fast();
        cfg.rpc_write_access = write_access;
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let dev = spawn_device(cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let local = dev.local_addr();
        let mut target = Target::new(local.ip());
        target.rpc_port = local.port();
        target.timeouts = Timeouts {
            connect: Duration::from_millis(500),
            total: Duration::from_secs(2),
            max_reply_bytes: 1 << 20,
        };
        (dev, target)
    }

    fn close(what: &str, got: Option<f64>, want: Option<f64>, abs: f64, rel: f64) {
        match (got, want) {
            (Some(g), Some(w)) => {
                assert!(
                    (g - w).abs() <= abs + rel * w.abs(),
                    "{what}: driver {g}, truth {w}"
                )
            }
            (g, w) => assert_eq!(
                g.is_some(),
                w.is_some(),
                "{what}: driver {g:?}, truth {w:?}"
            ),
        }
    }

    /// Compares a driver snapshot with the simulator's truth, within wire rounding and the drift
    /// between the two reads. `power` says whether power must match (not for nameplate estimates).
    pub fn compare(got: &MinerSnapshot, want: &MinerSnapshot, power: bool) {
        assert_eq!(
            got.status, want.status,
            "status (driver {got:#?}\ntruth {want:#?})"
        );
        close("hashrate", got.hashrate_ths, want.hashrate_ths, 0.01, 0.03);
        close(
            "hashrate avg",
            got.hashrate_avg_ths,
            want.hashrate_avg_ths,
            0.01,
            0.03,
        );
        close(
            "expected",
            got.expected_hashrate_ths,
            want.expected_hashrate_ths,
            0.01,
            0.01,
        );
        close(
            "uptime",
            got.uptime_s.map(|v| v as f64),
            want.uptime_s.map(|v| v as f64),
            5.0,
            0.0,
        );
        assert_eq!(got.boards.len(), want.boards.len(), "board count");
        for (g, w) in got.boards.iter().zip(&want.boards) {
            let i = g.index;
            close(
                &format!("board {i} hashrate"),
                g.hashrate_ths,
                w.hashrate_ths,
                0.01,
                0.03,
            );
            close(
                &format!("board {i} expected"),
                g.expected_hashrate_ths,
                w.expected_hashrate_ths,
                0.01,
                0.01,
            );
            close(
                &format!("board {i} chip temp"),
                g.chip_temp_c,
                w.chip_temp_c,
                1.5,
                0.0,
            );
            close(
                &format!("board {i} board temp"),
                g.board_temp_c,
                w.board_temp_c,
                1.5,
                0.0,
            );
            close(
                &format!("board {i} inlet"),
                g.inlet_temp_c,
                w.inlet_temp_c,
                1.5,
                0.0,
            );
            close(
                &format!("board {i} outlet"),
                g.outlet_temp_c,
                w.outlet_temp_c,
                1.5,
                0.0,
            );
            assert_eq!(g.chips_working, w.chips_working, "board {i} chips working");
            // The Antminer driver knows chips per board from its nameplate table even where the
            // wire (and so the simulator's truth) says nothing.
            if w.chips_expected.is_some() {
                assert_eq!(
                    g.chips_expected, w.chips_expected,
                    "board {i} chips expected"
                );
            }
            close(
                &format!("board {i} freq"),
                g.frequency_mhz,
                w.frequency_mhz,
                1.0,
                0.0,
            );
            close(
                &format!("board {i} voltage"),
                g.voltage_v,
                w.voltage_v,
                0.05,
                0.0,
            );
            assert_eq!(g.failed, w.failed, "board {i} failed");
        }
        assert_eq!(got.fans_rpm.len(), want.fans_rpm.len(), "fan count");
        for (g, w) in got.fans_rpm.iter().zip(&want.fans_rpm) {
            close("fan", Some(f64::from(*g)), Some(f64::from(*w)), 60.0, 0.02);
        }
        if power {
            close("power", got.power_w, want.power_w, 5.0, 0.03);
            assert_eq!(got.power_source, want.power_source, "power source");
        }
        close(
            "power target",
            got.power_target_w,
            want.power_target_w,
            1.0,
            0.0,
        );
        let pools = |s: &MinerSnapshot| {
            s.pools
                .iter()
                .map(|p| (p.url.clone(), p.user.clone(), p.status, p.active))
                .collect::<Vec<_>>()
        };
        assert_eq!(pools(got), pools(want), "pools");
    }
}
