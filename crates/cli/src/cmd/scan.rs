//! `hashmesh scan <CIDR>...`: find and identify every miner in some address ranges, with the
//! logins of the credential store in `--data-dir` when there is one.

use crate::cmd::creds::{DataDirArg, open_keyring};
use crate::output::{Table, num};
use hashmesh_drivers::Registry;
use hashmesh_drivers::credentials::CredentialSource;
use hashmesh_drivers::scan::{self, Found, ScanHit, ScanOptions, ScanProgress};
use indicatif::{ProgressBar, ProgressStyle};
use ipnet::IpNet;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Options of `hashmesh scan`.
#[derive(clap::Args)]
pub struct ScanArgs {
    /// Address ranges to scan, e.g. 10.0.0.0/22 (a bare address scans that host).
    #[arg(required = true, value_parser = parse_range)]
    pub ranges: Vec<IpNet>,
    /// Print one JSON object per device, one per line, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// RPC port to probe.
    #[arg(long, default_value_t = 4028)]
    pub port: u16,
    /// Web port, probed on hosts without an RPC port (Bitaxe/AxeOS).
    #[arg(long, default_value_t = 80)]
    pub web_port: u16,
    /// Do not probe the web port.
    #[arg(long)]
    pub no_web: bool,
    /// Also look for Modbus TCP power meters.
    #[arg(long)]
    pub meters: bool,
    /// Modbus TCP port of meters (with --meters).
    #[arg(long, default_value_t = 502)]
    pub modbus_port: u16,
    /// Modbus unit id to ask (with --meters).
    #[arg(long, default_value_t = 1)]
    pub unit_id: u8,
    /// Simultaneous TCP reachability probes.
    #[arg(long, default_value_t = 4096)]
    pub probe_concurrency: usize,
    /// Simultaneous identifications.
    #[arg(long, default_value_t = 512)]
    pub identify_concurrency: usize,
    /// Deadline of each TCP reachability probe, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub connect_timeout_ms: u64,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Parses a CIDR range or a bare address.
pub fn parse_range(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("'{s}' is neither a CIDR range (10.0.0.0/24) nor an address"))
}

