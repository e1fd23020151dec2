//! Table-test support shared by the Avalon and LuxOS parse tests: compares a parsed value with
//! an `*.expect.json` file that lists only the fields the case is about.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The `(reply, expectation)` file pairs of a table directory, sorted by name.
pub fn cases(dir: &str) -> Vec<(String, Vec<u8>, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
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
            let raw = std::fs::read(&reply).unwrap_or_else(|e| panic!("{}: {e}", reply.display()));
            let text = std::fs::read_to_string(&expect)
                .unwrap_or_else(|e| panic!("{}: {e}", expect.display()));
            let want: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", expect.display()));
            (name, raw, want)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Every field of `want` must equal the same field of `got` (objects recursively as subsets,
/// arrays element by element with equal length, numbers within 1e-6 relative).
pub fn assert_subset(case: &str, path: &str, want: &Value, got: &Value) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or(&Value::Null);
                assert_subset(case, &format!("{path}.{k}"), wv, gv);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(
                w.len(),
                g.len(),
                "{case}: {path} has {} items, expected {}: {got}",
                g.len(),
                w.len()
            );
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                assert_subset(case, &format!("{path}[{i}]"), wv, gv);
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            let (w, g) = (
                w.as_f64().unwrap_or(f64::NAN),
                g.as_f64().unwrap_or(f64::NAN),
            );
            assert!(close(w, g), "{case}: {path} = {g}, expected {w}");
        }
        _ => assert_eq!(want, got, "{case}: {path}"),
    }
}
