//! The Bitaxe (AxeOS) driver against the simulated AxeOS device over real HTTP on 127.0.0.1:
//! telemetry against the simulator's ground truth, every command read back, and HTTP faults
//! ending in a clear error within the deadline.

use hashmesh_core::{Command, CommandResult, MinerSnapshot, MinerStatus, PoolConfig, PowerSource};
use hashmesh_drivers::bitaxe::BitaxeDriver;
use hashmesh_drivers::{Driver, DriverError, Target, Timeouts, VerifyPolicy};
use hashmesh_sim::Timing;
use hashmesh_sim::web::WebFault;
use hashmesh_sim::web::bitaxe::{BitaxeConfig, RunningBitaxe, spawn_bitaxe};
use std::time::{Duration, Instant};

async fn spawn_with(cfg: BitaxeConfig) -> (RunningBitaxe, Target) {
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let dev = spawn_bitaxe(cfg, addr)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let local = dev.local_addr();
    let mut target = Target::new(local.ip());
    target.web_port = local.port();
    target.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(1),
        max_reply_bytes: 1 << 20,
    };
    (dev, target)
}

async fn spawn(model: &str) -> (RunningBitaxe, Target) {
    let mut cfg = BitaxeConfig::new(model);
    cfg.timing = Timing::fast();
    spawn_with(cfg).await
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(10),
    }
}

fn close(what: &str, got: Option<f64>, want: Option<f64>, rel: f64) {
    match (got, want) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= rel * w.abs().max(1e-3) + 1e-9,
            "{what}: got {g}, want {w}"
        ),
        (g, w) => assert_eq!(g.is_some(), w.is_some(), "{what}: got {g:?}, want {w:?}"),
    }
}

/// Every field the driver reads against the simulator's truth (5 s-window noise allowed).
fn compare(snap: &MinerSnapshot, truth: &MinerSnapshot) {
    assert_eq!(snap.status, truth.status, "status");
    close("hashrate", snap.hashrate_ths, truth.hashrate_ths, 0.05);
    close("avg", snap.hashrate_avg_ths, truth.hashrate_avg_ths, 0.05);
    close(
        "expected",
        snap.expected_hashrate_ths,
        truth.expected_hashrate_ths,
        1e-6,
    );
    close("power", snap.power_w, truth.power_w, 0.1);
    assert_eq!(snap.power_source, Some(PowerSource::Measured));
    assert_eq!(snap.boards.len(), 1);
    let (b, t) = (&snap.boards[0], &truth.boards[0]);
    close("chip temp", b.chip_temp_c, t.chip_temp_c, 0.1);
    close("vr temp", b.board_temp_c, t.board_temp_c, 0.1);
    close("frequency", b.frequency_mhz, t.frequency_mhz, 1e-6);
    close("voltage", b.voltage_v, t.voltage_v, 1e-6);
    assert_eq!(b.chips_expected, t.chips_expected);
    assert_eq!(snap.fans_rpm.len(), truth.fans_rpm.len(), "fans");
    for (g, w) in snap.fans_rpm.iter().zip(&truth.fans_rpm) {
        close("fan", Some(f64::from(*g)), Some(f64::from(*w)), 0.05);
    }
    assert_eq!(snap.pools.len(), truth.pools.len(), "pools");
    for (g, w) in snap.pools.iter().zip(&truth.pools) {
        assert_eq!((&g.url, &g.user, g.active), (&w.url, &w.user, w.active));
        assert_eq!(g.status, w.status, "pool status");
        assert!(
            g.accepted.abs_diff(w.accepted) <= 2,
            "{} vs {}",
            g.accepted,
            w.accepted
        );
    }
    let (u, tu) = (snap.uptime_s.unwrap_or(0), truth.uptime_s.unwrap_or(0));
    assert!(u.abs_diff(tu) <= 2, "uptime {u} vs {tu}");
    assert!(snap.efficiency_j_per_th.is_some() == truth.efficiency_j_per_th.is_some());
}

#[tokio::test]
async fn telemetry_matches_truth() {
    for model in ["Bitaxe Gamma", "Bitaxe Supra", "Bitaxe Ultra", "NerdQAxe++"] {
        let (dev, target) = spawn(model).await;
        let driver = BitaxeDriver::new();
        let id = driver
            .identify(&target)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(id.firmware.kind, hashmesh_core::FirmwareKind::AxeOs);
        assert_eq!(id.model.0, model);
        assert!(id.mac.is_some() && id.hostname.is_some(), "{id:?}");
        let snap = driver
            .poll(&target)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        compare(&snap, &dev.truth());
        assert_eq!(snap.status, MinerStatus::Mining, "{model}");
    }
}

