//! Shared copies of strings that many devices report alike (pool URLs, vendors, models,
//! firmware names), so a node holding 100,000 devices keeps a few dozen copies, not 100,000.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Most distinct strings [`intern`] shares. The strings come from devices: one that reports a
/// new value on every poll must not grow the table without end.
pub const INTERN_MAX: usize = 4096;

/// The shared copy of `s` (made now if it is new); past [`INTERN_MAX`] distinct strings, new
/// ones get a copy of their own.
pub fn intern(s: &str) -> Arc<str> {
    static TABLE: Mutex<Option<HashSet<Arc<str>>>> = Mutex::new(None);
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.get_or_insert_with(HashSet::new);
    if let Some(v) = t.get(s) {
        return v.clone();
    }
    let v: Arc<str> = Arc::from(s);
    if t.len() < INTERN_MAX {
        t.insert(v.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy_and_the_table_is_bounded() {
        let a = intern("stratum+tcp://pool.example:3333");
        let b = intern(&String::from("stratum+tcp://pool.example:3333"));
        assert!(Arc::ptr_eq(&a, &b));
        // A device that reports a new value every time cannot grow the table past its cap.
        for i in 0..INTERN_MAX + 10 {
            intern(&format!("value-{i}"));
        }
        let x = intern("value-past-the-cap");
        let y = intern("value-past-the-cap");
        assert_eq!(x, y);
        assert!(!Arc::ptr_eq(&x, &y));
        assert!(Arc::ptr_eq(&a, &intern("stratum+tcp://pool.example:3333")));
    }
}
