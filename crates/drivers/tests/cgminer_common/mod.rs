//! Shared runner for the table-driven parse tests of the cgminer-family drivers.
//!
//! A case is a set of files under `tests/data/<family>/` sharing a name:
//! `<case>.poll.reply` / `<case>.newapi.reply` / `<case>.version.reply` (+ `<case>.devdetails.reply`)
//! hold a captured-shape reply; `<case>.expected.json` (snapshot) or `<case>.identity.json`
//! (identity) list the expected values: every key given must match (numbers to 1e-6 relative),
//! arrays must have the same length, and keys left out are not checked; `<case>.err` holds the
//! expected error kind (`malformed`, `auth`, `rejected`, …).

#![allow(dead_code)]

use hashmesh_drivers::DriverError;
use serde_json::Value;
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

/// Checks that `got` contains every value of `want`.
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
                (w - g).abs() <= 1e-6 * w.abs().max(1.0),
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

/// Helpers for driver-versus-simulator tests.
pub mod sim {
    use hashmesh_core::MinerSnapshot;
    use hashmesh_drivers::{Target, Timeouts};
    use hashmesh_sim::{DeviceConfig, Family, RunningDevice, Timing, spawn_device};
    use std::time::Duration;

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
