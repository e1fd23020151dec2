//! The Antminer driver's web writes against a simulated bmminer (RPC on one port) with the
//! simulated CGI web interface (Digest auth) on another, over real sockets on 127.0.0.1. Every
//! command is read back: sleep really stops the 4028 hashrate, the LED is read from
//! `get_blink_status.cgi`, and auth and HTTP faults give clear per-device errors.

use hashmesh_core::{Command, CommandResult, MinerStatus, PoolConfig, PowerMode};
use hashmesh_drivers::antminer::{AntminerDriver, web};
use hashmesh_drivers::{
    CredentialSet, Credentials, Driver, DriverError, Target, Timeouts, VerifyPolicy,
};
use hashmesh_sim::web::WebFault;
use hashmesh_sim::web::antminer::{AntminerWebConfig, RunningAntminerWeb, spawn_antminer_web};
use hashmesh_sim::{DeviceConfig, Family, RunningDevice, Timing, spawn_device};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    dev: Arc<RunningDevice>,
    web: RunningAntminerWeb,
    target: Target,
}

async fn rig_with(model: &str, web_cfg: AntminerWebConfig) -> Rig {
    let mut cfg = DeviceConfig::new(Family::Antminer, model);
    cfg.timing = Timing::fast();
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let dev = Arc::new(
        spawn_device(cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("spawn: {e}")),
    );
    let web = spawn_antminer_web(dev.clone(), web_cfg, addr)
        .await
        .unwrap_or_else(|e| panic!("spawn web: {e}"));
    let mut target = Target::new(dev.local_addr().ip());
    target.rpc_port = dev.local_addr().port();
    target.web_port = web.local_addr().port();
    target.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(1),
        max_reply_bytes: 1 << 20,
    };
    Rig { dev, web, target }
}

