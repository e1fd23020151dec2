//! `hashmesh miner get|do <ip>`: read one miner in full, or command it and read the result back.
//!
//! Devices that need a login (Antminer web, Braiins REST, Whatsminer writes) get the logins of
//! the credential store in `--data-dir` when there is one: the device's own entry, then the
//! entries of the groups given with `--group`, then its family's, then the factory logins.

use crate::cmd::creds::{DataDirArg, open_keyring};
use crate::output::{Table, num};
use anyhow::{Context, bail};
use hashmesh_core::{Command, CommandResult, DeviceIdentity, MinerSnapshot, PoolConfig, PowerMode};
use hashmesh_drivers::credentials::{CredentialSource, DeviceRef, Keyring};
use hashmesh_drivers::identify::{self, IdentifyLimits};
use hashmesh_drivers::{CredentialSet, Registry, Target, VerifyPolicy};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// Options of `hashmesh miner`.
#[derive(clap::Args)]
pub struct MinerArgs {
    #[command(subcommand)]
    action: MinerAction,
}

/// Where the device's logins come from.
#[derive(clap::Args, Debug, Clone)]
struct LoginArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// A group the device belongs to (site=A, rack=A/C01/R03, …), for the group logins of the
    /// credential store; repeat for several, closest first.
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
}

#[derive(clap::Subcommand)]
enum MinerAction {
    /// Identify a miner and print one full snapshot.
    Get {
        /// The miner's address.
        ip: IpAddr,
        /// RPC port.
        #[arg(long, default_value_t = 4028)]
        port: u16,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        logins: LoginArgs,
    },
    /// Send a command to a miner and read its state back until the effect shows.
    Do {
        /// The miner's address.
        ip: IpAddr,
        /// RPC port.
        #[arg(long, default_value_t = 4028)]
        port: u16,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Give up confirming after this many seconds (reboots get five times as long).
        #[arg(long, default_value_t = 60)]
        verify_timeout_s: u64,
        #[command(flatten)]
        logins: LoginArgs,
        #[command(subcommand)]
        command: CommandArg,
    },
}

#[derive(clap::Subcommand)]
enum CommandArg {
    /// Reboot the controller.
    Reboot,
    /// Restart the mining process.
    RestartMining,
    /// Stop hashing, stay reachable.
    Sleep,
    /// Resume hashing.
    Wake,
    /// Switch the locate LED on or off.
    Led {
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Switch power mode: low, normal or high.
    PowerMode {
        /// low, normal or high.
        mode: PowerMode,
    },
    /// Tune to a power target in watts.
    PowerTarget {
        /// Target in watts.
        watts: u32,
    },
    /// Replace the pool list: each pool as URL,USER[,PASSWORD], highest priority first.
    Pools {
        /// Pools in priority order.
        #[arg(required = true, value_parser = parse_pool)]
        pools: Vec<PoolConfig>,
    },
}

fn parse_pool(s: &str) -> Result<PoolConfig, String> {
    let mut parts = s.splitn(3, ',');
    let url = parts.next().unwrap_or_default().trim();
    let user = parts.next().map(str::trim).unwrap_or_default();
    let password = parts.next().map(str::trim).unwrap_or("x");
    if url.is_empty() || user.is_empty() {
        return Err(format!("'{s}' should be URL,USER[,PASSWORD]"));
    }
    Ok(PoolConfig {
        url: url.into(),
        user: user.into(),
        password: password.into(),
    })
}

/// Runs the miner subcommand.
pub async fn run(args: MinerArgs) -> anyhow::Result<()> {
    let registry = Registry::with_defaults();
    match args.action {
        MinerAction::Get {
            ip,
            port,
            json,
            logins,
        } => {
            let (family, identity, target) = locate(&registry, ip, port, &logins).await?;
            let driver = registry
                .get(family)
                .context("driver vanished from the registry")?;
            let snapshot = driver
                .poll(&target)
                .await
                .with_context(|| format!("polling {ip}:{port} ({family})"))?;
            if json {
                let out = json!({ "ip": ip.to_string(), "family": family, "identity": identity, "snapshot": snapshot });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", render(ip, family, &identity, &snapshot));
            }
            Ok(())
        }
        MinerAction::Do {
            ip,
            port,
            json,
            verify_timeout_s,
            logins,
            command,
        } => {
            let command = match command {
                CommandArg::Reboot => Command::Reboot,
                CommandArg::RestartMining => Command::RestartMining,
                CommandArg::Sleep => Command::Sleep,
                CommandArg::Wake => Command::Wake,
                CommandArg::Led { state } => Command::LocateLed { on: state == "on" },
                CommandArg::PowerMode { mode } => Command::SetPowerMode { mode },
                CommandArg::PowerTarget { watts } => Command::SetPowerTarget { power_w: watts },
                CommandArg::Pools { pools } => Command::SetPools { pools },
            };
            let (family, _identity, target) = locate(&registry, ip, port, &logins).await?;
            let driver = registry
                .get(family)
                .context("driver vanished from the registry")?;
            let policy = VerifyPolicy {
                timeout: Duration::from_secs(verify_timeout_s.max(1)),
                interval: Duration::from_secs(2),
                restart_timeout: Duration::from_secs(verify_timeout_s.max(1) * 5),
            };
            let outcome = driver.execute(&target, &command, &policy).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                println!(
                    "{} on {ip}: {:?} after {:.1} s — {}",
                    command.name(),
                    outcome.result,
                    outcome.elapsed_ms as f64 / 1000.0,
                    outcome.message
                );
            }
            match outcome.result {
                CommandResult::Confirmed | CommandResult::Unverified => Ok(()),
                CommandResult::Failed | CommandResult::Unsupported => {
                    bail!("{} was not carried out", command.name())
                }
            }
        }
    }
}

