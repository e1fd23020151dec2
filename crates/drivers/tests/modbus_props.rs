//! Property tests for the meter decoders: arbitrary register blocks, arbitrary words of every
//! value type and arbitrary identification blocks never panic, and every value that comes out
//! is a finite number.

use hashmesh_drivers::modbus::map::{self, Sentinel, ValueType, WordOrder};
use hashmesh_drivers::modbus::parse::{self, RegisterBlock};
use proptest::prelude::*;

fn maps() -> Vec<map::RegisterMap> {
    vec![
        map::abb_b2x(),
        map::schneider_pm5xxx(),
        map::satec_pm180(&map::SatecConfig::default()),
    ]
}

fn all_finite(snap: &hashmesh_core::MeterSnapshot) -> bool {
    let json = serde_json::to_value(snap).unwrap_or_default();
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
            serde_json::Value::Array(a) => a.iter().all(walk),
            serde_json::Value::Object(o) => o.values().all(walk),
            _ => true,
        }
    }
    walk(&json)
}

proptest! {
    #[test]
    fn arbitrary_blocks_never_panic(
        blocks in prop::collection::vec((any::<u16>(), prop::collection::vec(any::<u16>(), 0..130)), 0..4)
    ) {
        let blocks: Vec<RegisterBlock> = blocks
            .into_iter()
            .map(|(start, registers)| RegisterBlock { start, registers })
            .collect();
        for map in maps() {
            if let Ok(snap) = parse::decode(&map, &blocks, 0) {
                prop_assert!(all_finite(&snap));
            }
        }
    }

    #[test]
    fn valid_layout_with_arbitrary_contents_always_decodes(seed in prop::collection::vec(any::<u16>(), 256)) {
        for map in maps() {
            let blocks: Vec<RegisterBlock> = map
                .read_plan()
                .iter()
                .map(|b| RegisterBlock {
                    start: b.start,
                    registers: (0..b.count).map(|i| seed[usize::from(i) % seed.len()]).collect(),
                })
                .collect();
            let snap = parse::decode(&map, &blocks, 0);
            prop_assert!(snap.is_ok(), "{}: {:?}", map.name, snap);
            prop_assert!(snap.is_ok_and(|s| all_finite(&s)));
        }
    }

    #[test]
    fn raw_values_are_finite_or_missing(words in prop::collection::vec(any::<u16>(), 0..6)) {
        let types = [ValueType::U16, ValueType::S16, ValueType::U32, ValueType::S32,
                     ValueType::U64, ValueType::S64, ValueType::F32];
        for t in types {
            for order in [WordOrder::HighFirst, WordOrder::LowFirst] {
                for sentinel in [Sentinel::NanOnly, Sentinel::AbbInvalid] {
                    let v = parse::raw_value(&words, t, order, sentinel);
                    prop_assert!(v.is_none_or(f64::is_finite));
                    if words.len() != usize::from(t.register_count()) {
                        prop_assert_eq!(v, None);
                    }
                }
            }
        }
    }

    #[test]
    fn signed_32_bit_round_trips(v in any::<i32>()) {
        let bits = v as u32;
        let words = [(bits >> 16) as u16, bits as u16];
        let got = parse::raw_value(&words, ValueType::S32, WordOrder::HighFirst, Sentinel::AbbInvalid);
        if v == i32::MAX {
            prop_assert_eq!(got, None);
        } else {
            prop_assert_eq!(got, Some(f64::from(v)));
        }
        let low_first = [bits as u16, (bits >> 16) as u16];
        prop_assert_eq!(
            parse::raw_value(&low_first, ValueType::S32, WordOrder::LowFirst, Sentinel::NanOnly),
            Some(f64::from(v))
        );
    }

    #[test]
    fn identity_blocks_never_panic(words in prop::collection::vec(any::<u16>(), 0..130)) {
        let _ = parse::decode_abb_identity(&words);
        let _ = parse::decode_schneider_identity(&words, Some(&words));
        let _ = parse::decode_ascii(&words);
    }
}
