//! Table-driven tests of the LuxOS parsers: captured-shape replies (PROTOCOLS.md §5.2) under
//! `tests/data/luxos/`, each with an `*.expect.json` of the fields it checks or the error kind.

#[path = "data/avalon/compare.rs"]
mod compare;

use hashmesh_drivers::luxos::parse::{
    ProfileEntry, parse_identity, parse_poll, profile_for_mode, profile_nearest,
};
use serde_json::json;

const NOW_MS: i64 = 1_718_000_000_000;

#[test]
fn poll_replies() {
    for (name, raw, want) in compare::cases("luxos/poll") {
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
            compare::assert_subset(
                &name,
                "snapshot",
                &want,
                &serde_json::to_value(&snapshot).unwrap_or_default(),
            );
        }
    }
}

#[test]
fn identify_replies() {
    for (name, raw, want) in compare::cases("luxos/identify") {
        match (parse_identity(&raw), want.get("error")) {
            (Err(e), Some(kind)) => assert_eq!(json!(e.kind()), *kind, "{name}: {e}"),
            (Ok(id), None) => compare::assert_subset(
                &name,
                "identity",
                &want,
                &serde_json::to_value(&id).unwrap_or_default(),
            ),
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

fn profiles() -> Vec<ProfileEntry> {
    let raw = json!({"PROFILES":[
        {"Profile Name":"-2","Watts":2900},{"Profile Name":"-1","Watts":"3100"},
        {"Profile Name":"default","Watts":3250},{"Profile Name":"+1","Watts":3450},{"Profile Name":"broken","Watts":""}]});
    let reply: hashmesh_drivers::luxos::parse::ProfilesReply =
        serde_json::from_value(raw).unwrap_or_default();
    reply.profiles
}

#[test]
fn profile_choice() {
    let p = profiles();
    let name = |e: Option<&ProfileEntry>| e.map(|e| e.name.0.clone());
    for (watts, want) in [
        (3000, "-2"),
        (3001, "-1"),
        (3250, "default"),
        (9000, "+1"),
        (0, "-2"),
        (3175, "-1"),
    ] {
        assert_eq!(
            name(profile_nearest(watts, &p)),
            Some(want.to_string()),
            "{watts} W"
        );
    }
    use hashmesh_core::PowerMode::*;
    assert_eq!(name(profile_for_mode(Low, &p)), Some("-2".into()));
    assert_eq!(name(profile_for_mode(Normal, &p)), Some("default".into()));
    assert_eq!(name(profile_for_mode(High, &p)), Some("+1".into()));
    assert_eq!(profile_nearest(3000, &[]).map(|e| e.name.0.clone()), None);
}
