//! Property tests of the cgminer repair pass and reply helpers: arbitrary and mutated replies
//! never panic, the repair output is always JSON (or empty), and valid JSON passes unchanged.

use hashmesh_drivers::cgminer::repair::{repair, repair_text_always};
use hashmesh_drivers::cgminer::reply::{Num, OneOrFirst, StatusEntry, Text, decode, parse_text};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

/// A realistic reply shape to mutate (multi-command, strings that look like broken JSON).
const SAMPLE: &str = r#"{"summary":[{"STATUS":[{"STATUS":"S","When":1718000000,"Code":11,"Msg":"Summary","Description":"cgminer 4.11.1"}],"SUMMARY":[{"Elapsed":5400,"MHS av":95012345.67,"MHS 5s":"95112345.1","Accepted":812,"Rejected":3,"Hardware Errors":7}],"id":1}],"pools":[{"STATUS":[{"STATUS":"S","Code":7,"Msg":"2 Pool(s)"}],"POOLS":[{"POOL":0,"URL":"stratum+tcp://pool.example:3333","User":"acct.w1,}{inf","Status":"Alive","Priority":0,"Accepted":812,"Stratum Active":true},{"POOL":1,"URL":"stratum+tcp://b.example:3333","User":"acct.w2","Status":"Dead","Priority":1}],"id":1}],"id":1}"#;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Pool {
    #[serde(rename = "URL", default)]
    url: Text,
    #[serde(rename = "Accepted", default)]
    accepted: Num,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct PoolsReply {
    #[serde(rename = "STATUS", default)]
    status: OneOrFirst<StatusEntry>,
    #[serde(rename = "POOLS", default)]
    pools: Vec<Pool>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Multi {
    #[serde(default)]
    pools: OneOrFirst<PoolsReply>,
}

fn assert_json_or_empty(text: &str) -> Result<(), TestCaseError> {
    if !text.is_empty() {
        prop_assert!(
            serde_json::from_str::<Value>(text).is_ok(),
            "not JSON: {text:?}"
        );
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[,{}\\[\\]\"\\\\a-z0-9 :]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tricky = prop::sample::select(b",{}[]\":\n\0\\ infa-nx\xff".to_vec());
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), tricky).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in muts {
        let n = v.len();
        match *m {
            Mutation::Delete(i) if n > 0 => {
                v.remove(i % n);
            }
            Mutation::Insert(i, b) => v.insert(i % (n + 1), b),
            Mutation::Truncate(i) => v.truncate(i % (n + 1)),
            _ => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let r = repair(&bytes);
        assert_json_or_empty(&r.text)?;
        let _ = decode::<Multi>(&bytes);
        let _ = parse_text(&bytes);
    }

    #[test]
    fn json_ish_bytes_never_panic(bytes in prop::collection::vec(prop::sample::select(b"{}[],:\"\\ 0123456789.-+eEtruefalsnlinfa\n\x01\x7f".to_vec()), 0..400)) {
        let r = repair(&bytes);
        assert_json_or_empty(&r.text)?;
        let _ = decode::<Multi>(&bytes);
    }

    #[test]
    fn mutated_replies_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(SAMPLE.as_bytes(), &muts);
        let r = repair(&bytes);
        assert_json_or_empty(&r.text)?;
        let _ = decode::<Multi>(&bytes);
    }

    #[test]
    fn truncated_replies_keep_a_prefix(cut in 1usize..SAMPLE.len()) {
        let r = repair(&SAMPLE.as_bytes()[..cut]);
        assert_json_or_empty(&r.text)?;
        prop_assert!(r.truncated || r.text.is_empty());
        // Whatever survives of the first pool's worker name is never altered.
        if let Ok(d) = decode::<Multi>(&SAMPLE.as_bytes()[..cut]) {
            prop_assert!(d.truncated);
            if let Some(p) = d.value.pools.get().and_then(|p| p.pools.first()) {
                let url = p.url.0.as_str();
                prop_assert!(url.is_empty() || url == "stratum+tcp://pool.example:3333", "{url}");
            }
        }
    }

    #[test]
    fn valid_json_is_identity(v in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) };
        let text = text.unwrap_or_default();
        let r = repair(text.as_bytes());
        prop_assert_eq!(&r.text, &text);
        prop_assert!(!r.truncated);
        if matches!(v, Value::Object(_) | Value::Array(_)) {
            // The token pass itself must also leave valid JSON untouched.
            prop_assert_eq!(repair_text_always(&text).text, text);
        }
    }
}

#[test]
fn sample_decodes_directly() {
    let d = decode::<Multi>(SAMPLE.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!d.repaired);
    let pools = d.value.pools.into_inner().map(|p| p.pools.len());
    assert_eq!(pools, Some(2));
}
