//! Property tests for the Whatsminer parsers and crypto: arbitrary bytes and mutated valid
//! replies never panic; the AES envelope round-trips; MD5-crypt output has the `$1$` shape.

use hashmesh_drivers::whatsminer::{control, crypto, parse};
use proptest::prelude::*;

const V2_POLL: &[u8] = include_bytes!("data/whatsminer/v2_m30s_multi.v2poll.reply");
const V3_STATUS: &[u8] = include_bytes!("data/whatsminer/v3_m60s.v3status.reply");
const ERRORS: &[u8] = include_bytes!("data/whatsminer/v2_api204_errors.errors.reply");

fn all_parsers(raw: &[u8]) {
    let _ = parse::parse_v2_poll(raw, 0);
    let _ = parse::parse_v2_report(raw);
    let _ = parse::parse_v2_error_codes(raw);
    let _ = parse::parse_v2_status(raw);
    let _ = parse::parse_v2_miner_info(raw);
    let _ = parse::parse_v2_version(raw);
    let _ = parse::parse_v2_devdetails_model(raw);
    let _ = control::parse_token(raw);
    if let Ok(st) = parse::parse_v3_status(raw) {
        let _ = parse::v3_snapshot(&st, None, 0);
    }
    if let Ok(info) = parse::parse_v3_device_info(raw) {
        let _ = parse::v3_identity(&info);
    }
    static KEYS: std::sync::OnceLock<crypto::V2Keys> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| crypto::V2Keys::derive("admin", "1", "salt", "newsalt"));
    let _ = control::v2_write_reply(raw, keys);
    let _ = control::v3_write_reply(raw);
}

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, byte, op) in edits {
        if v.is_empty() {
            break;
        }
        let i = pos % v.len();
        match op % 3 {
            0 => v[i] = byte,
            1 => {
                v.remove(i);
            }
            _ => v.truncate(i),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&raw);
    }

    #[test]
    fn mutated_replies_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let base = [V2_POLL, V3_STATUS, ERRORS][which];
        all_parsers(&mutate(base, &edits));
    }

    #[test]
    fn aes_envelope_round_trips(plain in "[ -~]{0,200}", pw in "[ -~]{0,20}") {
        let keys = crypto::V2Keys::derive(&pw, "77", "abcdefgh", "ijklmnop");
        let enc = crypto::aes_ecb_encrypt(&keys.aes_key, plain.as_bytes());
        prop_assert_eq!(enc.len() % 16, 0);
        let back = keys.open(&crypto::b64_encode(&enc)).unwrap_or_default();
        // NUL padding is stripped, so the plaintext comes back exactly (it holds no NULs).
        prop_assert_eq!(back, plain.as_bytes().to_vec());
    }

    #[test]
    fn md5_crypt_shape(pw in proptest::collection::vec(any::<u8>(), 0..64), salt in "[a-zA-Z0-9./]{0,12}") {
        let h = crypto::md5_crypt_hash(&pw, &salt);
        prop_assert_eq!(h.len(), 22);
        prop_assert!(h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'));
    }
}
