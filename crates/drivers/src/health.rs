//! The overall [`MinerStatus`] of a miner that answered, judged from its normalised snapshot by
//! one set of rules every family shares (hashrate, boards, fans, pools, warm-up), plus marking
//! dead boards. Pure functions over core types; what really differs between families (how long
//! the warm-up lasts, whether an empty pool list is a fault) is a [`StatusRules`] parameter.

use hashmesh_core::{MinerSnapshot, MinerStatus, PoolStatus};

/// Share of the expected hashrate below which a warmed-up miner is degraded.
pub const LOW_HASHRATE_RATIO: f64 = 0.8;

/// The family-specific knobs of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusRules {
    /// Seconds after start during which a low hashrate is not yet a problem (chips still tune).
    pub warm_up_s: u64,
    /// Whether a miner that reports no pools at all is degraded. Families whose pool list comes
    /// from a required reply say yes (no pools = nowhere to send work); Avalon and LuxOS drop a
    /// refused optional `pools` member to an empty list, which must not flag the miner.
    pub empty_pools_degraded: bool,
    /// Whether a hashing board makes the miner count as hashing when the overall rate is 0 or
    /// missing. Avalon and LuxOS report the overall rate for the whole machine in every reply,
    /// so there it alone decides; families that may lack it fall back to the boards.
    pub hashing_from_boards: bool,
}

impl StatusRules {
    /// cgminer, BFGMiner, Antminer, Braiins OS (and the non-cgminer families that reuse them):
    /// 10 minutes of warm-up, no pools is degraded.
    pub const CGMINER: StatusRules = StatusRules {
        warm_up_s: 600,
        empty_pools_degraded: true,
        hashing_from_boards: true,
    };

    /// Avalon and LuxOS: 15 minutes of warm-up (their firmwares keep tuning clocks and voltage
    /// for longer after start), and an empty pool list is not by itself a fault.
    pub const AVALON_LUXOS: StatusRules = StatusRules {
        warm_up_s: 900,
        empty_pools_degraded: false,
        hashing_from_boards: false,
    };
}

/// Overall status of a miner that answered, from what the snapshot shows.
///
/// `sleeping` is the firmware's own soft-off / pause / curtail state. Sleeping wins; a miner
/// neither asleep nor hashing (no positive overall rate, nor on a board where the rules let
/// boards count) is Error; a hashing
/// miner with a [`degraded_reason`] is Degraded; else Mining.
pub fn classify(s: &MinerSnapshot, sleeping: bool, rules: &StatusRules) -> MinerStatus {
    if sleeping {
        return MinerStatus::Sleeping;
    }
    let hashing = s.hashrate_ths.is_some_and(|h| h > 0.0)
        || (rules.hashing_from_boards
            && s.boards
                .iter()
                .any(|b| b.hashrate_ths.is_some_and(|h| h > 0.0)));
    if !hashing {
        return MinerStatus::Error;
    }
    if degraded_reason(s, rules).is_some() {
        MinerStatus::Degraded
    } else {
        MinerStatus::Mining
    }
}

/// Why a hashing miner counts as degraded, if it does: a board failed, without working chips
/// or without hashrate; a fan at 0 RPM; no pool alive; or, after warm-up, a hashrate below
/// [`LOW_HASHRATE_RATIO`] of the expected rate.
pub fn degraded_reason(s: &MinerSnapshot, rules: &StatusRules) -> Option<String> {
    if let Some(b) = s.boards.iter().find(|b| {
        b.failed || b.chips_working == Some(0) || b.hashrate_ths.is_some_and(|h| h <= 0.0)
    }) {
        return Some(format!("board {} is not hashing", b.index));
    }
    if let Some(i) = s.fans_rpm.iter().position(|rpm| *rpm == 0) {
        return Some(format!("fan {} stopped", i + 1));
    }
    let pools_matter = rules.empty_pools_degraded || !s.pools.is_empty();
    if pools_matter && !s.pools.iter().any(|p| p.status == PoolStatus::Alive) {
        return Some("no pool is alive".into());
    }
    let warmed_up = s.uptime_s.is_some_and(|u| u >= rules.warm_up_s);
    if let (Some(now), Some(expected), true) = (s.hashrate_ths, s.expected_hashrate_ths, warmed_up)
        && expected > 0.0
        && now < LOW_HASHRATE_RATIO * expected
    {
        return Some(format!(
            "hashrate {now:.1} TH/s is below {:.0} % of {expected:.1} TH/s",
            LOW_HASHRATE_RATIO * 100.0
        ));
    }
    None
}

/// Marks boards that are present but not hashing (rate 0 or no working chips) as failed, when
/// another board hashes: a whole miner at 0 is asleep or in error, not a set of dead boards.
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
        let r = &StatusRules::AVALON_LUXOS;
        let s = hashing();
        assert_eq!(classify(&s, false, r), MinerStatus::Mining);
        assert_eq!(classify(&s, true, r), MinerStatus::Sleeping);

        let mut dead = hashing();
        dead.boards[1].hashrate_ths = Some(0.0);
        mark_dead_boards(&mut dead);
        assert!(dead.boards[1].failed && !dead.boards[0].failed);
        assert_eq!(classify(&dead, false, r), MinerStatus::Degraded);

        let mut fan = hashing();
        fan.fans_rpm[1] = 0;
        assert_eq!(classify(&fan, false, r), MinerStatus::Degraded);

        let mut pool = hashing();
        pool.pools[0].status = PoolStatus::Dead;
        assert_eq!(classify(&pool, false, r), MinerStatus::Degraded);

        let mut low = hashing();
        low.hashrate_ths = Some(50.0);
        assert_eq!(classify(&low, false, r), MinerStatus::Degraded);
        low.uptime_s = Some(60);
        assert_eq!(
            classify(&low, false, r),
            MinerStatus::Mining,
            "still warming up"
        );

        let mut zero = hashing();
        zero.hashrate_ths = Some(0.0);
        assert_eq!(classify(&zero, false, r), MinerStatus::Error);
    }

    #[test]
    fn family_parameters() {
        let mut low = hashing();
        low.hashrate_ths = Some(50.0);
        low.uptime_s = Some(700);
        assert_eq!(
            classify(&low, false, &StatusRules::CGMINER),
            MinerStatus::Degraded,
            "past cgminer's 10-minute warm-up"
        );
        assert_eq!(
            classify(&low, false, &StatusRules::AVALON_LUXOS),
            MinerStatus::Mining,
            "inside the 15-minute warm-up"
        );

        let mut no_pools = hashing();
        no_pools.pools.clear();
        assert_eq!(
            classify(&no_pools, false, &StatusRules::CGMINER),
            MinerStatus::Degraded
        );
        assert_eq!(
            classify(&no_pools, false, &StatusRules::AVALON_LUXOS),
            MinerStatus::Mining
        );

        let mut boards_only = hashing();
        boards_only.hashrate_ths = None;
        assert_eq!(
            classify(&boards_only, false, &StatusRules::CGMINER),
            MinerStatus::Mining,
            "hashing boards count when the summary rate is missing"
        );
        assert_eq!(
            classify(&boards_only, false, &StatusRules::AVALON_LUXOS),
            MinerStatus::Error
        );
    }
}
