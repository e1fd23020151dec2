//! The Braiins OS driver's REST writes against the simulated Braiins REST API (attached to a
//! simulated bosminer) over real TCP on 127.0.0.1: each command through `Driver::execute`,
//! confirmed by read-back, then checked against the device's own state.

use hashmesh_core::{Command, CommandResult, PowerMode};
use hashmesh_drivers::braiins::BraiinsDriver;
use hashmesh_drivers::target::{Credentials, Target, Timeouts};
use hashmesh_drivers::{Driver, DriverError, VerifyPolicy};
use hashmesh_sim::web::braiins::{BraiinsWebConfig, RunningBraiinsWeb, spawn_braiins_web};
use hashmesh_sim::{DeviceConfig, Family, RunningDevice, Timing, spawn_device};
use std::sync::Arc;
use std::time::Duration;

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(15),
    }
}

async fn rig(web: BraiinsWebConfig) -> (Arc<RunningDevice>, RunningBraiinsWeb, Target) {
    let mut cfg = DeviceConfig::new(Family::Braiins, "Antminer S19 Pro");
    cfg.timing = Timing::fast();
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let dev = Arc::new(
        spawn_device(cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("spawn: {e}")),
    );
    let web = spawn_braiins_web(dev.clone(), web, addr)
        .await
        .unwrap_or_else(|e| panic!("web: {e}"));
    let mut target = Target::new(dev.local_addr().ip());
    target.rpc_port = dev.local_addr().port();
    target.web_port = web.local_addr().port();
    target.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(2),
        max_reply_bytes: 1 << 20,
    };
    (dev, web, target)
}

async fn confirmed(driver: &BraiinsDriver, target: &Target, command: Command) {
    let out = driver.execute(target, &command, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
}

#[tokio::test]
async fn every_rest_command_is_confirmed_by_read_back() {
    let (dev, web, target) = rig(BraiinsWebConfig::default()).await;
    let driver = BraiinsDriver::new();
    let (min, max) = web.power_range_w();
    let want = min + (max - min) / 4;

    confirmed(&driver, &target, Command::SetPowerTarget { power_w: want }).await;
    assert_eq!(dev.update(|s| s.power_target_w), Some(want));
    // The 4028 tunerstatus follows, seen by a driver with no REST session at all.
    let fresh = BraiinsDriver::new();
    let snap = fresh.poll(&target).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.power_target_w, Some(f64::from(want)));
    assert_eq!(snap.locate_led_on, None);

    confirmed(&driver, &target, Command::LocateLed { on: true }).await;
    assert!(dev.update(|s| s.led));
    confirmed(&driver, &target, Command::LocateLed { on: false }).await;
    assert!(!dev.update(|s| s.led));

    confirmed(&driver, &target, Command::Sleep).await;
    assert!(dev.update(|s| s.sleeping));
    confirmed(&driver, &target, Command::Wake).await;
    assert!(!dev.update(|s| s.sleeping));

    let out = driver
        .execute(
            &target,
            &Command::SetPowerMode {
                mode: PowerMode::Low,
            },
            &policy(),
        )
        .await;
    assert_eq!(out.result, CommandResult::Unsupported, "{out:?}");

    confirmed(&driver, &target, Command::Reboot).await;
    // One login served everything before the reboot; keep-alive kept the connections few.
    assert!(web.logins() >= 1);
    assert!(
        web.connections_accepted() < 20,
        "{}",
        web.connections_accepted()
    );
}

#[tokio::test]
async fn default_credentials_fall_back_from_empty_to_root() {
    let empty = BraiinsWebConfig {
        password: String::new(),
        ..BraiinsWebConfig::default()
    };
    for cfg in [empty, BraiinsWebConfig::default()] {
        let (dev, web, target) = rig(cfg).await;
        let driver = BraiinsDriver::new();
        confirmed(&driver, &target, Command::LocateLed { on: true }).await;
        assert!(dev.update(|s| s.led));
        assert_eq!(web.logins(), 1);
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let cfg = BraiinsWebConfig {
        password: "s3cret".into(),
        ..BraiinsWebConfig::default()
    };
    let (dev, _web, mut target) = rig(cfg).await;
    let driver = BraiinsDriver::new();
    // Neither default works.
    let r = driver.send(&target, &Command::LocateLed { on: true }).await;
    assert!(matches!(r, Err(DriverError::Auth(_))), "{r:?}");
    target.credentials = Credentials {
        username: "root".into(),
        password: "wrong".into(),
    }
    .into();
    let r = driver.send(&target, &Command::LocateLed { on: true }).await;
    assert!(matches!(r, Err(DriverError::Auth(_))), "{r:?}");
    let out = driver
        .execute(&target, &Command::LocateLed { on: true }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    assert!(!dev.update(|s| s.led));
    target.credentials = Credentials {
        username: "root".into(),
        password: "s3cret".into(),
    }
    .into();
    confirmed(&driver, &target, Command::LocateLed { on: true }).await;
}

#[tokio::test]
async fn targets_outside_the_constraints_are_refused_before_sending() {
    let (dev, web, target) = rig(BraiinsWebConfig::default()).await;
    let driver = BraiinsDriver::new();
    let (min, max) = web.power_range_w();
    for power_w in [0, min - 1, max + 1] {
        let r = driver
            .send(&target, &Command::SetPowerTarget { power_w })
            .await;
        let Err(DriverError::Rejected(msg)) = r else {
            panic!("{power_w} W: {r:?}");
        };
        assert!(
            msg.contains(&format!("{min}–{max} W")),
            "range not named: {msg}"
        );
    }
    assert_eq!(dev.update(|s| s.power_target_w), None);
    let out = driver
        .execute(&target, &Command::SetPowerTarget { power_w: 0 }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    assert!(!out.accepted);
}

#[tokio::test]
async fn an_expired_session_logs_in_again() {
    let (dev, web, target) = rig(BraiinsWebConfig::default()).await;
    let driver = BraiinsDriver::new();
    confirmed(&driver, &target, Command::LocateLed { on: true }).await;
    assert_eq!(web.logins(), 1);
    web.expire_sessions();
    confirmed(&driver, &target, Command::LocateLed { on: false }).await;
    assert!(!dev.update(|s| s.led));
    assert_eq!(web.logins(), 2);

    // Sessions also lapse after the idle period on their own.
    let short = BraiinsWebConfig {
        session_idle: Duration::from_millis(1),
        ..BraiinsWebConfig::default()
    };
    let (dev, web, target) = rig(short).await;
    let driver = BraiinsDriver::new();
    let r = driver.send(&target, &Command::LocateLed { on: true }).await;
    assert!(r.is_ok(), "{r:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = driver
        .send(&target, &Command::LocateLed { on: false })
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(!dev.update(|s| s.led));
    assert_eq!(web.logins(), 2);
}

#[tokio::test]
async fn sleep_and_wake_fall_back_to_4028_without_a_web_port() {
    let (dev, web, mut target) = rig(BraiinsWebConfig::default()).await;
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    target.web_port = closed.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    drop(closed);
    let driver = BraiinsDriver::new();
    confirmed(&driver, &target, Command::Sleep).await;
    assert!(dev.update(|s| s.sleeping));
    confirmed(&driver, &target, Command::Wake).await;
    assert!(!dev.update(|s| s.sleeping));
    assert_eq!(web.logins(), 0);
    // Without the REST API there is no LED to switch.
    let r = driver.send(&target, &Command::LocateLed { on: true }).await;
    assert!(matches!(r, Err(DriverError::Connect(_))), "{r:?}");
}
