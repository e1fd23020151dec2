//! `hashmesh bench node`: a whole node against a simulated farm, end to end. The farm runs in a
//! child `hashmesh sim`, the node in a child `hashmesh node` (so its CPU and memory are its own,
//! read from /proc); the node discovers the farm, polls it on schedule and stores every row,
//! and the bench reads the node's own poller figures from `/metrics` cycle by cycle.

use anyhow::{Context, bail};
use clap::Args;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Arguments of `hashmesh bench node`.
#[derive(Args, Debug)]
pub struct NodeBenchArgs {
    /// Simulated miners.
    #[arg(long, default_value_t = 100_000)]
    pub devices: usize,
    /// Seconds between polls of each device.
    #[arg(long, default_value_t = 10.0)]
    pub interval_s: f64,
    /// Poll cycles to measure once every device has been polled.
    #[arg(long, default_value_t = 6)]
    pub cycles: u32,
    /// Address of the first simulated device.
    #[arg(long, default_value = "127.60.0.1")]
    pub base: Ipv4Addr,
    /// Family mix, as for `hashmesh sim --mix` (default: the simulator's mix of every family).
    #[arg(long)]
    pub mix: Option<String>,
    /// Polls in flight at once in the node (the node's default `poll.concurrency`).
    #[arg(long, default_value_t = hashmesh_node::config::PollConfig::default().concurrency)]
    pub concurrency: usize,
    /// A node setting for the run, as `hashmesh node --set KEY=VALUE` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Run the simulator at the node's CPU priority instead of below it.
    #[arg(long)]
    pub sim_equal_priority: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Kills a child process and its process group when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            // SAFETY: sending a signal to a process we started.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
}

/// CPU seconds (user + system) and resident bytes of a process, from /proc.
fn usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (ticks(11) + ticks(12)) / hz.max(1.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok((cpu, rss_kb * 1024))
}

/// CPU seconds of a process and its direct children (the simulator's worker processes).
pub(super) fn family_cpu(pid: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    for entry in dir.flatten() {
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{n}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // ppid is field 4 of the whole line: 1 after the name.
        if n == pid || field(1) == f64::from(pid) {
            total += (field(11) + field(12)) / hz.max(1.0);
        }
    }
    total
}

