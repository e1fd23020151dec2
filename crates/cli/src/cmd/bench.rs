//! `hashmesh bench poll|scan`: performance figures against a simulated fleet started in a child
//! process, so that the figures count the client's CPU alone.

use crate::output::Table;
use anyhow::{Context, bail};
use hashmesh_drivers::cgminer::proto;
use hashmesh_drivers::http::{HttpClient, Request};
use hashmesh_drivers::modbus::map::{SatecConfig, SatecRanges};
use hashmesh_drivers::modbus::{MeterDriver, MeterModel, MeterTarget};
use hashmesh_drivers::scan::{self, Found, ScanOptions, ScanProgress};
use hashmesh_drivers::{Driver, DriverError, Registry, Target};
use hashmesh_sim::fleet::CONTAINER_DEVICES;
use ipnet::IpNet;
use serde_json::json;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Options of `hashmesh bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(clap::Subcommand)]
enum BenchWhat {
    /// Poll N simulated miners at full speed: polls/s, client CPU per poll, latency.
    Poll(PollBench),
    /// Scan a /16 holding N live simulated miners: time to identify them all.
    Scan(ScanBench),
}

#[derive(clap::Args)]
struct PollBench {
    /// Simulated miners to poll.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Device family (cgminer, bfgminer, antminer, avalon, braiins, luxos, whatsminer,
    /// bitaxe), `meter` for Modbus TCP power meters, `mix` for the default mix, or `each` for
    /// one run per family and one of meters.
    #[arg(long, default_value = "each")]
    family: String,
    /// Seconds of measurement per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Polls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Only send each family's poll request and read the reply, without parsing: the transport
    /// floor, to compare the full figure with. Whatsminer and meters are skipped (a Whatsminer
    /// poll is several API requests, a meter poll several register reads); Bitaxe sends its one
    /// `GET /api/system/info`.
    #[arg(long)]
    transport_only: bool,
    /// Poller threads, each with its own single-threaded runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// First loopback address of the simulated fleet.
    #[arg(long, default_value = "127.40.0.1")]
    base: IpAddr,
    /// Print one JSON object per run instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ScanBench {
    /// Live simulated miners in the range.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// The range to scan; the fleet starts at its first host address.
    #[arg(long, default_value = "127.41.0.0/16")]
    range: IpNet,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const FAMILIES: &[&str] = &[
    "cgminer",
    "bfgminer",
    "antminer",
    "avalon",
    "braiins",
    "luxos",
    "whatsminer",
    "bitaxe",
    "meter",
];

/// The path a Bitaxe poll reads (the whole poll is this one keep-alive GET).
const BITAXE_INFO_PATH: &str = "/api/system/info";

/// Runs a benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Poll(p) => bench_poll(p).await,
        BenchWhat::Scan(s) => bench_scan(s).await,
    }
}

/// A simulated fleet running in a child `hashmesh sim` process.
struct SimChild {
    child: Child,
    manifest: Vec<ManifestEntry>,
    _dir: TempDir,
}

/// The part of the simulator's manifest the benchmarks need.
#[derive(Debug, Clone, serde::Deserialize)]
struct ManifestEntry {
    /// `miner` or `meter`.
    #[serde(default = "miner_kind")]
    kind: String,
    ip: IpAddr,
    /// The RPC port (a Bitaxe's web port); meters have none.
    #[serde(default)]
    port: u16,
    /// HTTP port (stock Antminer web interface, Bitaxe).
    #[serde(default)]
    web_port: Option<u16>,
    /// Whatsminer API v3 port.
    #[serde(default)]
    v3_port: Option<u16>,
    family: String,
    #[serde(default)]
    faults: Vec<String>,
    /// A meter's Modbus TCP port.
    #[serde(default)]
    modbus_port: Option<u16>,
    /// A meter's Modbus unit id.
    #[serde(default)]
    unit_id: Option<u8>,
    /// A meter's register map (`abb_b2x`, `schneider_pm5xxx`, `satec_pm180`).
    #[serde(default)]
    meter_map: Option<String>,
    /// A Satec meter's configured ranges.
    #[serde(default)]
    satec_ranges: Option<SatecRangesEntry>,
}

/// A Satec meter's ranges as the manifest lists them: `[low, high]` per quantity.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct SatecRangesEntry {
    voltage_v: (f64, f64),
    current_a: (f64, f64),
    phase_power_kw: (f64, f64),
    total_power_kw: (f64, f64),
    power_factor: (f64, f64),
    frequency_hz: (f64, f64),
}

fn miner_kind() -> String {
    "miner".into()
}

impl ManifestEntry {
    fn is_miner(&self) -> bool {
        self.kind == "miner"
    }

    /// The meter this entry describes, if it is a meter with a known register map.
    fn meter_target(&self) -> Option<MeterTarget> {
        if self.kind != "meter" {
            return None;
        }
        let model = match self.meter_map.as_deref()? {
            "abb_b2x" => MeterModel::AbbB2x,
            "schneider_pm5xxx" => MeterModel::SchneiderPm5xxx,
            "satec_pm180" => {
                let mut config = SatecConfig::default();
                if let Some(r) = self.satec_ranges {
                    config.ranges = SatecRanges {
                        voltage_v: r.voltage_v,
                        current_a: r.current_a,
                        phase_power_kw: r.phase_power_kw,
                        total_power_kw: r.total_power_kw,
                        power_factor: r.power_factor,
                        frequency_hz: r.frequency_hz,
                    };
                }
                MeterModel::SatecPm180(config)
            }
            _ => return None,
        };
        Some(MeterTarget::at(
            std::net::SocketAddr::new(self.ip, self.modbus_port?),
            self.unit_id?,
            model,
        ))
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `hashmesh sim` with `devices` miners of `mix` (`mix`: the default mix) and
/// `meters_per_container` meters per container of 256 miners.
async fn start_sim(
    devices: usize,
    base: IpAddr,
    mix: &str,
    meters_per_container: usize,
) -> anyhow::Result<SimChild> {
    let dir = std::env::temp_dir().join(format!("hashmesh-bench-{}-{}", std::process::id(), base));
    std::fs::create_dir_all(&dir)?;
    let dir = TempDir(dir);
    let manifest_path = dir.0.join("manifest.json");
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("sim")
        .args([
            "--devices",
            &devices.to_string(),
            "--base",
            &base.to_string(),
        ])
        .arg("--manifest")
        .arg(&manifest_path)
        .args(["--meters-per-container", &meters_per_container.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if mix != "mix" {
        cmd.args(["--mix", mix]);
    }
    let mut child = cmd.spawn().context("starting hashmesh sim")?;
    let stdout = child.stdout.take().context("no stdout from hashmesh sim")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("ready") {
                return Ok::<bool, std::io::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    match ready {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => bail!("hashmesh sim exited before it was ready"),
        Ok(Err(e)) => bail!("reading hashmesh sim output: {e}"),
        Err(_) => bail!("hashmesh sim was not ready within 10 minutes"),
    }
    let text =
        std::fs::read_to_string(&manifest_path).context("reading the simulator's manifest")?;
    let manifest: Vec<ManifestEntry> = match serde_json::from_str(&text) {
        Ok(list) => list,
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("parsing the simulator's manifest")?,
    };
    Ok(SimChild {
        child,
        manifest,
        _dir: dir,
    })
}

/// Driver name for a simulator family name.
fn driver_name(family: &str) -> &str {
    match family {
        "bfgminer" => "cgminer",
        other => other,
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

async fn bench_poll(args: PollBench) -> anyhow::Result<()> {
    let families: Vec<String> = if args.family == "each" {
        FAMILIES.iter().map(|f| f.to_string()).collect()
    } else {
        vec![args.family.clone()]
    };
    let registry = Registry::with_defaults();
    let mut table = Table::new(&[
        "FAMILY",
        ">DEVICES",
        ">POLLS/S",
        ">CPU µs/POLL",
        ">P50 ms",
        ">P99 ms",
        ">ERRORS",
    ]);
    let meters = Arc::new(MeterDriver::new());
    for family in families {
        if args.transport_only && matches!(family.as_str(), "whatsminer" | "meter") {
            eprintln!("{family}: no transport-only figure (a poll is several requests)");
            continue;
        }
        let sim = if family == "meter" {
            // N meters: 256 per container (one per miner slot) over plain cgminer containers.
            start_sim(args.devices, args.base, "cgminer=1", CONTAINER_DEVICES).await?
        } else if family == "mix" {
            start_sim(args.devices, args.base, "mix", 0).await?
        } else {
            start_sim(args.devices, args.base, &format!("{family}=100"), 0).await?
        };
        let mut sim = sim;
        let http = Arc::new(HttpClient::new());
        let mut targets: Vec<(Target, Poller)> = Vec::with_capacity(sim.manifest.len());
        if family == "meter" {
            for entry in &sim.manifest {
                if let Some(meter) = entry.meter_target() {
                    let target = Target::new(entry.ip);
                    targets.push((target, Poller::Meter(meters.clone(), Box::new(meter))));
                }
            }
            targets.truncate(args.devices);
        }
        for entry in sim
            .manifest
            .iter()
            .filter(|e| e.is_miner() && family != "meter")
        {
            let driver = registry
                .get(driver_name(&entry.family))
                .with_context(|| format!("no driver for simulated family {}", entry.family))?;
            let mut target = Target::new(entry.ip);
            target.rpc_port = entry.port;
            if let Some(port) = entry.web_port {
                target.web_port = port;
            }
            if let Some(port) = entry.v3_port {
                target.whatsminer_v3_port = port;
            }
            let poller = if args.transport_only && entry.family == "bitaxe" {
                Poller::Http(http.clone(), BITAXE_INFO_PATH)
            } else if args.transport_only {
                Poller::Transport(transport_request(&entry.family))
            } else {
                Poller::Driver(driver)
            };
            targets.push((target, poller));
        }
        if targets.is_empty() {
            bail!("the simulator started no devices");
        }
        let targets = Arc::new(targets);
        run_polls(
            &targets,
            args.concurrency,
            Duration::from_secs(args.warmup_seconds),
            args.threads,
        )
        .await;
        // A kept Modbus connection belongs to the warm-up's runtimes, which are gone now:
        // close them so the measured polls do not each start with a dead socket.
        for (_, poller) in targets.iter() {
            if let Poller::Meter(driver, meter) = poller {
                driver.disconnect(meter.addr, meter.unit_id);
            }
        }
        let cpu_before = cpu_time();
        let started = Instant::now();
        let (mut latencies_us, errors) = run_polls(
            &targets,
            args.concurrency,
            Duration::from_secs(args.seconds),
            args.threads,
        )
        .await;
        let wall = started.elapsed();
        let cpu = cpu_time().saturating_sub(cpu_before);
        let _ = sim.child.kill().await;
        let polls = latencies_us.len() + errors;
        latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies_us.is_empty() {
                return f64::NAN;
            }
            let i = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
            latencies_us[i.min(latencies_us.len() - 1)] as f64 / 1000.0
        };
        let polls_per_s = polls as f64 / wall.as_secs_f64();
        let cpu_us_per_poll = if polls > 0 {
            cpu.as_secs_f64() * 1e6 / polls as f64
        } else {
            f64::NAN
        };
        let (p50, p99) = (pct(0.50), pct(0.99));
        if args.json {
            println!(
                "{}",
                json!({
                    "family": family,
                    "devices": targets.len(),
                    "concurrency": args.concurrency,
                    "seconds": wall.as_secs_f64(),
                    "polls": polls,
                    "errors": errors,
                    "polls_per_s": polls_per_s,
                    "client_cpu_us_per_poll": cpu_us_per_poll,
                    "p50_ms": p50,
                    "p99_ms": p99,
                })
            );
        } else {
            table.row(vec![
                family.clone(),
                targets.len().to_string(),
                format!("{polls_per_s:.0}"),
                format!("{cpu_us_per_poll:.1}"),
                format!("{p50:.2}"),
                format!("{p99:.2}"),
                errors.to_string(),
            ]);
        }
    }
    if !args.json {
        print!("{}", table.render());
    }
    Ok(())
}

/// What one benchmark poll does.
enum Poller {
    /// A full driver poll: exchange, parse, normalise.
    Driver(Arc<dyn Driver>),
    /// The family's request and reply only, unparsed: the transport floor to compare with.
    Transport(Vec<u8>),
    /// One keep-alive HTTP GET of a path on the web port, unparsed (Bitaxe's transport floor).
    Http(Arc<HttpClient>, &'static str),
    /// A full meter poll (every register batch of its map, decoded) over a kept connection.
    Meter(Arc<MeterDriver>, Box<MeterTarget>),
}

impl Poller {
    async fn poll(&self, target: &Target) -> Result<(), DriverError> {
        match self {
            Poller::Driver(d) => d.poll(target).await.map(|_| ()),
            Poller::Transport(request) => {
                proto::exchange(target.rpc_addr(), request, &target.timeouts)
                    .await
                    .map(|_| ())
            }
            Poller::Http(client, path) => client
                .send_ok(
                    target.web_addr(),
                    Request::get(path),
                    None,
                    &target.timeouts,
                )
                .await
                .map(|_| ()),
            Poller::Meter(driver, meter) => driver.poll(meter).await.map(|_| ()),
        }
    }
}

/// The request each family's driver sends for one poll, for the transport-only figure.
fn transport_request(family: &str) -> Vec<u8> {
    let command = match family {
        "antminer" => "summary+stats+pools",
        "avalon" => "summary+estats+pools",
        "braiins" => "summary+pools+devs+devdetails+fans+temps+tunerstatus",
        "luxos" => "summary+stats+pools+power+fans+temps+config+profiles",
        _ => "summary+pools+devs",
    };
    proto::json_request(command, None)
}

/// Polls the targets round-robin with `concurrency` polls in flight for `duration`; returns the
/// latencies of successful polls in µs and the number of failed polls.
///
/// The polls run on `threads` OS threads, each with its own single-threaded runtime: polling
/// is I/O-bound work with no sharing, so it needs no work-stealing scheduler and its cross-thread
/// wake-ups. This is how a node's poller runs too.
async fn run_polls(
    targets: &Arc<Vec<(Target, Poller)>>,
    concurrency: usize,
    duration: Duration,
    threads: usize,
) -> (Vec<u32>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = threads.clamp(1, concurrency.max(1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let in_flight = concurrency / threads + usize::from(t < concurrency % threads);
        let targets = targets.clone();
        let next = next.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return (Vec::new(), 0);
            };
            rt.block_on(async move {
                let mut tasks = Vec::with_capacity(in_flight);
                for _ in 0..in_flight.max(1) {
                    let targets = targets.clone();
                    let next = next.clone();
                    let stop = stop.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(4096);
                        let mut errors = 0usize;
                        while !stop.load(Ordering::Relaxed) {
                            let i = next.fetch_add(1, Ordering::Relaxed) % targets.len();
                            let (target, poller) = &targets[i];
                            let t0 = Instant::now();
                            match poller.poll(target).await {
                                Ok(()) => {
                                    latencies
                                        .push(t0.elapsed().as_micros().min(u128::from(u32::MAX))
                                            as u32)
                                }
                                Err(_) => errors += 1,
                            }
                        }
                        (latencies, errors)
                    }));
                }
                let mut all = Vec::new();
                let mut errors = 0;
                for t in tasks {
                    if let Ok((l, e)) = t.await {
                        all.extend(l);
                        errors += e;
                    }
                }
                (all, errors)
            })
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        let mut errors = 0;
        for h in handles {
            if let Ok((l, e)) = h.join() {
                all.extend(l);
                errors += e;
            }
        }
        (all, errors)
    })
    .await;
    joined.unwrap_or_default()
}

async fn bench_scan(args: ScanBench) -> anyhow::Result<()> {
    let base = args
        .range
        .hosts()
        .next()
        .context("the range has no host addresses")?;
    if scan::count_hosts(std::slice::from_ref(&args.range)) < args.devices as u64 {
        bail!("{} devices do not fit in {}", args.devices, args.range);
    }
    let mut sim = start_sim(args.devices, base, "mix", 1).await?;
    // Meters are on the Modbus port, which the scan does not probe by default.
    let expected = sim
        .manifest
        .iter()
        .filter(|e| e.is_miner() && e.faults.is_empty())
        .count();
    let progress = Arc::new(ScanProgress::default());
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut hits = scan::scan(
        Registry::with_defaults(),
        vec![args.range],
        ScanOptions::default(),
        progress.clone(),
    );
    let mut identified = 0usize;
    let mut answered = 0usize;
    while let Some(hit) = hits.recv().await {
        answered += 1;
        if matches!(hit.found, Found::Device { .. }) {
            identified += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_time().saturating_sub(cpu_before).as_secs_f64();
    let _ = sim.child.kill().await;
    let addresses = scan::count_hosts(std::slice::from_ref(&args.range));
    if args.json {
        println!(
            "{}",
            json!({
                "range": args.range.to_string(),
                "addresses": addresses,
                "live_devices": expected,
                "answered": answered,
                "identified": identified,
                "seconds": secs,
                "client_cpu_s": cpu,
            })
        );
    } else {
        println!(
            "scanned {} ({addresses} addresses) with {expected} live miners: {identified} identified, {answered} answered, in {secs:.1} s ({cpu:.1} s client CPU)",
            args.range
        );
    }
    Ok(())
}
