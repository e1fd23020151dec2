//! cgminer-level commands every fork shares (PROTOCOLS.md §1.5, §1.7, §1.11): privileged
//! requests with their STATUS checked, `restart`, and replacing the pool list with
//! `addpool` / `poolpriority` / `switchpool` / `removepool`.

use crate::cgminer::parse::{PoolEntry, PoolsReply};
use crate::cgminer::proto;
use crate::cgminer::reply::{OneOrFirst, StatusEntry, check_status, decode};
use crate::driver::Ack;
use crate::error::DriverError;
use crate::target::Target;
use hashmesh_core::PoolConfig;
use serde::Deserialize;

/// A reply that carries only a STATUS (every write command's reply).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusOnly {
    /// Status of the command.
    #[serde(rename = "STATUS", default)]
    pub status: OneOrFirst<StatusEntry>,
}

/// Escapes a value for a comma-separated cgminer parameter (`\,` and `\\`, §1.2).
pub fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if c == ',' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sends one JSON command and returns its raw reply.
pub async fn request(
    target: &Target,
    command: &str,
    parameter: Option<&str>,
) -> Result<Vec<u8>, DriverError> {
    let req = proto::json_request(command, parameter);
    proto::exchange(target.rpc_addr(), &req, &target.timeouts).await
}

/// Sends a command whose reply is only a STATUS; S/I succeed with the device's message, E/F are
/// `Rejected`, Code 45 is `Auth`. A missing STATUS is `Malformed`: a write must be acknowledged.
pub async fn command(
    target: &Target,
    command: &str,
    parameter: Option<&str>,
) -> Result<Ack, DriverError> {
    let raw = request(target, command, parameter).await?;
    ack_from_reply(&raw, command)
}

/// Reads a write command's reply into an [`Ack`] (pure; see [`command`]).
pub fn ack_from_reply(raw: &[u8], command: &str) -> Result<Ack, DriverError> {
    let reply = decode::<StatusOnly>(raw)?.value;
    let status = reply
        .status
        .get()
        .ok_or_else(|| DriverError::Malformed(format!("{command} reply has no STATUS")))?;
    check_status(Some(status))?;
    let msg = status.msg.trimmed();
    Ok(Ack {
        message: if msg.is_empty() {
            format!("{command} ok")
        } else {
            msg.to_owned()
        },
        silent: false,
    })
}

/// Sends `restart`. cgminer answers before it restarts, but some forks close the socket without
/// a reply; that counts as a silent acknowledgement, to be confirmed by the uptime read-back.
pub async fn restart(target: &Target) -> Result<Ack, DriverError> {
    match command(target, "restart", None).await {
        Err(DriverError::Malformed(m)) if m == "empty reply" => Ok(Ack {
            message: "connection closed without a reply (restarting)".into(),
            silent: true,
        }),
        other => other,
    }
}

