//! Each family's replies over real TCP: shapes, units and values against `truth()`.

mod common;

use common::*;
use hashmesh_core::{MinerStatus, PowerMode};
use hashmesh_sim::Family;
use serde_json::Value;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-9)
}

#[tokio::test]
async fn cgminer_reports_in_mhs_with_status_codes() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    assert_eq!(status(&v), ("S".into(), 22, "CGMiner versions".into()));
    assert_eq!(v["STATUS"][0]["Description"], "cgminer 4.12.1");
    assert_eq!(v["VERSION"][0]["CGMiner"], "4.12.1");
    assert_eq!(v["id"], 1);
    let s = cmd(a, "summary", None).await;
    assert_eq!(status(&s).1, 11);
    let truth = dev.truth();
    let mhs = num(&s["SUMMARY"][0]["MHS 5s"]);
    assert!(
        close(mhs / 1e6, truth.hashrate_ths.unwrap_or_default(), 0.05),
        "{mhs}"
    );
    assert!(close(mhs / 1e6, 12.0, 0.06), "{mhs}");
    assert!(
        s["SUMMARY"][0]["Elapsed"]
            .as_u64()
            .is_some_and(|e| e >= 3600)
    );
    let devs = cmd(a, "devs", None).await;
    assert_eq!(status(&devs), ("S".into(), 9, "4 ASC(s)".into()));
    assert_eq!(devs["DEVS"].as_array().map(Vec::len), Some(4));
    assert_eq!(devs["DEVS"][3]["ASC"], 3);
    let temp = num(&devs["DEVS"][0]["Temperature"]);
    assert_eq!(Some(temp), truth.boards[0].chip_temp_c);
    // Errors: unknown command 14, bad JSON 23, missing command 24.
    assert_eq!(
        status(&cmd(a, "frobnicate", None).await),
        ("E".into(), 14, "Invalid command".into())
    );
    assert_eq!(status(&json(a, "{\"command\":").await).1, 23);
    assert_eq!(status(&json(a, "{\"cmd\":\"summary\"}").await).1, 24);
    assert_eq!(status(&cmd(a, "privileged", None).await).1, 46);
    let check = cmd(a, "check", Some("summary")).await;
    assert_eq!(
        (
            check["CHECK"][0]["Exists"].as_str(),
            check["CHECK"][0]["Access"].as_str()
        ),
        (Some("Y"), Some("Y"))
    );
    let check = cmd(a, "check", Some("nonsense")).await;
    assert_eq!(check["CHECK"][0]["Exists"], "N");
}

#[tokio::test]
async fn bfgminer_uses_its_own_window_and_pga_list() {
    let dev = start(Family::Bfgminer, "bfgminer").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    assert_eq!(v["VERSION"][0]["BFGMiner"], "5.5.0");
    assert!(v.to_string().to_ascii_uppercase().contains("BFGMINER"));
    let s = cmd(a, "summary", None).await;
    assert!(s["SUMMARY"][0]["MHS 20s"].is_number() && s["SUMMARY"][0]["MHS 5s"].is_null());
    let devs = cmd(a, "devs", None).await;
    assert_eq!(devs["DEVS"][0]["PGA"], 0);
}

#[tokio::test]
async fn multi_command_wraps_each_reply_in_a_list() {
    let dev = start(Family::Antminer, "Antminer S19 Pro").await;
    let a = dev.local_addr();
    let v = cmd(a, "summary+stats+pools+summary", None).await;
    for key in ["summary", "stats", "pools"] {
        let part = &v[key];
        assert_eq!(part.as_array().map(Vec::len), Some(1), "{key}: {part}");
        assert_eq!(part[0]["STATUS"][0]["STATUS"], "S", "{key}");
        assert_eq!(part[0]["id"], 1);
    }
    assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
    assert_eq!(v["stats"][0]["STATS"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["id"], 1);
    // A write in a join is refused, an unknown member gets 14; the others still answer.
    let v = cmd(a, "summary+restart+bogus", None).await;
    assert_eq!(v["restart"][0]["STATUS"][0]["Code"], 45);
    assert_eq!(v["bogus"][0]["STATUS"][0]["Code"], 14);
    assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
    // Text form: CMD=name|STATUS=…|
    let t = text(a, "summary+pools").await;
    assert!(t.starts_with("CMD=summary|STATUS=S,"), "{t}");
    assert!(t.contains("|CMD=pools|STATUS=S,"), "{t}");
}

#[tokio::test]
async fn text_form_matches_json_form() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    let t = text(a, "pools").await;
    let sections: Vec<&str> = t.split('|').collect();
    assert!(sections[0].starts_with("STATUS=S,When="), "{t}");
    assert!(
        sections[0].contains(",Code=7,Msg=3 Pool(s),Description=cgminer 4.12.1"),
        "{t}"
    );
    assert!(
        sections[1].starts_with(
            "POOL=0,URL=stratum+tcp://btc.pool-a.example:3333,Status=Alive,Priority=0"
        ),
        "{t}"
    );
    assert_eq!(sections.len(), 5, "status, 3 pools, empty tail: {t}");
    let s = text(a, "summary").await;
    assert!(
        s.split('|')
            .nth(1)
            .is_some_and(|x| x.starts_with("SUMMARY,Elapsed=")),
        "{s}"
    );
    let e = text(a, "nonsense").await;
    assert!(
        e.starts_with("STATUS=E,When=") && e.contains("Code=14,Msg=Invalid command"),
        "{e}"
    );
}

