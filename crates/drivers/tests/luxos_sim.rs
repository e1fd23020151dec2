//! The LuxOS driver against the LuxOS simulator over real TCP on 127.0.0.1: telemetry against
//! ground truth, session-guarded commands through `Driver::execute` with read-back, and faults.

use hashmesh_core::{Command, CommandResult, FirmwareKind, MinerStatus, PoolConfig, PowerMode};
use hashmesh_drivers::luxos::LuxosDriver;
use hashmesh_drivers::{Driver, Target, Timeouts, VerifyPolicy};
use hashmesh_sim::{DeviceConfig, Family, Fault, RunningDevice, Timing, spawn_device};
use std::time::{Duration, Instant};

const MODEL: &str = "Antminer S19 Pro";

async fn device() -> RunningDevice {
    let mut cfg = DeviceConfig::new(Family::LuxOs, MODEL);
    cfg.timing = Timing::fast();
    spawn_device(cfg, "127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("simulator starts")
}

fn target(dev: &RunningDevice) -> Target {
    let addr = dev.local_addr();
    let mut t = Target::new(addr.ip());
    t.rpc_port = addr.port();
    t.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(2),
        max_reply_bytes: 1 << 20,
    };
    t
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(20),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(30),
    }
}

fn near(a: Option<f64>, b: Option<f64>, rel: f64, abs: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= abs.max(rel * a.abs().max(b.abs())),
        (None, None) => true,
        _ => false,
    }
}

#[tokio::test]
async fn identify_names_model_and_build() {
    let dev = device().await;
    let id = LuxosDriver::new()
        .identify(&target(&dev))
        .await
        .expect("identify");
    assert_eq!(id.firmware.kind, FirmwareKind::LuxOs);
    assert!(!id.firmware.version.is_empty());
    assert!(id.model.0.contains("S19"), "{}", id.model);
    assert!(id.mac.is_some(), "{id:?}");
}

#[tokio::test]
async fn telemetry_matches_truth() {
    let dev = device().await;
    let snap = LuxosDriver::new().poll(&target(&dev)).await.expect("poll");
    let truth = dev.truth();
    assert_eq!(snap.status, truth.status);
    assert!(
        near(snap.hashrate_ths, truth.hashrate_ths, 0.01, 0.01),
        "{:?} vs {:?}",
        snap.hashrate_ths,
        truth.hashrate_ths
    );
    assert!(near(
        snap.hashrate_avg_ths,
        truth.hashrate_avg_ths,
        0.01,
        0.01
    ));
    assert!(near(
        snap.expected_hashrate_ths,
        truth.expected_hashrate_ths,
        0.001,
        0.01
    ));
    assert_eq!(snap.boards.len(), truth.boards.len());
    for (b, t) in snap.boards.iter().zip(&truth.boards) {
        assert!(
            near(b.hashrate_ths, t.hashrate_ths, 0.01, 0.01),
            "board {}",
            b.index
        );
        assert_eq!(b.chips_working, t.chips_working, "board {}", b.index);
        assert_eq!(b.failed, t.failed);
    }
    assert_eq!(snap.fans_rpm.len(), truth.fans_rpm.len());
    assert_eq!(snap.power_source, truth.power_source);
    assert!(
        near(snap.power_w, truth.power_w, 0.02, 2.0),
        "{:?} vs {:?}",
        snap.power_w,
        truth.power_w
    );
    assert!(
        near(snap.power_target_w, truth.power_target_w, 0.0, 1.0),
        "{:?} vs {:?}",
        snap.power_target_w,
        truth.power_target_w
    );
    // LuxOS has profiles rather than modes; the simulator's truth may not name one.
    if truth.power_mode.is_some() {
        assert_eq!(snap.power_mode, truth.power_mode);
    }
    assert_eq!(snap.locate_led_on, truth.locate_led_on);
    assert!(near(
        snap.uptime_s.map(|u| u as f64),
        truth.uptime_s.map(|u| u as f64),
        0.0,
        3.0
    ));
    let urls = |p: &[hashmesh_core::PoolSnapshot]| {
        p.iter()
            .map(|p| (p.url.clone(), p.user.clone(), p.active))
            .collect::<Vec<_>>()
    };
    assert_eq!(urls(&snap.pools), urls(&truth.pools));
}

async fn run(d: &LuxosDriver, t: &Target, c: Command) {
    let out = d.execute(t, &c, &policy()).await;
    assert_eq!(
        out.result,
        CommandResult::Confirmed,
        "{}: {}",
        c.name(),
        out.message
    );
}

#[tokio::test]
async fn session_commands_are_confirmed_by_read_back() {
    let dev = device().await;
    let (d, t) = (LuxosDriver::new(), target(&dev));
    run(&d, &t, Command::LocateLed { on: true }).await;
    assert_eq!(dev.truth().locate_led_on, Some(true));
    run(&d, &t, Command::LocateLed { on: false }).await;
    run(
        &d,
        &t,
        Command::SetPowerMode {
            mode: PowerMode::Low,
        },
    )
    .await;
    let low = LuxosDriver::new().poll(&t).await.expect("poll");
    assert_eq!(low.power_mode, Some(PowerMode::Low));
    run(&d, &t, Command::SetPowerTarget { power_w: 3300 }).await;
    run(
        &d,
        &t,
        Command::SetPowerMode {
            mode: PowerMode::Normal,
        },
    )
    .await;
    run(&d, &t, Command::Sleep).await;
    assert_eq!(dev.truth().status, MinerStatus::Sleeping);
    run(&d, &t, Command::Wake).await;
    let pools = vec![PoolConfig {
        url: "stratum+tcp://new.example:700".into(),
        user: "acct.lux".into(),
        password: "x".into(),
    }];
    run(&d, &t, Command::SetPools { pools }).await;
    // A restart is confirmed by uptime falling, so give the device some uptime first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(&d, &t, Command::Reboot).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(&d, &t, Command::RestartMining).await;
}

#[tokio::test]
async fn faults_give_clear_errors_within_the_deadline() {
    let dev = device().await;
    let (d, t) = (LuxosDriver::new(), target(&dev));
    let limit = t.timeouts.total + Duration::from_secs(2);
    for (fault, kinds) in [
        (Fault::Hang, &["timeout"][..]),
        (Fault::Garbage, &["malformed"][..]),
        (Fault::Reset, &["io", "malformed"][..]),
        (Fault::Oversized, &["too_large"][..]),
    ] {
        dev.set_faults(vec![fault]);
        let started = Instant::now();
        let got = d.poll(&t).await;
        assert!(
            started.elapsed() < limit,
            "{fault:?} took {:?}",
            started.elapsed()
        );
        match got {
            Err(e) => assert!(kinds.contains(&e.kind()), "{fault:?}: {e}"),
            Ok(s) => panic!("{fault:?}: expected an error, got {s:?}"),
        }
    }
    dev.set_faults(vec![Fault::DeadBoard]);
    let s = d.poll(&t).await.expect("dead board still answers");
    assert_eq!(s.status, MinerStatus::Degraded);
    dev.set_faults(vec![]);
    assert!(d.poll(&t).await.is_ok());
}
