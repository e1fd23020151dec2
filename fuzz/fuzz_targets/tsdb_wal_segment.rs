//! Fuzzes WAL segment decoding: any bytes must decode to a prefix of records and a clean stop,
//! never a panic, and a decoded prefix must decode the same again.
#![no_main]

use hashmesh_store::tsdb::wal::decode_segment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scan = decode_segment(data);
    assert!(scan.good_len <= data.len());
    if scan.good_len > 0 {
        let again = decode_segment(&data[..scan.good_len]);
        assert_eq!(again.records.len(), scan.records.len());
        assert!(again.damage.is_none());
    }
});
