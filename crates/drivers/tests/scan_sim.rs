//! A scan of a simulated subnet with mixed vendors and some faulty devices, over real sockets:
//! every healthy device identified with its family and model, faulty ones reported as
//! answering-but-unknown, silent addresses absent, and the scan finishing despite a hanging
//! device.

use hashmesh_core::{MinerStatus, Vendor};
use hashmesh_drivers::Registry;
use hashmesh_drivers::identify::IdentifyLimits;
use hashmesh_drivers::scan::{self, Found, ScanOptions, ScanProgress};
use hashmesh_sim::meter::{MeterKind, MeterSimConfig, spawn_meter};
use hashmesh_sim::web::bitaxe::{BitaxeConfig, spawn_bitaxe};
use hashmesh_sim::whatsminer::{WhatsminerApi, WhatsminerConfig, spawn_whatsminer};
use hashmesh_sim::{DeviceConfig, Family, Fault, Timing, spawn_device};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const PORT: u16 = 14028;
const WEB_PORT: u16 = 14080;
const MODBUS_PORT: u16 = 14502;

struct Planned {
    family: Family,
    model: &'static str,
    faults: Vec<Fault>,
}

fn plan() -> Vec<Planned> {
    let p = |family, model, faults: &[Fault]| Planned {
        family,
        model,
        faults: faults.to_vec(),
    };
    vec![
        p(Family::Antminer, "Antminer S19 Pro", &[]),
        p(Family::Antminer, "Antminer S21", &[]),
        p(Family::Antminer, "Antminer S9", &[]),
        p(Family::Avalon, "Avalon A1346", &[]),
        p(Family::Avalon, "Avalon A1566", &[]),
        p(Family::Braiins, "Antminer S19 Pro", &[]),
        p(Family::LuxOs, "Antminer S19 XP", &[]),
        p(Family::Cgminer, "cgminer", &[]),
        p(Family::Bfgminer, "bfgminer", &[]),
        p(Family::Antminer, "Antminer S19k Pro", &[Fault::DeadBoard]),
        p(Family::Antminer, "Antminer S19 Pro", &[Fault::Hang]),
        p(Family::Avalon, "Avalon A1346", &[Fault::Garbage]),
        p(Family::Antminer, "Antminer S21 Pro", &[Fault::Offline]),
    ]
}

