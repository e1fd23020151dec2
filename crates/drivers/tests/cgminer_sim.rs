//! The generic cgminer driver against simulated cgminer and BFGMiner over real TCP.

mod cgminer_common;

use cgminer_common::sim::{self, POLL_FAULTS_ANY_ERROR, assert_faults_fail_within, compare, spawn};
use hashmesh_core::{Command, CommandResult, FirmwareKind, PoolConfig};
use hashmesh_drivers::cgminer::CgminerDriver;
use hashmesh_drivers::{Driver, VerifyPolicy};
use hashmesh_sim::Family;
use std::time::Duration;

fn policy() -> VerifyPolicy {
    sim::policy(Duration::from_secs(5), Duration::from_secs(10))
}

#[tokio::test]
async fn telemetry_matches_truth() {
    for (family, kind) in [
        (Family::Cgminer, FirmwareKind::Cgminer),
        (Family::Bfgminer, FirmwareKind::Bfgminer),
    ] {
        let (dev, target) = spawn(family, "cgminer", true).await;
        let driver = CgminerDriver::new();
        let id = driver
            .identify(&target)
            .await
            .unwrap_or_else(|e| panic!("{family:?}: {e}"));
        assert_eq!(id.firmware.kind, kind);
        let snap = driver
            .poll(&target)
            .await
            .unwrap_or_else(|e| panic!("{family:?}: {e}"));
        compare(&snap, &dev.truth(), true);
    }
}

#[tokio::test]
async fn pools_and_restart_are_confirmed() {
    let (dev, target) = spawn(Family::Cgminer, "cgminer", true).await;
    let driver = CgminerDriver::new();
    let pools = vec![
        PoolConfig {
            url: "stratum+tcp://a.example:3333".into(),
            user: "w\\1".into(),
            password: "p,q".into(),
        },
        PoolConfig {
            url: "stratum+tcp://b.example:3333".into(),
            user: "w2".into(),
            password: "x".into(),
        },
    ];
    let out = driver
        .execute(&target, &Command::SetPools { pools }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    compare(
        &driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}")),
        &dev.truth(),
        true,
    );
    let out = driver
        .execute(&target, &Command::RestartMining, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let out = driver.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Unsupported);
}

#[tokio::test]
async fn faults_error_within_the_deadline() {
    let (dev, target) = spawn(Family::Cgminer, "cgminer", true).await;
    let driver = CgminerDriver::new();
    let (faults, limit) = (POLL_FAULTS_ANY_ERROR, Duration::from_secs(8));
    assert_faults_fail_within(&dev, &driver, &target, faults, limit).await;
}
