//! Property tests: no input makes the Antminer web CGI parsers panic, and a configuration
//! written back keeps every key it was read with.

use hashmesh_drivers::antminer::web::{
    conf_mode, parse_blink_reply, parse_blink_status, parse_miner_conf, parse_set_reply,
    parse_system_info, with_mode,
};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/antminer_web")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_everything(raw: &[u8]) {
    let _ = parse_system_info(raw);
    if let Ok(conf) = parse_miner_conf(raw) {
        let _ = conf_mode(&conf);
        let keys = conf.len();
        let written = with_mode(conf, 1);
        assert!(written.len() >= keys);
        assert_eq!(conf_mode(&written), Some(1));
    }
    let _ = parse_set_reply(raw);
    let _ = parse_blink_reply(raw, true);
    let _ = parse_blink_status(raw);
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
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_system_info_never_panics(raw in mutated(fixture("system_info/s21.json"))) {
        parse_everything(&raw);
    }

    #[test]
    fn mutated_conf_never_panics(raw in mutated(fixture("miner_conf/s19jpro_legacy.json"))) {
        parse_everything(&raw);
    }
}