/// Reads `/metrics` and returns the value of each metric named in `names` (no labels).
async fn scrape(addr: SocketAddr, names: &[&str]) -> anyhow::Result<Vec<Option<f64>>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(names
        .iter()
        .map(|n| {
            text.lines()
                .find(|l| l.starts_with(n) && l[n.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        })
        .collect())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Runs the benchmark.
pub async fn run(args: NodeBenchArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile_dir()?;
    eprintln!("starting {} simulated miners…", args.devices);
    let manifest = dir.0.join("manifest.json");
    let mut sim = Command::new(&exe);
    sim.args([
        "sim",
        "--devices",
        &args.devices.to_string(),
        "--base",
        &args.base.to_string(),
    ])
    .arg("--manifest")
    .arg(&manifest)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .kill_on_drop(true);
    if let Some(m) = &args.mix {
        sim.args(["--mix", m]);
    }
    // On a site the miners are machines of their own; here they share the node's two cores, so
    // they run only on CPU time the node leaves.
    if !args.sim_equal_priority {
        super::yield_to_the_node(&mut sim, true);
    }
    let mut sim = Kid(sim.spawn().context("starting hashmesh sim")?);
    super::wait_ready(&mut sim.0, "the simulator").await?;
    let text = std::fs::read_to_string(&manifest)?;
    let entries: Vec<serde_json::Value> = super::parse_manifest(&text)?;
    let last = entries
        .iter()
        .filter_map(|e| e.get("ip")?.as_str()?.parse::<Ipv4Addr>().ok())
        .max()
        .unwrap_or(args.base);
    let first = u32::from(args.base) >> 8;
    let scan: Vec<String> = (first..=(u32::from(last) >> 8))
        .map(|n| format!("{}/24", Ipv4Addr::from(n << 8)))
        .collect();

    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut node = Command::new(&exe);
    node.arg("node")
        .arg("--data-dir")
        .arg(dir.0.join("node"))
        .args(["--listen", &addr.to_string()])
        .args(["--scan", &scan.join(",")])
        .args(["--set", &format!("poll.interval_s={}", args.interval_s)])
        .args(["--set", &format!("poll.concurrency={}", args.concurrency)])
        .args(["--set", "auth.anonymous_read=true"])
        .args(["--set", "discovery.interval_s=0"])
        .args(args.settings.iter().flat_map(|kv| ["--set", kv.as_str()]))
        .env("HASHMESH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let node = Kid(node.spawn().context("starting hashmesh node")?);
    let pid = node.0.id().context("the node has no pid")?;

    // Wait for discovery, then for every device to have been polled once.
    let started = Instant::now();
    let names = [
        "hashmesh_discovery_scans_total",
        "hashmesh_discovery_last_scan_found",
        "hashmesh_discovery_last_scan_seconds",
        "hashmesh_poller_polls_total",
        "hashmesh_poller_late_polls_total",
        "hashmesh_poller_errors_total",
        "hashmesh_ingest_rows_total",
        "hashmesh_poller_rows_dropped_total",
        "hashmesh_poller_cycle_max_start_delay_seconds",
        "hashmesh_poller_in_flight",
        "hashmesh_poller_slot_waits_total",
    ];
    let (found, scan_s) = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if started.elapsed() > Duration::from_secs(900) {
            bail!("discovery did not finish within 15 minutes");
        }
        let Ok(v) = scrape(addr, &names).await else {
            continue;
        };
        if v[0].unwrap_or(0.0) >= 1.0 {
            break (v[1].unwrap_or(0.0), v[2].unwrap_or(0.0));
        }
    };
    eprintln!("node discovered {found} devices in {scan_s:.1} s; warming up one cycle…");
    tokio::time::sleep(Duration::from_secs_f64(args.interval_s * 1.5)).await;

    let interval = Duration::from_secs_f64(args.interval_s);
    let mut cycles = Vec::new();
    let sim_pid = sim.0.id().unwrap_or(0);
    let mut prev = (usage(pid)?, scrape(addr, &names).await?, Instant::now());
    let mut prev_sim = family_cpu(sim_pid);
    for n in 1..=args.cycles {
        tokio::time::sleep(interval).await;
        let now = (usage(pid)?, scrape(addr, &names).await?, Instant::now());
        let now_sim = family_cpu(sim_pid);
        let secs = now.2.duration_since(prev.2).as_secs_f64();
        let d = |i: usize| now.1[i].unwrap_or(0.0) - prev.1[i].unwrap_or(0.0);
        let c = serde_json::json!({
            "cycle": n,
            "seconds": secs,
            "polls": d(3),
            "polls_per_s": d(3) / secs,
            "late_polls": d(4),
            "errors": d(5),
            "max_start_delay_s": now.1[8].unwrap_or(0.0),
            "in_flight": now.1[9].unwrap_or(0.0),
            "slot_waits": d(10),
            "rows_stored": d(6),
            "rows_dropped": d(7),
            "node_cpu_cores": (now.0.0 - prev.0.0) / secs,
            "node_rss_bytes": now.0.1,
            "sim_cpu_cores": (now_sim - prev_sim) / secs,
        });
        if !args.json {
            eprintln!(
                "cycle {n}: {:.0} polls ({:.0}/s), {} late (latest closed cycle: max start delay {:.1} s), {} errors, {} in flight, {} waits for a slot, {:.2} cores, RSS {:.0} MiB (simulator {:.2} cores)",
                d(3),
                d(3) / secs,
                d(4),
                now.1[8].unwrap_or(0.0),
                d(5),
                now.1[9].unwrap_or(0.0),
                d(10),
                (now.0.0 - prev.0.0) / secs,
                now.0.1 as f64 / 1048576.0,
                (now_sim - prev_sim) / secs,
            );
        }
        cycles.push(c);
        prev = now;
        prev_sim = now_sim;
    }
    let cores: Vec<f64> = cycles
        .iter()
        .filter_map(|c| c["node_cpu_cores"].as_f64())
        .collect();
    let late: f64 = cycles.iter().filter_map(|c| c["late_polls"].as_f64()).sum();
    let polls: f64 = cycles.iter().filter_map(|c| c["polls"].as_f64()).sum();
    let secs: f64 = cycles.iter().filter_map(|c| c["seconds"].as_f64()).sum();
    let rss = prev.0.1;
    let expected = found * secs / args.interval_s;
    let summary = serde_json::json!({
        "devices": found,
        "interval_s": args.interval_s,
        "discovery_s": scan_s,
        "cycles": cycles.len(),
        "polls_per_s": polls / secs,
        "expected_polls_per_s": found / args.interval_s,
        "polls_share_of_schedule": if expected > 0.0 { polls / expected } else { 0.0 },
        "late_polls": late,
        "node_cpu_cores_mean": cores.iter().sum::<f64>() / cores.len().max(1) as f64,
        "node_cpu_cores_max": cores.iter().copied().fold(0.0, f64::max),
        "node_cpu_us_per_poll": if polls > 0.0 { cores.iter().sum::<f64>() / cores.len().max(1) as f64 * secs / polls * 1e6 } else { 0.0 },
        "sim_cpu_cores_mean": cycles.iter().filter_map(|c| c["sim_cpu_cores"].as_f64()).sum::<f64>() / cycles.len().max(1) as f64,
        "node_rss_bytes": rss,
        "node_rss_bytes_per_device": rss as f64 / found.max(1.0),
        "per_cycle": cycles,
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "{found} devices every {} s: {:.0} polls/s ({:.1} % of schedule), {late} late polls, node CPU {:.2} cores (max {:.2}; {:.0} µs per poll), simulator {:.2} cores, RSS {:.0} MiB = {:.0} B/device",
            args.interval_s,
            polls / secs,
            100.0 * summary["polls_share_of_schedule"].as_f64().unwrap_or(0.0),
            summary["node_cpu_cores_mean"].as_f64().unwrap_or(0.0),
            summary["node_cpu_cores_max"].as_f64().unwrap_or(0.0),
            summary["node_cpu_us_per_poll"].as_f64().unwrap_or(0.0),
            summary["sim_cpu_cores_mean"].as_f64().unwrap_or(0.0),
            rss as f64 / 1048576.0,
            rss as f64 / found.max(1.0),
        );
    }
    drop(node);
    drop(sim);
    Ok(())
}

/// A temporary directory removed at the end.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    let d = std::env::temp_dir().join(format!("hashmesh-bench-node-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(TempDir(d))
}
