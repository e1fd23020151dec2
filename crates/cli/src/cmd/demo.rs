//! `hashmesh demo`: a simulated farm, a node managing it and the dashboard, in one command.
//!
//! The farm runs in a child `hashmesh sim` process (its worker processes hold the sockets of
//! big fleets); the node runs in this process with a fresh data directory, discovers the farm,
//! learns where each miner stands from a site map the demo writes (two containers of racks for
//! the default 1,000 miners), and serves the dashboard. An admin account is created with a
//! generated password, printed once.

use anyhow::{Context, bail};
use clap::Args;
use hashmesh_core::{DeviceId, DeviceKind, Vendor};
use hashmesh_node::Node;
use hashmesh_node::config::Config;
use hashmesh_store::meta::{Discovered, Inventory};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Arguments of `hashmesh demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Simulated miners (power meters come on top, one per 256 miners).
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Address of the dashboard and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the first simulated device (loopback only).
    #[arg(long, default_value = "127.30.0.1")]
    pub base: Ipv4Addr,
    /// Faults, as for `hashmesh sim --faults`.
    #[arg(
        long,
        default_value = "offline=1%,hang=0.5%,dead-board=1%,fan-fail=0.5%,overheat=0.5%,wrong-pool=0.5%"
    )]
    pub faults: String,
    /// Data directory (default: a new temporary one, removed at exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Password of the `admin` account (default: generated and printed).
    #[arg(long, env = "HASHMESH_DEMO_PASSWORD")]
    pub password: Option<String>,
    /// Seconds between polls of each device.
    #[arg(long, default_value_t = 10.0)]
    pub interval_s: f64,
}

/// Miners per demo container, and per rack (5 shelves of 8 slots).
const CONTAINER_MINERS: usize = 500;
const RACK_MINERS: usize = 40;
const SHELF_SLOTS: usize = 8;
const SITE_CONTAINERS: usize = 40;

/// Where demo miner `i` stands: containers of 500 miners in racks of 40.
fn place(i: usize) -> (String, String, String, usize, usize) {
    let container = i / CONTAINER_MINERS;
    let site = container / SITE_CONTAINERS;
    let in_container = i % CONTAINER_MINERS;
    let rack = in_container / RACK_MINERS;
    let in_rack = in_container % RACK_MINERS;
    (
        format!("farm-{}", site + 1),
        format!("C{:02}", container % SITE_CONTAINERS + 1),
        format!("R{:02}", rack + 1),
        in_rack / SHELF_SLOTS + 1,
        in_rack % SHELF_SLOTS + 1,
    )
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let (data_dir, _cleanup) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("hashmesh-demo-{}", std::process::id()));
            (d.clone(), Some(RemoveOnDrop(d)))
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    eprintln!(
        "starting {} simulated miners at {}…",
        args.devices, args.base
    );
    let manifest = data_dir.join("sim-manifest.json");
    let mut sim = Command::new(std::env::current_exe()?);
    sim.arg(super::sim::SUBCOMMAND)
        .args(["--devices", &args.devices.to_string()])
        .args(["--base", &args.base.to_string()])
        .args(["--faults", &args.faults])
        .arg("--manifest")
        .arg(&manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    // The farm stands in for machines that would not share the node's CPU: on a small host it
    // yields to the node and the dashboard rather than compete with them as an equal.
    super::yield_to_the_node(&mut sim, false);
    let mut child = sim.spawn().context("starting hashmesh sim")?;
    super::wait_ready(&mut child, "the simulator").await?;

    let text = std::fs::read_to_string(&manifest).context("reading the simulator's manifest")?;
    let entries: Vec<serde_json::Value> = super::parse_manifest(&text)?;
    let site_map = data_dir.join("site-map.csv");
    write_site_map(&entries, &site_map)?;
    let last = entries
        .iter()
        .filter_map(|e| e.get("ip")?.as_str()?.parse::<Ipv4Addr>().ok())
        .max()
        .unwrap_or(args.base);

    let mut config = Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        node_name: "demo".into(),
        ..Config::default()
    };
    config.discovery.ranges = ranges(args.base, last);
    config.discovery.interval_s = 0;
    config.poll.interval_s = args.interval_s;
    config.validate()?;
    let password = hashmesh_node::auth::ensure_demo_admin(&data_dir, args.password.as_deref())
        .context("creating the admin account")?;
    let known = register_broken(&entries, &data_dir.join("inventory.sqlite"))?;

    let node = Node::start(config).await.context("starting the node")?;
    eprintln!("discovering the farm…");
    // The node scans its ranges once at start; wait for that scan rather than run another.
    let waiting = std::time::Instant::now();
    let summary = loop {
        if waiting.elapsed() > Duration::from_secs(600) {
            bail!("the node's discovery scan did not finish within 10 minutes (see the log above)");
        }
        if let Some(s) = node
            .inner()
            .last_scan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let file = std::fs::File::open(&site_map)?;
    let report = node
        .inner()
        .inventory
        .import_locations_csv(std::io::BufReader::new(file))?;
    node.inner()
        .reload_inventory()
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "found {} devices in {:.1} s, and {known} more from the farm's asset list that do not \
         answer; {} placed in racks",
        summary.found, summary.duration_s, report.updated
    );
    println!();
    println!("  hashmesh demo is running");
    println!("  dashboard  http://{}/", node.local_addr());
    println!("  user       admin");
    match &password {
        Some(p) => println!("  password   {p}"),
        None => println!("  password   (unchanged: the admin account already existed)"),
    }
    println!("  metrics    http://{}/metrics", node.local_addr());
    println!("  API docs   http://{}/api/docs", node.local_addr());
    println!();
    println!("  Ctrl-C stops the farm and the node.");
    let _ = std::io::stdout().flush();

    tokio::select! {
        _ = super::node::wait_for_stop() => {}
        status = child.wait() => {
            eprintln!("the simulator stopped unexpectedly: {status:?}");
        }
    }
    eprintln!("stopping…");
    node.shutdown().await;
    let _ = child.kill().await;
    Ok(())
}

/// Puts the farm's dead devices (powered off, or hanging before they can be identified) into
/// the inventory from the simulator's manifest, as a site's asset list would: a real site
/// knows the miners it owns even when they do not answer, and the dashboard should show them
/// offline rather than not at all. Returns how many.
fn register_broken(
    entries: &[serde_json::Value],
    inventory: &std::path::Path,
) -> anyhow::Result<usize> {
    let inv = Inventory::open(inventory)?;
    let now = hashmesh_drivers::now_unix_ms();
    let mut n = 0;
    for e in entries {
        let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let broken = e.get("faults").and_then(|f| f.as_array()).is_some_and(|f| {
            f.iter()
                .any(|x| matches!(x.as_str(), Some("offline" | "hang")))
        });
        if text("kind") != "miner" || !broken {
            continue;
        }
        let Ok(ip) = text("ip").parse() else { continue };
        let Some(id) = DeviceId::from_mac(text("mac")) else {
            continue;
        };
        let family = match text("family") {
            "bfgminer" => "cgminer",
            f => f,
        };
        let vendor = match family {
            "antminer" | "braiins" | "luxos" => Vendor::Bitmain,
            "avalon" => Vendor::Canaan,
            "whatsminer" => Vendor::MicroBt,
            "bitaxe" => Vendor::Bitaxe,
            _ => Vendor::Unknown,
        };
        inv.record_discovery(
            &Discovered {
                id,
                ip,
                kind: DeviceKind::Miner,
                family: family.to_owned(),
                vendor: vendor.display_name().to_owned(),
                model: text("model").to_owned(),
                firmware: String::new(),
                mac: Some(text("mac").to_owned()),
                serial: Some(text("serial").to_owned()).filter(|s| !s.is_empty()),
                hostname: None,
                unit_id: None,
            },
            now,
        )?;
        n += 1;
    }
    Ok(n)
}

/// The /24 networks from `first` to `last`.
fn ranges(first: Ipv4Addr, last: Ipv4Addr) -> Vec<ipnet::IpNet> {
    let (a, b) = (u32::from(first) >> 8, u32::from(last) >> 8);
    (a..=b)
        .filter_map(|n| ipnet::Ipv4Net::new(Ipv4Addr::from(n << 8), 24).ok())
        .map(ipnet::IpNet::V4)
        .collect()
}

/// Writes the demo's site map: miners in containers of racks, each container's meters in it.
fn write_site_map(entries: &[serde_json::Value], path: &std::path::Path) -> anyhow::Result<()> {
    let mut out = String::from("ip,site,container,rack,shelf,slot\n");
    let miners: Vec<&str> = entries
        .iter()
        .filter(|e| e.get("kind").and_then(|k| k.as_str()) == Some("miner"))
        .filter_map(|e| e.get("ip")?.as_str())
        .collect();
    let meters: Vec<&str> = entries
        .iter()
        .filter(|e| e.get("kind").and_then(|k| k.as_str()) == Some("meter"))
        .filter_map(|e| e.get("ip")?.as_str())
        .collect();
    for (i, ip) in miners.iter().enumerate() {
        let (site, container, rack, shelf, slot) = place(i);
        out.push_str(&format!("{ip},{site},{container},{rack},{shelf},{slot}\n"));
    }
    let containers = miners.len().div_ceil(CONTAINER_MINERS).max(1);
    for (k, ip) in meters.iter().enumerate() {
        // Spread the feeder meters over the containers, in order.
        let c = k * containers / meters.len().max(1);
        let (site, container, ..) = place(c * CONTAINER_MINERS);
        out.push_str(&format!("{ip},{site},{container},,,\n"));
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Removes a temporary directory when the demo ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_miners_fill_two_containers() {
        assert_eq!(
            place(0),
            ("farm-1".into(), "C01".into(), "R01".into(), 1, 1)
        );
        assert_eq!(
            place(39),
            ("farm-1".into(), "C01".into(), "R01".into(), 5, 8)
        );
        assert_eq!(place(499).1, "C01");
        assert_eq!(
            place(500),
            ("farm-1".into(), "C02".into(), "R01".into(), 1, 1)
        );
        assert_eq!(place(999).1, "C02");
        assert_eq!(place(999).2, "R13");
    }

    #[test]
    fn ranges_cover_the_fleet() {
        let r = ranges(Ipv4Addr::new(127, 30, 0, 1), Ipv4Addr::new(127, 30, 3, 240));
        assert_eq!(r.len(), 4);
        assert_eq!(r[3].to_string(), "127.30.3.0/24");
    }
}
