//! The login rate limiter: after `max_failures` failed logins within `window`, for one username
//! or from one client address, further attempts are refused (429) until the oldest of those
//! failures leaves the window. Every attempt counts as a failure from the moment it starts and
//! is struck off only when it succeeds, so parallel guesses cannot slip past the limit while
//! argon2 is still working. Memory is bounded: at most `max_keys` usernames and addresses are
//! tracked, and the stalest is forgotten first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// What an attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A username, lower-cased (usernames compare without case).
    User(String),
    /// A client address; IPv6 clients by their /64, since one host usually holds a whole /64.
    Ip(IpAddr),
}

impl LimitKey {
    /// The key of a username. Only the first 64 characters count (no username is longer), so
    /// a client cannot make the limiter hold huge keys.
    pub fn user(username: &str) -> LimitKey {
        let head: String = username
            .chars()
            .take(super::store::MAX_USERNAME_CHARS)
            .collect();
        LimitKey::User(head.to_lowercase())
    }

    /// The key of a client address.
    pub fn ip(ip: IpAddr) -> LimitKey {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        LimitKey::Ip(ip)
    }
}

/// The limiter's parameters.
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig {
    /// Failures allowed within `window` before attempts are refused.
    pub max_failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// The most usernames and addresses tracked at once.
    pub max_keys: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            max_failures: 5,
            window: Duration::from_secs(300),
            max_keys: 10_000,
        }
    }
}

/// Counts login failures per username and per client address.
#[derive(Debug)]
pub struct LoginLimiter {
    config: LimiterConfig,
    /// Per key, the times of its recent failures, oldest first, at most `max_failures`.
    failures: Mutex<HashMap<LimitKey, VecDeque<i64>>>,
}

impl LoginLimiter {
    /// A limiter with `config`.
    pub fn new(config: LimiterConfig) -> LoginLimiter {
        LoginLimiter {
            config,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn window_ms(&self) -> i64 {
        super::clock::duration_ms(self.config.window)
    }

    /// Starts an attempt against `keys`: refused with the time to wait when any key is at its
    /// limit, else counted as a failure until [`LoginLimiter::succeeded`] strikes it off.
    pub fn begin(&self, keys: &[LimitKey], now_unix_ms: i64) -> Result<(), Duration> {
        let window_ms = self.window_ms();
        let max = usize::try_from(self.config.max_failures).unwrap_or(usize::MAX);
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait_ms = 0i64;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|&t| t + window_ms <= now_unix_ms) {
                    times.pop_front();
                }
                if times.len() >= max {
                    let oldest = times.front().copied().unwrap_or(now_unix_ms);
                    wait_ms = wait_ms.max(oldest + window_ms - now_unix_ms);
                }
            }
        }
        if wait_ms > 0 || max == 0 {
            let wait_ms = u64::try_from(wait_ms.max(1)).unwrap_or(1);
            return Err(Duration::from_millis(wait_ms));
        }
        for key in keys {
            if !map.contains_key(key) && map.len() >= self.config.max_keys {
                Self::make_room(&mut map, self.config.max_keys, now_unix_ms, window_ms);
            }
            let times = map.entry(key.clone()).or_default();
            times.push_back(now_unix_ms);
            while times.len() > max {
                times.pop_front();
            }
        }
        Ok(())
    }

    /// Strikes off an attempt that succeeded: a good login clears the count of its username
    /// and its address.
    pub fn succeeded(&self, keys: &[LimitKey]) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            map.remove(key);
        }
    }

    /// How many usernames and addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Frees one slot: drops every key whose failures have all left the window, or if none
    /// has, the key whose latest failure is the oldest.
    fn make_room(
        map: &mut HashMap<LimitKey, VecDeque<i64>>,
        max_keys: usize,
        now_unix_ms: i64,
        window_ms: i64,
    ) {
        map.retain(|_, times| times.back().is_some_and(|&t| t + window_ms > now_unix_ms));
        if map.len() < max_keys {
            return;
        }
        let stalest = map
            .iter()
            .min_by_key(|(_, times)| times.back().copied().unwrap_or(i64::MIN))
            .map(|(k, _)| k.clone());
        if let Some(key) = stalest {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limiter(max_keys: usize) -> LoginLimiter {
        LoginLimiter::new(LimiterConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            max_keys,
        })
    }

    #[test]
    fn refuses_after_max_failures_until_the_oldest_leaves_the_window() {
        let l = limiter(100);
        let keys = [LimitKey::user("Bob")];
        for t in [0, 10_000, 20_000] {
            l.begin(&keys, t).unwrap();
        }
        assert_eq!(l.begin(&keys, 30_000), Err(Duration::from_secs(30)));
        // Case does not help an attacker.
        assert_eq!(
            l.begin(&[LimitKey::user("BOB")], 30_000),
            Err(Duration::from_secs(30))
        );
        // The first failure leaves the window at 60 s.
        l.begin(&keys, 60_000).unwrap();
        assert_eq!(l.begin(&keys, 60_001), Err(Duration::from_millis(9_999)));
    }

    #[test]
    fn a_success_clears_the_count_and_any_blocked_key_blocks() {
        let l = limiter(100);
        let ip = LimitKey::ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)));
        let keys = [LimitKey::user("a"), ip.clone()];
        l.begin(&keys, 0).unwrap();
        l.begin(&keys, 1).unwrap();
        l.succeeded(&keys);
        for t in 2..5 {
            l.begin(&keys, t).unwrap();
        }
        // Another username from the same address is refused too.
        assert!(l.begin(&[LimitKey::user("b"), ip], 6).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        assert_eq!(LimitKey::ip(a), LimitKey::ip(b));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            LimitKey::ip(mapped),
            LimitKey::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn huge_usernames_are_cut_to_the_longest_possible_name() {
        let long = "x".repeat(60_000);
        assert_eq!(LimitKey::user(&long), LimitKey::user(&"X".repeat(64)));
    }

    #[test]
    fn memory_stays_bounded_and_the_stalest_key_goes_first() {
        let l = limiter(50);
        for i in 0..1_000i64 {
            l.begin(&[LimitKey::user(&format!("user{i}"))], i).unwrap();
            assert!(l.tracked() <= 50);
        }
        // The newest keys are still counted.
        let last = [LimitKey::user("user999")];
        l.begin(&last, 1_000).unwrap();
        l.begin(&last, 1_001).unwrap();
        assert!(l.begin(&last, 1_002).is_err());
    }
}
