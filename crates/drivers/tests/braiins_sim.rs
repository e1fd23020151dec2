//! The Braiins OS driver against the simulated bosminer over real TCP on 127.0.0.1.

mod cgminer_common;

use cgminer_common::sim::{self, POLL_FAULTS_ANY_ERROR, assert_faults_fail_within, compare, spawn};
use hashmesh_core::{Command, CommandResult, MinerStatus, PoolConfig};
use hashmesh_drivers::braiins::BraiinsDriver;
use hashmesh_drivers::{Driver, VerifyPolicy};
use hashmesh_sim::{Family, Fault};
use std::time::Duration;

fn policy() -> VerifyPolicy {
    sim::policy(Duration::from_secs(5), Duration::from_secs(10))
}

#[tokio::test]
async fn telemetry_matches_truth() {
    let (dev, target) = spawn(Family::Braiins, "Antminer S19 Pro", true).await;
    let driver = BraiinsDriver::new();
    let id = driver
        .identify(&target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.model.0, "Antminer S19 Pro");
    assert_eq!(id.firmware.kind, hashmesh_core::FirmwareKind::BraiinsOs);
    let snap = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    compare(&snap, &dev.truth(), true);
    dev.set_faults(vec![Fault::DeadBoard]);
    let snap = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    compare(&snap, &dev.truth(), true);
    assert_eq!(snap.status, MinerStatus::Degraded);
}

#[tokio::test]
async fn sleep_wake_pools_restart_are_confirmed() {
    let (dev, target) = spawn(Family::Braiins, "Antminer S19 Pro", true).await;
    let driver = BraiinsDriver::new();
    let out = driver.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    compare(
        &driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}")),
        &dev.truth(),
        true,
    );
    let out = driver.execute(&target, &Command::Wake, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let pools = vec![PoolConfig {
        url: "stratum+tcp://bos.example:3333".into(),
        user: "acct.b".into(),
        password: "x".into(),
    }];
    let out = driver
        .execute(&target, &Command::SetPools { pools }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let out = driver
        .execute(&target, &Command::RestartMining, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let out = driver
        .execute(
            &target,
            &Command::SetPowerTarget { power_w: 3000 },
            &policy(),
        )
        .await;
    // Power targets go over the REST API (braiins_rest_sim.rs); this rig serves none.
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    assert!(!out.accepted);
}

#[tokio::test]
async fn faults_error_within_the_deadline() {
    let (dev, target) = spawn(Family::Braiins, "Antminer S19 Pro", true).await;
    let driver = BraiinsDriver::new();
    let (faults, limit) = (POLL_FAULTS_ANY_ERROR, Duration::from_secs(8));
    assert_faults_fail_within(&dev, &driver, &target, faults, limit).await;
}
