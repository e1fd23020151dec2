//! The Whatsminer simulator's wire, checked with a bare test client (no driver code): v2 reply
//! shapes and the trailing NUL, the flat layout, multi-command refusal of `get_*`, the write
//! switch, the token flow with independently derived keys, and v3 framing with several
//! requests on one connection.

use hashmesh_sim::whatsminer::auth;
use hashmesh_sim::{Timing, WhatsminerApi, WhatsminerConfig, spawn_whatsminer};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(api: WhatsminerApi, model: &str, write: bool) -> hashmesh_sim::RunningWhatsminer {
    let mut cfg = WhatsminerConfig::new(api, model).with_seed(7);
    cfg.device.timing = Timing::fast();
    cfg.write_api_enabled = write;
    spawn_whatsminer(cfg, "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn v2(addr: SocketAddr, req: &str) -> Value {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.pop(), Some(0), "v2 replies end with one NUL");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

async fn v3(s: &mut TcpStream, req: &Value) -> Value {
    let body = serde_json::to_vec(req).unwrap_or_default();
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).await.unwrap_or_else(|e| panic!("{e}"));
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reply = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut reply)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn v2_reads() {
    let dev = start(WhatsminerApi::V2, "M30S++", false).await;
    let a = dev.local_addr();
    let s = v2(a, r#"{"cmd":"summary"}"#).await;
    assert_eq!(s["STATUS"][0]["STATUS"], "S");
    let sum = &s["SUMMARY"][0];
    assert!(
        sum["MHS 5s"].as_f64().unwrap_or(0.0) > 100e6,
        "hashrate in MH/s: {sum}"
    );
    assert_eq!(sum["Power Mode"], "Normal");
    assert_eq!(sum["Firmware Version"], "'20230803.11.REL'");
    // pyasic's `command` spelling works too.
    let d = v2(a, r#"{"command":"devdetails"}"#).await;
    assert_eq!(d["DEVDETAILS"][0]["Model"], "M30S++_VH30");
    let m = v2(a, r#"{"cmd":"summary+devs+pools"}"#).await;
    assert!(
        m["devs"][0]["DEVS"]
            .as_array()
            .is_some_and(|d| d.len() == 3)
    );
    let v = v2(a, r#"{"cmd":"get_version"}"#).await;
    assert_eq!(
        (v["STATUS"].as_str(), v["Code"].as_u64()),
        (Some("S"), Some(131))
    );
    assert_eq!(v["Msg"]["fw_ver"], "20230803.11.REL");
    let refused = v2(a, r#"{"cmd":"summary+status"}"#).await;
    assert_eq!(
        (refused["STATUS"].as_str(), refused["Code"].as_u64()),
        (Some("E"), Some(14))
    );
    let bad = v2(a, "{not json").await;
    assert_eq!(bad["Code"], 23);
}

#[tokio::test]
async fn v2_token_flow_and_write_switch() {
    let dev = start(WhatsminerApi::V2, "M50S", false).await;
    let a = dev.local_addr();
    let t = v2(a, r#"{"cmd":"get_token"}"#).await;
    let msg = &t["Msg"];
    let (time, salt, newsalt) = (
        msg["time"].as_str().unwrap_or_default(),
        msg["salt"].as_str().unwrap_or_default(),
        msg["newsalt"].as_str().unwrap_or_default(),
    );
    let key = auth::crypt_tail(&auth::md5_crypt("admin", salt)).to_string();
    let sign = auth::crypt_tail(&auth::md5_crypt(&format!("{key}{time}"), newsalt)).to_string();
    let aes = auth::sha256(key.as_bytes());
    let plain = format!(r#"{{"cmd":"set_led","param":"auto","token":"{sign}"}}"#);
    let req = format!(
        r#"{{"enc":1,"data":"{}"}}"#,
        auth::b64(&auth::encrypt(&aes, plain.as_bytes()))
    );
    let off = v2(a, &req).await;
    assert_eq!(off["Msg"], "can't access write cmd");
    dev.set_write_api(true);
    let on = v2(a, &req).await;
    let enc = on["enc"].as_str().unwrap_or_default();
    let inner = auth::decrypt(&aes, &auth::unb64(enc).unwrap_or_default()).unwrap_or_default();
    let inner: Value = serde_json::from_slice(&inner).unwrap_or(Value::Null);
    assert_eq!(
        (inner["STATUS"].as_str(), inner["Code"].as_u64()),
        (Some("S"), Some(131))
    );
    dev.expire_tokens();
    assert_eq!(v2(a, &req).await["Code"], 135);
}

#[tokio::test]
async fn v3_frames_several_requests_per_connection() {
    let dev = start(WhatsminerApi::V3, "M63S", false).await;
    let addr = dev
        .v3_addr()
        .unwrap_or_else(|| panic!("v3 device has a v3 port"));
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let info = v3(
        &mut s,
        &serde_json::json!({"cmd": "get.device.info", "param": "miner"}),
    )
    .await;
    assert_eq!(info["code"], 0);
    assert_eq!(info["msg"]["miner"]["type"], "M63S_VK40");
    let st = v3(
        &mut s,
        &serde_json::json!({"cmd": "get.miner.status", "param": "summary+edevs"}),
    )
    .await;
    assert!(
        st["msg"]["summary"]["hash-realtime"]
            .as_f64()
            .unwrap_or(0.0)
            > 300.0,
        "TH/s: {st}"
    );
    assert_eq!(st["msg"]["edevs"].as_array().map(Vec::len), Some(3));
    let missing = v3(&mut s, &serde_json::json!({"cmd": "get.miner.status"})).await;
    assert_eq!(missing["code"], -3);
    let write = v3(
        &mut s,
        &serde_json::json!({"cmd": "set.system.led", "param": "auto"}),
    )
    .await;
    assert_eq!(write["code"], -4);
    // The degraded v2 service on 4028 answers get_version with the new firmware only.
    let v = v2(dev.local_addr(), r#"{"cmd":"get_version"}"#).await;
    assert_eq!(v["Msg"]["fw_ver"], "20251209.16.Rel2");
    assert_eq!(
        v2(dev.local_addr(), r#"{"cmd":"get_token"}"#).await["Code"],
        14
    );
}
