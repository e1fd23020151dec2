//! The one error type of the time-series store, with the file or name it concerns.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the time-series store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read, written, created or removed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// redb refused an operation on one of the store's database files.
    #[error("database error on {path}: {detail}")]
    Db {
        /// The database file concerned.
        path: PathBuf,
        /// What redb said.
        detail: String,
    },
    /// pco could not compress a column (never expected with finite input sizes).
    #[error("compression failed ({context}): {detail}")]
    Codec {
        /// Which table and column.
        context: String,
        /// What pco said.
        detail: String,
    },
    /// A query or row named a column that is not in the schema.
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    /// A series id that [`crate::tsdb::Store::series`] never handed out.
    #[error("unknown series id {0}")]
    UnknownSeries(u32),
    /// A group that no series was ever put in.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// A row with a different number of values than the schema has columns.
    #[error("row for series {series} has {got} values, the schema has {expected} columns")]
    RowWidth {
        /// The series the row was for.
        series: u32,
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// An argument the store cannot act on (empty key, bad time range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store on disk was written with columns that the configuration no longer starts with.
    #[error(
        "the store in {path} has columns {stored:?}; the configured columns {configured:?} must start with them"
    )]
    SchemaMismatch {
        /// The store's state file.
        path: PathBuf,
        /// Columns recorded on disk.
        stored: Vec<String>,
        /// Columns in the configuration.
        configured: Vec<String>,
    },
    /// A state record the store itself wrote does not decode (the state file is damaged).
    #[error("corrupt state in {path}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps any redb error with the database file it happened on.
    pub(crate) fn db<E: Into<redb::Error>>(path: &Path) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| StoreError::Db {
            path: path.to_path_buf(),
            detail: e.into().to_string(),
        }
    }
}
