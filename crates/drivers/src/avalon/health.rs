//! Shared judgement of a normalised snapshot: the overall [`MinerStatus`] from hashrate, boards,
//! fans and pools (the rules of the driver brief), and nameplate power for firmwares that report
//! none. Pure functions over core types, so LuxOS (and any later family) uses the same rules.

use hashmesh_core::{MinerSnapshot, MinerStatus, PoolStatus};

/// Seconds after start before a low hashrate counts as a problem (boards ramp up and tune).
pub const WARMUP_S: u64 = 900;

/// Share of the expected hashrate below which a warmed-up miner is degraded.
pub const LOW_HASHRATE_RATIO: f64 = 0.8;

/// Overall status of a miner that answered, from what the snapshot shows.
///
/// `sleeping` is the firmware's own soft-off / curtail flag. Degraded: a dead board while others
/// hash, a fan at 0 RPM, configured pools with none alive, or hashrate under 80 % of expected
/// after warm-up. Error: answering but not hashing, and not asleep.
pub fn classify(s: &MinerSnapshot, sleeping: bool) -> MinerStatus {
    if sleeping {
        return MinerStatus::Sleeping;
    }
    let hashrate_ths = s.hashrate_ths.unwrap_or(0.0);
    if hashrate_ths <= 0.0 {
        return MinerStatus::Error;
    }
    if degraded_reason(s).is_some() {
        MinerStatus::Degraded
    } else {
        MinerStatus::Mining
    }
}

/// Why a hashing miner counts as degraded, if it does.
pub fn degraded_reason(s: &MinerSnapshot) -> Option<String> {
    if let Some(b) = s.boards.iter().find(|b| b.failed) {
        return Some(format!("board {} is not hashing", b.index));
    }
    if let Some(i) = s.fans_rpm.iter().position(|rpm| *rpm == 0) {
        return Some(format!("fan {} stopped", i + 1));
    }
    if !s.pools.is_empty() && !s.pools.iter().any(|p| p.status == PoolStatus::Alive) {
        return Some("no pool is alive".into());
    }
    let warmed_up = s.uptime_s.is_some_and(|u| u >= WARMUP_S);
    if let (Some(now), Some(expected), true) = (s.hashrate_ths, s.expected_hashrate_ths, warmed_up)
        && expected > 0.0
        && now < LOW_HASHRATE_RATIO * expected
    {
        return Some(format!(
            "hashrate {now:.1} TH/s is below 80 % of {expected:.1} TH/s"
        ));
    }
    None
}

/// Marks boards that are present but not hashing while another board hashes (a dead board).
pub fn mark_dead_boards(s: &mut MinerSnapshot) {
    let any_hashing = s
        .boards
        .iter()
        .any(|b| b.hashrate_ths.is_some_and(|h| h > 0.0));
    if !any_hashing {
        return;
    }
    for b in &mut s.boards {
        let no_hash = b.hashrate_ths.is_some_and(|h| h <= 0.0);
        let no_chips = b.chips_working == Some(0);
        b.failed = b.failed || no_hash || no_chips;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_core::{BoardSnapshot, PoolSnapshot};

    fn hashing() -> MinerSnapshot {
        let mut s = MinerSnapshot::empty(0, MinerStatus::Mining);
        s.hashrate_ths = Some(100.0);
        s.expected_hashrate_ths = Some(110.0);
        s.uptime_s = Some(5000);
        s.fans_rpm = vec![4000, 4100];
        for i in 0..3 {
            s.boards.push(BoardSnapshot {
                index: i,
                hashrate_ths: Some(33.0),
                ..Default::default()
            });
        }
        s.pools.push(PoolSnapshot {
            index: 0,
            url: "stratum+tcp://p:1".into(),
            user: "w".into(),
            status: PoolStatus::Alive,
            accepted: 1,
            rejected: 0,
            stale: 0,
            active: true,
        });
        s
    }

    #[test]
    fn rules() {
        let s = hashing();
        assert_eq!(classify(&s, false), MinerStatus::Mining);
        assert_eq!(classify(&s, true), MinerStatus::Sleeping);

        let mut dead = hashing();
        dead.boards[1].hashrate_ths = Some(0.0);
        mark_dead_boards(&mut dead);
        assert!(dead.boards[1].failed && !dead.boards[0].failed);
        assert_eq!(classify(&dead, false), MinerStatus::Degraded);

        let mut fan = hashing();
        fan.fans_rpm[1] = 0;
        assert_eq!(classify(&fan, false), MinerStatus::Degraded);

        let mut pool = hashing();
        pool.pools[0].status = PoolStatus::Dead;
        assert_eq!(classify(&pool, false), MinerStatus::Degraded);

        let mut low = hashing();
        low.hashrate_ths = Some(50.0);
        assert_eq!(classify(&low, false), MinerStatus::Degraded);
        low.uptime_s = Some(60);
        assert_eq!(
            classify(&low, false),
            MinerStatus::Mining,
            "still warming up"
        );

        let mut zero = hashing();
        zero.hashrate_ths = Some(0.0);
        assert_eq!(classify(&zero, false), MinerStatus::Error);
    }
}
