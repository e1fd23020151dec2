//! Fuzzes every Whatsminer reply parser (v2 multi, flat, token, error codes; v3 status and
//! device info; encrypted write replies): none may panic, whatever the bytes.
#![no_main]

use hashmesh_drivers::whatsminer::{control, crypto, parse};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEYS: OnceLock<crypto::V2Keys> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let _ = parse::parse_v2_poll(data, 0);
    let _ = parse::parse_v2_report(data);
    let _ = parse::parse_v2_error_codes(data);
    let _ = parse::parse_v2_status(data);
    let _ = parse::parse_v2_miner_info(data);
    let _ = parse::parse_v2_version(data);
    let _ = parse::parse_v2_devdetails_model(data);
    let _ = control::parse_token(data);
    if let Ok(st) = parse::parse_v3_status(data) {
        let _ = parse::v3_snapshot(&st, None, 0);
    }
    if let Ok(info) = parse::parse_v3_device_info(data) {
        let _ = parse::v3_identity(&info);
    }
    let keys = KEYS.get_or_init(|| crypto::V2Keys::derive("admin", "1", "salt", "newsalt"));
    let _ = control::v2_write_reply(data, keys);
    let _ = control::v3_write_reply(data);
});
