//! `hashmesh sim`: starts a simulated fleet on loopback addresses and keeps it running until
//! SIGINT/SIGTERM. Prints exactly one line on stdout, `ready <N> devices` (N miners, as asked
//! with `--devices`; the containers' meters come on top), once every device is bound;
//! everything else goes to stderr.
//!
//! A process here may hold at most 20,000 open files, so a big fleet is spread over worker
//! processes: the binary re-executes itself as `hashmesh sim --worker START:COUNT …`, each
//! worker binds its range of fleet entries and prints `ready <COUNT>`, and exits when its stdin
//! closes (that is, when the parent dies). The parent kills its workers when it is stopped.
//! Ranges are cut by listening sockets, not by devices: a stock Antminer holds two (RPC and
//! web interface), a Braiins OS device two (RPC and REST API), a Whatsminer on API v3 two
//! (4433 and the degraded v2).

use anyhow::{Context, bail};
use hashmesh_sim::faults::FaultPlan;
use hashmesh_sim::fleet::{self, DEFAULT_MIX, FleetSpec};
use hashmesh_sim::model::Timing;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// The subcommand name this file is mounted under; workers are started with it.
pub const SUBCOMMAND: &str = "sim";

/// Options of `hashmesh sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Number of devices to simulate.
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// Address of the first device (must be in 127.0.0.0/8); the rest follow, skipping .0/.255.
    #[arg(long, default_value = "127.20.0.1")]
    pub base: Ipv4Addr,
    /// RPC port of every miner that has one (4028 on real miners).
    #[arg(long, default_value_t = 4028)]
    pub port: u16,
    /// HTTP port of Antminer web interfaces, Braiins OS REST APIs and Bitaxe devices (80 on
    /// real devices).
    #[arg(long, default_value_t = 80)]
    pub web_port: u16,
    /// Whatsminer API v3 port (4433 on real devices).
    #[arg(long, default_value_t = 4433)]
    pub v3_port: u16,
    /// Modbus TCP port of the power meters (502 on real meters).
    #[arg(long, default_value_t = 502)]
    pub modbus_port: u16,
    /// Power meters per container of 256 miners (0 for none); they take the addresses after
    /// the last miner.
    #[arg(long, default_value_t = 1)]
    pub meters_per_container: usize,
    /// Family mix as family=weight pairs (cgminer, bfgminer, antminer, avalon, braiins, luxos,
    /// whatsminer, bitaxe).
    #[arg(long, default_value = DEFAULT_MIX)]
    pub mix: String,
    /// Faults: shares of the fleet (`offline=1%,hang=0.5%`) and/or pinned (`127.20.0.7=fan-fail`).
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Seed of the fleet: the same seed gives the same devices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Test timing: reboots take about a second, temperatures settle in seconds.
    #[arg(long)]
    pub fast: bool,
    /// Write a JSON manifest of every device (kind, ip, ports, family, model, faults, location,
    /// mac, serial).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Listening sockets per worker process (a device holds one or two).
    #[arg(long, default_value_t = 12_000)]
    pub per_worker: usize,
    /// Internal: serve only devices START..START+COUNT and report `ready COUNT`.
    #[arg(long, hide = true, value_name = "START:COUNT")]
    pub worker: Option<String>,
}

fn spec_of(args: &SimArgs) -> anyhow::Result<FleetSpec> {
    let mut spec = FleetSpec::new(args.devices, args.base);
    spec.port = args.port;
    spec.web_port = args.web_port;
    spec.v3_port = args.v3_port;
    spec.modbus_port = args.modbus_port;
    spec.meters_per_container = args.meters_per_container;
    spec.mix = fleet::parse_mix(&args.mix)
        .map_err(anyhow::Error::msg)
        .context("--mix")?;
    spec.faults = FaultPlan::parse(&args.faults)
        .map_err(anyhow::Error::msg)
        .context("--faults")?;
    spec.seed = args.seed;
    spec.timing = if args.fast {
        Timing::fast()
    } else {
        Timing::realistic()
    };
    spec.validate()?;
    Ok(spec)
}

