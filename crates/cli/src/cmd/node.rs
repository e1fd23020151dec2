//! `hashmesh node`: runs a node for a site until stopped (Ctrl-C or SIGTERM).

use anyhow::Context;
use clap::Args;
use hashmesh_node::Node;
use hashmesh_node::config::{Config, Override};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Environment variables that belong to the command line, not to config keys.
pub const NON_KEY_VARS: &[&str] = &["HASHMESH_CONFIG", "HASHMESH_LOG", "HASHMESH_SCAN"];

/// Arguments of `hashmesh node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Configuration file (TOML); see hashmesh.example.toml. Without one, defaults apply.
    #[arg(long, env = "HASHMESH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the inventory, history and queues live (config key data_dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A network to discover devices in, as CIDR; repeatable (config key discovery.ranges).
    #[arg(long, env = "HASHMESH_SCAN", value_delimiter = ',')]
    pub scan: Vec<ipnet::IpNet>,
    /// Address of the HTTP server (config key listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Any config key, as key=value (e.g. poll.interval_s=5); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse_set)]
    pub set: Vec<Override>,
}

impl NodeArgs {
    /// The configuration: file, then environment, then flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut overrides = Override::from_env(std::env::vars(), NON_KEY_VARS);
        if let Some(d) = &self.data_dir {
            overrides.push(flag(
                "data_dir",
                toml_quote(&d.display().to_string()),
                "--data-dir",
            ));
        }
        if !self.scan.is_empty() {
            let list: Vec<String> = self
                .scan
                .iter()
                .map(|n| toml_quote(&n.to_string()))
                .collect();
            overrides.push(flag(
                "discovery.ranges",
                format!("[{}]", list.join(",")),
                "--scan",
            ));
        }
        if let Some(l) = &self.listen {
            overrides.push(flag("listen", toml_quote(&l.to_string()), "--listen"));
        }
        overrides.extend(self.set.iter().cloned());
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

/// A TOML basic string holding `s`.
pub fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn flag(key: &str, value: String, origin: &str) -> Override {
    Override {
        key: key.to_owned(),
        value,
        origin: origin.to_owned(),
    }
}

/// Runs the node until Ctrl-C or SIGTERM.
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let node = Node::start(config.clone())
        .await
        .context("starting the node")?;
    eprintln!(
        "hashmesh node: {} devices known, data in {}, metrics at http://{}/metrics",
        node.inner().live.len(),
        config.data_dir.display(),
        node.local_addr()
    );
    if config.discovery.ranges.is_empty() {
        eprintln!("no ranges to discover: give --scan <CIDR> or discovery.ranges in the config");
    }
    wait_for_stop().await;
    eprintln!("stopping…");
    node.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
