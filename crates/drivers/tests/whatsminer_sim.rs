//! The Whatsminer driver against the Whatsminer simulators (API v2 and API v3) over real TCP on
//! 127.0.0.1: every telemetry field against the simulator's ground truth, every command through
//! `Driver::execute` with its read-back, authentication failures (write API off, wrong
//! password, expired tokens) as clear errors, and faults that end within the deadline.

use hashmesh_core::{
    Command, CommandResult, MinerSnapshot, MinerStatus, PoolConfig, PowerMode, Vendor,
};
use hashmesh_drivers::whatsminer::{Api, WhatsminerDriver, probe};
use hashmesh_drivers::{
    CredentialSet, Credentials, Driver, DriverError, Target, Timeouts, VerifyPolicy,
};
use hashmesh_sim::{
    Fault, RunningWhatsminer, Timing, WhatsminerApi, WhatsminerConfig, spawn_whatsminer,
};
use std::time::{Duration, Instant};

async fn device(api: WhatsminerApi, model: &str, write_api: bool) -> RunningWhatsminer {
    let mut cfg = WhatsminerConfig::new(api, model);
    cfg.device.timing = Timing::fast();
    cfg.write_api_enabled = write_api;
    spawn_whatsminer(cfg, "127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("simulator starts")
}

fn target(dev: &RunningWhatsminer) -> Target {
    let addr = dev.local_addr();
    let mut t = Target::new(addr.ip());
    t.rpc_port = addr.port();
    // A v2 device has nothing on the v3 port: port 1 on loopback refuses at once.
    t.whatsminer_v3_port = dev.v3_addr().map_or(1, |a| a.port());
    t.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(2),
        max_reply_bytes: 1 << 20,
    };
    t
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(10),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(20),
    }
}

fn near(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6_f64.max(1e-9 * a.abs().max(b.abs())),
        (None, None) => true,
        _ => false,
    }
}

/// Every field of `got` against `want`, naming the first difference.
fn compare(got: &MinerSnapshot, want: &MinerSnapshot) -> Result<(), String> {
    let num = |name: &str, a: Option<f64>, b: Option<f64>| {
        if near(a, b) {
            Ok(())
        } else {
            Err(format!("{name}: driver {a:?}, truth {b:?}"))
        }
    };
    let eq = |name: &str, same: bool, dbg: String| {
        if same {
            Ok(())
        } else {
            Err(format!("{name}: {dbg}"))
        }
    };
    eq(
        "status",
        got.status == want.status,
        format!("{:?} vs {:?}", got.status, want.status),
    )?;
    num("hashrate", got.hashrate_ths, want.hashrate_ths)?;
    num("hashrate avg", got.hashrate_avg_ths, want.hashrate_avg_ths)?;
    num(
        "expected",
        got.expected_hashrate_ths,
        want.expected_hashrate_ths,
    )?;
    eq(
        "fans",
        got.fans_rpm == want.fans_rpm,
        format!("{:?} vs {:?}", got.fans_rpm, want.fans_rpm),
    )?;
    num("power", got.power_w, want.power_w)?;
    eq(
        "power source",
        got.power_source == want.power_source,
        format!("{:?}", got.power_source),
    )?;
    num("power target", got.power_target_w, want.power_target_w)?;
    eq(
        "power mode",
        got.power_mode == want.power_mode,
        format!("{:?} vs {:?}", got.power_mode, want.power_mode),
    )?;
    num(
        "efficiency",
        got.efficiency_j_per_th,
        want.efficiency_j_per_th,
    )?;
    num("ambient", got.ambient_temp_c, want.ambient_temp_c)?;
    eq(
        "uptime",
        got.uptime_s == want.uptime_s,
        format!("{:?} vs {:?}", got.uptime_s, want.uptime_s),
    )?;
    eq(
        "hw errors",
        got.hardware_errors == want.hardware_errors,
        format!("{:?} vs {:?}", got.hardware_errors, want.hardware_errors),
    )?;
    eq(
        "pools",
        got.pools == want.pools,
        format!("{:?} vs {:?}", got.pools, want.pools),
    )?;
    let codes = |s: &MinerSnapshot| s.errors.iter().map(|e| e.code.clone()).collect::<Vec<_>>();
    eq(
        "error codes",
        codes(got) == codes(want),
        format!("{:?} vs {:?}", codes(got), codes(want)),
    )?;
    eq(
        "boards",
        got.boards.len() == want.boards.len(),
        format!("{} vs {}", got.boards.len(), want.boards.len()),
    )?;
    for (g, w) in got.boards.iter().zip(&want.boards) {
        let i = g.index;
        eq(
            "board index",
            g.index == w.index,
            format!("{} vs {}", g.index, w.index),
        )?;
        num(
            &format!("board {i} hashrate"),
            g.hashrate_ths,
            w.hashrate_ths,
        )?;
        num(
            &format!("board {i} expected"),
            g.expected_hashrate_ths,
            w.expected_hashrate_ths,
        )?;
        num(
            &format!("board {i} chip temp"),
            g.chip_temp_c,
            w.chip_temp_c,
        )?;
        num(
            &format!("board {i} board temp"),
            g.board_temp_c,
            w.board_temp_c,
        )?;
        num(
            &format!("board {i} frequency"),
            g.frequency_mhz,
            w.frequency_mhz,
        )?;
        eq(
            "board chips",
            g.chips_working == w.chips_working,
            format!("{:?} vs {:?}", g.chips_working, w.chips_working),
        )?;
        eq(
            "board hw",
            g.hardware_errors == w.hardware_errors,
            format!("{:?} vs {:?}", g.hardware_errors, w.hardware_errors),
        )?;
        eq(
            "board failed",
            g.failed == w.failed,
            format!("{} vs {}", g.failed, w.failed),
        )?;
    }
    Ok(())
}

