//! The node's configuration: a TOML file (see `hashmesh.example.toml` at the repository root),
//! every key of which can be overridden by an environment variable or a `--set` flag.
//!
//! Overrides name keys by their dotted path: `--set poll.interval_s=5`, or the environment
//! variable `HASHMESH_POLL__INTERVAL_S=5` (sections joined by `__`; top-level keys are plain:
//! `HASHMESH_DATA_DIR`). Values are read as TOML (`5`, `true`, `["10.0.0.0/24"]`) and
//! otherwise taken as a string. Errors name the file, the line and the key.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid, with where and why.
    #[error("{0}")]
    Invalid(String),
}

/// Everything a node needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the inventory, the time-series store and queues live.
    pub data_dir: PathBuf,
    /// Address of the HTTP server (`/metrics`, and the API).
    pub listen: SocketAddr,
    /// This node's name, attached to exported metrics as the `node` label.
    pub node_name: String,
    /// Finding devices.
    pub discovery: DiscoveryConfig,
    /// Polling devices.
    pub poll: PollConfig,
    /// Keeping history.
    pub store: StoreSection,
    /// The Prometheus `/metrics` endpoint.
    pub metrics: MetricsConfig,
    /// Who may use the API and dashboard: sessions, login limits, anonymous reads.
    pub auth: crate::auth::AuthConfig,
    /// Pushing to a Prometheus remote-write receiver (VictoriaMetrics, Mimir, Prometheus).
    pub remote_write: Option<RemoteWriteSection>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("hashmesh-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node_name: "hashmesh".into(),
            discovery: DiscoveryConfig::default(),
            poll: PollConfig::default(),
            store: StoreSection::default(),
            metrics: MetricsConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            remote_write: None,
        }
    }
}

/// Which networks to scan, how often, and at which ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// CIDR ranges to scan (`10.20.0.0/16`).
    pub ranges: Vec<IpNet>,
    /// Seconds between scans after the first one at start; 0 scans only at start.
    pub interval_s: u64,
    /// Also look for Modbus TCP power meters.
    pub meters: bool,
    /// cgminer-style RPC port.
    pub rpc_port: u16,
    /// Web port (AxeOS, Antminer web, Braiins REST).
    pub web_port: u16,
    /// Modbus TCP port.
    pub modbus_port: u16,
    /// Simultaneous reachability probes.
    pub probe_concurrency: usize,
    /// Simultaneous identifications.
    pub identify_concurrency: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            ranges: Vec::new(),
            interval_s: 3600,
            meters: true,
            rpc_port: 4028,
            web_port: 80,
            modbus_port: 502,
            probe_concurrency: 2048,
            identify_concurrency: 256,
        }
    }
}

/// How devices are polled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Seconds between two polls of one device.
    pub interval_s: f64,
    /// Random shift of each poll, as a share of the interval (0.05 = up to ±5 %).
    pub jitter: f64,
    /// Polls in flight at once: a cap on sockets and poll state, not memory set aside.
    pub concurrency: usize,
    /// TCP connect deadline, ms.
    pub connect_timeout_ms: u64,
    /// Deadline for a whole poll, ms.
    pub timeout_ms: u64,
    /// Longest wait between polls of a device that stays offline, seconds.
    pub offline_backoff_max_s: f64,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval_s: 10.0,
            jitter: 0.05,
            // Slots needed ≈ polls per second × seconds a poll takes (Little's law): 100k
            // devices every 10 s answering in 100–200 ms need 1,000–2,000, and at 1,024 a
            // few thousand due polls a cycle waited for a slot on a loaded host. A free slot
            // costs nothing; a busy one holds a socket and its poll task until its deadline.
            concurrency: 2048,
            connect_timeout_ms: 1500,
            timeout_ms: 5000,
            offline_backoff_max_s: 300.0,
        }
    }
}

impl PollConfig {
    /// The poll interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_s)
    }
}

/// History kept on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// How often the write-ahead log is forced to disk, ms (the most a crash can lose).
    pub flush_interval_ms: u64,
    /// Seconds of rows held in memory before they are written as chunks (memory grows with
    /// polls per second times this).
    pub seal_interval_s: u64,
    /// Days of raw (per poll) rows.
    pub retention_raw_days: u64,
    /// Days of 1-minute rollups.
    pub retention_1m_days: u64,
    /// Days of 5-minute rollups.
    pub retention_5m_days: u64,
    /// Days of 1-hour rollups.
    pub retention_1h_days: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            flush_interval_ms: 1000,
            seal_interval_s: 10,
            retention_raw_days: 14,
            retention_1m_days: 30,
            retention_5m_days: 365,
            retention_1h_days: 5 * 365,
        }
    }
}

/// The `/metrics` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Also expose one series per device (large on big sites).
    pub per_device: bool,
}