/// The store's logins for a device in the groups the command line names.
#[derive(Debug)]
struct GroupLogins<'a> {
    keyring: &'a Keyring,
    groups: &'a [String],
}

impl CredentialSource for GroupLogins<'_> {
    fn credentials_for(&self, device: &DeviceRef<'_>) -> CredentialSet {
        self.keyring.lookup_lenient(&DeviceRef {
            groups: self.groups,
            ..*device
        })
    }
}

/// Identifies the device (with its logins, for the details behind a web login) and builds its
/// target with the logins that apply to it. An entry that applies but cannot be decrypted is an
/// error naming it.
async fn locate(
    registry: &Registry,
    ip: IpAddr,
    port: u16,
    logins: &LoginArgs,
) -> anyhow::Result<(&'static str, DeviceIdentity, Target)> {
    let keyring = open_keyring(&logins.data.data_dir)?;
    let source = keyring.as_ref().map(|keyring| GroupLogins {
        keyring,
        groups: &logins.groups,
    });
    let limits = IdentifyLimits::default();
    let (family, identity) = identify::identify_with(
        registry,
        ip,
        port,
        &limits,
        source.as_ref().map(|s| s as &dyn CredentialSource),
    )
    .await
    .with_context(|| format!("identifying {ip}:{port}"))?;
    let mut target = Target::new(ip);
    target.rpc_port = port;
    if let Some(keyring) = &keyring {
        target.credentials = keyring
            .lookup(&DeviceRef {
                ip,
                mac: identity.mac.as_deref(),
                groups: &logins.groups,
                family,
            })
            .with_context(|| format!("the stored logins of {ip}"))?;
    }
    Ok((family, identity, target))
}

/// Human-readable rendering of one snapshot.
pub fn render(ip: IpAddr, family: &str, id: &DeviceIdentity, s: &MinerSnapshot) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{ip}  {} {}  firmware {}  (driver {family})\n",
        id.vendor, id.model, id.firmware
    ));
    if let Some(mac) = &id.mac {
        out.push_str(&format!("mac {mac}"));
        if let Some(sn) = &id.serial {
            out.push_str(&format!("  serial {sn}"));
        }
        out.push('\n');
    }
    let power_source = s
        .power_source
        .map(|p| format!(" ({p:?})"))
        .unwrap_or_default();
    out.push_str(&format!(
        "status {}  hashrate {} TH/s (avg {}, expected {})  power {} W{power_source}  efficiency {} J/TH\n",
        s.status.as_str(),
        num(s.hashrate_ths, 2),
        num(s.hashrate_avg_ths, 2),
        num(s.expected_hashrate_ths, 2),
        num(s.power_w, 0),
        num(s.efficiency_j_per_th, 1),
    ));
    out.push_str(&format!(
        "uptime {} s  hardware errors {}  power target {} W  mode {}  LED {}  ambient {} °C\n",
        s.uptime_s.map_or("-".into(), |u| u.to_string()),
        s.hardware_errors.map_or("-".into(), |u| u.to_string()),
        num(s.power_target_w, 0),
        s.power_mode.map_or("-", |m| m.as_str()),
        s.locate_led_on
            .map_or("-", |on| if on { "on" } else { "off" }),
        num(s.ambient_temp_c, 1),
    ));
    if !s.fans_rpm.is_empty() {
        let fans: Vec<String> = s.fans_rpm.iter().map(u32::to_string).collect();
        out.push_str(&format!("fans {} rpm\n", fans.join(" / ")));
    }
    if s.partial {
        out.push_str("note: the reply was truncated or repaired; some fields may be missing\n");
    }
    let mut boards = Table::new(&[
        "BOARD",
        ">TH/s",
        ">EXPECTED",
        ">CHIP °C",
        ">BOARD °C",
        ">IN °C",
        ">OUT °C",
        ">CHIPS",
        ">MHz",
        ">V",
        ">HW ERR",
        "STATE",
    ]);
    for b in &s.boards {
        let chips = match (b.chips_working, b.chips_expected) {
            (Some(w), Some(e)) => format!("{w}/{e}"),
            (Some(w), None) => w.to_string(),
            _ => "-".into(),
        };
        boards.row(vec![
            b.index.to_string(),
            num(b.hashrate_ths, 2),
            num(b.expected_hashrate_ths, 2),
            num(b.chip_temp_c, 0),
            num(b.board_temp_c, 0),
            num(b.inlet_temp_c, 0),
            num(b.outlet_temp_c, 0),
            chips,
            num(b.frequency_mhz, 0),
            num(b.voltage_v, 2),
            b.hardware_errors.map_or("-".into(), |h| h.to_string()),
            if b.failed {
                "FAILED".into()
            } else {
                "ok".into()
            },
        ]);
    }
    out.push('\n');
    out.push_str(&boards.render());
    let mut pools = Table::new(&[
        "POOL",
        "URL",
        "USER",
        "STATUS",
        ">ACCEPTED",
        ">REJECTED",
        ">STALE",
        "ACTIVE",
    ]);
    for p in &s.pools {
        pools.row(vec![
            p.index.to_string(),
            p.url.to_string(),
            p.user.clone(),
            format!("{:?}", p.status).to_lowercase(),
            p.accepted.to_string(),
            p.rejected.to_string(),
            p.stale.to_string(),
            if p.active { "*".into() } else { String::new() },
        ]);
    }
    out.push('\n');
    out.push_str(&pools.render());
    if !s.errors.is_empty() {
        out.push_str("\nerrors:\n");
        for e in &s.errors {
            out.push_str(&format!("  {}: {}\n", e.code, e.message));
        }
    }
    out
}