/// Polls until a poll and the truth fall in the same model second and agree (they may straddle
/// a second boundary once).
async fn assert_matches_truth(
    d: &WhatsminerDriver,
    t: &Target,
    dev: &RunningWhatsminer,
) -> MinerSnapshot {
    let mut last = String::new();
    for _ in 0..5 {
        let got = d.poll(t).await.expect("poll");
        let want = dev.truth();
        match compare(&got, &want) {
            Ok(()) => return got,
            Err(e) => last = e,
        }
    }
    panic!("driver and truth disagree: {last}");
}

#[tokio::test]
async fn v2_identify_and_probe() {
    let dev = device(WhatsminerApi::V2, "Whatsminer M30S++", false).await;
    let t = target(&dev);
    let id = WhatsminerDriver::new()
        .identify(&t)
        .await
        .expect("identify");
    assert_eq!(id.vendor, Vendor::MicroBt);
    assert_eq!(id.model.0, "Whatsminer M30S++");
    assert!(!id.partially_supported);
    assert_eq!(id.firmware.version, "20230803.11.REL");
    assert_eq!(
        id.serial.as_deref(),
        Some(dev.config().device.serial.as_str())
    );
    assert_eq!(
        id.mac.map(|m| m.to_ascii_lowercase()),
        Some(dev.config().device.mac.clone())
    );
    assert_eq!(probe(&t).await.expect("probe").api, Api::V2);
}

#[tokio::test]
async fn v3_identify_and_probe() {
    let dev = device(WhatsminerApi::V3, "Whatsminer M60S", false).await;
    let t = target(&dev);
    let p = probe(&t).await.expect("probe");
    assert_eq!(p.api, Api::V3);
    assert_eq!(p.identity.model.0, "Whatsminer M60S");
    assert_eq!(p.identity.firmware.version, "20251209.16.Rel2");
    assert_eq!(
        p.identity.serial.as_deref(),
        Some(dev.config().device.serial.as_str())
    );
}

#[tokio::test]
async fn v2_telemetry_matches_truth() {
    for model in ["Whatsminer M30S++", "Whatsminer M50S"] {
        let dev = device(WhatsminerApi::V2, model, false).await;
        let t = target(&dev);
        let d = WhatsminerDriver::new();
        let s = assert_matches_truth(&d, &t, &dev).await;
        assert_eq!(s.status, MinerStatus::Mining, "{model}");
        assert_eq!(s.boards.len(), 3);
        assert!(s.power_w.is_some_and(|p| p > 1000.0));
    }
}

#[tokio::test]
async fn v3_telemetry_matches_truth() {
    for model in ["Whatsminer M60S", "Whatsminer M63S"] {
        let dev = device(WhatsminerApi::V3, model, false).await;
        let t = target(&dev);
        let d = WhatsminerDriver::new();
        assert_eq!(d.api(&t).await.expect("api"), Api::V3);
        let s = assert_matches_truth(&d, &t, &dev).await;
        assert_eq!(s.status, MinerStatus::Mining, "{model}");
        assert_eq!(s.locate_led_on, Some(false));
    }
}

#[tokio::test]
async fn hardware_faults_show_as_degraded_with_error_codes() {
    for api in [WhatsminerApi::V2, WhatsminerApi::V3] {
        let dev = device(api, "Whatsminer M50S", false).await;
        dev.set_faults(vec![Fault::DeadBoard, Fault::FanFail]);
        let t = target(&dev);
        let d = WhatsminerDriver::new();
        let s = assert_matches_truth(&d, &t, &dev).await;
        assert_eq!(s.status, MinerStatus::Degraded, "{api:?}");
        assert!(s.boards.iter().any(|b| b.failed));
        assert!(
            s.errors
                .iter()
                .any(|e| e.code == "110" && e.message.to_ascii_lowercase().contains("fan")),
            "{:?}",
            s.errors
        );
        assert!(
            s.errors.iter().any(|e| e.code.starts_with("53")),
            "{:?}",
            s.errors
        );
    }
}

