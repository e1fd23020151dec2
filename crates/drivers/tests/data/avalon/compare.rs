//! Table-test support for tests that include this file by path (`#[path = …] mod compare;`):
//! the helpers live in `tests/cgminer_common`, shared by every family's table tests; this keeps
//! the old names and argument order.

#![allow(dead_code)]

#[path = "../../cgminer_common/mod.rs"]
mod common;

use serde_json::Value;

/// The `(reply, expectation)` file pairs of a table directory, sorted by name.
pub fn cases(dir: &str) -> Vec<(String, Vec<u8>, Value)> {
    common::json_cases(dir)
}

/// Every field of `want` must equal the same field of `got` (objects recursively as subsets,
/// arrays element by element with equal length, numbers within 1e-6 relative).
pub fn assert_subset(case: &str, path: &str, want: &Value, got: &Value) {
    common::assert_subset(want, got, &format!("{case}: {path}"));
}
