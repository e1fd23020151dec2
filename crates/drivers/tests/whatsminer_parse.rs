//! Table-driven Whatsminer parse tests: each `tests/data/whatsminer/<case>.<kind>.reply` is a
//! captured-shape reply (PROTOCOLS.md §4) with either `<case>.expected.json` (the fields the
//! parse must produce; floats to 1e-6) or `<case>.err` (error kind, then a text the message
//! must contain). Kinds: `v2poll` (the `summary+devs+pools` multi reply), `errors`
//! (`get_error_code`), `v3status` (`get.miner.status`).

use hashmesh_drivers::DriverError;
use hashmesh_drivers::whatsminer::parse;
use serde_json::Value;
use std::path::Path;

fn same(got: &Value, want: &Value, path: &str) -> Result<(), String> {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            if (a - b).abs() <= 1e-6 * a.abs().max(1.0) {
                Ok(())
            } else {
                Err(format!("{path}: got {a}, want {b}"))
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: got {} items, want {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .try_for_each(|(i, (x, y))| same(x, y, &format!("{path}[{i}]")))
        }
        (Value::Object(a), Value::Object(b)) => b.iter().try_for_each(|(k, y)| {
            same(a.get(k).unwrap_or(&Value::Null), y, &format!("{path}.{k}"))
        }),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: got {a}, want {b}")),
    }
}

fn parse_case(kind: &str, raw: &[u8]) -> Result<Value, DriverError> {
    match kind {
        "v2poll" => {
            let snap = parse::parse_v2_poll(raw, 0)?
                .ok_or_else(|| DriverError::Malformed("multi refused".into()))?;
            Ok(to(&snap))
        }
        "errors" => Ok(to(&parse::parse_v2_error_codes(raw)?)),
        "v3status" => {
            let st = parse::parse_v3_status(raw)?;
            Ok(to(&parse::v3_snapshot(&st, None, 0)))
        }
        other => panic!("unknown case kind {other}"),
    }
}

/// Serialises a parse result for comparison.
fn to<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[test]
fn captured_replies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/whatsminer");
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some(stem) = name.strip_suffix(".reply") else {
            continue;
        };
        let (case, kind) = stem.rsplit_once('.').expect("<case>.<kind>.reply");
        let raw = std::fs::read(&path).expect("read reply");
        let result = parse_case(kind, &raw);
        let expected = dir.join(format!("{case}.expected.json"));
        let error = dir.join(format!("{case}.err"));
        if expected.exists() {
            let want: Value = serde_json::from_slice(&std::fs::read(&expected).expect("read"))
                .expect("expected file is JSON");
            let got = result.unwrap_or_else(|e| panic!("{case}: unexpected error {e}"));
            same(&got, &want, case).unwrap_or_else(|e| panic!("{e}"));
        } else {
            let text = std::fs::read_to_string(&error).expect("an .expected.json or .err");
            let mut lines = text.lines();
            let (kind_want, contains) = (
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
            );
            match result {
                Ok(v) => panic!("{case}: expected a {kind_want} error, parsed {v}"),
                Err(e) => {
                    assert_eq!(e.kind(), kind_want, "{case}: {e}");
                    assert!(e.to_string().contains(contains), "{case}: {e}");
                }
            }
        }
        cases += 1;
    }
    assert!(cases >= 11, "only {cases} cases found");
}

#[test]
fn firmware_dates_pick_the_api() {
    assert_eq!(parse::firmware_date("'20200725.18.REL'"), Some(20200725));
    assert!(!parse::firmware_speaks_v3("20230803.11.REL"));
    assert!(parse::firmware_speaks_v3("20251209.16.Rel2"));
    assert!(parse::firmware_speaks_v3("20241101.00.REL"));
    assert_eq!(parse::firmware_date("garbage"), None);
    assert_eq!(parse::firmware_date("2023"), None);
}

#[test]
fn model_names() {
    let (m, partial) = parse::model_name("M30S++_VH30");
    assert_eq!((m.0.as_str(), partial), ("Whatsminer M30S++", false));
    let (m, partial) = parse::model_name("M99X_ZZ10");
    assert_eq!((m.0.as_str(), partial), ("Whatsminer M99X", true));
}

#[test]
fn flat_replies() {
    let st = parse::parse_v2_status(
        br#"{"STATUS":"S","When":1,"Code":131,"Msg":{"mineroff":"true","mineroff_reason":"","FirmwareVersion":"'20230803.11.REL'","power_mode":"Normal","hash_percent":""},"Description":""}"#,
    )
    .expect("status");
    assert_eq!(st.mining_off(), Some(true));
    let st = parse::parse_v2_status(br#"{"STATUS":"S","Code":131,"Msg":{"btmineroff":"false"}}"#)
        .expect("API 1.4 status");
    assert_eq!(st.mining_off(), Some(false));
    let info = parse::parse_v2_miner_info(
        br#"{"STATUS":"S","Code":131,"Msg":{"ip":"10.0.0.2","hostname":"WhatsMiner","mac":"C6:07:20:00:11:22","ledstat":"auto","minersn":"HEM1"}}"#,
    )
    .expect("info");
    assert_eq!(info.led_on(), Some(false));
    assert!(matches!(
        parse::parse_v2_version(br#"{"STATUS":"E","Code":45,"Msg":"can't access write cmd"}"#),
        Err(DriverError::Rejected(m)) if m.contains("write API is disabled")
    ));
    assert!(matches!(
        parse::parse_v2_version(br#"{"nothing":1}"#),
        Err(DriverError::Malformed(_))
    ));
}
