//! Relational state of a node in SQLite.
