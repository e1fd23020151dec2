//! Avalon commands (PROTOCOLS.md §3.3): each [`Command`] becomes one or more cgminer requests,
//! mostly privileged `ascset|0,<opt>,<value>`, and [`check`] reads the effect back from `estats`.
//!
//! Power modes map onto `WORKMODE` (`ascset 0,workmode,<n>`), read back from the `MM ID`
//! string: 0 = [`PowerMode::Normal`], 1 = [`PowerMode::High`] (MOS's numbering, §3.3) and
//! 2 = [`PowerMode::Low`] (the efficiency mode of newer models; **verify** per model). Work
//! *levels* (`worklevel`) are finer steps below a mode and are left alone.

use crate::verify::{self, Verdict};
use hashmesh_core::{Command, MinerSnapshot, MinerStatus, PowerMode};

/// How far ahead a scheduled soft-off / soft-on is set: the firmware ignores times in the past,
/// and asic-rs / MOS use a few seconds.
pub const SOFT_SWITCH_LEAD_S: u64 = 5;

/// The `ascset` parameter for `0,<opt>,<value>` (module 0 is the whole miner on Canaan firmware).
pub fn ascset(opt: &str, value: &str) -> String {
    format!("0,{opt},{value}")
}

/// Soft-off (sleep) at `at_unix_s`: `0,softoff,1:<ts>`.
pub fn soft_off(at_unix_s: u64) -> String {
    ascset("softoff", &format!("1:{at_unix_s}"))
}

/// Soft-on (wake) at `at_unix_s`: `0,softon,1:<ts>`.
pub fn soft_on(at_unix_s: u64) -> String {
    ascset("softon", &format!("1:{at_unix_s}"))
}

/// Locate LED on (`0,led,1-1`) or off (`0,led,1-0`).
pub fn led(on: bool) -> String {
    ascset("led", if on { "1-1" } else { "1-0" })
}

/// The work mode number that stands for `mode` (see the module doc).
pub fn work_mode_for(mode: PowerMode) -> i64 {
    match mode {
        PowerMode::Normal => 0,
        PowerMode::High => 1,
        PowerMode::Low => 2,
    }
}

/// The power mode a reported `WORKMODE` stands for; other numbers have no mode.
pub fn mode_for_work_mode(mode: i64) -> Option<PowerMode> {
    match mode {
        0 => Some(PowerMode::Normal),
        1 => Some(PowerMode::High),
        2 => Some(PowerMode::Low),
        _ => None,
    }
}

/// Select a work mode: `0,workmode,<n>`.
pub fn work_mode(mode: i64) -> String {
    ascset("workmode", &mode.to_string())
}

/// Set the power level within a mode: `0,worklevel,set,<n>`.
pub fn work_level(level: i64) -> String {
    ascset("worklevel", &format!("set,{level}"))
}

/// Reboot the controller through `ascset` (the fallback when RPC `restart` is refused).
pub fn reboot() -> String {
    ascset("reboot", "0")
}

/// Seconds since the unix epoch, for scheduling soft-off / soft-on.
pub fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Avalon read-back (§3.3). Sleep is confirmed by soft-off (status Sleeping, which the parser
/// sets from `SoftOFF` / `SYSTEMSTATU In Idle`); wake needs soft-off cleared and hashing again.
/// Everything else is the generic check on the normalised snapshot.
pub fn check(command: &Command, before: Option<&MinerSnapshot>, after: &MinerSnapshot) -> Verdict {
    match command {
        Command::Wake => match after.status {
            MinerStatus::Sleeping => Verdict::Pending("soft-off still active".into()),
            _ if after.hashrate_ths.is_some_and(|h| h > 0.0) => Verdict::Confirmed(format!(
                "soft-off cleared, hashing {:.1} TH/s",
                after.hashrate_ths.unwrap_or(0.0)
            )),
            // Soft-on clears SoftOFF at once but the boards take a while to ramp up.
            _ => Verdict::Pending("soft-off cleared, hashrate not rising yet".into()),
        },
        _ => verify::check(command, before, after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters() {
        assert_eq!(soft_off(1_718_000_005), "0,softoff,1:1718000005");
        assert_eq!(soft_on(7), "0,softon,1:7");
        assert_eq!(led(true), "0,led,1-1");
        assert_eq!(led(false), "0,led,1-0");
        assert_eq!(work_mode(work_mode_for(PowerMode::High)), "0,workmode,1");
        assert_eq!(work_level(3), "0,worklevel,set,3");
        assert_eq!(reboot(), "0,reboot,0");
        for mode in [PowerMode::Low, PowerMode::Normal, PowerMode::High] {
            assert_eq!(mode_for_work_mode(work_mode_for(mode)), Some(mode));
        }
        assert_eq!(mode_for_work_mode(255), None);
    }

    #[test]
    fn wake_needs_hashrate() {
        let mut after = MinerSnapshot::empty(0, MinerStatus::Sleeping);
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Pending(_)
        ));
        after.status = MinerStatus::Error;
        after.hashrate_ths = Some(0.0);
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Pending(_)
        ));
        after.hashrate_ths = Some(12.0);
        after.status = MinerStatus::Degraded;
        assert!(matches!(
            check(&Command::Wake, None, &after),
            Verdict::Confirmed(_)
        ));
    }
}