/// Where and how to push metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteSection {
    /// Receiver URL, e.g. `http://127.0.0.1:8428/api/v1/write`.
    pub url: String,
    /// Seconds between pushes.
    pub interval_s: f64,
    /// Also push one series per device.
    pub per_device: bool,
    /// Largest on-disk backlog kept while the receiver is down, MiB.
    pub queue_max_mib: u64,
    /// Extra HTTP headers (e.g. `Authorization = "Bearer …"`).
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Default for RemoteWriteSection {
    fn default() -> Self {
        RemoteWriteSection {
            url: String::new(),
            interval_s: 15.0,
            per_device: false,
            queue_max_mib: 512,
            headers: Default::default(),
        }
    }
}

/// One override of a key, and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Dotted key path (`poll.interval_s`).
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Where it came from (`--set`, `environment variable HASHMESH_…`, `--scan`).
    pub origin: String,
}

impl Override {
    /// Parses `key=value` as given to `--set`.
    pub fn parse_set(s: &str) -> Result<Override, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s}: expected key=value, e.g. poll.interval_s=5"))?;
        Ok(Override {
            key: k.trim().to_owned(),
            value: v.to_owned(),
            origin: format!("--set {s}"),
        })
    }

    /// Overrides from `HASHMESH_*` environment variables, except the ones listed in `skip`
    /// (variables other commands or flags use for themselves).
    pub fn from_env(vars: impl Iterator<Item = (String, String)>, skip: &[&str]) -> Vec<Override> {
        let mut out: Vec<Override> = vars
            .filter(|(k, _)| k.starts_with("HASHMESH_") && !skip.contains(&k.as_str()))
            .map(|(k, v)| Override {
                key: k["HASHMESH_".len()..]
                    .split("__")
                    .map(str::to_ascii_lowercase)
                    .collect::<Vec<_>>()
                    .join("."),
                value: v,
                origin: format!("environment variable {k}"),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

impl Config {
    /// Reads `path` (when given) and applies the overrides in order.
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<Config, ConfigError> {
        let (text, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "(defaults)".to_owned()),
        };
        Config::from_toml(&text, &name, overrides)
    }

    /// Parses TOML `text` (named `name` in errors) and applies the overrides.
    pub fn from_toml(
        text: &str,
        name: &str,
        overrides: &[Override],
    ) -> Result<Config, ConfigError> {
        // Deserialising the text itself first gives errors with the file's line numbers.
        let config: Config = toml::from_str(text).map_err(|e| locate_error(text, name, &e))?;
        if overrides.is_empty() {
            config.validate()?;
            return Ok(config);
        }
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| locate_error(text, name, &e))?;
        for o in overrides {
            set_path(&mut table, o)?;
            // Checking after each override pins a bad value on the override that brought it.
            let one: Result<Config, _> = toml::Value::Table(table.clone()).try_into();
            if let Err(e) = one {
                return Err(ConfigError::Invalid(format!(
                    "{}: key {}: {}",
                    o.origin,
                    o.key,
                    e.message()
                )));
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("key {key}: {why}")));
        let p = &self.poll;
        if !(p.interval_s.is_finite() && p.interval_s >= 0.1) {
            return bad("poll.interval_s", "must be at least 0.1 seconds");
        }
        if !(0.0..=0.5).contains(&p.jitter) {
            return bad("poll.jitter", "must be between 0 and 0.5");
        }
        if p.concurrency == 0 {
            return bad("poll.concurrency", "must be at least 1");
        }
        if p.timeout_ms == 0 || p.connect_timeout_ms == 0 {
            return bad("poll.timeout_ms", "deadlines must be above 0");
        }
        if !(p.offline_backoff_max_s.is_finite() && p.offline_backoff_max_s >= p.interval_s) {
            return bad(
                "poll.offline_backoff_max_s",
                "must be at least poll.interval_s",
            );
        }
        if self.discovery.probe_concurrency == 0 || self.discovery.identify_concurrency == 0 {
            return bad(
                "discovery.probe_concurrency",
                "concurrency must be at least 1",
            );
        }
        if self.store.flush_interval_ms == 0 {
            return bad("store.flush_interval_ms", "must be above 0");
        }
        if !(1..=3600).contains(&self.store.seal_interval_s) {
            return bad("store.seal_interval_s", "must be between 1 and 3600");
        }
        self.auth.validate().map_err(ConfigError::Invalid)?;
        if let Some(rw) = &self.remote_write {
            if !(rw.url.starts_with("http://") || rw.url.starts_with("https://")) {
                return bad("remote_write.url", "must be an http:// or https:// URL");
            }
            if !(rw.interval_s.is_finite() && rw.interval_s >= 1.0) {
                return bad("remote_write.interval_s", "must be at least 1 second");
            }
        }
        Ok(())
    }
}

/// Puts an override into the table, creating sections on the way.
fn set_path(table: &mut toml::Table, o: &Override) -> Result<(), ConfigError> {
    let parts: Vec<&str> = o.key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Invalid(format!(
            "{}: '{}' is not a key path",
            o.origin, o.key
        )));
    }
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "{}: key {}: '{part}' is not a section",
                    o.origin, o.key
                )));
            }
        };
    }
    let value = parse_value(&o.value);
    if let Some(last) = parts.last() {
        cur.insert((*last).to_owned(), value);
    }
    Ok(())
}

