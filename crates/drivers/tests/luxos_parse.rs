//! Table-driven tests of the LuxOS parsers: captured-shape replies (PROTOCOLS.md §5.2) under
//! `tests/data/luxos/`, each with an `*.expect.json` of the fields it checks or the error kind.

mod cgminer_common;

use cgminer_common::{identity_table, poll_table};
use hashmesh_drivers::luxos::parse::{
    ProfileEntry, parse_identity, parse_poll, profile_for_mode, profile_nearest,
};
use serde_json::json;

const NOW_MS: i64 = 1_718_000_000_000;

#[test]
fn poll_replies() {
    poll_table("luxos/poll", NOW_MS, parse_poll);
}

#[test]
fn identify_replies() {
    identity_table("luxos/identify", parse_identity);
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
