//! hashmesh storage, usable on its own: [`tsdb`], an embedded time-series store that keeps one
//! row per device per poll and rolls groups up at ingest, and [`meta`], the relational state of
//! a node (the device inventory) in SQLite.

pub mod meta;
pub mod tsdb;
