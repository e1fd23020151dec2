//! Property tests: no input makes the LuxOS parsers panic — arbitrary bytes and captured
//! replies with bytes flipped, inserted or cut off.

use hashmesh_drivers::luxos::control::parse_session;
use hashmesh_drivers::luxos::parse::{
    ConfigReply, ProfilesReply, SummaryReply, parse_identity, parse_poll, parse_single,
};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/luxos")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_everything(raw: &[u8]) {
    let _ = parse_poll(raw, 0);
    let _ = parse_identity(raw);
    let _ = parse_session(raw);
    let _ = parse_single::<SummaryReply>(raw);
    let _ = parse_single::<ConfigReply>(raw);
    let _ = parse_single::<ProfilesReply>(raw);
}

fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
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