/// Whether an exchange error means the device closed the socket without a reply, as some
/// firmwares do on `restart`, reboot or soft-on: the caller records a silent ack and lets the
/// read-back decide.
pub fn closed_without_reply(e: &DriverError) -> bool {
    match e {
        DriverError::Malformed(m) => m == "empty reply",
        DriverError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Reads the pool list.
pub async fn read_pools(target: &Target) -> Result<Vec<PoolEntry>, DriverError> {
    let raw = request(target, "pools", None).await?;
    let reply = decode::<PoolsReply>(&raw)?.value;
    check_status(reply.status.get())?;
    Ok(reply.pools.0)
}

fn pool_id(p: &PoolEntry) -> Option<u64> {
    p.pool.as_u64()
}

fn same_pool(p: &PoolEntry, want: &PoolConfig) -> bool {
    p.url.trimmed() == want.url.trim() && p.user.0 == want.user
}

/// How pool writes are sent: cgminer's `addpool` / `switchpool` / `removepool`, plus
/// `poolpriority` where the firmware has it (cgminer, Avalon, Antminer, Braiins OS do; LuxOS
/// documents no such command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWrites {
    /// Order the wanted pools with `poolpriority`.
    pub use_poolpriority: bool,
}

/// Replaces the pool list with `wanted` (first = highest priority) using cgminer's pool commands,
/// `poolpriority` included ([`set_pools_with`]).
pub async fn set_pools(target: &Target, wanted: &[PoolConfig]) -> Result<Ack, DriverError> {
    set_pools_with(
        target,
        wanted,
        PoolWrites {
            use_poolpriority: true,
        },
    )
    .await
}

/// Replaces the pool list with `wanted` (first = highest priority): add the missing pools,
/// order them with `poolpriority` (when `how` allows), switch to the first, then remove the
/// pools that are not wanted (highest number first, since cgminer renumbers after a removal).
pub async fn set_pools_with(
    target: &Target,
    wanted: &[PoolConfig],
    how: PoolWrites,
) -> Result<Ack, DriverError> {
    if wanted.is_empty() {
        return Err(DriverError::Rejected(
            "refusing to set an empty pool list".into(),
        ));
    }
    let mut current = read_pools(target).await?;
    let mut added = 0;
    for want in wanted {
        if !current.iter().any(|p| same_pool(p, want)) {
            let param = format!(
                "{},{},{}",
                escape_param(&want.url),
                escape_param(&want.user),
                escape_param(&want.password)
            );
            command(target, "addpool", Some(&param)).await?;
            added += 1;
        }
    }
    if added > 0 {
        current = read_pools(target).await?;
    }
    let mut order = Vec::with_capacity(wanted.len());
    for want in wanted {
        let id = current
            .iter()
            .find(|p| same_pool(p, want))
            .and_then(pool_id)
            .ok_or_else(|| DriverError::Rejected(format!("pool {} was not added", want.url)))?;
        if !order.contains(&id) {
            order.push(id);
        }
    }
    let ids: Vec<String> = order.iter().map(u64::to_string).collect();
    if how.use_poolpriority {
        command(target, "poolpriority", Some(&ids.join(","))).await?;
    }
    if let Some(first) = order.first() {
        command(target, "switchpool", Some(&first.to_string())).await?;
    }
    let mut unwanted: Vec<u64> = current
        .iter()
        .filter(|p| !wanted.iter().any(|w| same_pool(p, w)))
        .filter_map(pool_id)
        .collect();
    unwanted.sort_unstable_by(|a, b| b.cmp(a));
    for id in &unwanted {
        command(target, "removepool", Some(&id.to_string())).await?;
    }
    let ordered = if how.use_poolpriority {
        "priority"
    } else {
        "switched to"
    };
    Ok(Ack {
        message: format!(
            "pools set: {} added, {} removed, {ordered} {}",
            added,
            unwanted.len(),
            if how.use_poolpriority {
                ids.join(",")
            } else {
                order.first().map(u64::to_string).unwrap_or_default()
            }
        ),
        silent: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_escaped() {
        assert_eq!(escape_param("a,b\\c"), "a\\,b\\\\c");
        assert_eq!(escape_param("stratum+tcp://p:1"), "stratum+tcp://p:1");
    }

    #[test]
    fn acks_follow_status() {
        let ok = br#"{"STATUS":[{"STATUS":"S","Code":55,"Msg":"Added pool 2: 'stratum+tcp://p:1'"}],"id":1}"#;
        assert_eq!(
            ack_from_reply(ok, "addpool")
                .map(|a| a.message)
                .ok()
                .as_deref(),
            Some("Added pool 2: 'stratum+tcp://p:1'")
        );
        let denied = br#"{"STATUS":[{"STATUS":"E","Code":45,"Msg":"Access denied to 'addpool' command"}],"id":1}"#;
        assert!(matches!(
            ack_from_reply(denied, "addpool"),
            Err(DriverError::Auth(_))
        ));
        let bad =
            br#"{"STATUS":[{"STATUS":"E","Code":50,"Msg":"Cannot remove active pool"}],"id":1}"#;
        assert!(
            matches!(ack_from_reply(bad, "removepool"), Err(DriverError::Rejected(m)) if m == "Cannot remove active pool")
        );
        assert!(matches!(
            ack_from_reply(b"{}", "x"),
            Err(DriverError::Malformed(_))
        ));
    }
}