/// Runs the scan and prints what it found.
pub async fn run(args: ScanArgs) -> anyhow::Result<()> {
    let total = scan::count_hosts(&args.ranges);
    let mut options = ScanOptions {
        rpc_port: args.port,
        web_port: (!args.no_web).then_some(args.web_port),
        modbus_port: args.meters.then_some(args.modbus_port),
        modbus_unit_id: args.unit_id,
        probe_concurrency: args.probe_concurrency.max(1),
        identify_concurrency: args.identify_concurrency.max(1),
        ..ScanOptions::default()
    };
    options.limits.probe_connect = Duration::from_millis(args.connect_timeout_ms.max(1));
    options.credentials = open_keyring(&args.data.data_dir)?
        .map(|keyring| Arc::new(keyring) as Arc<dyn CredentialSource>);
    let progress = Arc::new(ScanProgress::default());
    let started = Instant::now();
    let mut hits = scan::scan(
        Registry::with_defaults(),
        args.ranges.clone(),
        options,
        progress.clone(),
    );

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} probed  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut found: Vec<ScanHit> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            hit = hits.recv() => match hit {
                Some(hit) => {
                    if args.json {
                        let mut out = stdout.lock();
                        writeln!(out, "{}", hit_json(&hit))?;
                    }
                    found.push(hit);
                }
                None => break,
            },
            _ = ticker.tick() => {
                if let Some(bar) = &bar {
                    bar.set_position(progress.probed.load(Ordering::Relaxed));
                    bar.set_message(format!(
                        "{} answered, {} identified",
                        progress.answered.load(Ordering::Relaxed),
                        progress.identified.load(Ordering::Relaxed)
                    ));
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let identified = found
        .iter()
        .filter(|h| matches!(h.found, Found::Device { .. } | Found::Meter { .. }))
        .count();
    if !args.json {
        found.sort_by_key(|h| h.ip);
        print!("{}", table(&found));
    }
    eprintln!(
        "scanned {total} addresses in {:.1} s: {identified} identified, {} answered but unknown",
        started.elapsed().as_secs_f64(),
        found.len() - identified
    );
    Ok(())
}

/// The JSON object printed for one hit; hosts that answered but were not identified are listed
/// too, with `identified: false` and the reason.
pub fn hit_json(hit: &ScanHit) -> serde_json::Value {
    match &hit.found {
        Found::Device {
            family,
            identity,
            snapshot,
        } => {
            let snap = snapshot.as_ref().and_then(|s| s.as_ref().ok());
            let error = snapshot.as_ref().and_then(|s| s.as_ref().err());
            json!({
                "ip": hit.ip.to_string(),
                "identified": true,
                "kind": "miner",
                "family": family,
                "vendor": identity.vendor.display_name(),
                "model": identity.model.0,
                "firmware": identity.firmware.to_string(),
                "mac": identity.mac,
                "serial": identity.serial,
                "status": snap.map(|s| s.status.as_str()),
                "hashrate_ths": snap.and_then(|s| s.hashrate_ths),
                "expected_hashrate_ths": snap.and_then(|s| s.expected_hashrate_ths),
                "power_w": snap.and_then(|s| s.power_w),
                "efficiency_j_per_th": snap.and_then(|s| s.efficiency_j_per_th),
                "max_chip_temp_c": snap.and_then(|s| s.max_chip_temp_c()),
                "error": error,
            })
        }
        Found::Meter {
            model,
            identity,
            snapshot,
        } => {
            let snap = snapshot.as_ref().and_then(|s| s.as_ref().ok());
            let error = snapshot.as_ref().and_then(|s| s.as_ref().err());
            json!({
                "ip": hit.ip.to_string(),
                "identified": true,
                "kind": "meter",
                "family": model,
                "vendor": identity.manufacturer,
                "model": identity.model,
                "firmware": identity.firmware,
                "serial": identity.serial,
                "hashrate_ths": null,
                "power_w": snap.and_then(|s| s.active_power_total_w),
                "energy_import_kwh": snap.and_then(|s| s.energy_import_kwh),
                "frequency_hz": snap.and_then(|s| s.frequency_hz),
                "error": error,
            })
        }
        Found::Unknown { family, reason } => json!({
            "ip": hit.ip.to_string(),
            "identified": false,
            "family": family,
            "vendor": null,
            "model": null,
            "firmware": null,
            "hashrate_ths": null,
            "power_w": null,
            "error": reason,
        }),
    }
}

fn table(found: &[ScanHit]) -> String {
    let mut t = Table::new(&[
        "IP",
        "VENDOR",
        "MODEL",
        "FIRMWARE",
        "STATUS",
        ">TH/s",
        ">W",
        ">J/TH",
        ">CHIP °C",
        "NOTE",
    ]);
    for hit in found {
        match &hit.found {
            Found::Device {
                identity, snapshot, ..
            } => {
                let snap = snapshot.as_ref().and_then(|s| s.as_ref().ok());
                let note = match snapshot {
                    Some(Err(e)) => e.clone(),
                    _ if identity.partially_supported => "partially supported model".into(),
                    _ => String::new(),
                };
                t.row(vec![
                    hit.ip.to_string(),
                    identity.vendor.display_name().into(),
                    identity.model.0.clone(),
                    identity.firmware.to_string(),
                    snap.map_or("-", |s| s.status.as_str()).into(),
                    num(snap.and_then(|s| s.hashrate_ths), 1),
                    num(snap.and_then(|s| s.power_w), 0),
                    num(snap.and_then(|s| s.efficiency_j_per_th), 1),
                    num(snap.and_then(|s| s.max_chip_temp_c()), 0),
                    note,
                ]);
            }
            Found::Meter {
                identity, snapshot, ..
            } => {
                let snap = snapshot.as_ref().and_then(|s| s.as_ref().ok());
                let note = match snapshot {
                    Some(Err(e)) => e.clone(),
                    _ => "power meter".into(),
                };
                t.row(vec![
                    hit.ip.to_string(),
                    identity.manufacturer.clone(),
                    identity.model.clone(),
                    identity.firmware.clone().unwrap_or_default(),
                    if snap.is_some() { "ok" } else { "-" }.into(),
                    "-".into(),
                    num(snap.and_then(|s| s.active_power_total_w), 0),
                    "-".into(),
                    "-".into(),
                    note,
                ]);
            }
            Found::Unknown { family, reason } => {
                t.row(vec![
                    hit.ip.to_string(),
                    "?".into(),
                    family.unwrap_or("?").into(),
                    "".into(),
                    "unknown".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    reason.clone(),
                ]);
            }
        }
    }
    t.render()
}
