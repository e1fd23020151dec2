//! Table-driven tests of the AxeOS parsers: captured-shape `/api/system/info` bodies
//! (PROTOCOLS.md §6) under `tests/data/bitaxe/`, each with an `*.expect.json` holding the
//! snapshot and identity fields it checks, or the error kind expected.

#[path = "data/avalon/compare.rs"]
mod compare;

use hashmesh_drivers::bitaxe::parse::{bitaxe_identity, bitaxe_snapshot};
use serde_json::json;

const NOW_MS: i64 = 1_718_000_000_000;

#[test]
fn info_bodies() {
    let cases = compare::cases("bitaxe");
    assert!(cases.len() >= 9, "only {} cases", cases.len());
    for (name, raw, want) in cases {
        let snap = bitaxe_snapshot(&raw, NOW_MS);
        let id = bitaxe_identity(&raw);
        if let Some(kind) = want.get("error") {
            match snap {
                Err(e) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
                Ok(s) => panic!("{name}: expected a {kind} error, got {s:?}"),
            }
            assert!(id.is_err(), "{name}: identity from a bad body: {id:?}");
            continue;
        }
        let snap = snap.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(snap.time_unix_ms, NOW_MS);
        let value = serde_json::to_value(&snap).unwrap_or_default();
        compare::assert_subset(&name, "snapshot", &want["snapshot"], &value);
        match (want.get("identity"), want.get("identity_error"), id) {
            (Some(w), _, Ok(id)) => {
                let value = serde_json::to_value(&id).unwrap_or_default();
                compare::assert_subset(&name, "identity", w, &value);
            }
            (_, Some(kind), Err(e)) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
            (None, None, _) => {}
            (_, _, got) => panic!("{name}: unexpected identity {got:?}"),
        }
    }
}
