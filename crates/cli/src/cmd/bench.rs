//! `hashmesh bench poll|scan|parse`: performance figures against a simulated fleet started in a
//! child process, so that the figures count the client's CPU alone (`bench node` lives in
//! [`super::bench_node`]). [`floor`] holds the minimal client/server pair that pins this
//! machine's transport floor, [`parse`] the parse-only figures.

mod floor;
mod parse;

use crate::output::Table;
use anyhow::{Context, bail};
use hashmesh_drivers::antminer::web::{self, WebClient};
use hashmesh_drivers::braiins::rest::RestClient;
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
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
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
    /// Parse one poll reply of each cgminer-RPC family, without the transport: µs per parse.
    Parse(parse::ParseBench),
    /// A node managing N simulated miners: cycles on time, node CPU and memory per device.
    Node(super::bench_node::NodeBenchArgs),
    /// The minimal server of `bench poll --family floor` (started by it as a child process).
    #[command(hide = true)]
    FloorServer(floor::FloorServerArgs),
}

#[derive(clap::Args)]
struct PollBench {
    /// Simulated miners to poll.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Device family (cgminer, bfgminer, antminer, avalon, braiins, luxos, whatsminer,
    /// bitaxe), `meter` for Modbus TCP power meters, `antminer-web` for reads of the stock
    /// Antminer web interface (Digest auth, kept-alive connections), `braiins-rest` for the
    /// Braiins OS REST read-back (token login, kept-alive connections), `floor` for the minimal
    /// client against a minimal server (this machine's transport floor), `mix` for the default
    /// mix, or `each` for one run of each of these but `mix`.
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
    /// floor, to compare the full figure with. Whatsminer, meters and the web families are
    /// skipped (a Whatsminer poll is several API requests, a meter poll several register reads,
    /// a web read needs its login); Bitaxe sends its one `GET /api/system/info`.
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
    "floor",
    "cgminer",
    "bfgminer",
    "antminer",
    "avalon",
    "braiins",
    "luxos",
    "whatsminer",
    "bitaxe",
    "meter",
    "antminer-web",
    "braiins-rest",
];

/// The path a Bitaxe poll reads (the whole poll is this one keep-alive GET).
const BITAXE_INFO_PATH: &str = "/api/system/info";

/// Runs a benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Poll(p) => bench_poll(p).await,
        BenchWhat::Scan(s) => bench_scan(s).await,
        BenchWhat::Parse(p) => parse::run(p).await,
        BenchWhat::Node(n) => super::bench_node::run(n).await,
        BenchWhat::FloorServer(f) => floor::serve(f).await,
    }
}

/// A simulated fleet running in a child `hashmesh sim` process (or the floor server).
struct SimChild {
    child: Child,
    manifest: Vec<ManifestEntry>,
    _dir: Option<TempDir>,
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
    super::wait_ready(&mut child, "hashmesh sim").await?;
    let text =
        std::fs::read_to_string(&manifest_path).context("reading the simulator's manifest")?;
    let manifest: Vec<ManifestEntry> = super::parse_manifest(&text)?;
    Ok(SimChild {
        child,
        manifest,
        _dir: Some(dir),
    })
}

/// Starts the floor server (`hashmesh bench floor-server`) with `devices` listeners on port 4028
/// from `base`, and lists them as a manifest of family `floor`.
async fn start_floor(devices: usize, base: IpAddr) -> anyhow::Result<SimChild> {
    let IpAddr::V4(base4) = base else {
        bail!("the floor server needs an IPv4 loopback base address");
    };
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["bench", "floor-server", "--devices", &devices.to_string()])
        .args(["--base", &base.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting hashmesh bench floor-server")?;
    super::wait_ready(&mut child, "the floor server").await?;
    let manifest = floor::addresses(base4, devices)
        .into_iter()
        .map(|ip| ManifestEntry {
            kind: miner_kind(),
            ip: IpAddr::V4(ip),
            port: 4028,
            web_port: None,
            v3_port: None,
            family: "floor".into(),
            faults: Vec::new(),
            modbus_port: None,
            unit_id: None,
            meter_map: None,
            satec_ranges: None,
        })
        .collect();
    Ok(SimChild {
        child,
        manifest,
        _dir: None,
    })
}

/// Driver name for a simulator family name.
fn driver_name(family: &str) -> &str {
    match family {
        "bfgminer" => "cgminer",
        other => other,
    }
}

/// This process's CPU time so far: user and system (kernel) time.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTime {
    user: Duration,
    system: Duration,
}