/// Runs `hashmesh sim` (or one of its workers).
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let spec = spec_of(&args)?;
    let limit = raise_nofile_limit();
    if let Some(range) = &args.worker {
        return run_worker(&spec, range).await;
    }
    if args.per_worker == 0 {
        bail!("--per-worker must be at least 1");
    }
    if let Some(path) = &args.manifest {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating manifest {}", path.display()))?;
        fleet::write_manifest(&spec, std::io::BufWriter::new(file))
            .with_context(|| format!("writing manifest {}", path.display()))?;
    }
    let ranges = fleet::split_by_listeners(&spec, args.per_worker);
    if spec.meters() > 0 {
        eprintln!(
            "{} meters (Modbus TCP port {}) after the {} miners",
            spec.meters(),
            spec.modbus_port,
            spec.devices
        );
    }
    if ranges.len() <= 1 {
        // Small fleets run in this process; leave headroom for connections.
        let listeners: usize = (0..spec.entries()).map(|i| spec.entry(i).listeners()).sum();
        if (listeners as u64) + 512 > limit {
            bail!(
                "{} devices need {listeners} listening sockets, more than this process may hold ({limit})",
                spec.devices
            );
        }
        let serving = serve_on_own_thread(spec.clone(), 0..spec.entries()).await?;
        announce(&format!("ready {} devices", spec.devices))?;
        wait_for_stop().await?;
        drop(serving);
        return Ok(());
    }
    let mut workers = start_workers(&args, &spec, &ranges).await?;
    announce(&format!("ready {} devices", spec.devices))?;
    let outcome = tokio::select! {
        r = wait_for_stop() => r,
        (name, status) = first_exit(&mut workers) => Err(anyhow::anyhow!("worker {name} exited unexpectedly: {status}")),
    };
    for w in &mut workers {
        let _ = w.child.start_kill();
    }
    for w in &mut workers {
        let _ = w.child.wait().await;
    }
    outcome
}

