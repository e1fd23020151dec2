//! Whatsminer wire formats (PROTOCOLS.md §4.1–§4.3).
//!
//! * API v2 on 4028: the cgminer transport (one request per connection, reply read to EOF,
//!   trailing NUL stripped), requests as `{"cmd":"summary"}`; writes wrapped in the encrypted
//!   `{"enc":1,"data":"…"}` envelope ([`crate::whatsminer::crypto::V2Keys::seal`]).
//! * API v3 on 4433: every message in both directions is a 4-byte little-endian length and
//!   that many bytes of JSON; one request per connection here.

use crate::cgminer::proto::exchange;
use crate::error::DriverError;
use crate::target::Timeouts;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

/// Writes `s` as a JSON string literal (quotes and escapes included).
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A v2 request object: `{"cmd":"<cmd>"}` plus `extra` raw members (`"param":"auto"`).
pub fn v2_request(cmd: &str, extra: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(32 + cmd.len());
    out.push_str("{\"cmd\":");
    push_json_string(&mut out, cmd);
    for (k, v) in extra {
        out.push(',');
        push_json_string(&mut out, k);
        out.push(':');
        push_json_string(&mut out, v);
    }
    out.push('}');
    out
}

/// One plain v2 exchange on 4028.
pub async fn v2_exchange(
    addr: SocketAddr,
    request: &[u8],
    limits: &Timeouts,
) -> Result<Vec<u8>, DriverError> {
    exchange(addr, request, limits).await
}

/// A v3 request object: `{"cmd":"<cmd>","param":<param_json>}` (param omitted when `None`)
/// plus raw extra members (`"ts":…,"account":…,"token":…`).
pub fn v3_request(cmd: &str, param_json: Option<&str>, extra_raw: &str) -> String {
    let mut out = String::with_capacity(64 + cmd.len() + extra_raw.len());
    out.push_str("{\"cmd\":");
    push_json_string(&mut out, cmd);
    if let Some(p) = param_json {
        out.push_str(",\"param\":");
        out.push_str(p);
    }
    if !extra_raw.is_empty() {
        out.push(',');
        out.push_str(extra_raw);
    }
    out.push('}');
    out
}

/// Frames a v3 message: 4-byte little-endian length, then the bytes.
pub fn v3_frame(json: &[u8]) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(json);
    out
}

/// One v3 exchange on 4433: connect, send one framed request, read one framed reply. A length
/// above the reply cap is [`DriverError::TooLarge`] (nothing that large is read).
pub async fn v3_exchange(
    addr: SocketAddr,
    request_json: &[u8],
    limits: &Timeouts,
) -> Result<Vec<u8>, DriverError> {
    let mut replies = v3_exchange_many(addr, &[request_json], limits).await?;
    replies
        .pop()
        .ok_or_else(|| DriverError::Malformed("no v3 reply".into()))
}

/// Several v3 requests in turn on one connection (the framing allows it; it saves a TCP
/// handshake per poll). Fails as a whole if any reply is missing: a caller whose device closes
/// after one reply falls back to [`v3_exchange`] per request.
pub async fn v3_exchange_many(
    addr: SocketAddr,
    requests: &[&[u8]],
    limits: &Timeouts,
) -> Result<Vec<Vec<u8>>, DriverError> {
    let connect_limit = limits.connect.min(limits.total);
    let started = Instant::now();
    // One timer for both deadlines, as in the cgminer transport.
    let timer = sleep_until(started + connect_limit);
    tokio::pin!(timer);
    let mut stream = tokio::select! {
        biased;
        connected = TcpStream::connect(addr) => connected.map_err(DriverError::Connect)?,
        () = &mut timer => return Err(DriverError::Timeout(connect_limit, "connect")),
    };
    // No TCP_NODELAY: each request is one write, sent either on a fresh connection or after
    // the reply that acknowledged the one before, so Nagle's algorithm never holds it back.
    timer.as_mut().reset(started + limits.total);
    let body = async {
        let mut replies = Vec::with_capacity(requests.len());
        for request in requests {
            stream.write_all(&v3_frame(request)).await?;
            let mut len = [0u8; 4];
            read_exact_or_eof(&mut stream, &mut len).await?;
            let n = u32::from_le_bytes(len) as usize;
            if n > limits.max_reply_bytes {
                return Err(DriverError::TooLarge(limits.max_reply_bytes));
            }
            if n == 0 {
                return Err(DriverError::Malformed("empty v3 frame".into()));
            }
            let mut reply = vec![0u8; n];
            read_exact_or_eof(&mut stream, &mut reply).await?;
            replies.push(reply);
        }
        Ok(replies)
    };
    tokio::select! {
        biased;
        replies = body => replies,
        () = &mut timer => Err(DriverError::Timeout(limits.total, "reply")),
    }
}

/// `read_exact` that reports a short read as a malformed (cut) frame rather than an I/O error.
async fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), DriverError> {
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        let n = stream.read(rest).await?;
        if n == 0 {
            return Err(DriverError::Malformed(format!(
                "v3 frame cut short: {got} of {} bytes",
                buf.len()
            )));
        }
        got += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests() {
        assert_eq!(v2_request("summary", &[]), r#"{"cmd":"summary"}"#);
        assert_eq!(
            v2_request("set_led", &[("param", "auto")]),
            r#"{"cmd":"set_led","param":"auto"}"#
        );
        assert_eq!(
            v3_request("get.miner.status", Some("\"summary\""), ""),
            r#"{"cmd":"get.miner.status","param":"summary"}"#
        );
        assert_eq!(
            v3_request("set.system.reboot", None, "\"ts\":5"),
            r#"{"cmd":"set.system.reboot","ts":5}"#
        );
        assert_eq!(v3_frame(b"{}"), vec![2, 0, 0, 0, b'{', b'}']);
    }
}
