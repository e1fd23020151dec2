//! Faults over real sockets, and that one faulty device never holds up another.

mod common;

use common::*;
use hashmesh_core::MinerStatus;
use hashmesh_sim::{Family, Fault};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_hanging_device_does_not_block_another() {
    let hung = start(Family::Antminer, "Antminer S19 Pro").await;
    hung.set_faults(vec![Fault::Hang]);
    let healthy = start(Family::Antminer, "Antminer S19 Pro").await;
    // Several connections hang on the first device…
    let mut stuck = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(hung.local_addr())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(br#"{"command":"summary"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        stuck.push(s);
    }
    let mut buf = [0u8; 16];
    let waited = tokio::time::timeout(Duration::from_millis(300), stuck[0].read(&mut buf)).await;
    assert!(waited.is_err(), "the hanging device replied");
    // …while the second one answers every request.
    for _ in 0..20 {
        let v = cmd(healthy.local_addr(), "summary", None).await;
        assert_eq!(status(&v).1, 11);
    }
    // Clearing the fault makes the first device answer new connections.
    hung.set_faults(vec![]);
    assert_eq!(status(&cmd(hung.local_addr(), "summary", None).await).1, 11);
}

#[tokio::test]
async fn socket_faults_break_replies_in_their_own_way() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    let good = raw(a, br#"{"command":"summary"}"#)
        .await
        .unwrap_or_default();
    assert!(serde_json::from_slice::<serde_json::Value>(&good[..good.len() - 1]).is_ok());

    dev.set_faults(vec![Fault::Garbage]);
    let g = raw(a, br#"{"command":"summary"}"#)
        .await
        .unwrap_or_default();
    assert!(g.len() >= 256 && serde_json::from_slice::<serde_json::Value>(&g).is_err());

    dev.set_faults(vec![Fault::Truncated]);
    let t = raw(a, br#"{"command":"summary"}"#)
        .await
        .unwrap_or_default();
    assert!(!t.is_empty() && t.len() < good.len() && t.last() != Some(&0));
    assert!(serde_json::from_slice::<serde_json::Value>(&t).is_err());
    assert!(good.starts_with(&t[..20]));

    dev.set_faults(vec![Fault::Reset]);
    let r = raw(a, br#"{"command":"summary"}"#).await;
    match r {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(bytes) => assert!(bytes.len() < good.len(), "a reset reply must be cut short"),
    }

    dev.set_faults(vec![Fault::Oversized]);
    let o = raw(a, br#"{"command":"summary"}"#)
        .await
        .unwrap_or_default();
    assert!(o.len() > 8 * 1024 * 1024, "{}", o.len());
    assert_eq!(o.last(), Some(&0));

    dev.set_faults(vec![Fault::Offline]);
    assert!(wait_refused(a, Duration::from_secs(2)).await);
    assert_eq!(dev.truth().status, MinerStatus::Offline);
    dev.set_faults(vec![]);
    assert!(wait_back(a, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn slow_device_answers_late_but_whole() {
    let dev = start(Family::Cgminer, "cgminer").await;
    dev.set_faults(vec![Fault::Slow]);
    let mut s = TcpStream::connect(dev.local_addr())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(br#"{"command":"version"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
    assert!(early.is_err(), "a slow device answered at once");
    let v = cmd(dev.local_addr(), "version", None).await;
    assert_eq!(status(&v).1, 22);
}

#[tokio::test]
async fn hardware_faults_show_in_replies_and_truth() {
    let dev = start(Family::Antminer, "Antminer S19 Pro").await;
    dev.set_faults(vec![Fault::DeadBoard]);
    let d = cmd(dev.local_addr(), "stats", None).await["STATS"][1].clone();
    assert_eq!(d["chain_acn2"], 0);
    assert_eq!(d["chain_rate2"], "0.00");
    assert_eq!(d["temp_chip2"], "0-0-0-0");
    assert_ne!(
        d["temp_pcb2"], "0-0-0-0",
        "the board's own sensors still read"
    );
    let truth = dev.truth();
    assert!(truth.boards[1].failed && truth.boards[1].chips_working == Some(0));
    assert_eq!(truth.status, MinerStatus::Degraded);

    dev.set_faults(vec![Fault::FanFail]);
    let d = cmd(dev.local_addr(), "stats", None).await["STATS"][1].clone();
    assert_eq!(d["fan1"], 0);
    assert_eq!(dev.truth().fans_rpm[0], 0);

    let pooled = start(Family::Cgminer, "cgminer").await;
    pooled.set_faults(vec![Fault::WrongPool]);
    let pools = cmd(pooled.local_addr(), "pools", None).await;
    assert_eq!(pools["POOLS"][0]["Status"], "Alive");
    assert_eq!(pools["POOLS"][0]["Stratum Active"], false);
    assert_eq!(pools["POOLS"][1]["Stratum Active"], true);
    assert_eq!(pooled.truth().active_pool().map(|p| p.index), Some(1));
}

#[tokio::test]
async fn fast_temperatures_climb_after_a_fan_fails() {
    let dev = start(Family::Braiins, "Antminer S19 Pro").await;
    let before = dev.truth().max_chip_temp_c().unwrap_or_default();
    dev.set_faults(vec![Fault::FanFail]);
    // Timing::fast() settles within a few seconds.
    let mut after = before;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = dev.truth().max_chip_temp_c().unwrap_or_default();
        if after > before + 5.0 {
            break;
        }
    }
    assert!(after > before + 5.0, "{before} -> {after}");
}

#[tokio::test]
async fn reboot_over_avalon_ascset_comes_back_fresh() {
    let dev = start(Family::Avalon, "Avalon A1346").await;
    let a = dev.local_addr();
    let r = cmd(a, "ascset", Some("0,reboot,0")).await;
    assert_eq!(status(&r).1, 119);
    assert!(wait_refused(a, Duration::from_secs(3)).await);
    let back = wait_back(a, Duration::from_secs(10)).await;
    assert!(back.is_some(), "device never came back");
    let st = cmd(a, "estats", None).await;
    let mm_id = st["STATS"][0]["MM ID0"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let elapsed: u64 = mm(&mm_id, "Elapsed")
        .and_then(|e| e.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(elapsed < 10, "{elapsed}");
}

#[tokio::test]
async fn dropping_a_device_stops_it() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    assert_eq!(status(&cmd(a, "version", None).await).1, 22);
    drop(dev);
    assert!(wait_refused(a, Duration::from_secs(2)).await);
}
