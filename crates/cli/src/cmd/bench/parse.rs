//! `hashmesh bench parse`: the parse alone, apart from the transport. For each cgminer-RPC
//! family it starts a few simulated miners, fetches one poll reply from one of them with the
//! drivers' own transport, and times the driver's parse of that reply (reply bytes → snapshot),
//! best of five rounds, on one thread with warm caches: the lower bound of what parsing adds to
//! a poll (in a real poll the reply arrives cold from the kernel).

use super::{start_sim, transport_request};
use anyhow::{Context, bail};
use hashmesh_drivers::cgminer::proto;
use hashmesh_drivers::{Target, antminer, avalon, braiins, cgminer, luxos, whatsminer};
use serde_json::json;
use std::net::IpAddr;
use std::time::Instant;

/// Options of `hashmesh bench parse`.
#[derive(clap::Args)]
pub struct ParseBench {
    /// Family (cgminer, bfgminer, antminer, avalon, braiins, luxos, whatsminer) or `each`.
    #[arg(long, default_value = "each")]
    family: String,
    /// Parses per round (five rounds; the best is reported).
    #[arg(long, default_value_t = 20_000)]
    rounds: usize,
    /// First loopback address of the simulated miners.
    #[arg(long, default_value = "127.42.0.1")]
    base: IpAddr,
    /// Print one JSON object per family instead of a table.
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
];

/// Parses `raw` as `family`'s driver parses its poll reply; `Ok(true)` when it gave a snapshot.
fn parse(family: &str, raw: &[u8]) -> anyhow::Result<bool> {
    let now_ms = 1_718_000_000_000;
    Ok(match family {
        "cgminer" | "bfgminer" => cgminer::parse::parse_cgminer_multi(raw, now_ms).is_ok(),
        "antminer" => antminer::parse::parse_antminer_multi(raw, now_ms)?.is_some(),
        "avalon" => avalon::parse::parse_poll(raw, now_ms)?.is_some(),
        "braiins" => braiins::parse::parse_braiins_multi(raw, now_ms, false)?.is_some(),
        "luxos" => luxos::parse::parse_poll(raw, now_ms)?.is_some(),
        "whatsminer" => whatsminer::parse::parse_v2_poll(raw, now_ms)?.is_some(),
        other => bail!("no parse benchmark for {other}"),
    })
}

/// The request that fetches `family`'s poll reply.
fn request(family: &str) -> Vec<u8> {
    match family {
        "whatsminer" => {
            format!("{{\"cmd\":\"{}\"}}", whatsminer::parse::V2_POLL_COMMAND).into_bytes()
        }
        other => transport_request(other),
    }
}

/// Runs the parse benchmark and prints its figures.
pub async fn run(args: ParseBench) -> anyhow::Result<()> {
    let families: Vec<&str> = if args.family == "each" {
        FAMILIES.to_vec()
    } else {
        vec![args.family.as_str()]
    };
    let rounds = args.rounds.max(1);
    if !args.json {
        println!("FAMILY      REPLY BYTES  µs/PARSE (best of 5 × {rounds})");
    }
    for family in families {
        // A few devices, so a Whatsminer on API v2 (half of them speak v3 only) is among them.
        let mut sim = start_sim(4, args.base, &format!("{family}=100"), 0).await?;
        let entry = sim
            .manifest
            .iter()
            .find(|e| e.is_miner() && e.faults.is_empty() && e.v3_port.is_none())
            .with_context(|| format!("no simulated {family} answers on the RPC port"))?;
        let mut target = Target::new(entry.ip);
        target.rpc_port = entry.port;
        let raw = proto::exchange(target.rpc_addr(), &request(family), &target.timeouts).await;
        let _ = sim.child.kill().await;
        let raw = raw.with_context(|| format!("fetching a {family} poll reply"))?;
        if !parse(family, &raw)? {
            bail!("the {family} reply did not parse into a snapshot");
        }
        let mut best_us = f64::INFINITY;
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(parse(family, std::hint::black_box(&raw))?);
            }
            best_us = best_us.min(started.elapsed().as_secs_f64() * 1e6 / rounds as f64);
        }
        if args.json {
            println!(
                "{}",
                json!({"family": family, "reply_bytes": raw.len(), "parse_us": best_us})
            );
        } else {
            println!("{family:<11} {:>11}  {best_us:.2}", raw.len());
        }
    }
    Ok(())
}
