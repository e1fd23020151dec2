//! Table-driven tests of the Antminer web CGI parsers (PROTOCOLS.md §2.2): captured-shape
//! bodies under `tests/data/antminer_web/<endpoint>/` with the fields each case checks or the
//! error kind expected.

#[path = "data/avalon/compare.rs"]
mod compare;

use hashmesh_core::PoolConfig;
use hashmesh_drivers::DriverError;
use hashmesh_drivers::antminer::web::{
    conf_mode, parse_blink_reply, parse_blink_status, parse_miner_conf, parse_set_reply,
    parse_system_info, with_mode, with_pools,
};
use serde_json::{Value, json};

/// Runs every case of `dir`, comparing `parse`'s value (or error kind) with the expectation.
fn run(dir: &str, parse: impl Fn(&[u8], &Value) -> Result<Value, DriverError>) -> usize {
    let cases = compare::cases(&format!("antminer_web/{dir}"));
    for (name, raw, want) in &cases {
        match (parse(raw, want), want.get("error")) {
            (Err(e), Some(kind)) => assert_eq!(json!(e.kind()), *kind, "{dir}/{name}: {e}"),
            (Ok(v), None) => compare::assert_subset(name, dir, want, &v),
            (got, _) => panic!("{dir}/{name}: unexpected {got:?}"),
        }
    }
    cases.len()
}

#[test]
fn system_info_bodies() {
    let n = run("system_info", |raw, _| {
        let i = parse_system_info(raw)?;
        Ok(json!({
            "minertype": i.minertype.0, "macaddr": i.macaddr.0, "serinum": i.serinum.0,
            "hostname": i.hostname.0, "system_filesystem_version": i.system_filesystem_version.0,
            "firmware_type": i.firmware_type.0,
        }))
    });
    assert!(n >= 4);
}

#[test]
fn miner_conf_bodies() {
    let n = run("miner_conf", |raw, want| {
        let conf = parse_miner_conf(raw)?;
        let keys = conf.len();
        let mode = conf_mode(&conf);
        // Write the next mode the expectation names, and check every other key survives.
        let next = want["written_mode"]["miner-mode"]
            .as_i64()
            .or_else(|| {
                want["written_mode"]["miner-mode"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
            })
            .unwrap_or(0);
        let written = with_mode(conf.clone(), next);
        for k in conf.keys() {
            assert!(written.contains_key(k), "{k} lost");
        }
        Ok(json!({
            "mode": mode, "keys": keys,
            "written_mode": {"miner-mode": written["miner-mode"], "bitmain-work-mode": written["bitmain-work-mode"]},
        }))
    });
    assert!(n >= 4);
}

#[test]
fn pools_fill_three_slots() {
    let conf = parse_miner_conf(br#"{"pools":[],"bitmain-fan-pwm":"100"}"#).unwrap_or_default();
    let p = PoolConfig {
        url: "stratum+tcp://a.example:3333".into(),
        user: "w".into(),
        password: "x".into(),
    };
    let c = with_pools(conf.clone(), std::slice::from_ref(&p)).unwrap_or_default();
    assert_eq!(
        c["pools"],
        json!([{"url":"stratum+tcp://a.example:3333","user":"w","pass":"x"},
               {"url":"","user":"","pass":""},{"url":"","user":"","pass":""}])
    );
    assert_eq!(c["bitmain-fan-pwm"], "100");
    assert!(matches!(
        with_pools(conf.clone(), &vec![p.clone(); 4]),
        Err(DriverError::Unsupported(_))
    ));
    assert!(with_pools(conf, &[]).is_err());
}

#[test]
fn write_replies() {
    let n = run("set_reply", |raw, _| {
        Ok(json!({"message": parse_set_reply(raw)?.message}))
    });
    assert!(n >= 4);
    let n = run("blink", |raw, want| {
        let on = want["on"].as_bool().unwrap_or(false);
        Ok(json!({"on": on, "message": parse_blink_reply(raw, on)?.message}))
    });
    assert!(n >= 3);
    let n = run("blink_status", |raw, _| {
        Ok(json!({"blink": parse_blink_status(raw)?}))
    });
    assert!(n >= 3);
}
