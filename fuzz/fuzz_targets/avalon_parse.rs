//! Fuzzes the Avalon parsers: poll and version replies, write acks, and the `MM ID` tokenizer.
#![no_main]

use hashmesh_drivers::avalon::{mmid, parse};
use hashmesh_drivers::cgminer::control;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse::parse_poll(data, 0);
    let _ = parse::parse_identity(data);
    let _ = parse::parse_stats(data);
    let _ = control::ack_from_reply(data, "ascset");
    let text = String::from_utf8_lossy(data);
    let mut module = mmid::ModuleStats::parse(&text);
    module.apply_hbinfo(&text);
});