async fn rig() -> Rig {
    rig_with("Antminer S19 Pro", AntminerWebConfig::default()).await
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn identity_adds_web_details_and_reuses_the_nonce() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    let id = driver
        .identify(&r.target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.model.0, "Antminer S19 Pro");
    let cfg = r.dev.config();
    assert_eq!(
        id.mac.as_deref(),
        Some(cfg.mac.to_ascii_uppercase().as_str())
    );
    assert_eq!(id.serial.as_deref(), Some(cfg.serial.as_str()));
    assert_eq!(id.hostname.as_deref(), Some("Antminer"));
    for _ in 0..10 {
        driver
            .identify(&r.target)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // One challenge, one connection for eleven authenticated requests.
    assert_eq!(r.web.nonces_issued(), 1);
    assert_eq!(r.web.connections_accepted(), 1);
}

#[tokio::test]
async fn sleep_wake_and_low_power_are_confirmed() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    let out = driver.execute(&r.target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let snap = driver
        .poll(&r.target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.status, MinerStatus::Sleeping);
    assert_eq!(snap.hashrate_ths, Some(0.0));
    assert_eq!(r.dev.truth().status, MinerStatus::Sleeping);
    // The whole configuration went back, with the mode under both keys.
    let written = r.web.last_config_written().unwrap_or_default();
    assert_eq!(written["miner-mode"], 1);
    assert_eq!(written["bitmain-work-mode"], "1");
    assert_eq!(written["pools"].as_array().map(Vec::len), Some(3));
    assert_eq!(written["bitmain-fan-pwm"], "100");
    assert_eq!(written["api-allow"], "A:0/0,W:*");
    let out = driver.execute(&r.target, &Command::Wake, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let low = Command::SetPowerMode {
        mode: PowerMode::Low,
    };
    let out = driver.execute(&r.target, &low, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert_eq!(r.dev.update(|st| st.mode), PowerMode::Low);
    let high = Command::SetPowerMode {
        mode: PowerMode::High,
    };
    let out = driver.execute(&r.target, &high, &policy()).await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
    assert!(
        out.message.contains("no high-power mode"),
        "{}",
        out.message
    );
}

#[tokio::test]
async fn legacy_mode_key_still_sleeps() {
    let cfg = AntminerWebConfig {
        legacy_mode_key: true,
        ..AntminerWebConfig::default()
    };
    let r = rig_with("Antminer S19j Pro", cfg).await;
    let driver = AntminerDriver::new();
    let out = driver.execute(&r.target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let http = web::WebClient::new();
    let conf = web::miner_conf(&http, &r.target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!conf.contains_key("miner-mode"));
    assert_eq!(web::conf_mode(&conf), Some(1));
}

#[tokio::test]
async fn pools_take_exactly_three_slots() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    let pool = |u: &str| PoolConfig {
        url: u.into(),
        user: "acct.web".into(),
        password: "x".into(),
    };
    let pools = vec![
        pool("stratum+tcp://new.example:3333"),
        pool("stratum+tcp://two.example:443"),
    ];
    let out = driver
        .execute(&r.target, &Command::SetPools { pools }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let written = r.web.last_config_written().unwrap_or_default();
    assert_eq!(written["pools"][2]["url"], "");
    let snap = driver
        .poll(&r.target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.pools.len(), 2);
    assert_eq!(&*snap.pools[0].url, "stratum+tcp://new.example:3333");
    let four = vec![pool("a"), pool("b"), pool("c"), pool("d")];
    let out = driver
        .execute(&r.target, &Command::SetPools { pools: four }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Failed, "{out:?}");
}

#[tokio::test]
async fn led_and_reboot_are_confirmed() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    let out = driver
        .execute(&r.target, &Command::LocateLed { on: true }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert!(r.web.led_on());
    let out = driver
        .execute(&r.target, &Command::LocateLed { on: false }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert!(!r.web.led_on());
    let out = driver.execute(&r.target, &Command::Reboot, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    let mut target = r.target.clone();
    // Only this login: the factory default would be accepted by this simulator.
    target.credentials = CredentialSet::only([Credentials {
        username: "root".into(),
        password: "wrong".into(),
    }]);
    let err = driver.send(&target, &Command::Sleep).await.err();
    assert!(matches!(err, Some(DriverError::Auth(_))), "{err:?}");
    let out = driver.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Failed);
    assert!(
        out.message.contains("authentication failed"),
        "{}",
        out.message
    );
    assert!(!r.dev.update(|st| st.sleeping));
    // The RPC side still identifies it, without the web details.
    let id = driver
        .identify(&target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.serial, None);
}

#[tokio::test]
async fn nonce_changes_are_followed() {
    let r = rig().await;
    let driver = AntminerDriver::new();
    r.web.set_faults(vec![WebFault::NonceChange]);
    for on in [true, false, true] {
        let out = driver
            .execute(&r.target, &Command::LocateLed { on }, &policy())
            .await;
        assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    }
    assert!(r.web.nonces_issued() > 3, "{}", r.web.nonces_issued());
    r.web.set_faults(Vec::new());
    r.web.rotate_nonce();
    let out = driver.execute(&r.target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
}

#[tokio::test]
async fn slow_writes_get_the_long_deadline() {
    let cfg = AntminerWebConfig {
        write_delay: Duration::from_millis(1500),
        ..AntminerWebConfig::default()
    };
    let r = rig_with("Antminer S21", cfg).await;
    // The target's deadline is 1 s; set_miner_conf still waits for its answer.
    let ack = AntminerDriver::new()
        .send(&r.target, &Command::Sleep)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ack.message.contains("M000"), "{ack:?}");
}

/// Whether an error is the one a fault should give.
type ErrorCheck = fn(&DriverError) -> bool;

#[tokio::test]
async fn http_faults_are_clear_errors_within_the_deadline() {
    let r = rig().await;
    let driver = AntminerDriver::new();
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
        r.web.set_faults(vec![fault]);
        let started = Instant::now();
        match driver
            .send(&r.target, &Command::LocateLed { on: true })
            .await
        {
            Err(e) => assert!(want(&e), "{fault}: {e}"),
            Ok(a) => panic!("{fault}: accepted {a:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{fault} took {:?}",
            started.elapsed()
        );
        // The RPC telemetry of the same device is not held up by its web interface.
        driver
            .poll(&r.target)
            .await
            .unwrap_or_else(|e| panic!("{fault}: poll {e}"));
    }
}
