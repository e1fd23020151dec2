//! Table-driven parse tests of the Braiins OS driver (tests/data/braiins/).

mod cgminer_common;

use cgminer_common::{Outcome, devdetails, outcome, reply, run_cases};
use hashmesh_drivers::DriverError;
use hashmesh_drivers::braiins::parse::{braiins_identity, parse_braiins_multi};

#[test]
fn braiins_cases() {
    let ran = run_cases("braiins", |kind, base| match kind {
        "poll" => match parse_braiins_multi(&reply(base, "poll"), 1_718_000_000_000, false) {
            Ok(Some(s)) => outcome(Ok(s)),
            Ok(None) => Outcome::Error(DriverError::Unsupported("multi-command refused".into())),
            Err(e) => Outcome::Error(e),
        },
        "version" => outcome(braiins_identity(
            &reply(base, "version"),
            devdetails(base).as_deref(),
        )),
        other => Outcome::Error(DriverError::Unsupported(other.into())),
    });
    assert!(ran >= 5, "only {ran} cases ran");
}
