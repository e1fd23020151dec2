//! Whatsminer commands → write requests (PROTOCOLS.md §4.2, §4.3, §4.4), and the reading of
//! write replies. The read-back of every command is the generic snapshot check
//! ([`crate::verify::check`]): the poll fills uptime, pools, power mode and limit, the sleeping
//! state (`status` `mineroff` / v3 `miner.working`) and the LED state it needs.

use crate::cgminer::reply::{Text, decode, excerpt};
use crate::error::DriverError;
use crate::whatsminer::crypto::{V2Keys, aes_ecb_encrypt, b64_encode};
use crate::whatsminer::parse::{
    CODE_INVALID_JSON, CODE_TOKEN_EXPIRED, MsgOr, V2Flat, parse_v3, v2_error,
};
use crate::whatsminer::proto::{push_json_string, v2_request};
use hashmesh_core::{Command, PoolConfig, PowerMode};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Whatsminer holds at most three pools.
pub const MAX_POOLS: usize = 3;

/// The API v2 write for `command`: the command object without the token.
pub fn v2_write(command: &Command) -> Result<String, DriverError> {
    Ok(match command {
        Command::Reboot => v2_request("reboot", &[]),
        Command::RestartMining => v2_request("restart_btminer", &[]),
        Command::Sleep => v2_request("power_off", &[("respbefore", "true")]),
        Command::Wake => v2_request("power_on", &[]),
        Command::SetPowerMode { mode } => v2_request(
            match mode {
                PowerMode::Low => "set_low_power",
                PowerMode::Normal => "set_normal_power",
                PowerMode::High => "set_high_power",
            },
            &[],
        ),
        Command::SetPowerTarget { power_w } => v2_request(
            "adjust_power_limit",
            &[("power_limit", &power_w.to_string())],
        ),
        Command::LocateLed { on: false } => v2_request("set_led", &[("param", "auto")]),
        // A red light blinking for a minute-long period: pyasic's locate pattern.
        Command::LocateLed { on: true } => v2_request(
            "set_led",
            &[
                ("color", "red"),
                ("period", "60"),
                ("duration", "20"),
                ("start", "0"),
            ],
        ),
        Command::SetPools { pools } => {
            check_pools(pools)?;
            let mut fields: Vec<(String, String)> = Vec::with_capacity(9);
            for i in 0..MAX_POOLS {
                let p = pools.get(i);
                let n = i + 1;
                fields.push((
                    format!("pool{n}"),
                    p.map(|p| p.url.clone()).unwrap_or_default(),
                ));
                fields.push((
                    format!("worker{n}"),
                    p.map(|p| p.user.clone()).unwrap_or_default(),
                ));
                fields.push((
                    format!("passwd{n}"),
                    p.map(|p| p.password.clone()).unwrap_or_default(),
                ));
            }
            let refs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            v2_request("update_pools", &refs)
        }
    })
}

fn check_pools(pools: &[PoolConfig]) -> Result<(), DriverError> {
    if pools.is_empty() {
        return Err(DriverError::Rejected("at least one pool is needed".into()));
    }
    if pools.len() > MAX_POOLS {
        return Err(DriverError::Rejected(format!(
            "Whatsminer holds at most {MAX_POOLS} pools, {} given",
            pools.len()
        )));
    }
    Ok(())
}

/// One API v3 write: the command name, its parameter as JSON, and whether the parameter is
/// sensitive (encrypted with the token's key, §4.3 step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Write {
    /// Command name, e.g. `set.miner.power_limit`.
    pub cmd: &'static str,
    /// Parameter JSON, if any.
    pub param_json: Option<String>,
    /// Encrypt the parameter.
    pub sensitive: bool,
}

