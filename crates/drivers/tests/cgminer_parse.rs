//! Table-driven parse tests of the generic cgminer / BFGMiner driver (tests/data/cgminer/).

mod cgminer_common;

use cgminer_common::{Outcome, devdetails, outcome, reply, run_cases};
use hashmesh_drivers::cgminer::parse::{cgminer_identity, parse_cgminer_multi};

#[test]
fn cgminer_cases() {
    let ran = run_cases("cgminer", |kind, base| match kind {
        "poll" => outcome(parse_cgminer_multi(&reply(base, "poll"), 1_718_000_000_000)),
        "version" => outcome(cgminer_identity(
            &reply(base, "version"),
            devdetails(base).as_deref(),
        )),
        other => Outcome::Error(hashmesh_drivers::DriverError::Unsupported(other.into())),
    });
    assert!(ran >= 8, "only {ran} cases ran");
}