/// How pool writes are sent: cgminer's `addpool`/`switchpool`/`removepool`, plus
/// `poolpriority` where the firmware has it (Avalon does; LuxOS documents no such command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWrites {
    /// Reorder with `poolpriority` when the wanted pools end up out of order.
    pub use_poolpriority: bool,
}

/// One cgminer request on its own connection; the STATUS must be S or I.
pub(crate) async fn request_ok(
    addr: std::net::SocketAddr,
    command: &str,
    parameter: Option<&str>,
    timeouts: &crate::target::Timeouts,
) -> Result<String, crate::error::DriverError> {
    let raw = crate::cgminer::proto::exchange(
        addr,
        &crate::cgminer::proto::json_request(command, parameter),
        timeouts,
    )
    .await?;
    parse_ack(&raw)
}

/// Escapes `,` and `\` in one field of a comma-separated cgminer parameter (§1.2).
pub fn escape_param(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        if c == ',' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The STATUS of a write reply: accepts `S`, `I` (Canaan's 118 "set info") and the bare
/// `{"STATUS":"RESTART"}` of `restart`; `E`/`F` become [`crate::DriverError::Rejected`] with the
/// device's message, Code 45 [`crate::DriverError::Auth`]. Returns the device's message.
pub fn parse_ack(raw: &[u8]) -> Result<String, crate::error::DriverError> {
    use crate::cgminer::reply::{OneOrFirst, StatusEntry, check_status, decode};
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum AckStatus {
        Entry(OneOrFirst<StatusEntry>),
        Word(String),
    }
    #[derive(serde::Deserialize)]
    struct AckReply {
        #[serde(rename = "STATUS")]
        status: Option<AckStatus>,
    }
    let reply = decode::<AckReply>(raw)?.value;
    match reply.status {
        Some(AckStatus::Word(w)) => Ok(w),
        Some(AckStatus::Entry(OneOrFirst(Some(st)))) => {
            check_status(Some(&st))?;
            let msg = st.msg.trimmed();
            Ok(if msg.is_empty() {
                format!("STATUS {}", st.letter())
            } else {
                msg.to_string()
            })
        }
        _ => Err(crate::error::DriverError::Malformed(
            "write reply without STATUS".into(),
        )),
    }
}

/// Replaces the pool list with `wanted` (first = highest priority) using cgminer pool commands:
/// add the missing pools, switch to the first, remove the rest (highest index first, so indexes
/// do not shift under us), then reorder if needed. Returns what was done.
pub async fn set_pools(
    addr: std::net::SocketAddr,
    timeouts: &crate::target::Timeouts,
    wanted: &[hashmesh_core::PoolConfig],
    how: PoolWrites,
) -> Result<String, crate::error::DriverError> {
    use crate::avalon::parse::{parse_pools, pools_from};
    use crate::cgminer::proto::{exchange, json_request};
    use crate::error::DriverError;
    if wanted.is_empty() {
        return Err(DriverError::Unsupported(
            "an empty pool list would stop mining".into(),
        ));
    }
    let read = || async {
        let raw = exchange(addr, &json_request("pools", None), timeouts).await?;
        parse_pools(&raw).map(|(p, _)| pools_from(&p))
    };
    let same = |p: &hashmesh_core::PoolSnapshot, w: &hashmesh_core::PoolConfig| {
        p.url == w.url && p.user == w.user
    };
    let mut done = Vec::new();
    let current = read().await?;
    for w in wanted
        .iter()
        .filter(|w| !current.iter().any(|p| same(p, w)))
    {
        let param = format!(
            "{},{},{}",
            escape_param(&w.url),
            escape_param(&w.user),
            escape_param(&w.password)
        );
        request_ok(addr, "addpool", Some(&param), timeouts).await?;
        done.push(format!("added {}", w.url));
    }
    let current = read().await?;
    let index_of =
        |w: &hashmesh_core::PoolConfig| current.iter().find(|p| same(p, w)).map(|p| p.index);
    let first = index_of(&wanted[0])
        .ok_or_else(|| DriverError::Rejected(format!("{} missing after addpool", wanted[0].url)))?;
    request_ok(addr, "switchpool", Some(&first.to_string()), timeouts).await?;
    done.push(format!("switched to pool {first}"));
    let mut unwanted: Vec<u32> = current
        .iter()
        .filter(|p| !wanted.iter().any(|w| same(p, w)))
        .map(|p| p.index)
        .collect();
    unwanted.sort_unstable_by(|a, b| b.cmp(a));
    for i in unwanted {
        request_ok(addr, "removepool", Some(&i.to_string()), timeouts).await?;
        done.push(format!("removed pool {i}"));
    }
    if how.use_poolpriority {
        let now = read().await?;
        let in_order = now.len() >= wanted.len() && now.iter().zip(wanted).all(|(p, w)| same(p, w));
        if !in_order {
            let order: Vec<String> = wanted
                .iter()
                .filter_map(|w| now.iter().find(|p| same(p, w)))
                .map(|p| p.index.to_string())
                .collect();
            request_ok(addr, "poolpriority", Some(&order.join(",")), timeouts).await?;
            done.push(format!("priority {}", order.join(",")));
        }
    }
    Ok(done.join("; "))
}