#[tokio::test]
async fn antminer_legacy_stats_and_new_api() {
    let dev = start(Family::Antminer, "Antminer S19 Pro").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    assert_eq!(v["VERSION"][0]["Type"], "Antminer S19 Pro");
    assert_eq!(v["STATUS"][0]["Description"], "cgminer 1.0.0");
    let s = cmd(a, "summary", None).await;
    assert!(
        s["SUMMARY"][0]["GHS 5s"].is_string(),
        "bmminer prints the 5 s rate as a string"
    );
    assert!(s["SUMMARY"][0]["GHS av"].is_number());
    let st = cmd(a, "stats", None).await;
    let info = &st["STATS"][0];
    let d = &st["STATS"][1];
    let truth = dev.truth();
    assert_eq!(info["Type"], "Antminer S19 Pro");
    assert_eq!(d["rate_unit"], "GH");
    assert_eq!(d["chain_acn4"], 0);
    assert_eq!(d["chain_rate4"], "");
    assert_eq!(d["temp_pcb4"], "0-0-0-0");
    assert_eq!(d["chain_acn1"], 114);
    assert_eq!(
        d["chain_acs1"].as_str().map(|s| s.matches('o').count()),
        Some(114)
    );
    assert!(d["chain_rate1"].is_string());
    let chips: Vec<i64> = d["temp_chip1"]
        .as_str()
        .unwrap_or_default()
        .split('-')
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(chips.len(), 4);
    assert_eq!(
        chips.iter().max().map(|m| *m as f64),
        truth.boards[0].chip_temp_c
    );
    let rate: f64 = (1..=3).map(|i| num(&d[format!("chain_rate{i}")])).sum();
    assert!(close(
        rate / 1000.0,
        truth.hashrate_ths.unwrap_or_default(),
        0.05
    ));
    assert!(close(num(&d["total_rateideal"]) / 1000.0, 110.0, 1e-9));
    assert_eq!(d["fan_num"], 4);
    assert_eq!(d["Mode"], 0);
    assert_eq!(truth.power_mode, Some(PowerMode::Normal));
    assert_eq!(truth.power_w, None, "stock 4028 reports no power");
    // new_api: STATUS is an object; chains 0-based.
    let n = json(a, r#"{"command":"stats","new_api":true}"#).await;
    assert!(n["STATUS"].is_object());
    assert_eq!(n["STATUS"]["api_version"], "1.0.0");
    assert_eq!(n["INFO"]["type"], "Antminer S19 Pro");
    let s0 = &n["STATS"][0];
    assert_eq!(s0["chain_num"], 3);
    assert_eq!(s0["rate_unit"], "GH/s");
    assert_eq!(s0["miner-mode"], 0);
    assert_eq!(s0["chain"][2]["index"], 2);
    assert_eq!(
        s0["chain"][0]["temp_chip"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(s0["fan"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn antminer_s9_numbers_chains_six_to_eight() {
    let dev = start(Family::Antminer, "Antminer S9").await;
    let d = cmd(dev.local_addr(), "stats", None).await["STATS"][1].clone();
    for i in [1, 5, 9, 16] {
        assert_eq!(d[format!("chain_acn{i}")], 0, "slot {i}");
    }
    for i in 6..=8 {
        assert_eq!(d[format!("chain_acn{i}")], 63, "slot {i}");
        assert!(num(&d[format!("chain_rate{i}")]) > 4000.0);
    }
    assert_eq!(d["fan_num"], 2);
    assert!(num(&d["fan3"]) > 0.0 && num(&d["fan6"]) > 0.0 && num(&d["fan1"]) == 0.0);
    assert!(d["frequency"].is_string());
}

#[tokio::test]
async fn antminer_writes_are_denied_unless_allowed() {
    let mut cfg = hashmesh_sim::DeviceConfig::new(Family::Antminer, "Antminer S19j Pro");
    cfg.timing = hashmesh_sim::Timing::fast();
    assert!(!cfg.rpc_write_access, "stock default is read-only");
    let dev =
        hashmesh_sim::spawn_device(cfg, "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let v = cmd(dev.local_addr(), "switchpool", Some("1")).await;
    assert_eq!(
        status(&v),
        (
            "E".into(),
            45,
            "Access denied to 'switchpool' command".into()
        )
    );
    let v = cmd(dev.local_addr(), "check", Some("restart")).await;
    assert_eq!(
        (
            v["CHECK"][0]["Exists"].as_str(),
            v["CHECK"][0]["Access"].as_str()
        ),
        (Some("Y"), Some("N"))
    );
    // The refused switch changed nothing.
    assert!(dev.truth().active_pool().is_some_and(|p| p.index == 0));
}

#[tokio::test]
async fn pools_change_for_real() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    let v = cmd(
        a,
        "addpool",
        Some("stratum+tcp://new.example:3333,acct.w9,x"),
    )
    .await;
    assert_eq!(
        status(&v),
        (
            "S".into(),
            55,
            "Added pool 3: 'stratum+tcp://new.example:3333'".into()
        )
    );
    let v = cmd(a, "switchpool", Some("3")).await;
    assert_eq!(status(&v).1, 27);
    let pools = cmd(a, "pools", None).await;
    let p3 = &pools["POOLS"][3];
    assert_eq!(
        (p3["Priority"].as_i64(), p3["Stratum Active"].as_bool()),
        (Some(0), Some(true))
    );
    assert_eq!(pools["POOLS"][0]["Priority"], 1);
    assert!(
        dev.truth()
            .active_pool()
            .is_some_and(|p| &*p.url == "stratum+tcp://new.example:3333")
    );
    // The active pool cannot be removed; another can, and the pools renumber.
    assert_eq!(status(&cmd(a, "removepool", Some("3")).await).1, 67);
    assert_eq!(status(&cmd(a, "removepool", Some("0")).await).1, 68);
    let pools = cmd(a, "pools", None).await;
    assert_eq!(pools["POOLS"].as_array().map(Vec::len), Some(3));
    assert_eq!(pools["POOLS"][2]["URL"], "stratum+tcp://new.example:3333");
    assert_eq!(status(&cmd(a, "poolpriority", Some("1,0")).await).1, 73);
    let truth = dev.truth();
    assert_eq!(truth.active_pool().map(|p| p.index), Some(1));
    assert_eq!(status(&cmd(a, "switchpool", Some("9")).await).1, 26);
    assert_eq!(status(&cmd(a, "addpool", Some("onlyurl")).await).1, 53);
    assert_eq!(status(&cmd(a, "disablepool", Some("0")).await).1, 48);
    assert_eq!(
        cmd(a, "pools", None).await["POOLS"][0]["Status"],
        "Disabled"
    );
}

#[tokio::test]
async fn restart_refuses_connections_then_resets_uptime() {
    let dev = start(Family::Cgminer, "cgminer").await;
    let a = dev.local_addr();
    let before = dev.truth().uptime_s.unwrap_or_default();
    assert!(before >= 3600);
    let bytes = raw(a, br#"{"command":"restart"}"#)
        .await
        .unwrap_or_default();
    let v: Value =
        serde_json::from_slice(bytes.split_last().map_or(&[][..], |(_, b)| b)).unwrap_or_default();
    assert_eq!(v["STATUS"], "RESTART");
    assert!(
        wait_refused(a, std::time::Duration::from_secs(3)).await,
        "device kept answering"
    );
    assert_eq!(dev.truth().status, MinerStatus::Offline);
    let back = wait_back(a, std::time::Duration::from_secs(10))
        .await
        .unwrap_or_default();
    let elapsed = back["SUMMARY"][0]["Elapsed"].as_u64().unwrap_or(u64::MAX);
    assert!(elapsed < 10, "uptime should restart, got {elapsed}");
    assert!(dev.truth().uptime_s.unwrap_or(u64::MAX) < before);
}

#[tokio::test]
async fn avalon_estats_and_ascset_controls() {
    let dev = start(Family::Avalon, "Avalon A1366").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    let ver = &v["VERSION"][0];
    assert_eq!(
        (ver["PROD"].as_str(), ver["MODEL"].as_str()),
        (Some("AvalonMiner 1366"), Some("1366"))
    );
    assert!(
        ver["MAC"]
            .as_str()
            .is_some_and(|m| m.len() == 12 && !m.contains(':'))
    );
    let st = cmd(a, "estats", None).await;
    let mm_id = st["STATS"][0]["MM ID0"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let truth = dev.truth();
    assert!(
        mm(&mm_id, "SYSTEMSTATU").is_some_and(|s| s.contains("In Work")),
        "{mm_id}"
    );
    let ghs: f64 = mm(&mm_id, "GHSspd")
        .and_then(|x| x.parse().ok())
        .unwrap_or_default();
    assert!(close(
        ghs / 1000.0,
        truth.hashrate_ths.unwrap_or_default(),
        0.05
    ));
    let boards: Vec<f64> = mm(&mm_id, "MGHS")
        .unwrap_or_default()
        .split(' ')
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(boards.len(), 3);
    let wall: f64 = mm(&mm_id, "WALLPOWER")
        .and_then(|x| x.parse().ok())
        .unwrap_or_default();
    assert!(
        close(wall, truth.power_w.unwrap_or_default(), 0.02),
        "{wall}"
    );
    assert_eq!(
        mm(&mm_id, "MPO").and_then(|x| x.parse::<f64>().ok()),
        truth.power_target_w
    );
    assert_eq!(mm(&mm_id, "Led").as_deref(), Some("0"));
    assert!(
        mm(&mm_id, "Fan4").is_some() && mm(&mm_id, "PS").is_some_and(|p| p.split(' ').count() == 7)
    );
    let devs = cmd(a, "devs", None).await;
    assert_eq!(num(&devs["DEVS"][0]["Temperature"]), -273.0);

    // LED on: Canaan's informational reply, then the read-back.
    let r = cmd(a, "ascset", Some("0,led,1-1")).await;
    assert_eq!((status(&r).0.as_str(), status(&r).1), ("I", 118));
    assert!(status(&r).2.starts_with("ASC 0 set info:"));
    assert_eq!(dev.truth().locate_led_on, Some(true));
    // Work mode and level move power.
    let p0 = dev.truth().power_target_w.unwrap_or_default();
    assert_eq!(
        status(&cmd(a, "ascset", Some("0,worklevel,set,4")).await).1,
        118
    );
    let st = cmd(a, "estats", None).await;
    let mm_id = st["STATS"][0]["MM ID0"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(mm(&mm_id, "WORKLEVEL").as_deref(), Some("4"));
    assert!(dev.truth().power_target_w.unwrap_or_default() < p0);
    assert_eq!(status(&cmd(a, "ascset", Some("0,workmode,2")).await).1, 118);
    assert_eq!(dev.truth().power_mode, Some(PowerMode::Low));
    assert_eq!(
        status(&cmd(a, "ascset", Some("0,worklevel,set,99")).await).1,
        120
    );
    assert_eq!(
        status(&cmd(a, "ascset", Some("0,fan-spd,100")).await),
        ("S".into(), 119, "ASC 0 set OK".into())
    );
    assert_eq!(status(&cmd(a, "ascset", Some("3,led,1-1")).await).1, 107);
    // Soft-off with a time already due: idle at once.
    let now = hashmesh_sim::device::now_ms() / 1000;
    let r = cmd(a, "ascset", Some(&format!("0,softoff,1:{now}"))).await;
    assert!(status(&r).2.contains("softoff"), "{r}");
    let st = cmd(a, "estats", None).await;
    let mm_id = st["STATS"][0]["MM ID0"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(mm(&mm_id, "SoftOFF").as_deref(), Some("1"));
    assert!(mm(&mm_id, "SYSTEMSTATU").is_some_and(|s| s.contains("In Idle")));
    assert_eq!(
        mm(&mm_id, "GHSspd").and_then(|x| x.parse::<f64>().ok()),
        Some(0.0)
    );
    assert_eq!(dev.truth().status, MinerStatus::Sleeping);
    let help = cmd(a, "ascset", Some("0,help")).await;
    assert!(status(&help).2.contains("softoff"));
}

#[tokio::test]
async fn braiins_tuner_fans_temps_pause() {
    let dev = start(Family::Braiins, "Antminer S19j Pro").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    assert!(
        v["STATUS"][0]["Description"]
            .as_str()
            .is_some_and(|d| d.starts_with("BOSer boser-buildroot"))
    );
    let dd = cmd(a, "devdetails", None).await;
    assert_eq!(dd["DEVDETAILS"][0]["Model"], "Bitmain Antminer S19j Pro");
    let truth = dev.truth();
    let fans = cmd(a, "fans", None).await;
    let rpm: Vec<u32> = fans["FANS"]
        .as_array()
        .map(|f| f.iter().map(|x| num(&x["RPM"]) as u32).collect())
        .unwrap_or_default();
    assert_eq!(rpm.len(), 4);
    assert!(rpm.iter().zip(&truth.fans_rpm).all(|(a, b)| close(
        f64::from(*a),
        f64::from(*b),
        0.03
    )));
    let temps = cmd(a, "temps", None).await;
    assert_eq!(temps["TEMPS"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        Some(num(&temps["TEMPS"][1]["Chip"])),
        truth.boards[1].chip_temp_c
    );
    let t = cmd(a, "tunerstatus", None).await;
    assert_eq!(num(&t["TUNERSTATUS"][0]["PowerLimit"]), 3050.0);
    assert_eq!(truth.power_target_w, Some(3050.0));
    let s = cmd(a, "summary", None).await;
    assert!(s["SUMMARY"][0]["MHS 5s"].is_number() && s["SUMMARY"][0]["MHS 1m"].is_number());
    // A power target set out of band (gRPC/REST in real life) moves the tuner.
    dev.update(|st| st.power_target_w = Some(2500));
    let t = cmd(a, "tunerstatus", None).await;
    assert_eq!(num(&t["TUNERSTATUS"][0]["PowerLimit"]), 2500.0);
    assert_eq!(status(&cmd(a, "pause", None).await).0, "S");
    assert_eq!(dev.truth().status, MinerStatus::Sleeping);
    assert_eq!(status(&cmd(a, "pause", None).await).0, "E");
    assert_eq!(
        num(&cmd(a, "summary", None).await["SUMMARY"][0]["MHS 5s"]),
        0.0
    );
    assert_eq!(status(&cmd(a, "resume", None).await).0, "S");
    assert_eq!(dev.truth().status, MinerStatus::Mining);
}

#[tokio::test]
async fn luxos_sessions_profiles_and_curtail() {
    let dev = start(Family::LuxOs, "Antminer S19 Pro").await;
    let a = dev.local_addr();
    let v = cmd(a, "version", None).await;
    assert_eq!(
        (
            v["VERSION"][0]["API"].as_str(),
            v["VERSION"][0]["Type"].as_str()
        ),
        (Some("3.7"), Some("Antminer S19 Pro"))
    );
    assert!(v.to_string().contains("LUXminer"));
    let p = cmd(a, "power", None).await;
    let truth = dev.truth();
    assert!(close(
        num(&p["POWER"][0]["Watts"]),
        truth.power_w.unwrap_or_default(),
        0.02
    ));
    let cfg = cmd(a, "config", None).await;
    assert_eq!(cfg["CONFIG"][0]["RedLed"], "off");
    assert_eq!(cfg["CONFIG"][0]["MACAddr"], dev.config().mac.as_str());
    // Writes need a session; only one session may exist.
    let r = cmd(a, "curtail", Some("sleep")).await;
    assert_eq!(status(&r).0, "E");
    let logon = cmd(a, "logon", None).await;
    let sid = logon["SESSION"][0]["SessionID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(sid.len(), 8);
    assert_eq!(
        status(&cmd(a, "logon", None).await),
        ("E".into(), 402, "Another session is active".into())
    );
    assert_eq!(
        cmd(a, "session", None).await["SESSION"][0]["SessionID"],
        sid.as_str()
    );
    assert_eq!(
        status(&cmd(a, "curtail", Some("WRONGSID,sleep")).await).0,
        "E"
    );
    // Profiles move the power target.
    let profiles = cmd(a, "profiles", None).await;
    let watts = |name: &str| {
        profiles["PROFILES"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["Profile Name"] == name))
            .map(|p| num(&p["Watts"]))
            .unwrap_or_default()
    };
    assert_eq!(truth.power_target_w, Some(watts("default")));
    assert_eq!(
        status(&cmd(a, "profileset", Some(&format!("{sid},-2"))).await).0,
        "S"
    );
    assert_eq!(dev.truth().power_target_w, Some(watts("-2")));
    assert!(watts("-2") < watts("default"));
    assert_eq!(cmd(a, "config", None).await["CONFIG"][0]["Profile"], "-2");
    assert_eq!(
        status(&cmd(a, "ledset", Some(&format!("{sid},red,blink"))).await).0,
        "S"
    );
    assert_eq!(cmd(a, "config", None).await["CONFIG"][0]["RedLed"], "blink");
    assert_eq!(dev.truth().locate_led_on, Some(true));
    assert_eq!(
        status(&cmd(a, "curtail", Some(&format!("{sid},sleep"))).await).0,
        "S"
    );
    assert_eq!(
        num(&cmd(a, "summary", None).await["SUMMARY"][0]["GHS 5s"]),
        0.0
    );
    assert_eq!(dev.truth().status, MinerStatus::Sleeping);
    // Pool commands need no session.
    assert_eq!(status(&cmd(a, "switchpool", Some("1")).await).1, 27);
    assert_eq!(status(&cmd(a, "logoff", Some(&sid)).await).0, "S");
    assert_eq!(cmd(a, "session", None).await["SESSION"][0]["SessionID"], "");
    assert_eq!(status(&cmd(a, "logon", None).await).0, "S");
    let st = cmd(a, "stats", None).await;
    assert!(st["STATS"][0]["LUXminer"].is_string() && st["STATS"][1]["chain_acn1"] == 114);
}

#[tokio::test]
async fn truth_matches_what_the_wire_says() {
    for (family, model) in [
        (Family::Antminer, "Antminer S21"),
        (Family::Braiins, "Antminer S19 XP"),
        (Family::LuxOs, "Antminer S19k Pro"),
        (Family::Avalon, "Avalon A1566"),
        (Family::Cgminer, "cgminer"),
    ] {
        let dev = start(family, model).await;
        let truth = dev.truth();
        let pools = cmd(dev.local_addr(), "pools", None).await;
        let urls: Vec<&str> = pools["POOLS"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x["URL"].as_str()).collect())
            .unwrap_or_default();
        let truth_urls: Vec<&str> = truth.pools.iter().map(|p| &*p.url).collect();
        assert_eq!(urls, truth_urls, "{family}");
        let accepted = pools["POOLS"][0]["Accepted"].as_u64().unwrap_or_default();
        assert!(
            accepted.abs_diff(truth.pools[0].accepted) <= accepted / 100 + 5,
            "{family}"
        );
        assert_eq!(truth.status, MinerStatus::Mining, "{family}");
        assert!(
            truth.efficiency_j_per_th.is_some() == truth.power_w.is_some(),
            "{family}"
        );
        let expected = truth
            .expected_hashrate_ths
            .unwrap_or(truth.hashrate_ths.unwrap_or_default());
        assert!(
            close(truth.hashrate_ths.unwrap_or_default(), expected, 0.06),
            "{family}"
        );
    }
}

#[tokio::test]
async fn avalon_quirks_send_bare_nan_only_when_asked() {
    let mut cfg = hashmesh_sim::DeviceConfig::new(Family::Avalon, "Avalon A1346");
    cfg.firmware_quirks = true;
    let dev =
        hashmesh_sim::spawn_device(cfg, "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let bytes = raw(dev.local_addr(), br#"{"command":"devs"}"#)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes);
    assert!(
        body.contains("\"Device Hardware%\":nan")
            && body.contains(":-nan")
            && body.contains(":inf"),
        "{body}"
    );
    assert!(serde_json::from_slice::<Value>(&bytes[..bytes.len() - 1]).is_err());
    // Repaired the way PROTOCOLS.md §1.10 says (bare tokens to null), it parses.
    let repaired = body
        .trim_end_matches('\0')
        .replace(":-nan", ":null")
        .replace(":nan", ":null")
        .replace(":inf", ":null");
    let v: Value = serde_json::from_str(&repaired).unwrap_or_default();
    assert_eq!(v["DEVS"][0]["Device Hardware%"], Value::Null);
    let plain = start(Family::Avalon, "Avalon A1346").await;
    let v = cmd(plain.local_addr(), "devs", None).await;
    assert!(v["DEVS"][0]["Device Hardware%"].is_number());
}
