//! Fuzzes the JSON repair pass: never panics, and its output is JSON or empty.
#![no_main]

use hashmesh_drivers::cgminer::repair::repair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = repair(data);
    if !r.text.is_empty()
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&r.text)
    {
        // Nesting past the JSON parser's depth limit is the only accepted failure.
        assert!(e.to_string().contains("recursion"), "invalid JSON ({e}): {:?}", r.text);
    }
});
