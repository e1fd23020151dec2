//! cgminer RPC wire format (TCP 4028): one request per connection, the reply read to EOF and
//! terminated by a NUL byte. JSON and text request forms; multi-command requests join report
//! commands with `+`.

use crate::error::DriverError;
use crate::target::Timeouts;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

/// Builds a JSON request: `{"command":"summary+stats"}` or with a `parameter`.
pub fn json_request(command: &str, parameter: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + command.len() + parameter.map_or(0, str::len));
    out.extend_from_slice(b"{\"command\":");
    push_json_string(&mut out, command);
    if let Some(p) = parameter {
        out.extend_from_slice(b",\"parameter\":");
        push_json_string(&mut out, p);
    }
    out.push(b'}');
    out
}

/// Builds a JSON request with extra raw members, e.g. `"new_api":true` for Antminer stats.
pub fn json_request_with(command: &str, extra_members: &str) -> Vec<u8> {
    let mut out = json_request(command, None);
    out.pop();
    out.push(b',');
    out.extend_from_slice(extra_members.as_bytes());
    out.push(b'}');
    out
}

/// Builds a text request: `command` or `command|param1,param2` with `,` and `\` escaped.
pub fn text_request(command: &str, params: &[&str]) -> Vec<u8> {
    let mut out = command.as_bytes().to_vec();
    for (i, p) in params.iter().enumerate() {
        out.push(if i == 0 { b'|' } else { b',' });
        for b in p.bytes() {
            if b == b',' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
    }
    out
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Sends one request and returns the reply with the NUL terminator and trailing whitespace
/// removed. Connect and total deadlines and the reply size cap come from `limits`.
pub async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    limits: &Timeouts,
) -> Result<Vec<u8>, DriverError> {
    let mut reply = Vec::with_capacity(16 * 1024);
    exchange_into(addr, request, limits, &mut reply).await?;
    Ok(reply)
}

/// As [`exchange`], reusing the caller's buffer (cleared first) to spare an allocation per poll.
pub async fn exchange_into(
    addr: SocketAddr,
    request: &[u8],
    limits: &Timeouts,
    reply: &mut Vec<u8>,
) -> Result<(), DriverError> {
    reply.clear();
    let deadline = Instant::now() + limits.total;
    let connect_limit = limits.connect.min(limits.total);
    let mut stream = match timeout(connect_limit, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(DriverError::Connect(e)),
        Err(_) => return Err(DriverError::Timeout(connect_limit, "connect")),
    };
    let _ = stream.set_nodelay(true);
    let body = async {
        // The server reads the request with a single recv, so it must go in one write.
        stream.write_all(request).await?;
        // Read straight into the reply's spare capacity: a buffer inside this future would be
        // zeroed and then moved with it on every poll.
        loop {
            if reply.capacity() - reply.len() < 4 * 1024 {
                reply.reserve(16 * 1024);
            }
            let n = stream.read_buf(reply).await?;
            if n == 0 {
                return Ok::<(), DriverError>(());
            }
            if reply.len() > limits.max_reply_bytes {
                return Err(DriverError::TooLarge(limits.max_reply_bytes));
            }
        }
    };
    match timeout_at(deadline, body).await {
        Ok(r) => r?,
        Err(_) => return Err(DriverError::Timeout(limits.total, "reply")),
    }
    while let Some(&last) = reply.last() {
        if last == 0 || last.is_ascii_whitespace() {
            reply.pop();
        } else {
            break;
        }
    }
    if reply.is_empty() {
        return Err(DriverError::Malformed("empty reply".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests() {
        assert_eq!(
            json_request("summary+stats", None),
            br#"{"command":"summary+stats"}"#.to_vec()
        );
        assert_eq!(
            json_request("ascset", Some("0,led,1-1")),
            br#"{"command":"ascset","parameter":"0,led,1-1"}"#.to_vec()
        );
        assert_eq!(
            json_request("a\"b", None),
            br#"{"command":"a\"b"}"#.to_vec()
        );
        assert_eq!(
            json_request_with("stats", "\"new_api\":true"),
            br#"{"command":"stats","new_api":true}"#.to_vec()
        );
        assert_eq!(
            text_request("addpool", &["stratum+tcp://p:1", "u,1", "x\\"]),
            b"addpool|stratum+tcp://p:1,u\\,1,x\\\\".to_vec()
        );
    }
}
