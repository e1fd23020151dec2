//! AxeOS commands (PROTOCOLS.md §6): restart, pause/resume, identify, and pool settings via
//! `PATCH /api/system` followed by a restart (settings apply only after one).
//!
//! AxeOS holds two pools (primary and fallback) and stores each as host, port and worker, so a
//! pool list is split into those parts here and compared the same way on read-back.

use crate::bitaxe::parse::pool_url;
use crate::error::DriverError;
use hashmesh_core::PoolConfig;

/// `(host, port)` of a stratum URL (`stratum+tcp://host:port`, `host:port` or a bare host).
pub fn split_url(url: &str) -> Result<(String, Option<u32>), DriverError> {
    let rest = url.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            let port = p
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=65_535).contains(p))
                .ok_or_else(|| {
                    DriverError::Unsupported(format!("pool port out of range in {url:?}"))
                })?;
            (h, Some(port))
        }
        _ => (rest, None),
    };
    if host.is_empty() || host.contains(['/', ' ', '"', ':']) {
        return Err(DriverError::Unsupported(format!("not a pool URL: {url:?}")));
    }
    Ok((host.to_owned(), port))
}

/// The URL as the driver reports it after a read-back (`stratum+tcp://host:port`).
pub fn normalise_url(url: &str) -> String {
    match split_url(url) {
        Ok((host, port)) => pool_url(&host, port),
        Err(_) => url.trim().to_owned(),
    }
}

/// The `PATCH /api/system` body setting the primary (and fallback) pool.
pub fn pools_patch(pools: &[PoolConfig]) -> Result<Vec<u8>, DriverError> {
    if pools.is_empty() || pools.len() > 2 {
        return Err(DriverError::Unsupported(format!(
            "AxeOS holds a primary and a fallback pool; {} given",
            pools.len()
        )));
    }
    let mut body = serde_json::Map::new();
    for (p, prefix) in pools.iter().zip(["stratum", "fallbackStratum"]) {
        let (host, port) = split_url(&p.url)?;
        let port = port
            .ok_or_else(|| DriverError::Unsupported(format!("pool URL {:?} has no port", p.url)))?;
        body.insert(format!("{prefix}URL"), host.into());
        body.insert(format!("{prefix}Port"), port.into());
        body.insert(format!("{prefix}User"), p.user.clone().into());
        body.insert(format!("{prefix}Password"), p.password.clone().into());
    }
    serde_json::to_vec(&body).map_err(|e| DriverError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let ok = |u: &str| split_url(u).unwrap_or_else(|e| panic!("{u}: {e}"));
        assert_eq!(
            ok("stratum+tcp://pool.example:3333"),
            ("pool.example".into(), Some(3333))
        );
        assert_eq!(ok("pool.example:443"), ("pool.example".into(), Some(443)));
        assert_eq!(ok("pool.example"), ("pool.example".into(), None));
        assert!(split_url("stratum+tcp://:3333").is_err());
        assert!(split_url("pool.example:99999").is_err());
        assert_eq!(
            normalise_url("pool.example:3333"),
            "stratum+tcp://pool.example:3333"
        );
    }

    #[test]
    fn patch_has_both_pools() {
        let p = |u: &str| PoolConfig {
            url: u.into(),
            user: "w".into(),
            password: "x".into(),
        };
        let body = pools_patch(&[p("stratum+tcp://a.example:3333"), p("b.example:25")])
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["stratumURL"], "a.example");
        assert_eq!(v["stratumPort"], 3333);
        assert_eq!(v["fallbackStratumPort"], 25);
        assert!(pools_patch(&[p("a:1"), p("b:2"), p("c:3")]).is_err());
        assert!(pools_patch(&[p("a.example")]).is_err());
    }
}