async fn run(d: &WhatsminerDriver, t: &Target, c: Command) {
    if matches!(c, Command::Reboot | Command::RestartMining) {
        // A restart is confirmed by uptime falling; give the last restart time to age first.
        tokio::time::sleep(Duration::from_millis(2200)).await;
    }
    let out = d.execute(t, &c, &policy()).await;
    assert_eq!(
        out.result,
        CommandResult::Confirmed,
        "{}: {}",
        c.name(),
        out.message
    );
}

fn commands() -> Vec<Command> {
    vec![
        Command::LocateLed { on: true },
        Command::LocateLed { on: false },
        Command::SetPowerTarget { power_w: 3000 },
        Command::SetPowerMode {
            mode: PowerMode::Low,
        },
        Command::SetPowerMode {
            mode: PowerMode::Normal,
        },
        Command::SetPools {
            pools: vec![
                PoolConfig {
                    url: "stratum+tcp://new.pool.example:3333".into(),
                    user: "hashmesh.new".into(),
                    password: "x".into(),
                },
                PoolConfig {
                    url: "stratum+tcp://backup.pool.example:443".into(),
                    user: "hashmesh.bak".into(),
                    password: "x".into(),
                },
            ],
        },
        Command::Sleep,
        Command::Wake,
        Command::RestartMining,
        Command::Reboot,
    ]
}

#[tokio::test]
async fn v2_every_command_is_confirmed_by_read_back() {
    let dev = device(WhatsminerApi::V2, "Whatsminer M30S++", true).await;
    let t = target(&dev);
    let d = WhatsminerDriver::new();
    for c in commands() {
        run(&d, &t, c).await;
    }
    assert_matches_truth(&d, &t, &dev).await;
    // One token served every write: tokens are reused, not fetched per command.
    assert_eq!(dev.tokens_issued(), 1);
}

#[tokio::test]
async fn v3_every_command_is_confirmed_by_read_back() {
    let dev = device(WhatsminerApi::V3, "Whatsminer M60S", true).await;
    let t = target(&dev);
    let d = WhatsminerDriver::new();
    for c in commands() {
        run(&d, &t, c).await;
    }
    assert_matches_truth(&d, &t, &dev).await;
}

