//! The Antminer driver against the simulated bmminer over real TCP on 127.0.0.1.

mod cgminer_common;

use cgminer_common::sim::{compare, spawn};
use hashmesh_core::{Command, CommandResult, PoolConfig, PowerSource};
use hashmesh_drivers::antminer::AntminerDriver;
use hashmesh_drivers::{Driver, DriverError, VerifyPolicy};
use hashmesh_sim::{Family, Fault};
use std::time::{Duration, Instant};

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn telemetry_matches_truth() {
    for model in ["Antminer S19 Pro", "Antminer S9", "Antminer S21"] {
        let (dev, target) = spawn(Family::Antminer, model, false).await;
        let driver = AntminerDriver::new();
        let id = driver
            .identify(&target)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(id.model.0, model);
        let snap = driver
            .poll(&target)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        compare(&snap, &dev.truth(), false);
        assert_eq!(snap.power_source, Some(PowerSource::Nameplate), "{model}");
    }
}

#[tokio::test]
async fn dead_board_and_failed_fan_degrade() {
    let (dev, target) = spawn(Family::Antminer, "Antminer S19 Pro", false).await;
    dev.set_faults(vec![Fault::DeadBoard, Fault::FanFail]);
    let snap = AntminerDriver::new()
        .poll(&target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    compare(&snap, &dev.truth(), false);
    assert_eq!(snap.status, hashmesh_core::MinerStatus::Degraded);
}

#[tokio::test]
async fn writes_without_access_are_auth_errors() {
    let (_dev, target) = spawn(Family::Antminer, "Antminer S19 Pro", false).await;
    let driver = AntminerDriver::new();
    let err = driver.send(&target, &Command::RestartMining).await.err();
    assert!(matches!(err, Some(DriverError::Auth(_))), "{err:?}");
    // Sleep goes to the web interface, which this test does not start: a clear failure.
    let out = driver.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    let out = driver
        .execute(
            &target,
            &Command::SetPowerTarget { power_w: 3000 },
            &policy(),
        )
        .await;
    assert_eq!(out.result, CommandResult::Unsupported);
}

#[tokio::test]
async fn restart_and_pools_are_confirmed() {
    let (dev, target) = spawn(Family::Antminer, "Antminer S19 Pro", true).await;
    let driver = AntminerDriver::new();
    let pools = vec![
        PoolConfig {
            url: "stratum+tcp://new.example:3333".into(),
            user: "acct.new".into(),
            password: "x,y".into(),
        },
        PoolConfig {
            url: "stratum+tcp://second.example:3333".into(),
            user: "acct.2".into(),
            password: "x".into(),
        },
    ];
    let out = driver
        .execute(&target, &Command::SetPools { pools }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let snap = driver.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.pools.len(), 2);
    compare(&snap, &dev.truth(), false);
    let out = driver
        .execute(&target, &Command::RestartMining, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
}

#[tokio::test]
async fn faults_error_within_the_deadline() {
    let (dev, target) = spawn(Family::Antminer, "Antminer S19 Pro", false).await;
    let driver = AntminerDriver::new();
    for fault in [Fault::Hang, Fault::Garbage, Fault::Reset, Fault::Oversized] {
        dev.set_faults(vec![fault]);
        let started = Instant::now();
        let r = driver.poll(&target).await;
        assert!(r.is_err(), "{fault:?} gave {r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{fault:?} took {:?}",
            started.elapsed()
        );
    }
    dev.set_faults(vec![Fault::Truncated]);
    match driver.poll(&target).await {
        Ok(s) => assert!(s.partial, "truncated reply not flagged"),
        Err(e) => assert!(matches!(e, DriverError::Malformed(_)), "{e}"),
    }
    dev.set_faults(vec![Fault::Offline]);
    let r = driver.poll(&target).await;
    assert!(r.as_ref().is_err_and(|e| e.is_offline()), "{r:?}");
}
