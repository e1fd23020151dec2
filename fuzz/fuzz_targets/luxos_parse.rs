//! Fuzzes the LuxOS parsers: poll, identify and session replies.
#![no_main]

use hashmesh_drivers::luxos::{control, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse::parse_poll(data, 0);
    let _ = parse::parse_identity(data);
    let _ = control::parse_session(data);
    let _ = parse::parse_single::<parse::ProfilesReply>(data);
});
