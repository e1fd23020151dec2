//! A minimal test client for the simulators: one request per connection, read to EOF.
//! Written for the tests only; it shares nothing with the drivers' wire code.

#![allow(dead_code)]

use hashmesh_sim::{DeviceConfig, Family, RunningDevice, Timing, spawn_device};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a device of `family`/`model` on an ephemeral loopback port with fast timing.
pub async fn start(family: Family, model: &str) -> RunningDevice {
    let mut cfg = DeviceConfig::new(family, model).with_seed(42);
    cfg.timing = Timing::fast();
    cfg.rpc_write_access = true;
    spawn_device(cfg, "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends raw bytes, returns the raw reply (with its NUL), or the I/O error.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(request).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
    Ok(out)
}

/// Sends a JSON command and parses the reply, checking the NUL terminator.
pub async fn json(addr: SocketAddr, request: &str) -> Value {
    let bytes = raw(addr, request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{request}: {e}"));
    assert_eq!(bytes.last(), Some(&0), "{request}: reply must end in NUL");
    serde_json::from_slice(&bytes[..bytes.len() - 1])
        .unwrap_or_else(|e| panic!("{request}: {e}: {}", String::from_utf8_lossy(&bytes)))
}

/// `{"command":cmd}` or with a parameter.
pub async fn cmd(addr: SocketAddr, command: &str, parameter: Option<&str>) -> Value {
    let req = match parameter {
        Some(p) => serde_json::json!({ "command": command, "parameter": p }),
        None => serde_json::json!({ "command": command }),
    };
    json(addr, &req.to_string()).await
}

/// Sends a text-form command and returns the reply text without its NUL.
pub async fn text(addr: SocketAddr, request: &str) -> String {
    let bytes = raw(addr, request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{request}: {e}"));
    assert_eq!(bytes.last(), Some(&0), "{request}: reply must end in NUL");
    String::from_utf8_lossy(&bytes[..bytes.len() - 1]).into_owned()
}

/// The STATUS of a standard reply: (letter, code, msg).
pub fn status(v: &Value) -> (String, i64, String) {
    let s = &v["STATUS"][0];
    (
        s["STATUS"].as_str().unwrap_or_default().to_string(),
        s["Code"].as_i64().unwrap_or(-1),
        s["Msg"].as_str().unwrap_or_default().to_string(),
    )
}

/// A number that may arrive as a JSON number or a string.
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// Tokens of an Avalon `MM ID` string: `KEY[value]`.
pub fn mm_tokens(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let key = rest[..open]
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        out.push((key, rest[open + 1..open + close].to_string()));
        rest = &rest[open + close + 1..];
    }
    out
}

/// The value of `key` in an `MM ID` string.
pub fn mm(s: &str, key: &str) -> Option<String> {
    mm_tokens(s)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Polls until `addr` refuses connections (true) or `limit` passes (false).
pub async fn wait_refused(addr: SocketAddr, limit: Duration) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Polls until `addr` answers `summary` again, returning the reply.
pub async fn wait_back(addr: SocketAddr, limit: Duration) -> Option<Value> {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if let Ok(bytes) = raw(addr, br#"{"command":"summary"}"#).await
            && let Some((_, body)) = bytes.split_last()
            && let Ok(v) = serde_json::from_slice(body)
        {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
