//! Fuzzes the Antminer web CGI parsers (system info, miner configuration and its rewrite,
//! write, blink and blink-status replies): errors, never panics.
#![no_main]

use hashmesh_drivers::antminer::web::{
    conf_mode, parse_blink_reply, parse_blink_status, parse_miner_conf, parse_set_reply,
    parse_system_info, with_mode,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_system_info(data);
    if let Ok(conf) = parse_miner_conf(data) {
        let _ = conf_mode(&conf);
        let _ = with_mode(conf, 1);
    }
    let _ = parse_set_reply(data);
    let _ = parse_blink_reply(data, true);
    let _ = parse_blink_status(data);
});
