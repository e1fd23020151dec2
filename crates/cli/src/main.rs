//! `hashmesh`: the one binary. Subcommands run a simulated fleet, scan networks, read a miner
//! and measure performance; each lives in its own module under `cmd/`.

mod cmd;
mod output;

use clap::{Parser, Subcommand};

/// hashmesh: a self-hosted operating system for Bitcoin mining operations.
#[derive(Parser)]
#[command(name = "hashmesh", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Start a simulated farm, a node managing it and the dashboard, all on this machine.
    Demo(cmd::demo::DemoArgs),
    /// Run a node: discover, poll and keep the history of a site's devices.
    Node(cmd::node::NodeArgs),
    /// The node's device inventory: list, show, import locations, set tags and notes.
    Device(cmd::device::DeviceArgs),
    /// Run a simulated fleet of miners on loopback addresses.
    Sim(cmd::sim::SimArgs),
    /// Find and identify every miner in some address ranges.
    Scan(cmd::scan::ScanArgs),
    /// Read or command one miner.
    Miner(cmd::miner::MinerArgs),
    /// Measure performance against simulated miners.
    Bench(cmd::bench::BenchArgs),
    /// Users and API tokens of the node: add, list, passwd, token.
    User(cmd::user::UserArgs),
    /// Store, list and remove the logins of devices, groups and families.
    Creds(cmd::creds::CredsArgs),
}

/// The heap of every hashmesh process. A node polling 100,000 devices spent 10 % of its
/// poller's time in glibc's malloc and free (bins searched and merged in one shared arena);
/// mimalloc's per-thread free lists cost less (97–101 → 85–90 µs per poll; built without
/// transparent huge pages, which made RSS swing by 50 MB between runs, ~92–98 µs) at the same
/// or less memory (`hashmesh bench node`, docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HASHMESH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,hashmesh_node=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    cmd::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Commands::Demo(args) => cmd::demo::run(args).await,
            Commands::Node(args) => cmd::node::run(args).await,
            Commands::Device(args) => cmd::device::run(args).await,
            Commands::Sim(args) => cmd::sim::run(args).await,
            Commands::Scan(args) => cmd::scan::run(args).await,
            Commands::Miner(args) => cmd::miner::run(args).await,
            Commands::Bench(args) => cmd::bench::run(args).await,
            Commands::User(args) => cmd::user::run(args).await,
            Commands::Creds(args) => cmd::creds::run(args).await,
        }
    })
}
