//! Table-driven parse tests of the Antminer driver (tests/data/antminer/): the legacy layout of
//! X19 (chains 1–3 and an empty 4th) and S9 (chains 6–8), the `new_api` layout, identity.

mod cgminer_common;

use cgminer_common::{Outcome, outcome, reply, run_cases};
use hashmesh_drivers::DriverError;
use hashmesh_drivers::antminer::parse::{
    antminer_identity, antminer_snapshot, parse_antminer_multi, parse_new_api_stats,
};

#[test]
fn antminer_cases() {
    let ran = run_cases("antminer", |kind, base| match kind {
        "poll" => match parse_antminer_multi(&reply(base, "poll"), 1_718_000_000_000) {
            Ok(Some(s)) => outcome(Ok(s)),
            Ok(None) => Outcome::Error(DriverError::Unsupported("multi-command refused".into())),
            Err(e) => Outcome::Error(e),
        },
        "newapi" => outcome(parse_new_api_stats(&reply(base, "newapi")).and_then(
            |(stats, cut)| antminer_snapshot(1_718_000_000_000, None, &stats, None, cut),
        )),
        "version" => outcome(antminer_identity(&reply(base, "version"))),
        other => Outcome::Error(DriverError::Unsupported(other.into())),
    });
    assert!(ran >= 8, "only {ran} cases ran");
}
