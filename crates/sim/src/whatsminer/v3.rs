//! The Whatsminer API v3 service (TCP 4433): 4-byte little-endian length frames of JSON in
//! both directions, several requests per connection, reads without authentication and writes
//! with a `ts` + SHA-256 token; `set.miner.pools` parameters arrive encrypted.

use super::auth::{b64, decrypt, sha256, unb64};
use super::{Shared, active_errors};
use crate::device::now_ms;
use crate::family::Family;
use crate::faults::Fault;
use crate::model::Pool;
use hashmesh_core::PowerMode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request frame accepted.
const MAX_FRAME: usize = 64 * 1024;

pub(crate) async fn connection(sh: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut len = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut len)).await;
        if !matches!(read, Ok(Ok(_))) {
            return;
        }
        let n = u32::from_le_bytes(len) as usize;
        if n == 0 || n > MAX_FRAME {
            return;
        }
        let mut body = vec![0u8; n];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let now = now_ms();
        let faults = sh.lock(now).faults;
        if faults.has(Fault::Hang) {
            let _ = tokio::time::timeout(sh.cfg.device.timing.hang_max, async {
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink).await, Ok(k) if k > 0) {}
            })
            .await;
            return;
        }
        let (reply, down) = respond(&sh, &body, now);
        let mut out = (reply.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&reply);
        if faults.has(Fault::Truncated) {
            out.truncate(out.len() / 2);
        }
        if stream.write_all(&out).await.is_err() || faults.has(Fault::Truncated) {
            return;
        }
        if let Some(d) = down {
            sh.go_down(d);
            return;
        }
        if sh.cfg.v3_one_request_per_connection {
            return;
        }
    }
}

fn reply(now_s: u64, code: i64, msg: Value, desc: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"code": code, "when": now_s, "msg": msg, "desc": desc}))
        .unwrap_or_default()
}