/// A value as TOML when it reads as TOML, else as a string.
fn parse_value(s: &str) -> toml::Value {
    let doc = format!("v = {s}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(s.to_owned())),
        Err(_) => toml::Value::String(s.to_owned()),
    }
}

/// Turns a TOML error into `file line N, key a.b: message`.
fn locate_error(text: &str, name: &str, e: &toml::de::Error) -> ConfigError {
    let Some(span) = e.span() else {
        return ConfigError::Invalid(format!("{name}: {}", e.message()));
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let key = key_at(text, span.start);
    let key = key.map(|k| format!(", key {k}")).unwrap_or_default();
    ConfigError::Invalid(format!("{name} line {line}{key}: {}", e.message()))
}

/// The dotted key whose line holds byte `offset`: the nearest `[section]` above plus the key
/// on that line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let mut section = String::new();
    for l in text[..line_start].lines().rev() {
        let l = l.trim();
        if l.starts_with('[') {
            section = l.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
            break;
        }
    }
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = line.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    Some(if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        let c = Config::from_toml("", "x", &[]).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_example_config_parses_and_documents_every_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hashmesh.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c = Config::from_toml(&text, "example", &[]).unwrap();
        assert_eq!(c.poll.interval_s, 10.0);
        // Every key of the defaults appears in the example, so the example stays the manual.
        let defaults = toml::to_string(&Config {
            remote_write: Some(RemoteWriteSection::default()),
            ..Config::default()
        })
        .unwrap();
        let mut section = String::new();
        for line in defaults.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
                assert!(text.contains(&section), "example lacks {section}");
            } else if let Some((k, _)) = line.split_once(" = ") {
                assert!(
                    text.contains(&format!("{k} =")),
                    "example lacks {section} {k}"
                );
            }
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = "data_dir = \"d\"\n\n[poll]\nintervall_s = 3\n";
        let e = Config::from_toml(text, "site.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("site.toml line 4, key poll.intervall_s:"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let text = "[poll]\ninterval_s = 10\nconcurrency = \"many\"\n";
        let e = Config::from_toml(text, "site.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("site.toml line 3, key poll.concurrency:"),
            "{e}"
        );
    }

    #[test]
    fn bad_cidr_is_refused_with_its_key() {
        let text = "[discovery]\nranges = [\"10.0.0.0/33\"]\n";
        let e = Config::from_toml(text, "s.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, key discovery.ranges"), "{e}");
    }

    #[test]
    fn overrides_from_flags_and_environment() {
        let env = vec![
            ("HASHMESH_POLL__INTERVAL_S".to_string(), "5".to_string()),
            ("HASHMESH_DATA_DIR".to_string(), "/var/lib/hm".to_string()),
            ("HASHMESH_CONFIG".to_string(), "ignored".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let mut o = Override::from_env(env.into_iter(), &["HASHMESH_CONFIG"]);
        o.push(Override::parse_set("discovery.ranges=[\"127.20.0.0/24\"]").unwrap());
        o.push(Override::parse_set("remote_write.url=http://127.0.0.1:8428/api/v1/write").unwrap());
        let c = Config::from_toml("[poll]\ninterval_s = 30\n", "s.toml", &o).unwrap();
        assert_eq!(c.poll.interval_s, 5.0);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/hm"));
        assert_eq!(c.discovery.ranges.len(), 1);
        assert_eq!(
            c.remote_write.map(|r| r.url).as_deref(),
            Some("http://127.0.0.1:8428/api/v1/write")
        );
    }

    #[test]
    fn bad_override_names_its_origin() {
        let o = vec![Override::parse_set("poll.interval_s=often").unwrap()];
        let e = Config::from_toml("", "s.toml", &o).unwrap_err().to_string();
        assert!(
            e.starts_with("--set poll.interval_s=often: key poll.interval_s"),
            "{e}"
        );
        let o = Override::from_env(
            vec![("HASHMESH_POLL__NOPE".to_string(), "1".to_string())].into_iter(),
            &[],
        );
        let e = Config::from_toml("", "s.toml", &o).unwrap_err().to_string();
        assert!(
            e.contains("environment variable HASHMESH_POLL__NOPE"),
            "{e}"
        );
        assert!(Override::parse_set("novalue").is_err());
    }

    #[test]
    fn nonsense_values_are_refused() {
        let e = Config::from_toml("[poll]\ninterval_s = 0\n", "s", &[]).unwrap_err();
        assert!(e.to_string().contains("poll.interval_s"), "{e}");
        let e = Config::from_toml("[remote_write]\nurl = \"ftp://x\"\n", "s", &[]).unwrap_err();
        assert!(e.to_string().contains("remote_write.url"), "{e}");
    }
}
