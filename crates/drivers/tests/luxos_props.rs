//! Property tests: no input makes the LuxOS parsers panic — arbitrary bytes and captured
//! replies with bytes flipped, inserted or cut off.

mod cgminer_common;

use cgminer_common::props::{self, mutated};
use hashmesh_drivers::luxos::control::parse_session;
use hashmesh_drivers::luxos::parse::{
    ConfigReply, ProfilesReply, SummaryReply, parse_identity, parse_poll, parse_single,
};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    props::fixture("luxos", name)
}

fn parse_everything(raw: &[u8]) {
    let _ = parse_poll(raw, 0);
    let _ = parse_identity(raw);
    let _ = parse_session(raw);
    let _ = parse_single::<SummaryReply>(raw);
    let _ = parse_single::<ConfigReply>(raw);
    let _ = parse_single::<ProfilesReply>(raw);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_poll_replies_never_panic(raw in mutated(fixture("poll/s19pro_default.json"))) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_identify_replies_never_panic(raw in mutated(fixture("identify/version_config.json"))) {
        parse_everything(&raw);
    }
}
