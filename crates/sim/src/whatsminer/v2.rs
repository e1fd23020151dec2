//! The Whatsminer API v2 service (TCP 4028): cgminer-layout reports, flat `get_*` replies,
//! `get_token` and encrypted writes; on a v3 device, the degraded subset newer firmware keeps.

use super::auth::{b64, crypt_tail, decrypt, encrypt, md5_crypt, sha256, unb64};
use super::{Inner, Shared, Token, WhatsminerApi, active_errors, salt_chars};
use crate::family::Family;
use crate::model::{Pool, Reading, mix};
use hashmesh_core::PowerMode;
use serde_json::{Value, json};
use std::time::Duration;

/// Active tokens a device keeps per client before refusing more (136).
const MAX_TOKENS: usize = 16;

fn flat(now_s: u64, ok: bool, code: u32, msg: Value) -> Value {
    json!({"STATUS": if ok {"S"} else {"E"}, "When": now_s, "Code": code, "Msg": msg, "Description": ""})
}

fn err(now_s: u64, code: u32, msg: &str) -> Value {
    flat(now_s, false, code, json!(msg))
}

/// Answers one request; the second value asks the server to take the device down afterwards.
pub(crate) fn respond(sh: &Shared, raw: &[u8], now: u64) -> (Vec<u8>, Option<Duration>) {
    let now_s = now / 1000;
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        return (bytes(&err(now_s, 23, "invalid JSON")), None);
    };
    let mut g = sh.lock(now);
    if req.get("enc").is_some() {
        return write(sh, &mut g, &req, now);
    }
    let cmd = req
        .get("cmd")
        .or_else(|| req.get("command"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let reading =
        g.st.read(sh.np, Family::Cgminer, sh.cfg.device.seed, g.faults);
    let degraded = sh.cfg.api == WhatsminerApi::V3;
    if cmd.contains('+') {
        let mut out = serde_json::Map::new();
        for part in cmd.split('+').map(str::trim) {
            let Some(r) = report(sh, &g, &reading, part, now_s, degraded) else {
                return (bytes(&err(now_s, 14, "invalid cmd")), None);
            };
            out.insert(part.to_string(), json!([r]));
        }
        out.insert("id".into(), json!(1));
        return (bytes(&Value::Object(out)), None);
    }
    if let Some(r) = report(sh, &g, &reading, &cmd, now_s, degraded) {
        return (bytes(&r), None);
    }
    let reply = match cmd.as_str() {
        "get_version" => {
            let api = if degraded { "3.0.1" } else { "2.0.5" };
            flat(
                now_s,
                true,
                131,
                json!({"api_ver": api, "fw_ver": sh.firmware(), "platform": "H616", "chip": "K210"}),
            )
        }
        _ if degraded => err(now_s, 14, "invalid cmd"),
        "status" => flat(
            now_s,
            true,
            131,
            json!({"mineroff": if g.st.sleeping {"true"} else {"false"}, "mineroff_reason": "", "mineroff_time": "",
                   "FirmwareVersion": format!("'{}'", sh.firmware()), "power_mode": mode_word(g.st.mode), "hash_percent": ""}),
        ),
        "get_miner_info" => flat(
            now_s,
            true,
            131,
            json!({"ip": "127.0.0.1", "proto": "dhcp", "netmask": "255.255.255.0", "gateway": "127.0.0.254",
                   "dns": "127.0.0.53", "hostname": "WhatsMiner", "mac": sh.cfg.device.mac.to_uppercase(),
                   "ledstat": if g.st.led {"manual"} else {"auto"}, "minersn": sh.cfg.device.serial}),
        ),
        "get_error_code" => {
            let list: Vec<Value> = active_errors(&reading, g.faults)
                .into_iter()
                .map(|(c, _)| json!({ c.to_string(): "2024-05-01 12:00:00" }))
                .collect();
            flat(now_s, true, 131, json!({ "error_code": list }))
        }
        "get_psu" => flat(
            now_s,
            true,
            131,
            json!({"name": "P221B", "hw_version": "V01.00", "sw_version": "V02.05", "model": "P221B",
                   "iin": "15.62", "vin": "22400", "fan_speed": "6528", "serial_no": "HWQ1D2003B"}),
        ),
        "get_token" => token(sh, &mut g, now),
        _ => err(now_s, 14, "invalid cmd"),
    };
    (bytes(&reply), None)
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn mode_word(m: PowerMode) -> &'static str {
    match m {
        PowerMode::Low => "Low",
        PowerMode::Normal => "Normal",
        PowerMode::High => "High",
    }
}

fn token(sh: &Shared, g: &mut Inner, now: u64) -> Value {
    let now_s = now / 1000;
    let life = sh.cfg.token_lifetime.as_millis() as u64;
    g.tokens.retain(|t| t.issued_ms + life > now);
    if g.tokens.len() >= MAX_TOKENS {
        return err(now_s, 136, "too many tokens");
    }
    g.tokens_issued += 1;
    let time = format!("{}", now_s % 10_000);
    let newsalt = salt_chars(mix(sh.cfg.device.seed, 55, g.tokens_issued), 8);
    let salt = sh.salt();
    let key = crypt_tail(&md5_crypt(&sh.cfg.password, &salt)).to_string();
    let sign = crypt_tail(&md5_crypt(&format!("{key}{time}"), &newsalt)).to_string();
    g.tokens.push(Token {
        sign,
        issued_ms: now,
    });
    flat(
        now_s,
        true,
        134,
        json!({"time": time, "salt": salt, "newsalt": newsalt}),
    )
}

fn write(sh: &Shared, g: &mut Inner, req: &Value, now: u64) -> (Vec<u8>, Option<Duration>) {
    let now_s = now / 1000;
    if sh.cfg.api == WhatsminerApi::V3 {
        return (bytes(&err(now_s, 14, "invalid cmd")), None);
    }
    if !g.write_api_enabled {
        return (bytes(&err(now_s, 45, "can't access write cmd")), None);
    }
    let key = sha256(crypt_tail(&md5_crypt(&sh.cfg.password, &sh.salt())).as_bytes());
    let plain = req
        .get("data")
        .and_then(Value::as_str)
        .and_then(unb64)
        .and_then(|d| decrypt(&key, &d))
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok());
    let Some(cmd) = plain else {
        return (bytes(&err(now_s, 23, "invalid json")), None);
    };
    let life = sh.cfg.token_lifetime.as_millis() as u64;
    let sign = cmd.get("token").and_then(Value::as_str).unwrap_or_default();
    let valid = g
        .tokens
        .iter()
        .any(|t| t.sign == sign && t.issued_ms + life > now && t.issued_ms > 0);
    if !valid {
        return (bytes(&err(now_s, 135, "token has expired")), None);
    }
    let s = |k: &str| {
        cmd.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let timing = sh.cfg.device.timing;
    let mut down = None;
    let name = s("cmd");
    let result: Result<&str, (u32, &str)> = match name.as_str() {
        "reboot" => {
            down = Some(timing.reboot);
            Ok("ok")
        }
        "restart_btminer" => {
            down = Some(timing.restart);
            Ok("ok")
        }
        "power_off" => {
            g.st.sleeping = true;
            Ok("ok")
        }
        "power_on" => {
            g.st.sleeping = false;
            Ok("ok")
        }
        "set_low_power" | "set_normal_power" | "set_high_power" => {
            g.st.mode = match name.as_str() {
                "set_low_power" => PowerMode::Low,
                "set_high_power" => PowerMode::High,
                _ => PowerMode::Normal,
            };
            Ok("ok")
        }
        "adjust_power_limit" => match s("power_limit").trim().parse::<u32>() {
            Ok(w) if (500..=99_999).contains(&w) => {
                g.power_limit_w = w;
                Ok("ok")
            }
            _ => Err((132, "invalid power_limit")),
        },
        "set_led" => {
            g.st.led = s("param") != "auto";
            Ok("ok")
        }
        "update_pools" => {
            let pools: Vec<Pool> = (1..=3)
                .filter(|i| !s(&format!("pool{i}")).is_empty())
                .enumerate()
                .map(|(prio, i)| {
                    Pool::new(
                        &s(&format!("pool{i}")),
                        &s(&format!("worker{i}")),
                        &s(&format!("passwd{i}")),
                        prio as u32,
                    )
                })
                .collect();
            if pools.is_empty() {
                Err((132, "no pool given"))
            } else {
                g.st.pools = pools;
                // Mining restarts on a pool change.
                down = Some(timing.restart);
                Ok("ok")
            }
        }
        _ => Err((14, "invalid cmd")),
    };
    let reply = match result {
        Ok(m) => flat(now_s, true, 131, json!(m)),
        Err((code, m)) => return (bytes(&err(now_s, code, m)), None),
    };
    let enc = b64(&encrypt(&key, &bytes(&reply)));
    (bytes(&json!({ "enc": enc })), down)
}

/// The cgminer-layout reports; `None` for anything else.
fn report(
    sh: &Shared,
    g: &Inner,
    r: &Reading,
    cmd: &str,
    now_s: u64,
    degraded: bool,
) -> Option<Value> {
    let status = |msg: &str| json!([{"STATUS": "S", "Msg": msg}]);
    let mhs = |ghs: f64| (ghs * 1000.0 * 100.0).round() / 100.0;
    Some(match cmd {
        "summary" => {
            let chip_max = r.boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
            let mut sum = json!({
                "Elapsed": r.elapsed_s, "MHS av": mhs(r.rate_avg_ghs), "MHS 5s": mhs(r.rate_5s_ghs),
                "MHS 1m": mhs(r.rate_5s_ghs), "MHS 5m": mhs(r.rate_avg_ghs), "MHS 15m": mhs(r.rate_avg_ghs),
                "HS RT": mhs(r.rate_5s_ghs), "Accepted": r.accepted, "Rejected": r.rejected,
                "Hardware Errors": r.hw_errors, "Temperature": chip_max,
                "freq_avg": r.boards.first().map_or(0.0, |b| b.frequency_mhz),
                "Fan Speed In": r.fans_rpm.first().copied().unwrap_or(0),
                "Fan Speed Out": r.fans_rpm.get(1).copied().unwrap_or(0),
                "Uptime": r.elapsed_s, "Hash Stable": true, "Target MHS": mhs(r.rate_ideal_ghs),
                "Env Temp": r.ambient_c, "Factory GHS": (sh.np.hashrate_ths * 1000.0).round(),
                "Chip Temp Max": chip_max, "MAC": sh.cfg.device.mac.to_uppercase(),
                "Firmware Version": format!("'{}'", sh.firmware()),
                "Liquid Cooling": false, "Btminer Fast Boot": "disable",
            });
            if !degraded && let Some(o) = sum.as_object_mut() {
                let power_rate = if r.rate_5s_ghs > 0.0 {
                    (f64::from(r.power_w) / (r.rate_5s_ghs / 1000.0) * 100.0).round() / 100.0
                } else {
                    0.0
                };
                o.insert("Power".into(), json!(r.power_w));
                o.insert("Power Rate".into(), json!(power_rate));
                o.insert("Power Limit".into(), json!(g.power_limit_w));
                o.insert("Power Mode".into(), json!(mode_word(g.st.mode)));
                o.insert(
                    "Error Code Count".into(),
                    json!(active_errors(r, g.faults).len()),
                );
            }
            json!({"STATUS": status("Summary"), "SUMMARY": [sum], "id": 1})
        }
        "devs" | "edevs" => {
            let devs: Vec<Value> = r
                .boards
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let chips: Vec<i32> = b.chip_c.to_vec();
                    let (cmin, cmax) = if b.failed {
                        (0, 0)
                    } else {
                        (chips.iter().copied().min().unwrap_or(0), b.chip_max_c())
                    };
                    json!({"ASC": i, "Slot": i, "Name": "SM", "ID": i, "Enabled": "Y", "Status": "Alive",
                           "Temperature": b.pcb_max_c(), "Chip Frequency": b.frequency_mhz,
                           "MHS av": mhs(b.rate_avg_ghs), "MHS 5s": mhs(b.rate_ghs), "MHS 1m": mhs(b.rate_ghs),
                           "Factory GHS": b.ideal_ghs, "Hardware Errors": b.hw_errors, "Upfreq Complete": 1,
                           "Effective Chips": b.chips_working, "PCB SN": format!("{}{i}", sh.cfg.device.serial),
                           "Chip Temp Min": cmin, "Chip Temp Max": cmax,
                           "Chip Temp Avg": if b.failed { 0.0 } else { f64::from(cmin + cmax) / 2.0 }})
                })
                .collect();
            json!({"STATUS": status(&format!("{} ASC(s)", devs.len())), "DEVS": devs, "id": 1})
        }
        "pools" if !degraded => {
            let pools: Vec<Value> = g
                .st
                .pools
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (a, rj, st) = p.shares(crate::model::POOL_DIFFICULTY);
                    json!({"POOL": i, "URL": p.url, "Status": crate::rpc::pool_status(p), "Priority": p.priority,
                           "Quota": 1, "User": p.user, "Accepted": a, "Rejected": rj, "Stale": st,
                           "Last Share Time": p.last_share_s, "Stratum Active": r.active_pool == Some(i),
                           "Stratum Difficulty": crate::model::POOL_DIFFICULTY})
                })
                .collect();
            json!({"STATUS": status(&format!("{} Pool(s)", pools.len())), "POOLS": pools, "id": 1})
        }
        "devdetails" => {
            let d: Vec<Value> = (0..sh.np.boards)
                .map(|i| json!({"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "", "Model": sh.model_code()}))
                .collect();
            json!({"STATUS": status("Device Details"), "DEVDETAILS": d, "id": 1})
        }
        _ => {
            let _ = now_s;
            return None;
        }
    })
}
