//! Property tests: no input makes the AxeOS parsers or the HTTP head and Digest challenge
//! parsers panic — arbitrary bytes, and captured bodies with bytes flipped, inserted or cut.

use hashmesh_drivers::bitaxe::control::split_url;
use hashmesh_drivers::bitaxe::parse::{bitaxe_identity, bitaxe_snapshot};
use hashmesh_drivers::http::digest::parse_challenge;
use hashmesh_drivers::http::wire::parse_head;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bitaxe")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
        let _ = bitaxe_snapshot(&raw, 0);
        let _ = bitaxe_identity(&raw);
        let _ = parse_head(&raw);
        let _ = parse_challenge(&String::from_utf8_lossy(&raw));
        let _ = split_url(&String::from_utf8_lossy(&raw));
    }

    #[test]
    fn mutated_info_never_panics(raw in mutated(fixture("gamma_v2_9.json"))) {
        let _ = bitaxe_snapshot(&raw, 0);
        let _ = bitaxe_identity(&raw);
    }

    #[test]
    fn mutated_old_info_never_panics(raw in mutated(fixture("supra_v2_1_old.json"))) {
        let _ = bitaxe_snapshot(&raw, 0);
    }

    #[test]
    fn mutated_challenges_never_panic(raw in mutated(
        br#"Digest realm="antMiner Configuration", nonce="6f1e2d", qop="auth", opaque="ab", stale=false"#.to_vec()
    )) {
        let _ = parse_challenge(&String::from_utf8_lossy(&raw));
    }

    #[test]
    fn mutated_heads_never_panic(raw in mutated(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\nContent-Length: 0\r\nConnection: keep-alive".to_vec()
    )) {
        let _ = parse_head(&raw);
    }
}