#[tokio::test]
async fn old_firmware_and_failed_fan() {
    let mut cfg = BitaxeConfig::new("Bitaxe Supra");
    cfg.timing = Timing::fast();
    cfg.old_firmware = true;
    cfg.version = "v2.1.0".into();
    cfg.hardware_faults = vec![hashmesh_sim::Fault::FanFail];
    let (dev, target) = spawn_with(cfg).await;
    let snap = BitaxeDriver::new()
        .poll(&target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    compare(&snap, &dev.truth());
    assert_eq!(snap.hashrate_avg_ths, None);
    assert_eq!(snap.status, MinerStatus::Degraded);
    // Old firmware has no pause: the device answers 404, reported as a refusal.
    let out = BitaxeDriver::new()
        .execute(&target, &Command::Sleep, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    assert!(out.message.contains("404"), "{}", out.message);
}

#[tokio::test]
async fn sleep_and_wake_are_confirmed() {
    let (dev, target) = spawn("Bitaxe Gamma").await;
    let driver = BitaxeDriver::new();
    let out = driver.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let snap = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.status, MinerStatus::Sleeping);
    assert_eq!(snap.hashrate_ths, Some(0.0));
    compare(&snap, &dev.truth());
    let out = driver.execute(&target, &Command::Wake, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert!(!dev.update(|st| st.sleeping));
}

#[tokio::test]
async fn pools_apply_after_the_restart() {
    let (dev, target) = spawn("Bitaxe Gamma").await;
    let driver = BitaxeDriver::new();
    let pools = vec![
        PoolConfig {
            url: "stratum+tcp://public-pool.example:21496".into(),
            user: "bc1qnew.axe9".into(),
            password: "x".into(),
        },
        PoolConfig {
            url: "backup.example:3333".into(),
            user: "bc1qnew.axe9".into(),
            password: "x".into(),
        },
    ];
    let before = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    let out = driver
        .execute(&target, &Command::SetPools { pools }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    // The write restarted the device, so the miner now hashes on the new pool.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        &*snap.pools[0].url,
        "stratum+tcp://public-pool.example:21496"
    );
    assert_eq!(&*snap.pools[1].url, "stratum+tcp://backup.example:3333");
    assert!(snap.uptime_s < before.uptime_s, "no restart: {snap:?}");
    let running = dev.update(|st| st.pools.first().map(|p| p.url.clone()));
    assert_eq!(
        running.as_deref(),
        Some("stratum+tcp://public-pool.example:21496")
    );
    let three = vec![
        PoolConfig {
            url: "a:1".into(),
            user: "u".into(),
            password: "x".into()
        };
        3
    ];
    let out = driver
        .execute(&target, &Command::SetPools { pools: three }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
}

#[tokio::test]
async fn reboot_and_identify() {
    let (dev, target) = spawn("Bitaxe Gamma").await;
    let driver = BitaxeDriver::new();
    let out = driver.execute(&target, &Command::Reboot, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let out = driver
        .execute(&target, &Command::LocateLed { on: true }, &policy())
        .await;
    // Identify is visual only: accepted, but nothing to read back.
    assert_eq!(out.result, CommandResult::Unverified, "{out:?}");
    assert!(dev.identifying());
    let out = driver
        .execute(&target, &Command::SetPowerTarget { power_w: 15 }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Unsupported);
}

/// Whether an error is the one a fault should give.
type ErrorCheck = fn(&DriverError) -> bool;

#[tokio::test]
async fn http_faults_are_clear_errors_within_the_deadline() {
    let (dev, target) = spawn("Bitaxe Gamma").await;
    let driver = BitaxeDriver::new();
    let cases: [(WebFault, ErrorCheck); 5] = [
        (WebFault::Unauthorized, |e| {
            matches!(e, DriverError::Auth(_))
        }),
        (WebFault::Forbidden, |e| matches!(e, DriverError::Auth(_))),
        (
            WebFault::ServerError,
            |e| matches!(e, DriverError::Rejected(m) if m.contains("500")),
        ),
        (WebFault::Hang, |e| matches!(e, DriverError::Timeout(..))),
        (WebFault::Slow, |e| matches!(e, DriverError::Timeout(..))),
    ];
    for (fault, want) in cases {
        dev.set_faults(vec![fault]);
        let started = Instant::now();
        match driver.poll(&target).await {
            Err(e) => assert!(want(&e), "{fault}: {e}"),
            Ok(s) => panic!("{fault}: got a snapshot {s:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{fault} took {:?}",
            started.elapsed()
        );
    }
    dev.set_faults(Vec::new());
    driver
        .poll(&target)
        .await
        .unwrap_or_else(|e| panic!("after faults: {e}"));
    drop(dev);
    let r = driver.poll(&target).await;
    assert!(r.as_ref().is_err_and(|e| e.is_offline()), "{r:?}");
}

#[tokio::test]
async fn polls_reuse_one_connection() {
    let (dev, target) = spawn("Bitaxe Gamma").await;
    let driver = BitaxeDriver::new();
    for _ in 0..20 {
        driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(dev.connections_accepted(), 1);
}
