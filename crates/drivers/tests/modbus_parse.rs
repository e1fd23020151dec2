//! Table-driven decode tests: register dumps in `tests/data/modbus/<case>.regs` (hand-encoded
//! from the vendors' maps), decoded with the named map and compared with
//! `<case>.expected.json`, or with the error text in `<case>.err`.

use hashmesh_core::{MeterIdentity, MeterSnapshot};
use hashmesh_drivers::DriverError;
use hashmesh_drivers::modbus::map::{self, RegisterMap, SatecConfig};
use hashmesh_drivers::modbus::parse::{self, RegisterBlock};
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/modbus")
}

/// Parses a dump: `# map: NAME` selects the map; `ADDR: WORD WORD …` lines (ADDR `0x…` hex or
/// decimal, words hex) append to the block that ends at ADDR or start a new one.
fn load_dump(path: &Path) -> (RegisterMap, Vec<RegisterBlock>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut map = None;
    let mut blocks: Vec<RegisterBlock> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# map: ") {
            map = Some(match name.trim() {
                "abb" => map::abb_b2x(),
                "schneider" => map::schneider_pm5xxx(),
                "satec" => map::satec_pm180(&SatecConfig::default()),
                other => panic!("unknown map {other}"),
            });
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (addr, words) = line.split_once(':').unwrap();
        let addr = match addr.trim().strip_prefix("0x") {
            Some(hex) => u16::from_str_radix(hex, 16).unwrap(),
            None => addr.trim().parse().unwrap(),
        };
        let words: Vec<u16> = words
            .split_whitespace()
            .map(|w| u16::from_str_radix(w, 16).unwrap())
            .collect();
        match blocks.last_mut() {
            Some(b) if usize::from(b.start) + b.registers.len() == usize::from(addr) => {
                b.registers.extend(words)
            }
            _ => blocks.push(RegisterBlock {
                start: addr,
                registers: words,
            }),
        }
    }
    (map.expect("dump names its map"), blocks)
}

/// Compares two JSON values, numbers to 1e-9 relative.
fn assert_json_close(actual: &serde_json::Value, expected: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
            assert!(
                (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                "{path}: got {a}, expected {e}"
            );
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{path}: length");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert_json_close(a, e, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                e.keys().collect::<Vec<_>>(),
                "{path}: keys"
            );
            for (k, e) in e {
                assert_json_close(&a[k], e, &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

#[test]
fn every_dump_decodes_to_its_expected_snapshot_or_error() {
    let mut cases = 0;
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("regs") {
            continue;
        }
        let (map, blocks) = load_dump(&path);
        let got = parse::decode(&map, &blocks, 0);
        let expected_json = path.with_extension("expected.json");
        let expected_err = path.with_extension("err");
        let name = path.display();
        if expected_json.exists() {
            let snap = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected: MeterSnapshot =
                serde_json::from_str(&std::fs::read_to_string(&expected_json).unwrap()).unwrap();
            assert_json_close(
                &serde_json::to_value(&snap).unwrap(),
                &serde_json::to_value(&expected).unwrap(),
                &name.to_string(),
            );
        } else {
            let want = std::fs::read_to_string(&expected_err).unwrap();
            match got {
                Err(DriverError::Malformed(msg)) => {
                    assert!(msg.contains(want.trim()), "{name}: error {msg:?}")
                }
                other => panic!("{name}: expected Malformed({want:?}), got {other:?}"),
            }
        }
        cases += 1;
    }
    assert!(cases >= 6, "only {cases} cases found");
}

#[test]
fn four_quadrant_power_factor_decodes_per_the_schneider_manual() {
    let cases = [
        (0.9, 0.9),     // quadrant I
        (1.2, 0.8),     // quadrant IV: 2 − v
        (-0.7, -0.7),   // quadrant III
        (-1.25, -0.75), // quadrant II: −2 − v
        (1.0, 1.0),
        (-1.0, -1.0),
    ];
    for (raw, pf) in cases {
        let got = parse::decode_four_quadrant_pf(raw);
        assert!((got - pf).abs() < 1e-12, "{raw} → {got}, expected {pf}");
    }
}

#[test]
fn satec_delta_wiring_fills_line_to_line_voltages() {
    let config = SatecConfig {
        delta_wiring: true,
        ..SatecConfig::default()
    };
    let map = map::satec_pm180(&config);
    let mut registers = vec![0u16; 37];
    registers[0] = 7998; // 7998 × 500 / 9999 = 399.94 V
    let snap = parse::decode(
        &map,
        &[RegisterBlock {
            start: 256,
            registers,
        }],
        0,
    )
    .unwrap();
    assert!((snap.voltage_ll_v[0].unwrap() - 7998.0 * 500.0 / 9999.0).abs() < 1e-9);
    assert_eq!(snap.voltage_ln_v, [None; 3]);
}

#[test]
fn identities_decode_from_identification_blocks() {
    let mut abb = vec![0u16; 16];
    abb[0] = 0x0151; // serial 0x0151_9C8A = 22125706
    abb[1] = 0x9C8A;
    abb[8] = u16::from_be_bytes(*b"1.");
    abb[9] = u16::from_be_bytes(*b"08");
    assert_eq!(
        parse::decode_abb_identity(&abb).unwrap(),
        MeterIdentity {
            manufacturer: "ABB".into(),
            model: "B2x".into(),
            serial: Some("22125706".into()),
            firmware: Some("1.08".into()),
        }
    );
    assert!(matches!(
        parse::decode_abb_identity(&[0xFFFF, 0xFFFF]),
        Err(DriverError::Malformed(_))
    ));

    let mut se = vec![0u16; 102];
    for (i, pair) in b"PM5560".chunks(2).enumerate() {
        se[i] = u16::from_be_bytes([pair[0], pair[1]]);
    }
    for (i, pair) in b"Schneider Electric".chunks(2).enumerate() {
        se[40 + i] = u16::from_be_bytes([pair[0], pair[1]]);
    }
    se[100] = 0;
    se[101] = 4242;
    assert_eq!(
        parse::decode_schneider_identity(&se, Some(&[2, 1, 4])).unwrap(),
        MeterIdentity {
            manufacturer: "Schneider Electric".into(),
            model: "PM5560".into(),
            serial: Some("4242".into()),
            firmware: Some("2.1.4".into()),
        }
    );
    // A block of zeros (another make answering the same addresses) is not a Schneider.
    assert!(parse::decode_schneider_identity(&[0; 102], None).is_err());
    assert!(parse::decode_schneider_identity(&[0; 10], None).is_err());
}
