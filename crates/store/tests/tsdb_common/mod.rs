//! Helpers shared by the tsdb integration tests (included with `mod`, not a test of its own).
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use hashmesh_store::tsdb::{Store, StoreConfig};

/// 2025-10-09T00:00:00Z.
pub const T0: i64 = 1_759_968_000_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

pub fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn open(dir: &std::path::Path, cols: &[&str]) -> Store {
    Store::open(StoreConfig::new(dir, columns(cols))).unwrap()
}

/// Log lines captured from `tracing` while the guard lives.
pub struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() -> Logs {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Sink(b.clone()))
        .finish();
    Logs {
        buf,
        _guard: tracing::subscriber::set_default(sub),
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}
