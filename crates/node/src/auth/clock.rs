//! The time source of the auth service. Session expiry and login rate limits depend on the
//! time; a node uses the system clock, and tests use a manual clock they move forward, so that
//! "a session expires after 12 h idle" is checked without waiting 12 hours.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the auth service reads the current time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that only moves when told to (shared by every clone).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start_unix_ms`.
    pub fn manual(start_unix_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start_unix_ms)))
    }

    /// The current time in unix milliseconds.
    pub fn now_unix_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward by `by`; the system clock cannot be moved, so this is a
    /// no-op for it.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(now) = self {
            now.fetch_add(duration_ms(by), Ordering::SeqCst);
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_unix_ms(), 1_000);
        other.advance(Duration::from_secs(2));
        assert_eq!(clock.now_unix_ms(), 3_000);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(Clock::System.now_unix_ms() > 1_704_067_200_000);
    }
}
