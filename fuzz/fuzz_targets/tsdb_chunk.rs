//! Fuzzes chunk decoding: arbitrary index and column sections (checksums fixed up half the
//! time, so the decoder behind the checksum is reached) must give an error or data, never a
//! panic or a huge allocation.
#![no_main]

use hashmesh_store::tsdb::codec::{ChunkIndex, decode_chunk, fix_checksum};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let fix = data[0] & 1 == 1;
    let split = (usize::from(data[1]) * data.len() / 256).max(2);
    let (mut index, mut column) = (data[2..split].to_vec(), data[split..].to_vec());
    if fix {
        fix_checksum(&mut index);
        fix_checksum(&mut column);
    }
    let _ = decode_chunk(&index, &[&column]);
    if let Ok(idx) = ChunkIndex::decode(&index) {
        for &s in idx.series.iter().take(4) {
            if let Some(slot) = idx.slot(s) {
                let _ = idx.series_ts(slot);
                if let Ok(sec) = idx.values(&column) {
                    let _ = idx.series_values(&sec, slot);
                }
            }
        }
    }
});