#[tokio::test]
async fn write_api_off_is_a_clear_refusal() {
    for api in [WhatsminerApi::V2, WhatsminerApi::V3] {
        let dev = device(
            api,
            if api == WhatsminerApi::V2 {
                "M30S++"
            } else {
                "M63S"
            },
            false,
        )
        .await;
        let t = target(&dev);
        let d = WhatsminerDriver::new();
        let e = d
            .send(&t, &Command::LocateLed { on: true })
            .await
            .expect_err("write API is off");
        assert!(
            matches!(&e, DriverError::Rejected(m) if m.contains("write API is disabled")),
            "{api:?}: {e}"
        );
        let out = d
            .execute(&t, &Command::SetPowerTarget { power_w: 3000 }, &policy())
            .await;
        assert_eq!(out.result, CommandResult::Failed);
        assert!(!out.accepted);
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    for api in [WhatsminerApi::V2, WhatsminerApi::V3] {
        let dev = device(
            api,
            if api == WhatsminerApi::V2 {
                "M50S"
            } else {
                "M60S"
            },
            true,
        )
        .await;
        let mut t = target(&dev);
        // Only this login: the factory default would be accepted by this simulator.
        t.credentials = CredentialSet::only([Credentials {
            username: "super".into(),
            password: "not-the-password".into(),
        }]);
        let d = WhatsminerDriver::new();
        let e = d
            .send(&t, &Command::LocateLed { on: true })
            .await
            .expect_err("wrong password");
        assert!(matches!(e, DriverError::Auth(_)), "{api:?}: {e}");
        assert!(!e.is_offline());
        assert!(e.to_string().starts_with("authentication failed"), "{e}");
        // The right password (given explicitly) works.
        t.credentials = CredentialSet::only([Credentials {
            username: "super".into(),
            password: dev.config().password.clone(),
        }]);
        run(&d, &t, Command::LocateLed { on: true }).await;
    }
}

#[tokio::test]
async fn expired_token_is_refreshed_and_the_write_retried() {
    let dev = device(WhatsminerApi::V2, "Whatsminer M30S++", true).await;
    let t = target(&dev);
    let d = WhatsminerDriver::new();
    run(&d, &t, Command::SetPowerTarget { power_w: 3100 }).await;
    assert_eq!(dev.tokens_issued(), 1);
    dev.expire_tokens();
    run(&d, &t, Command::SetPowerTarget { power_w: 3200 }).await;
    assert_eq!(
        dev.tokens_issued(),
        2,
        "a 135 reply fetches exactly one new token"
    );
}

#[tokio::test]
async fn v3_device_degraded_v2_service_does_not_confuse_detection() {
    let dev = device(WhatsminerApi::V3, "Whatsminer M60S", true).await;
    let t = target(&dev);
    // The 4028 service of a v3 firmware reports its new firmware date.
    let raw = hashmesh_drivers::whatsminer::proto::v2_exchange(
        t.rpc_addr(),
        br#"{"cmd":"get_version"}"#,
        &t.timeouts,
    )
    .await
    .expect("get_version");
    let v = hashmesh_drivers::whatsminer::parse::parse_v2_version(&raw).expect("parse");
    assert!(hashmesh_drivers::whatsminer::parse::firmware_speaks_v3(
        v.fw_ver.trimmed()
    ));
    let d = WhatsminerDriver::new();
    assert_eq!(d.api(&t).await.expect("api"), Api::V3);
}

#[tokio::test]
async fn socket_faults_are_errors_within_the_deadline() {
    for api in [WhatsminerApi::V2, WhatsminerApi::V3] {
        for fault in [
            Fault::Hang,
            Fault::Garbage,
            Fault::Truncated,
            Fault::Offline,
        ] {
            if api == WhatsminerApi::V3 && fault == Fault::Garbage {
                continue;
            }
            let dev = device(
                api,
                if api == WhatsminerApi::V2 {
                    "M30S++"
                } else {
                    "M60S"
                },
                false,
            )
            .await;
            let t = target(&dev);
            let d = WhatsminerDriver::new();
            d.poll(&t).await.expect("healthy first poll");
            dev.set_faults(vec![fault]);
            let started = Instant::now();
            let r = d.poll(&t).await;
            let took = started.elapsed();
            // A cut reply is either unreadable or read as far as it goes, flagged partial.
            let ok = match &r {
                Err(_) => true,
                Ok(s) => fault == Fault::Truncated && s.partial,
            };
            assert!(ok, "{api:?} {fault:?} gave {r:?}");
            assert!(
                took < t.timeouts.total + Duration::from_secs(2),
                "{api:?} {fault:?} took {took:?}"
            );
            dev.set_faults(vec![]);
        }
    }
}

#[tokio::test]
async fn v3_device_closing_after_one_reply_is_still_polled() {
    let mut cfg = WhatsminerConfig::new(WhatsminerApi::V3, "Whatsminer M63S");
    cfg.device.timing = Timing::fast();
    cfg.v3_one_request_per_connection = true;
    let dev = spawn_whatsminer(cfg, "127.0.0.1:0".parse().expect("literal address"))
        .await
        .expect("simulator starts");
    let t = target(&dev);
    let d = WhatsminerDriver::new();
    // The first poll finds out and falls back; later polls use one connection per request.
    assert_matches_truth(&d, &t, &dev).await;
    assert_matches_truth(&d, &t, &dev).await;
}

#[tokio::test]
async fn token_limit_is_a_clear_refusal() {
    let dev = device(WhatsminerApi::V2, "Whatsminer M30S++", true).await;
    let t = target(&dev);
    // Each new driver fetches its own token; the device keeps at most 16 alive.
    for i in 0..16 {
        let d = WhatsminerDriver::new();
        d.send(&t, &Command::LocateLed { on: i % 2 == 0 })
            .await
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
    let e = WhatsminerDriver::new()
        .send(&t, &Command::LocateLed { on: true })
        .await
        .expect_err("17th token");
    assert!(
        matches!(&e, DriverError::Rejected(m) if m.contains("136")),
        "{e}"
    );
}

#[tokio::test]
async fn a_rebooting_device_is_offline_not_malformed() {
    let dev = device(WhatsminerApi::V2, "Whatsminer M50S", false).await;
    let t = target(&dev);
    let d = WhatsminerDriver::new();
    d.poll(&t).await.expect("healthy poll");
    dev.reboot();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = d.poll(&t).await.expect_err("rebooting");
    assert!(e.is_offline(), "{e}");
    assert_eq!(dev.truth().status, MinerStatus::Offline);
    // Back after the reboot (about 1-2 s with fast timing), with the uptime reset.
    let started = Instant::now();
    let s = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match d.poll(&t).await {
            Ok(s) => break s,
            Err(e) if started.elapsed() < Duration::from_secs(6) => assert!(e.is_offline(), "{e}"),
            Err(e) => panic!("not back after the reboot: {e}"),
        }
    };
    assert!(s.uptime_s.is_some_and(|u| u < 5), "{:?}", s.uptime_s);
}
