//! Fuzzes the generic cgminer parsers and the text-form reply parser: errors, never panics.
#![no_main]

use hashmesh_drivers::cgminer::parse::{cgminer_identity, parse_cgminer_multi};
use hashmesh_drivers::cgminer::reply::parse_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cgminer_multi(data, 0);
    let _ = cgminer_identity(data, Some(data));
    let _ = parse_text(data);
});
