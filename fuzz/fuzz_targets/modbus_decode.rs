//! Fuzzes the meter decoders: bytes become register blocks (first byte picks the map and the
//! block count, then per block a start address, a length and big-endian words) and
//! identification blocks. Nothing may panic and every decoded value must be finite.
#![no_main]

use hashmesh_drivers::modbus::map;
use hashmesh_drivers::modbus::parse::{self, RegisterBlock};
use libfuzzer_sys::fuzz_target;

fn words(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let mut blocks = Vec::new();
    for _ in 0..(selector >> 4) % 4 + 1 {
        let [a, b, len, tail @ ..] = rest else { break };
        let take = (usize::from(*len) * 2).min(tail.len());
        blocks.push(RegisterBlock {
            start: u16::from_be_bytes([*a, *b]),
            registers: words(&tail[..take]),
        });
        rest = &tail[take..];
    }
    let map = match selector % 3 {
        0 => map::abb_b2x(),
        1 => map::schneider_pm5xxx(),
        _ => map::satec_pm180(&map::SatecConfig::default()),
    };
    if let Ok(snap) = parse::decode(&map, &blocks, 0) {
        let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
        assert!(finite(snap.active_power_total_w) && finite(snap.energy_import_kwh));
        assert!(snap.power_factor_phase.iter().all(|v| finite(*v)));
    }
    let all = words(data);
    let _ = parse::decode_abb_identity(&all);
    let _ = parse::decode_schneider_identity(&all, Some(&all));
});
