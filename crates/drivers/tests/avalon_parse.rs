//! Table-driven tests of the Avalon parsers: captured-shape replies (PROTOCOLS.md §3) under
//! `tests/data/avalon/`, each with an `*.expect.json` of the fields it checks or the error kind.

#[path = "data/avalon/compare.rs"]
mod compare;

use hashmesh_drivers::avalon::parse::{parse_identity, parse_poll};
use serde_json::json;

const NOW_MS: i64 = 1_718_000_000_000;

#[test]
fn poll_replies() {
    for (name, raw, want) in compare::cases("avalon/poll") {
        let got = parse_poll(&raw, NOW_MS);
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
            assert_eq!(snapshot.time_unix_ms, NOW_MS);
            let value = serde_json::to_value(&snapshot).unwrap_or_default();
            compare::assert_subset(&name, "snapshot", &want, &value);
        }
    }
}

#[test]
fn version_replies() {
    for (name, raw, want) in compare::cases("avalon/version") {
        match (parse_identity(&raw), want.get("error")) {
            (Err(e), Some(kind)) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
            (Ok(id), None) => {
                assert_eq!(id.kind, hashmesh_core::DeviceKind::Miner);
                compare::assert_subset(
                    &name,
                    "identity",
                    &want,
                    &serde_json::to_value(&id).unwrap_or_default(),
                );
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}