impl CpuTime {
    fn total(self) -> Duration {
        self.user + self.system
    }

    fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

fn cpu_time() -> CpuTime {
    // SAFETY: getrusage writes into the struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    CpuTime {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    }
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
        ">USER",
        ">SYS",
        ">P50 ms",
        ">P99 ms",
        ">ERRORS",
        ">SIM µs/POLL",
    ]);
    let meters = Arc::new(MeterDriver::new());
    for family in families {
        if args.transport_only
            && matches!(
                family.as_str(),
                "whatsminer" | "meter" | "antminer-web" | "braiins-rest"
            )
        {
            eprintln!("{family}: no transport-only figure (a poll is several requests)");
            continue;
        }
        let sim = if family == "floor" {
            start_floor(args.devices, args.base).await?
        } else if family == "meter" {
            // N meters: 256 per container (one per miner slot) over plain cgminer containers.
            start_sim(args.devices, args.base, "cgminer=1", CONTAINER_DEVICES).await?
        } else if family == "mix" {
            start_sim(args.devices, args.base, "mix", 0).await?
        } else {
            let simulated = web_family(&family).unwrap_or(&family);
            start_sim(args.devices, args.base, &format!("{simulated}=100"), 0).await?
        };
        let mut sim = sim;
        let http = Arc::new(HttpClient::new());
        let web_clients = WebClients::default();
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
            if entry.family == "floor" {
                let target = Target::new(entry.ip);
                targets.push((target, Poller::Floor(floor::FLOOR_REQUEST)));
                continue;
            }
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
            let poller = if let Some(web) = web_poller(&family, targets.len(), &web_clients) {
                if entry.web_port.is_none() {
                    continue;
                }
                web
            } else if args.transport_only && entry.family == "bitaxe" {
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
        let PollRun {
            mut latencies_us,
            errors,
            wall,
            cpu,
            sim_cpu_s,
        } = run_polls(
            &targets,
            args.concurrency,
            Duration::from_secs(args.warmup_seconds),
            Duration::from_secs(args.seconds),
            args.threads,
            sim.child.id(),
        )
        .await;
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
        let per_poll = |d: Duration| {
            if polls > 0 {
                d.as_secs_f64() * 1e6 / polls as f64
            } else {
                f64::NAN
            }
        };
        let cpu_us_per_poll = per_poll(cpu.total());
        let (user_us, system_us) = (per_poll(cpu.user), per_poll(cpu.system));
        let (p50, p99) = (pct(0.50), pct(0.99));
        let sim_us_per_poll = per_poll(Duration::from_secs_f64(sim_cpu_s.max(0.0)));
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
                    "client_user_us_per_poll": user_us,
                    "client_system_us_per_poll": system_us,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "sim_cpu_us_per_poll": sim_us_per_poll,
                })
            );
        } else {
            table.row(vec![
                family.clone(),
                targets.len().to_string(),
                format!("{polls_per_s:.0}"),
                format!("{cpu_us_per_poll:.1}"),
                format!("{user_us:.1}"),
                format!("{system_us:.1}"),
                format!("{p50:.2}"),
                format!("{p99:.2}"),
                errors.to_string(),
                format!("{sim_us_per_poll:.1}"),
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
    /// The minimal client's exchange with the floor server.
    Floor(&'static [u8]),
    /// One read of the stock Antminer web interface as the driver makes it (Digest auth,
    /// kept-alive connection), parsed by the driver's parser.
    AntminerWeb(Arc<WebClient>, WebRead),
    /// The Braiins OS REST read-back as the driver makes it for a device it has written to
    /// (token login, kept-alive connection): the locate LED and the configured power target.
    BraiinsRest(Arc<RestClient>),
}

/// Which read of the stock Antminer web interface an `antminer-web` poll makes; devices take
/// turns, so the figure is the mean of the two reads the driver makes.
#[derive(Debug, Clone, Copy)]
enum WebRead {
    /// `get_system_info.cgi` (identity: MAC, serial, host name).
    SystemInfo,
    /// `get_miner_conf.cgi` (work mode and pools, read before and after every web write).
    MinerConf,
}

/// The simulated family a web-interface family reads.
fn web_family(family: &str) -> Option<&'static str> {
    match family {
        "antminer-web" => Some("antminer"),
        "braiins-rest" => Some("braiins"),
        _ => None,
    }
}

/// The web clients a run's polls share, as one driver holds them.
#[derive(Default)]
struct WebClients {
    antminer: Arc<WebClient>,
    braiins: Arc<RestClient>,
}

/// The poller of the `n`th device of a web-interface family (`None` for other families).
fn web_poller(family: &str, n: usize, clients: &WebClients) -> Option<Poller> {
    match family {
        "antminer-web" => Some(Poller::AntminerWeb(
            clients.antminer.clone(),
            if n.is_multiple_of(2) {
                WebRead::SystemInfo
            } else {
                WebRead::MinerConf
            },
        )),
        "braiins-rest" => Some(Poller::BraiinsRest(clients.braiins.clone())),
        _ => None,
    }
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
            Poller::Floor(request) => floor::exchange(target.rpc_addr(), request)
                .await
                .map(|_| ())
                .map_err(DriverError::Io),
            Poller::AntminerWeb(client, WebRead::SystemInfo) => {
                web::system_info(client, target).await.map(|_| ())
            }
            Poller::AntminerWeb(client, WebRead::MinerConf) => {
                web::miner_conf(client, target).await.map(|_| ())
            }
            // The read-back swallows its errors (it only adds to a snapshot); an LED state is
            // always there when the reads worked.
            Poller::BraiinsRest(rest) => match rest.read_back(target).await {
                (Some(_), _) => Ok(()),
                (None, _) => Err(DriverError::Malformed(
                    "Braiins REST read-back gave no locate state".into(),
                )),
            },
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

/// What one measured run of polls gave.
struct PollRun {
    /// Latencies of the successful polls, µs.
    latencies_us: Vec<u32>,
    /// Failed polls.
    errors: usize,
    /// Length of the measured window.
    wall: Duration,
    /// This process's CPU time over the measured window.
    cpu: CpuTime,
    /// The simulator's CPU seconds over the measured window (its processes together).
    sim_cpu_s: f64,
}

/// Where a run of polls is: warming up (polls not counted), measuring, or stopping.
const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// Polls the targets round-robin with `concurrency` polls in flight: `warmup` first, not
/// counted, then `measure`, whose polls, latencies and CPU time are returned.
///
/// The polls run on `threads` OS threads, each with its own single-threaded runtime: polling
/// is I/O-bound work with no sharing, so it needs no work-stealing scheduler and its cross-thread
/// wake-ups. This is how a node's poller runs too. Warm-up and measurement run on the same
/// runtimes, so connections kept open (HTTP keep-alive, Modbus) stay valid between them.
///
/// Per poll the harness itself does one atomic add (next target), two clock reads and, when
/// measuring, one push of a latency into the task's own vector: no channels, no locks, no
/// reference counting.
async fn run_polls(
    targets: &Arc<Vec<(Target, Poller)>>,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    threads: usize,
    sim_pid: Option<u32>,
) -> PollRun {
    let next = Arc::new(AtomicUsize::new(0));
    let phase = Arc::new(AtomicU8::new(WARMING_UP));
    let threads = threads.clamp(1, concurrency.max(1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let in_flight = concurrency / threads + usize::from(t < concurrency % threads);
        let targets = targets.clone();
        let next = next.clone();
        let phase = phase.clone();
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
                    let phase = phase.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(64 * 1024);
                        let mut errors = 0usize;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed) % targets.len();
                            let (target, poller) = &targets[i];
                            let t0 = Instant::now();
                            let result = poller.poll(target).await;
                            match phase.load(Ordering::Relaxed) {
                                WARMING_UP => continue,
                                MEASURING => {}
                                _ => break,
                            }
                            match result {
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
    tokio::time::sleep(warmup).await;
    let sim_cpu = || sim_pid.map_or(0.0, super::bench_node::family_cpu);
    let sim_before = sim_cpu();
    let cpu_before = cpu_time();
    let started = Instant::now();
    phase.store(MEASURING, Ordering::Relaxed);
    tokio::time::sleep(measure).await;
    phase.store(STOPPING, Ordering::Relaxed);
    let cpu = cpu_time().since(cpu_before);
    let sim_cpu_s = sim_cpu() - sim_before;
    let wall = started.elapsed();
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
    let (latencies_us, errors) = joined.unwrap_or_default();
    PollRun {
        latencies_us,
        errors,
        wall,
        cpu,
        sim_cpu_s,
    }
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
    let cpu = cpu_time().since(cpu_before).total().as_secs_f64();
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
