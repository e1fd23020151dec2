//! `hashmesh device`: the node's inventory from the command line: list, show, import a CSV
//! site map, set tags, notes and the credential group. Works on the data directory directly,
//! so it runs beside a live node (which picks the changes up within seconds).

use crate::output::Table;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hashmesh_core::DeviceId;
use hashmesh_store::meta::{DeviceKey, DeviceRecord, Inventory};
use std::path::{Path, PathBuf};

/// Arguments of `hashmesh device`.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// The node's data directory.
    #[arg(
        long,
        env = "HASHMESH_DATA_DIR",
        default_value = "hashmesh-data",
        global = true
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Every device of the inventory.
    List {
        /// One JSON object per device per line.
        #[arg(long)]
        json: bool,
    },
    /// One device in full, with every address it has had.
    Show {
        /// Device id, MAC, serial or current IP.
        device: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sets locations (and tags, notes, credential groups) from a CSV site map: a header row,
    /// a key column (id, mac, serial or ip) and any of site, container, rack, shelf, slot,
    /// tags (separated by ;), notes, credentials.
    ImportLocations {
        /// The CSV file.
        file: PathBuf,
    },
    /// Sets tags, notes or the credential group of one device.
    Set {
        /// Device id, MAC, serial or current IP.
        device: String,
        /// Tags, comma-separated (replaces the current ones; empty clears).
        #[arg(long)]
        tags: Option<String>,
        /// Notes (replaces the current ones).
        #[arg(long)]
        notes: Option<String>,
        /// Credential group to log in with (empty clears).
        #[arg(long)]
        credentials: Option<String>,
    },
}

fn open(dir: &Path) -> anyhow::Result<Inventory> {
    let path = dir.join("inventory.sqlite");
    if !path.exists() {
        bail!(
            "no inventory at {}: run `hashmesh node --data-dir {}` first, or pass --data-dir",
            path.display(),
            dir.display()
        );
    }
    Inventory::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// How a device named on the command line is looked up.
fn key(s: &str) -> DeviceKey {
    if let Ok(ip) = s.parse() {
        DeviceKey::Ip(ip)
    } else if ["mac:", "sn:", "ip:"].iter().any(|p| s.starts_with(p)) {
        DeviceKey::Id(DeviceId(s.to_owned()))
    } else if s.contains([':', '-']) && DeviceId::from_mac(s).is_some() {
        DeviceKey::Mac(s.to_owned())
    } else {
        DeviceKey::Serial(s.to_owned())
    }
}

fn find(inv: &Inventory, s: &str) -> anyhow::Result<DeviceRecord> {
    inv.find(&key(s))?
        .with_context(|| format!("no device '{s}' in the inventory"))
}

/// Runs `hashmesh device`.
pub async fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let inv = open(&args.data_dir)?;
    match args.action {
        Action::List { json } => {
            let all = inv.list()?;
            if json {
                for d in &all {
                    println!("{}", serde_json::to_string(d)?);
                }
            } else {
                print!("{}", table(&all));
                eprintln!("{} devices", all.len());
            }
        }
        Action::Show { device, json } => {
            let d = find(&inv, &device)?;
            let history = inv.ip_history(&d.id)?;
            if json {
                let mut v = serde_json::to_value(&d)?;
                v["ip_history"] = serde_json::to_value(&history)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", table(std::slice::from_ref(&d)));
                println!(
                    "firmware {}  mac {}  serial {}",
                    d.firmware,
                    d.mac.as_deref().unwrap_or("-"),
                    d.serial.as_deref().unwrap_or("-")
                );
                println!(
                    "tags {}  credentials {}",
                    d.tags.join(","),
                    d.credentials_ref.as_deref().unwrap_or("-")
                );
                if !d.notes.is_empty() {
                    println!("notes: {}", d.notes);
                }
                for h in history {
                    println!(
                        "  was at {} from {} to {} (unix ms)",
                        h.ip, h.first_seen_unix_ms, h.last_seen_unix_ms
                    );
                }
            }
        }
        Action::ImportLocations { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let report = inv
                .import_locations_csv(std::io::BufReader::new(f))
                .with_context(|| format!("importing {}", file.display()))?;
            for e in &report.errors {
                eprintln!("{} line {}: {}", file.display(), e.line, e.message);
            }
            for (line, key) in &report.unmatched {
                eprintln!(
                    "{} line {line}: no device {key} in the inventory (skipped)",
                    file.display()
                );
            }
            if !report.errors.is_empty() {
                bail!("{} bad rows: nothing was imported", report.errors.len());
            }
            println!(
                "{} devices updated, {} rows matched no device",
                report.updated,
                report.unmatched.len()
            );
        }
        Action::Set {
            device,
            tags,
            notes,
            credentials,
        } => {
            let d = find(&inv, &device)?;
            if let Some(t) = tags {
                let list: Vec<String> = t
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                inv.set_tags(&d.id, &list)?;
            }
            if let Some(n) = notes {
                inv.set_notes(&d.id, &n)?;
            }
            if let Some(c) = credentials {
                inv.set_credentials_ref(&d.id, Some(c.as_str()).filter(|s| !s.is_empty()))?;
            }
            println!("{} updated", d.id);
        }
    }
    Ok(())
}

fn table(devices: &[DeviceRecord]) -> String {
    let mut t = Table::new(&[
        "ID",
        "IP",
        "VENDOR",
        "MODEL",
        "SITE",
        "CONTAINER",
        "RACK",
        ">SHELF",
        ">SLOT",
        "SEEN",
    ]);
    for d in devices {
        let l = &d.location;
        t.row(vec![
            d.id.0.clone(),
            d.ip.to_string(),
            d.vendor.clone(),
            d.model.clone(),
            l.site.clone().unwrap_or_default(),
            l.container.clone().unwrap_or_default(),
            l.rack.clone().unwrap_or_default(),
            l.shelf.map(|s| s.to_string()).unwrap_or_default(),
            l.slot.map(|s| s.to_string()).unwrap_or_default(),
            if d.missing_since_unix_ms.is_some() {
                "missing".into()
            } else {
                "present".into()
            },
        ]);
    }
    t.render()
}
