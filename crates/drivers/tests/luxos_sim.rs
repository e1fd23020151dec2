//! The LuxOS driver against the LuxOS simulator over real TCP on 127.0.0.1: telemetry against
//! ground truth, session-guarded commands through `Driver::execute` with read-back, and faults.

mod cgminer_common;

use cgminer_common::sim::{
    self, assert_faults_fail_within, assert_shared_telemetry, near, run_confirmed, spawn,
};
use hashmesh_core::{Command, FirmwareKind, MinerStatus, PoolConfig, PowerMode};
use hashmesh_drivers::luxos::LuxosDriver;
use hashmesh_drivers::{Driver, Target, VerifyPolicy};
use hashmesh_sim::{Family, Fault, RunningDevice};
use std::time::Duration;

const MODEL: &str = "Antminer S19 Pro";

async fn device() -> (RunningDevice, Target) {
    spawn(Family::LuxOs, MODEL, true).await
}

fn policy() -> VerifyPolicy {
    sim::policy(Duration::from_secs(20), Duration::from_secs(30))
}

#[tokio::test]
async fn identify_names_model_and_build() {
    let (_dev, target) = device().await;
    let id = LuxosDriver::new()
        .identify(&target)
        .await
        .expect("identify");
    assert_eq!(id.firmware.kind, FirmwareKind::LuxOs);
    assert!(!id.firmware.version.is_empty());
    assert!(id.model.0.contains("S19"), "{}", id.model);
    assert!(id.mac.is_some(), "{id:?}");
}

#[tokio::test]
async fn telemetry_matches_truth() {
    let (dev, target) = device().await;
    let snap = LuxosDriver::new().poll(&target).await.expect("poll");
    let truth = dev.truth();
    assert_shared_telemetry(&snap, &truth);
    for (b, t) in snap.boards.iter().zip(&truth.boards) {
        assert_eq!(b.chips_working, t.chips_working, "board {}", b.index);
    }
    assert_eq!(snap.power_source, truth.power_source);
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
}

async fn run(d: &LuxosDriver, t: &Target, c: Command) {
    run_confirmed(d, t, c, &policy()).await;
}

#[tokio::test]
async fn session_commands_are_confirmed_by_read_back() {
    let (dev, t) = device().await;
    let d = LuxosDriver::new();
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
    let (dev, t) = device().await;
    let d = LuxosDriver::new();
    let limit = t.timeouts.total + Duration::from_secs(2);
    let faults: &[(Fault, &[&str])] = &[
        (Fault::Hang, &["timeout"][..]),
        (Fault::Garbage, &["malformed"][..]),
        (Fault::Reset, &["io", "malformed"][..]),
        (Fault::Oversized, &["too_large"][..]),
    ];
    assert_faults_fail_within(&dev, &d, &t, faults, limit).await;
    dev.set_faults(vec![Fault::DeadBoard]);
    let s = d.poll(&t).await.expect("dead board still answers");
    assert_eq!(s.status, MinerStatus::Degraded);
    dev.set_faults(vec![]);
    assert!(d.poll(&t).await.is_ok());
}
