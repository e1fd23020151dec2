//! Fuzzes the Antminer parsers (both stats layouts, identity): errors, never panics.
#![no_main]

use hashmesh_drivers::antminer::parse::{antminer_identity, parse_antminer_multi, parse_legacy_stats, parse_new_api_stats};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_antminer_multi(data, 0);
    let _ = parse_legacy_stats(data);
    let _ = parse_new_api_stats(data);
    let _ = antminer_identity(data);
});