fn driver_for(family: Family) -> &'static str {
    match family {
        Family::Cgminer | Family::Bfgminer => "cgminer",
        Family::Antminer => "antminer",
        Family::Avalon => "avalon",
        Family::Braiins => "braiins",
        Family::LuxOs => "luxos",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_identifies_a_mixed_subnet_with_faults() {
    let mut devices = Vec::new();
    let mut expected: HashMap<IpAddr, &Planned> = HashMap::new();
    let planned = plan();
    for (i, p) in planned.iter().enumerate() {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 61, 0, 1 + i as u8));
        let mut cfg = DeviceConfig::new(p.family, p.model).with_seed(100 + i as u64);
        cfg.timing = Timing::fast();
        cfg.faults = p.faults.clone();
        let dev = spawn_device(cfg, SocketAddr::new(ip, PORT))
            .await
            .expect("bind simulated device");
        devices.push(dev);
        expected.insert(ip, p);
    }

    // Whatsminers: a v2 device, and a v3 device that keeps a degraded v2 service on the RPC port.
    let mut whatsminers = Vec::new();
    for (i, (api, model)) in [
        (WhatsminerApi::V2, "Whatsminer M50S"),
        (WhatsminerApi::V3, "Whatsminer M60S"),
    ]
    .into_iter()
    .enumerate()
    {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 61, 0, 20 + i as u8));
        let mut cfg = WhatsminerConfig::new(api, model);
        cfg.device.timing = Timing::fast();
        let dev = spawn_whatsminer(cfg, SocketAddr::new(ip, PORT))
            .await
            .expect("bind simulated whatsminer");
        whatsminers.push((ip, model, dev));
    }

    // A Bitaxe (web API only) and two power meters (Modbus only).
    let bitaxe_ip = IpAddr::V4(Ipv4Addr::new(127, 61, 0, 25));
    let bitaxe = spawn_bitaxe(
        BitaxeConfig::new("Bitaxe Gamma"),
        SocketAddr::new(bitaxe_ip, WEB_PORT),
    )
    .await
    .expect("bind simulated bitaxe");
    let mut meters = Vec::new();
    for (i, kind) in [MeterKind::SchneiderPm5xxx, MeterKind::AbbB2x]
        .into_iter()
        .enumerate()
    {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 61, 0, 26 + i as u8));
        let meter = spawn_meter(MeterSimConfig::new(kind), SocketAddr::new(ip, MODBUS_PORT))
            .await
            .expect("bind simulated meter");
        meters.push((ip, kind, meter));
    }

    let options = ScanOptions {
        rpc_port: PORT,
        web_port: Some(WEB_PORT),
        modbus_port: Some(MODBUS_PORT),
        modbus_unit_id: 1,
        probe_concurrency: 64,
        identify_concurrency: 16,
        limits: IdentifyLimits {
            probe_connect: Duration::from_millis(300),
            request: Duration::from_millis(1500),
            per_host: Duration::from_secs(3),
        },
        retry_connect: Duration::from_millis(300),
        poll: true,
        credentials: None,
    };
    let progress = Arc::new(ScanProgress::default());
    let ranges = vec!["127.61.0.0/27".parse().expect("range")];
    let mut rx = scan::scan(Registry::with_defaults(), ranges, options, progress.clone());
    let mut hits = HashMap::new();
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(hit) = rx.recv().await {
            hits.insert(hit.ip, hit.found);
        }
    })
    .await;
    assert!(all.is_ok(), "scan did not finish");
    assert_eq!(
        progress.probed.load(std::sync::atomic::Ordering::Relaxed),
        30
    );

    for (ip, p) in &expected {
        let found = hits.get(ip);
        if p.faults.contains(&Fault::Offline) {
            assert!(
                found.is_none(),
                "{ip} is offline but was reported: {found:?}"
            );
            continue;
        }
        let found =
            found.unwrap_or_else(|| panic!("{ip} ({:?}) answered but is missing", p.family));
        match (found, p.faults.first()) {
            (
                Found::Device {
                    family,
                    identity,
                    snapshot,
                },
                None | Some(Fault::DeadBoard),
            ) => {
                assert_eq!(*family, driver_for(p.family), "{ip}");
                let model = &identity.model.0;
                if matches!(p.family, Family::Cgminer | Family::Bfgminer) {
                    assert_eq!(identity.vendor, Vendor::Unknown, "{ip}");
                } else {
                    let bare = p
                        .model
                        .trim_start_matches("Antminer ")
                        .trim_start_matches("Avalon A");
                    assert!(
                        model.contains(bare),
                        "{ip}: model {model} should name {}",
                        p.model
                    );
                }
                let snap = snapshot
                    .as_ref()
                    .expect("polled")
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{ip}: poll failed: {e}"));
                assert!(snap.hashrate_ths.unwrap_or(0.0) > 0.0, "{ip}: no hashrate");
                if p.faults.contains(&Fault::DeadBoard) {
                    assert_eq!(
                        snap.status,
                        MinerStatus::Degraded,
                        "{ip}: a dead board must show as degraded"
                    );
                }
            }
            (Found::Unknown { reason, .. }, Some(Fault::Hang | Fault::Garbage)) => {
                assert!(!reason.is_empty());
            }
            (other, fault) => panic!("{ip} with {fault:?}: unexpected {other:?}"),
        }
    }
    for (ip, model, _) in &whatsminers {
        match hits.get(ip) {
            Some(Found::Device {
                family,
                identity,
                snapshot,
            }) => {
                assert_eq!(*family, "whatsminer", "{ip}");
                assert_eq!(identity.vendor, Vendor::MicroBt, "{ip}");
                let bare = model.trim_start_matches("Whatsminer ");
                assert!(
                    identity.model.0.contains(bare),
                    "{ip}: {} should name {bare}",
                    identity.model
                );
                let snap = snapshot
                    .as_ref()
                    .expect("polled")
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{ip}: {e}"));
                assert!(snap.hashrate_ths.unwrap_or(0.0) > 10.0, "{ip}: {snap:?}");
            }
            other => panic!("{ip} ({model}): {other:?}"),
        }
    }
    match hits.get(&bitaxe_ip) {
        Some(Found::Device {
            family,
            identity,
            snapshot,
        }) => {
            assert_eq!(*family, "bitaxe");
            assert_eq!(identity.vendor, Vendor::Bitaxe);
            let snap = snapshot
                .as_ref()
                .expect("polled")
                .as_ref()
                .unwrap_or_else(|e| panic!("bitaxe: {e}"));
            assert!(snap.hashrate_ths.unwrap_or(0.0) > 0.1, "{snap:?}");
            assert!(snap.power_w.unwrap_or(0.0) > 1.0, "{snap:?}");
        }
        other => panic!("bitaxe at {bitaxe_ip}: {other:?}"),
    }
    for (ip, kind, meter) in &meters {
        match hits.get(ip) {
            Some(Found::Meter {
                model, snapshot, ..
            }) => {
                let want = match kind {
                    MeterKind::AbbB2x => "abb_b2x",
                    _ => "schneider_pm5xxx",
                };
                assert_eq!(*model, want, "{ip}");
                let snap = snapshot
                    .as_ref()
                    .expect("polled")
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{ip}: {e}"));
                let truth = meter.truth();
                let (got, want) = (
                    snap.active_power_total_w.unwrap_or(0.0),
                    truth.active_power_total_w.unwrap_or(-1.0),
                );
                assert!(
                    (got - want).abs() < want.abs() * 0.05 + 50.0,
                    "{ip}: {got} W vs {want} W"
                );
            }
            other => panic!("meter {kind:?} at {ip}: {other:?}"),
        }
    }
    let others = [bitaxe_ip, meters[0].0, meters[1].0];
    let extra: Vec<_> = hits
        .keys()
        .filter(|ip| {
            !expected.contains_key(ip)
                && !whatsminers.iter().any(|(w, _, _)| w == *ip)
                && !others.contains(ip)
        })
        .collect();
    assert!(extra.is_empty(), "unexpected hosts answered: {extra:?}");
    drop(devices);
    drop(whatsminers);
    drop(bitaxe);
    drop(meters);
}
