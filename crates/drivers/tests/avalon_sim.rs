//! The Avalon driver against the Avalon simulator over real TCP on 127.0.0.1: every telemetry
//! field against the simulator's ground truth, every command through `Driver::execute` with its
//! read-back, and faults that must end in a clear error within the deadline.

mod cgminer_common;

use cgminer_common::sim::{
    self, assert_faults_fail_within, assert_shared_telemetry, near, run_confirmed, spawn,
};
use hashmesh_core::{
    Command, CommandResult, MinerStatus, PoolConfig, PowerMode, PowerSource, Vendor,
};
use hashmesh_drivers::avalon::AvalonDriver;
use hashmesh_drivers::{Driver, Target, VerifyPolicy};
use hashmesh_sim::{Family, Fault, RunningDevice};
use std::time::Duration;

const MODEL: &str = "Avalon A1346";

async fn device() -> (RunningDevice, Target) {
    spawn(Family::Avalon, MODEL, true).await
}

fn policy() -> VerifyPolicy {
    sim::policy(Duration::from_secs(20), Duration::from_secs(30))
}

fn driver() -> AvalonDriver {
    AvalonDriver::new().with_soft_switch_lead_s(1)
}

#[tokio::test]
async fn identify_names_the_model() {
    let (_dev, target) = device().await;
    let id = driver().identify(&target).await.expect("identify");
    assert_eq!(id.vendor, Vendor::Canaan);
    assert!(id.model.0.contains("1346"), "{}", id.model);
    assert!(id.mac.is_some() && id.serial.is_some(), "{id:?}");
    assert!(!id.partially_supported);
}

#[tokio::test]
async fn telemetry_matches_truth() {
    let (dev, target) = device().await;
    let snap = driver().poll(&target).await.expect("poll");
    let truth = dev.truth();
    assert_shared_telemetry(&snap, &truth);
    for (b, t) in snap.boards.iter().zip(&truth.boards) {
        assert!(
            near(b.chip_temp_c, t.chip_temp_c, 0.0, 1.5),
            "board {} chip {:?} vs {:?}",
            b.index,
            b.chip_temp_c,
            t.chip_temp_c
        );
        // The wire carries SF/Freq; the simulator's truth may leave frequency out.
        if t.frequency_mhz.is_some() {
            assert!(
                near(b.frequency_mhz, t.frequency_mhz, 0.01, 1.0),
                "board {} freq {:?} vs {:?}",
                b.index,
                b.frequency_mhz,
                t.frequency_mhz
            );
        }
        assert!(
            b.frequency_mhz.is_some_and(|f| f > 0.0),
            "board {} has no frequency",
            b.index
        );
    }
    assert_eq!(snap.power_source, Some(PowerSource::Measured));
    assert!(
        near(snap.power_target_w, truth.power_target_w, 0.0, 10.0),
        "{:?} vs {:?}",
        snap.power_target_w,
        truth.power_target_w
    );
    assert_eq!(snap.power_mode, truth.power_mode);
    assert!(
        near(snap.ambient_temp_c, truth.ambient_temp_c, 0.0, 1.5),
        "{:?} vs {:?}",
        snap.ambient_temp_c,
        truth.ambient_temp_c
    );
    assert!(snap.efficiency_j_per_th.is_some());
    assert!(!snap.partial);
}

async fn run(d: &AvalonDriver, t: &Target, c: Command) -> hashmesh_core::CommandOutcome {
    run_confirmed(d, t, c, &policy()).await
}

#[tokio::test]
async fn commands_are_confirmed_by_read_back() {
    let (dev, t) = device().await;
    let d = driver();
    run(&d, &t, Command::LocateLed { on: true }).await;
    assert_eq!(dev.truth().locate_led_on, Some(true));
    run(&d, &t, Command::LocateLed { on: false }).await;
    assert_eq!(dev.truth().locate_led_on, Some(false));
    run(
        &d,
        &t,
        Command::SetPowerMode {
            mode: PowerMode::Low,
        },
    )
    .await;
    assert_eq!(dev.truth().power_mode, Some(PowerMode::Low));
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
    assert_ne!(dev.truth().status, MinerStatus::Sleeping);
    let pools = vec![
        PoolConfig {
            url: "stratum+tcp://new.example:3333".into(),
            user: "acct.a1".into(),
            password: "x".into(),
        },
        PoolConfig {
            url: "stratum+tcp://backup.example:443".into(),
            user: "acct.a1".into(),
            password: "x,y".into(),
        },
    ];
    run(
        &d,
        &t,
        Command::SetPools {
            pools: pools.clone(),
        },
    )
    .await;
    let now: Vec<String> = dev
        .truth()
        .pools
        .iter()
        .map(|p| p.url.to_string())
        .collect();
    assert_eq!(now, pools.iter().map(|p| p.url.clone()).collect::<Vec<_>>());
    // A restart is confirmed by uptime falling, so give the device some uptime first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(&d, &t, Command::Reboot).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(&d, &t, Command::RestartMining).await;
    let out = d
        .execute(&t, &Command::SetPowerTarget { power_w: 3000 }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Unsupported);
}

#[tokio::test]
async fn faults_give_clear_errors_within_the_deadline() {
    let (dev, t) = device().await;
    let d = driver();
    let limit = t.timeouts.total + Duration::from_secs(2);
    let faults: &[(Fault, &[&str])] = &[
        (Fault::Hang, &["timeout"][..]),
        (Fault::Slow, &["timeout"][..]),
        (Fault::Garbage, &["malformed"][..]),
        (Fault::Reset, &["io", "malformed"][..]),
        (Fault::Oversized, &["too_large"][..]),
    ];
    assert_faults_fail_within(&dev, &d, &t, faults, limit).await;
    dev.set_faults(vec![Fault::Truncated]);
    match d.poll(&t).await {
        Ok(s) => assert!(s.partial, "a truncated reply must be flagged partial"),
        Err(e) => assert_eq!(e.kind(), "malformed", "{e}"),
    }
    dev.set_faults(vec![Fault::DeadBoard]);
    let s = d.poll(&t).await.expect("dead board still answers");
    assert_eq!(s.status, MinerStatus::Degraded);
    assert!(s.boards.iter().any(|b| b.failed));
    dev.set_faults(vec![Fault::FanFail]);
    let s = d.poll(&t).await.expect("fan failure still answers");
    assert_eq!(s.status, MinerStatus::Degraded);
    assert!(s.fans_rpm.contains(&0));
    dev.set_faults(vec![]);
    assert!(d.poll(&t).await.is_ok());
}
