//! Fuzzes the Braiins OS parsers: errors, never panics.
#![no_main]

use hashmesh_drivers::braiins::parse::{braiins_identity, parse_braiins_multi};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_braiins_multi(data, 0, false);
    let _ = parse_braiins_multi(data, 0, true);
    let _ = braiins_identity(data, Some(data));
});
