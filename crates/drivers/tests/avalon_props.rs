//! Property tests: no input makes the Avalon parsers panic — arbitrary bytes, arbitrary
//! `MM ID` strings, and captured replies with bytes flipped, inserted or cut off.

mod cgminer_common;

use cgminer_common::props::{self, mutated};
use hashmesh_drivers::avalon::mmid::{ModuleStats, sections, tokens};
use hashmesh_drivers::avalon::parse::{
    parse_identity, parse_poll, parse_pools, parse_stats, parse_summary,
};
use hashmesh_drivers::cgminer::control::ack_from_reply;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    props::fixture("avalon", name)
}

fn parse_everything(raw: &[u8]) {
    let _ = parse_poll(raw, 0);
    let _ = parse_identity(raw);
    let _ = parse_summary(raw);
    let _ = parse_stats(raw);
    let _ = parse_pools(raw);
    let _ = ack_from_reply(raw, "ascset");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_everything(&raw);
    }

    #[test]
    fn arbitrary_mm_strings_never_panic(s in "\\PC{0,400}") {
        let _ = tokens(&s).count();
        let _ = sections(&s);
        let mut m = ModuleStats::parse(&s);
        m.apply_hbinfo(&s);
        for i in 0..4 {
            let _ = m.board_freq_mhz(i);
        }
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(("[A-Za-z_]{1,8}[0-9]{0,3}", "[-0-9 .a-z%:]{0,20}"), 0..40)) {
        let s: String = parts.iter().map(|(k, v)| format!("{k}[{v}] ")).collect();
        let m = ModuleStats::parse(&s);
        prop_assert!(m.chips.len() <= 32 && m.board_freqs_mhz.len() <= 32);
    }

    #[test]
    fn mutated_poll_replies_never_panic(raw in mutated(fixture("poll/a1246_multi.json"))) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_newer_replies_never_panic(raw in mutated(fixture("poll/avalon_q_summary.json"))) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_version_replies_never_panic(raw in mutated(fixture("version/a1246.json"))) {
        parse_everything(&raw);
    }
}

#[test]
fn valid_reply_parses_the_same_after_a_round_trip() {
    // Re-serialising a valid reply must not change what is read from it (no lossy repair).
    let raw = fixture("poll/a1246_multi.json");
    let value: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    let again = serde_json::to_vec(&value).unwrap_or_default();
    let a = parse_poll(&raw, 1).ok().flatten();
    let b = parse_poll(&again, 1).ok().flatten();
    assert!(a.is_some());
    assert_eq!(a, b);
}