/// The API v3 write for `command`.
pub fn v3_write(command: &Command) -> Result<V3Write, DriverError> {
    let plain = |cmd, p: Option<&str>| V3Write {
        cmd,
        param_json: p.map(str::to_owned),
        sensitive: false,
    };
    Ok(match command {
        Command::Reboot => plain("set.system.reboot", None),
        Command::RestartMining => plain("set.miner.service", Some("\"restart\"")),
        Command::Sleep => plain("set.miner.service", Some("\"stop\"")),
        Command::Wake => plain("set.miner.service", Some("\"start\"")),
        Command::SetPowerMode { mode } => V3Write {
            cmd: "set.miner.power_mode",
            param_json: Some(format!("\"{}\"", mode.as_str())),
            sensitive: false,
        },
        Command::SetPowerTarget { power_w } => V3Write {
            cmd: "set.miner.power_limit",
            param_json: Some(power_w.to_string()),
            sensitive: false,
        },
        Command::LocateLed { on: false } => plain("set.system.led", Some("\"auto\"")),
        Command::LocateLed { on: true } => plain(
            "set.system.led",
            Some(r#"{"color":"red","period":60,"duration":20,"start":0}"#),
        ),
        Command::SetPools { pools } => {
            check_pools(pools)?;
            let mut json = String::from("[");
            for (i, p) in pools.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                json.push_str("{\"pool\":");
                push_json_string(&mut json, &p.url);
                json.push_str(",\"worker\":");
                push_json_string(&mut json, &p.user);
                json.push_str(",\"passwd\":");
                push_json_string(&mut json, &p.password);
                json.push('}');
            }
            json.push(']');
            V3Write {
                cmd: "set.miner.pools",
                param_json: Some(json),
                sensitive: true,
            }
        }
    })
}

/// The full v3 write request with its authentication members.
pub fn v3_request(w: &V3Write, account: &str, token: &str, key: &[u8; 32], ts: u64) -> String {
    let param = match (&w.param_json, w.sensitive) {
        (Some(p), true) => Some(format!(
            "\"{}\"",
            b64_encode(&aes_ecb_encrypt(key, p.as_bytes()))
        )),
        (Some(p), false) => Some(p.clone()),
        (None, _) => None,
    };
    let mut extra = format!("\"ts\":{ts},\"account\":");
    push_json_string(&mut extra, account);
    extra.push_str(",\"token\":");
    push_json_string(&mut extra, token);
    crate::whatsminer::proto::v3_request(w.cmd, param.as_deref(), &extra)
}

/// Reads a v3 write reply: `Ok(message)` for code 0, else the mapped error.
pub fn v3_write_reply(raw: &[u8]) -> Result<String, DriverError> {
    let r = parse_v3::<IgnoredAny>(raw)?;
    Ok(match r.msg {
        MsgOr::Text(t) => t,
        _ => "ok".to_owned(),
    })
}

/// `get_token` → `Msg`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenMsg {
    /// Token time, as the device writes it.
    #[serde(default)]
    pub time: Text,
    /// Salt of the password key.
    #[serde(default)]
    pub salt: Text,
    /// Salt of the sign.
    #[serde(default)]
    pub newsalt: Text,
}

/// Parses a `get_token` reply into its three parts.
pub fn parse_token(raw: &[u8]) -> Result<TokenMsg, DriverError> {
    let f = crate::whatsminer::parse::parse_v2_flat::<TokenMsg>(raw)?;
    match f.msg {
        MsgOr::Obj(t) if t.salt.non_empty().is_some() && t.newsalt.non_empty().is_some() => Ok(t),
        _ => Err(DriverError::Malformed(format!(
            "get_token without time/salt/newsalt: {}",
            excerpt(raw)
        ))),
    }
}

/// How a v2 write ended.
#[derive(Debug)]
pub enum V2WriteReply {
    /// Success, with the device's message.
    Ok(String),
    /// Code 135: fetch a new token and retry.
    TokenExpired,
    /// Any other failure.
    Err(DriverError),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    enc: Text,
}

