//! Table-driven tests of the Avalon parsers: captured-shape replies (PROTOCOLS.md §3) under
//! `tests/data/avalon/`, each with an `*.expect.json` of the fields it checks or the error kind.

mod cgminer_common;

use cgminer_common::{identity_table, poll_table};
use hashmesh_drivers::avalon::parse::{parse_identity, parse_poll};

const NOW_MS: i64 = 1_718_000_000_000;

#[test]
fn poll_replies() {
    poll_table("avalon/poll", NOW_MS, parse_poll);
}

#[test]
fn version_replies() {
    identity_table("avalon/version", parse_identity);
}