fn respond(sh: &Shared, body: &[u8], now: u64) -> (Vec<u8>, Option<Duration>) {
    let now_s = now / 1000;
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (reply(now_s, -1, json!("invalid json"), ""), None);
    };
    let cmd = req
        .get("cmd")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let param = req.get("param").cloned().unwrap_or(Value::Null);
    let mut g = sh.lock(now);
    let r =
        g.st.read(sh.np, Family::Cgminer, sh.cfg.device.seed, g.faults);
    match cmd.as_str() {
        "get.device.info" => {
            let miner = json!({"type": sh.model_code(), "miner-sn": sh.cfg.device.serial, "board-num": sh.np.boards,
                               "working": if g.st.sleeping {"false"} else {"true"}, "hardware": {"boards": sh.np.boards}});
            let network = json!({"ip": "127.0.0.1", "proto": "dhcp", "mac": sh.cfg.device.mac.to_uppercase(),
                                 "hostname": "WhatsMiner", "netmask": "255.255.255.0"});
            let power = json!({"model": "P521B", "sn": "P5H1D2003B", "fanspeed": 6500,
                               "mode": g.st.mode.as_str(), "vin": 224.0});
            let system = json!({"api": "3.0.1", "fwversion": sh.firmware(), "platform": "H616",
                                "ledstatus": if g.st.led {"manual"} else {"auto"},
                                "apiswitch": if g.write_api_enabled {"enable"} else {"disable"}});
            let errors: Vec<Value> = active_errors(&r, g.faults)
                .into_iter()
                .map(|(c, reason)| json!({"code": c.to_string(), "time": "2025-01-01 00:00:00", "reason": reason}))
                .collect();
            let msg = match param.as_str() {
                None => {
                    json!({"miner": miner, "network": network, "power": power, "system": system,
                               "salt": sh.salt(), "error-code": errors})
                }
                Some("miner") => json!({"miner": miner}),
                Some("network") => json!({"network": network}),
                Some("power") => json!({"power": power}),
                Some("system") => json!({"system": system}),
                Some("salt") => json!({"salt": sh.salt()}),
                Some("error-code") => json!({"error-code": errors}),
                Some(_) => return (reply(now_s, -3, json!("invalid param"), &cmd), None),
            };
            (reply(now_s, 0, msg, &cmd), None)
        }
        "get.miner.status" => {
            let Some(p) = param.as_str() else {
                return (reply(now_s, -3, json!("param required"), &cmd), None);
            };
            let mut msg = serde_json::Map::new();
            for part in p.split('+') {
                let v = match part.trim() {
                    "summary" => {
                        let cmax = r.boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
                        json!({"elapsed": r.elapsed_s, "bootup-time": r.elapsed_s,
                               "hash-realtime": r.rate_5s_ghs / 1000.0, "hash-1min": r.rate_5s_ghs / 1000.0,
                               "hash-15min": r.rate_avg_ghs / 1000.0, "hash-average": r.rate_avg_ghs / 1000.0,
                               "factory-hash": r.rate_ideal_ghs / 1000.0, "power-realtime": r.power_w,
                               "power-5min": r.power_w, "power-limit": g.power_limit_w,
                               "power-rate": if r.rate_5s_ghs > 0.0 { f64::from(r.power_w) * 1000.0 / r.rate_5s_ghs } else { 0.0 },
                               "environment-temperature": r.ambient_c, "chip-temp-max": cmax,
                               "fan-speed-in": r.fans_rpm.first().copied().unwrap_or(0),
                               "fan-speed-out": r.fans_rpm.get(1).copied().unwrap_or(0),
                               "freq-avg": r.boards.first().map_or(0.0, |b| b.frequency_mhz), "up-freq-finish": 1})
                    }
                    "pools" => Value::Array(
                        g.st.pools.iter().enumerate().map(|(i, pl)| json!({
                            "id": i, "url": pl.url, "account": pl.user,
                            "status": crate::rpc::pool_status(pl).to_ascii_lowercase(),
                            "stratum-active": r.active_pool == Some(i)})).collect(),
                    ),
                    "edevs" => Value::Array(
                        r.boards.iter().enumerate().map(|(i, b)| json!({
                            "id": i, "status": "alive", "hash-realtime": b.rate_ghs / 1000.0,
                            "hash-average": b.rate_avg_ghs / 1000.0, "factory-hash": b.ideal_ghs / 1000.0,
                            "freq": b.frequency_mhz, "effective-chips": b.chips_working,
                            "chip-temp-min": if b.failed { 0 } else { b.chip_c.iter().copied().min().unwrap_or(0) },
                            "chip-temp-max": if b.failed { 0 } else { b.chip_max_c() }})).collect(),
                    ),
                    _ => return (reply(now_s, -3, json!("invalid param"), &cmd), None),
                };
                msg.insert(part.trim().to_string(), v);
            }
            (reply(now_s, 0, Value::Object(msg), &cmd), None)
        }
        c if c.starts_with("set.") => {
            if !g.write_api_enabled {
                return (
                    reply(now_s, -4, json!("can't access write cmd"), &cmd),
                    None,
                );
            }
            let ts = req.get("ts").and_then(Value::as_u64).unwrap_or(0);
            let account = req
                .get("account")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let token = req.get("token").and_then(Value::as_str).unwrap_or_default();
            let digest = sha256(format!("{cmd}{}{}{ts}", sh.cfg.password, sh.salt()).as_bytes());
            let want: String = b64(&digest).chars().take(8).collect();
            if account != "super" || token != want || ts.abs_diff(now_s) > 300 {
                return (
                    reply(
                        now_s,
                        -4,
                        json!("permission denied: token check failed"),
                        &cmd,
                    ),
                    None,
                );
            }
            let timing = sh.cfg.device.timing;
            let word = param.as_str().unwrap_or_default().to_string();
            let mut down = None;
            let ok: Result<(), &str> = match cmd.as_str() {
                "set.system.reboot" => {
                    down = Some(timing.reboot);
                    Ok(())
                }
                "set.miner.service" => match word.as_str() {
                    "stop" => {
                        g.st.sleeping = true;
                        Ok(())
                    }
                    "start" => {
                        g.st.sleeping = false;
                        Ok(())
                    }
                    "restart" => {
                        down = Some(timing.restart);
                        Ok(())
                    }
                    _ => Err("invalid param"),
                },
                "set.miner.power_mode" => match word.parse::<PowerMode>() {
                    Ok(m) => {
                        g.st.mode = m;
                        Ok(())
                    }
                    Err(_) => Err("invalid param"),
                },
                "set.miner.power_limit" => match param.as_u64().or_else(|| word.parse().ok()) {
                    Some(w) if (500..=99_999).contains(&w) => {
                        g.power_limit_w = w as u32;
                        Ok(())
                    }
                    _ => Err("invalid param"),
                },
                "set.system.led" => {
                    g.st.led = word != "auto";
                    Ok(())
                }
                "set.miner.pools" => {
                    let list = unb64(&word)
                        .and_then(|d| decrypt(&digest, &d))
                        .and_then(|p| serde_json::from_slice::<Vec<Value>>(&p).ok());
                    match list {
                        Some(l) if !l.is_empty() && l.len() <= 3 => {
                            let f = |v: &Value, k: &str| {
                                v.get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            g.st.pools = l
                                .iter()
                                .enumerate()
                                .map(|(i, v)| {
                                    Pool::new(
                                        &f(v, "pool"),
                                        &f(v, "worker"),
                                        &f(v, "passwd"),
                                        i as u32,
                                    )
                                })
                                .collect();
                            Ok(())
                        }
                        _ => Err("invalid param: pools must be an encrypted list of 1 to 3"),
                    }
                }
                _ => return (reply(now_s, -2, json!("invalid command"), &cmd), None),
            };
            match ok {
                Ok(()) => (reply(now_s, 0, json!("ok"), &cmd), down),
                Err(m) => (reply(now_s, -1, json!(m), &cmd), None),
            }
        }
        _ => (reply(now_s, -2, json!("invalid command"), &cmd), None),
    }
}