/// Reads the reply to an encrypted v2 write: `{"enc":"<base64>"}` decrypted with `keys`, or a
/// plain flat STATUS reply (errors often come back unencrypted).
pub fn v2_write_reply(raw: &[u8], keys: &V2Keys) -> V2WriteReply {
    let inner: Vec<u8>;
    let body: &[u8] = match decode::<Envelope>(raw) {
        Ok(d) if d.value.enc.non_empty().is_some_and(|e| e.len() > 2) => {
            match keys.open(d.value.enc.trimmed()) {
                Some(plain) => {
                    inner = plain;
                    &inner
                }
                None => {
                    return V2WriteReply::Err(DriverError::Auth(
                        "the reply could not be decrypted: wrong admin password?".into(),
                    ));
                }
            }
        }
        Ok(_) => raw,
        Err(e) => return V2WriteReply::Err(e),
    };
    let flat = match decode::<V2Flat<IgnoredAny>>(body) {
        Ok(d) => d.value,
        Err(_) => {
            return V2WriteReply::Err(DriverError::Auth(format!(
                "the decrypted reply is not JSON: wrong admin password? ({})",
                excerpt(body)
            )));
        }
    };
    let status = flat.status.get();
    let code = flat.code.as_i64().or(status.and_then(|s| s.code()));
    let msg = flat
        .msg
        .text()
        .map(str::to_owned)
        .or_else(|| status.and_then(|s| s.msg.non_empty().map(str::to_owned)))
        .unwrap_or_default();
    let failed = status.is_some_and(|s| s.is_error());
    if !failed {
        if status.is_none() && code.is_none() {
            return V2WriteReply::Err(DriverError::Malformed(format!(
                "write reply without STATUS: {}",
                excerpt(body)
            )));
        }
        return V2WriteReply::Ok(if msg.is_empty() { "ok".into() } else { msg });
    }
    match code {
        Some(CODE_TOKEN_EXPIRED) => V2WriteReply::TokenExpired,
        // The device decrypts our request with its own key; with a wrong password it gets
        // garbage, which it reports as invalid JSON.
        Some(CODE_INVALID_JSON) => V2WriteReply::Err(DriverError::Auth(format!(
            "the device could not decrypt the request (wrong admin password?): {msg}"
        ))),
        _ => V2WriteReply::Err(v2_error(code, &msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_writes() {
        assert_eq!(
            v2_write(&Command::SetPowerTarget { power_w: 3000 }).ok(),
            Some(r#"{"cmd":"adjust_power_limit","power_limit":"3000"}"#.to_owned())
        );
        assert_eq!(
            v2_write(&Command::Sleep).ok(),
            Some(r#"{"cmd":"power_off","respbefore":"true"}"#.to_owned())
        );
        let pools = |n: usize| Command::SetPools {
            pools: (0..n)
                .map(|i| PoolConfig {
                    url: format!("stratum+tcp://p{i}:3333"),
                    user: "w\"1".into(),
                    password: "x".into(),
                })
                .collect(),
        };
        let one = v2_write(&pools(1)).unwrap_or_default();
        assert!(
            one.contains(r#""pool1":"stratum+tcp://p0:3333","worker1":"w\"1""#),
            "{one}"
        );
        assert!(one.contains(r#""pool3":"""#), "{one}");
        assert!(matches!(v2_write(&pools(4)), Err(DriverError::Rejected(_))));
        assert!(matches!(v2_write(&pools(0)), Err(DriverError::Rejected(_))));
    }

    #[test]
    fn v3_writes() {
        let w =
            v3_write(&Command::SetPowerTarget { power_w: 3200 }).unwrap_or_else(|e| panic!("{e}"));
        let key = [0u8; 32];
        assert_eq!(
            v3_request(&w, "super", "Ab3dE9+q", &key, 1_718_000_000),
            r#"{"cmd":"set.miner.power_limit","param":3200,"ts":1718000000,"account":"super","token":"Ab3dE9+q"}"#
        );
        let p = v3_write(&Command::SetPools {
            pools: vec![PoolConfig {
                url: "stratum+tcp://a:1".into(),
                user: "w".into(),
                password: "x".into(),
            }],
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.sensitive);
        let req = v3_request(&p, "super", "t", &key, 1);
        assert!(!req.contains("stratum"), "pools must be encrypted: {req}");
    }

    #[test]
    fn v2_write_replies() {
        let keys = V2Keys::derive("admin", "1", "saltsalt", "newsalts");
        assert!(matches!(
            v2_write_reply(
                br#"{"STATUS":"E","When":1,"Code":135,"Msg":"token has expired"}"#,
                &keys
            ),
            V2WriteReply::TokenExpired
        ));
        assert!(matches!(
            v2_write_reply(
                br#"{"STATUS":"E","When":1,"Code":23,"Msg":"invalid json"}"#,
                &keys
            ),
            V2WriteReply::Err(DriverError::Auth(_))
        ));
        assert!(matches!(
            v2_write_reply(br#"{"STATUS":"E","When":1,"Code":45,"Msg":"can't access write cmd"}"#, &keys),
            V2WriteReply::Err(DriverError::Rejected(m)) if m.contains("write API is disabled")
        ));
        let plain = br#"{"STATUS":"S","When":1,"Code":131,"Msg":"ok","Description":""}"#;
        let enc = crate::whatsminer::crypto::b64_encode(
            &crate::whatsminer::crypto::aes_ecb_encrypt(&keys.aes_key, plain),
        );
        let reply = format!("{{\"enc\":\"{enc}\"}}");
        assert!(matches!(
            v2_write_reply(reply.as_bytes(), &keys),
            V2WriteReply::Ok(m) if m == "ok"
        ));
        let other = V2Keys::derive("wrong", "1", "saltsalt", "newsalts");
        assert!(matches!(
            v2_write_reply(reply.as_bytes(), &other),
            V2WriteReply::Err(DriverError::Auth(_))
        ));
    }
}
