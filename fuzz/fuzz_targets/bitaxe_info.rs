//! Fuzzes the AxeOS `/api/system/info` parsers, the HTTP head parser and the Digest challenge
//! parser of the drivers' HTTP client: errors, never panics.
#![no_main]

use hashmesh_drivers::bitaxe::parse::{bitaxe_identity, bitaxe_snapshot};
use hashmesh_drivers::http::digest::parse_challenge;
use hashmesh_drivers::http::wire::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bitaxe_snapshot(data, 0);
    let _ = bitaxe_identity(data);
    let _ = parse_head(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_challenge(text);
    }
});