fn announce(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

struct Worker {
    range: String,
    child: Child,
    // Held open so the worker sees EOF on stdin only when this process goes away.
    _stdin: Option<tokio::process::ChildStdin>,
}

async fn start_workers(
    args: &SimArgs,
    spec: &FleetSpec,
    ranges: &[std::ops::Range<usize>],
) -> anyhow::Result<Vec<Worker>> {
    let exe = std::env::current_exe().context("finding the hashmesh binary to start workers")?;
    let mut workers = Vec::new();
    for r in ranges {
        let range = format!("{}:{}", r.start, r.len());
        let mut cmd = Command::new(&exe);
        cmd.arg(SUBCOMMAND)
            .arg("--devices")
            .arg(spec.devices.to_string())
            .arg("--base")
            .arg(args.base.to_string())
            .arg("--port")
            .arg(args.port.to_string())
            .arg("--web-port")
            .arg(args.web_port.to_string())
            .arg("--v3-port")
            .arg(args.v3_port.to_string())
            .arg("--modbus-port")
            .arg(args.modbus_port.to_string())
            .arg("--meters-per-container")
            .arg(args.meters_per_container.to_string())
            .arg("--mix")
            .arg(&args.mix)
            .arg("--faults")
            .arg(&args.faults)
            .arg("--seed")
            .arg(args.seed.to_string())
            .arg("--per-worker")
            .arg(args.per_worker.to_string())
            .arg("--worker")
            .arg(&range);
        if args.fast {
            cmd.arg("--fast");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting worker {range}"))?;
        let stdin = child.stdin.take();
        workers.push(Worker {
            range,
            child,
            _stdin: stdin,
        });
    }
    for w in &mut workers {
        let stdout = w.child.stdout.take().context("worker stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let want = format!("ready {}", w.range.split(':').nth(1).unwrap_or_default());
        if line.trim() != want {
            bail!("worker {} did not start (said {:?})", w.range, line.trim());
        }
    }
    Ok(workers)
}

async fn first_exit(workers: &mut [Worker]) -> (String, std::process::ExitStatus) {
    let waits = workers.iter_mut().map(|w| {
        let name = w.range.clone();
        Box::pin(async move { (name, w.child.wait().await) })
    });
    let ((name, status), _, _) = futures_select_all(waits).await;
    (
        name,
        status.unwrap_or_else(|_| std::process::ExitStatus::default()),
    )
}

/// Waits for the first of several futures (a tiny `select_all`, to avoid a dependency).
async fn futures_select_all<F: std::future::Future + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> (F::Output, usize, ()) {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn run_worker(spec: &FleetSpec, range: &str) -> anyhow::Result<()> {
    let (start, count) = range
        .split_once(':')
        .and_then(|(s, c)| Some((s.parse::<usize>().ok()?, c.parse::<usize>().ok()?)))
        .with_context(|| format!("bad --worker range '{range}' (expected START:COUNT)"))?;
    let end = start
        .checked_add(count)
        .filter(|e| *e <= spec.entries())
        .context("--worker range past the fleet's entries")?;
    let serving = serve_on_own_thread(spec.clone(), start..end).await?;
    announce(&format!("ready {count}"))?;
    let outcome = tokio::select! {
        r = wait_for_stop() => r,
        _ = stdin_closed() => Ok(()),
    };
    drop(serving);
    outcome
}

/// Devices served on a thread of their own; dropping it stops them.
struct Serving {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts fleet entries `range` on a single-threaded runtime in a new thread. Every request is a
/// short burst of work, so one thread per process serves them with less switching than a
/// work-stealing pool, and several worker processes still use every core.
async fn serve_on_own_thread(
    spec: FleetSpec,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Serving> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("sim-devices".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                match fleet::spawn_range(&spec, range).await {
                    Ok(devices) => {
                        let _ = ready_tx.send(Ok(()));
                        let _ = stop_rx.await;
                        drop(devices);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                    }
                }
            });
        })?;
    ready_rx
        .await
        .context("device thread ended before binding")??;
    Ok(Serving {
        stop: Some(stop_tx),
    })
}

/// Resolves when stdin reaches EOF (the parent has gone). A plain thread does the blocking
/// read, so this needs no tokio stdin support.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin().lock();
        while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard limit; returns the limit now in force.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn arguments_parse_and_validate() {
        let cli = Cli::try_parse_from([
            "t",
            "--devices",
            "5",
            "--base",
            "127.20.0.1",
            "--faults",
            "hang=1%",
            "--fast",
        ]);
        let args = cli.map(|c| c.sim).unwrap_or_else(|e| panic!("{e}"));
        let spec = spec_of(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((spec.devices, spec.port), (5, 4028));
        assert_eq!(spec.timing, Timing::fast());
        let bad = Cli::try_parse_from(["t", "--base", "10.0.0.1"]).map(|c| c.sim);
        assert!(bad.is_ok_and(|a| spec_of(&a).is_err()));
        let bad = Cli::try_parse_from(["t", "--mix", "antminer=x"]).map(|c| c.sim);
        assert!(bad.is_ok_and(|a| spec_of(&a).is_err()));
        let bad = Cli::try_parse_from(["t", "--mix", "meter=5"]).map(|c| c.sim);
        assert!(bad.is_ok_and(|a| spec_of(&a).is_err()));
        let bad = Cli::try_parse_from(["t", "--port", "80"]).map(|c| c.sim);
        assert!(
            bad.is_ok_and(|a| spec_of(&a).is_err()),
            "RPC and web port clash"
        );
        let cli = Cli::try_parse_from([
            "t",
            "--port",
            "14029",
            "--web-port",
            "18080",
            "--v3-port",
            "14433",
            "--modbus-port",
            "15020",
            "--meters-per-container",
            "2",
        ]);
        let args = cli.map(|c| c.sim).unwrap_or_else(|e| panic!("{e}"));
        let spec = spec_of(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (spec.port, spec.web_port, spec.v3_port, spec.modbus_port),
            (14029, 18080, 14433, 15020)
        );
        assert_eq!((spec.meters_per_container, spec.meters()), (2, 2));
        let defaults = Cli::try_parse_from(["t"]).map(|c| c.sim);
        let spec = defaults
            .map_err(anyhow::Error::from)
            .and_then(|a| spec_of(&a))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (spec.port, spec.web_port, spec.v3_port, spec.modbus_port),
            (4028, 80, 4433, 502)
        );
    }
}
