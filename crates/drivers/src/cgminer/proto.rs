//! cgminer RPC wire format (TCP 4028): one request per connection, the reply terminated by a
//! NUL byte and the connection closed by the device. JSON and text request forms; multi-command
//! requests join report commands with `+`.
//!
//! One exchange is the hot path of every cgminer-family poll, so it does only what the protocol
//! needs: one timer for both deadlines, no socket options, one write, and reads that stop at the
//! reply's NUL instead of waiting for the device to close.

use crate::error::DriverError;
use crate::target::Timeouts;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

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
/// removed. Connect and total deadlines and the reply size cap come from `limits`. The reply
/// ends at the first read that ends with a NUL byte, or at EOF for devices that send none.
pub async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    limits: &Timeouts,
) -> Result<Vec<u8>, DriverError> {
    // Empty until the reply starts to arrive (see `request_reply`).
    let mut reply = Vec::new();
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
    let connect_limit = limits.connect.min(limits.total);
    let started = Instant::now();
    // One timer for both deadlines: armed for the connect, then pushed out to the total deadline
    // (pushing a timer later is a lock-free update; a `timeout` per phase would register and
    // remove a timer entry twice per poll).
    let timer = sleep_until(started + connect_limit);
    tokio::pin!(timer);
    let mut stream = tokio::select! {
        biased;
        connected = TcpStream::connect(addr) => connected.map_err(DriverError::Connect)?,
        () = &mut timer => return Err(DriverError::Timeout(connect_limit, "connect")),
    };
    // Closing with a reset rather than a FIN: the reply is complete when we close (it ended at
    // its NUL or at the device's close), and a poller that opens ~10,000 connections a second
    // must not leave each in TIME_WAIT or pay the FIN exchange. Failing to set it only costs that.
    let _ = stream.set_zero_linger();
    timer.as_mut().reset(started + limits.total);
    tokio::select! {
        biased;
        read = request_reply(&mut stream, request, limits.max_reply_bytes, reply) => read?,
        () = &mut timer => return Err(DriverError::Timeout(limits.total, "reply")),
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

/// Writes the request and reads the reply into `reply` until a read ends with the NUL
/// terminator, or EOF.
///
/// No `TCP_NODELAY`: the request is one write on a fresh connection, which Nagle's algorithm
/// never holds back (and the server reads it with a single recv, so it must be one write).
/// Reads go straight into the reply's spare capacity: a buffer inside this future would be
/// zeroed and then moved with it on every poll. That capacity is made only once the socket is
/// readable, so a poll waiting on a slow device holds its socket and this future but no reply
/// buffer: at 100,000 devices ~2,000 polls wait at once, and 16 KiB each was ~30 MB. Stopping
/// at the NUL spares the read that would only see the device's close; the device closes right
/// after the NUL anyway.
async fn request_reply(
    stream: &mut TcpStream,
    request: &[u8],
    max_reply_bytes: usize,
    reply: &mut Vec<u8>,
) -> Result<(), DriverError> {
    stream.write_all(request).await?;
    loop {
        stream.readable().await?;
        if reply.capacity() - reply.len() < 4 * 1024 {
            reply.reserve(16 * 1024);
        }
        let n = match stream.try_read_buf(reply) {
            Ok(n) => n,
            // Readiness can be stale (edge-triggered, or a spurious wake-up): wait again.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        if reply.len() > max_reply_bytes {
            return Err(DriverError::TooLarge(max_reply_bytes));
        }
        if reply.last() == Some(&0) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A one-connection server on loopback that reads the request and then runs `then`.
    async fn server<F, Fut>(then: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = stream.read(&mut buf).await;
                then(stream).await;
            }
        });
        addr
    }

    /// A device that takes the request and never answers.
    async fn silent_server() -> SocketAddr {
        server(|s| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        })
        .await
    }

    fn limits(total_ms: u64) -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(total_ms),
            total: Duration::from_millis(total_ms),
            max_reply_bytes: 64 * 1024,
        }
    }

    #[tokio::test]
    async fn reply_ends_at_the_nul_even_if_the_device_keeps_the_connection() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let addr = server(|mut s| async move {
            let _ = s.write_all(b"{\"STATUS\":[]}\n\0").await;
            // Hold the connection open until the test ends: only the NUL can end the reply.
            let _ = done_rx.await;
        })
        .await;
        let reply = exchange(addr, b"{}", &limits(30_000)).await;
        let _ = done_tx.send(());
        assert_eq!(reply.unwrap_or_else(|e| panic!("{e}")), b"{\"STATUS\":[]}");
    }

    #[tokio::test]
    async fn reply_in_pieces_and_without_nul_reads_to_eof() {
        let addr = server(|mut s| async move {
            let _ = s.write_all(b"{\"a\":").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = s.write_all(b"1}\0").await;
        })
        .await;
        let reply = exchange(addr, b"{}", &limits(30_000)).await;
        assert_eq!(reply.unwrap_or_else(|e| panic!("{e}")), b"{\"a\":1}");
        let addr = server(|mut s| async move {
            let _ = s.write_all(b"STATUS=S,Code=11|").await;
        })
        .await;
        let reply = exchange(addr, b"summary", &limits(30_000)).await;
        assert_eq!(
            reply.unwrap_or_else(|e| panic!("{e}")),
            b"STATUS=S,Code=11|"
        );
    }

    #[tokio::test]
    async fn silent_empty_and_oversized_devices_are_errors() {
        let addr = silent_server().await;
        match exchange(addr, b"{}", &limits(300)).await {
            Err(DriverError::Timeout(d, "reply")) => assert_eq!(d, Duration::from_millis(300)),
            other => panic!("{other:?}"),
        }
        let addr = server(|s| async move { drop(s) }).await;
        match exchange(addr, b"{}", &limits(30_000)).await {
            Err(DriverError::Malformed(m)) => assert_eq!(m, "empty reply"),
            other => panic!("{other:?}"),
        }
        let addr = server(|mut s| async move {
            let _ = s.write_all(&vec![b' '; 80 * 1024]).await;
        })
        .await;
        assert!(matches!(
            exchange(addr, b"{}", &limits(30_000)).await,
            Err(DriverError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn a_poll_waiting_for_its_reply_holds_no_reply_buffer() {
        let addr = silent_server().await;
        let mut reply = Vec::new();
        let waited = exchange_into(addr, b"{}", &limits(200), &mut reply).await;
        assert!(matches!(waited, Err(DriverError::Timeout(_, "reply"))));
        assert_eq!(
            reply.capacity(),
            0,
            "the buffer was made before any reply came"
        );
        // And once a reply comes, it is read into that buffer as usual.
        let addr = server(|mut s| async move {
            let _ = s.write_all(b"{\"b\":2}\0").await;
        })
        .await;
        exchange_into(addr, b"{}", &limits(30_000), &mut reply)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply, b"{\"b\":2}");
    }

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
