//! HTTP/1.1 framing for the drivers' small client: writing a request and reading one response
//! (status line, headers, a `Content-Length`, chunked or read-to-close body) under a size cap.
//!
//! Hand-written rather than hyper: the devices speak plain HTTP/1.1 with small JSON bodies, and
//! a direct reader over one buffered socket costs a fraction of the CPU of a general client
//! (the poll budget is ≤ 250 µs per device, see DESIGN.md).

use crate::error::DriverError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest status line plus headers accepted, in bytes (devices send a few hundred).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// One HTTP response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code (200, 401, …).
    pub status: u16,
    /// Header names (lower-cased) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The server keeps the connection open for another request.
    pub keep_alive: bool,
}

impl Response {
    /// The first header called `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (lower-case).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes a request with the given extra header lines (each without the trailing CRLF).
pub fn encode_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[String],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.map_or(0, |(_, b)| b.len()));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nConnection: keep-alive\r\nAccept: application/json\r\n");
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match body {
        Some((content_type, b)) => {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(content_type.as_bytes());
            out.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        None if method != "GET" => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        None => out.extend_from_slice(b"\r\n"),
    }
    out
}

/// Sends `request` on `stream`.
pub async fn send(stream: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<()> {
    stream.get_mut().write_all(request).await
}

fn malformed(what: impl Into<String>) -> DriverError {
    DriverError::Malformed(what.into())
}

/// A parsed response head: status, headers (lower-case names), and whether the connection stays open.
pub type Head = (u16, Vec<(String, String)>, bool);

/// Parses the status line and headers (without the blank line). Pure, for tests and fuzzing.
pub fn parse_head(head: &[u8]) -> Result<Head, DriverError> {
    let text = std::str::from_utf8(head).map_err(|_| malformed("HTTP head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(format!(
            "not an HTTP/1.x reply: {:?}",
            status_line.chars().take(40).collect::<String>()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| malformed("HTTP status line has no status code"))?;
    let mut keep_alive = version != "HTTP/1.0";
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(malformed("HTTP header line without a colon"));
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().to_owned();
        if k == "connection" {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
        headers.push((k, v));
    }
    Ok((status, headers, keep_alive))
}

/// Reads one response from `stream`, refusing bodies over `max_body_bytes`. `Ok(None)` means
/// the peer closed before sending a byte (a keep-alive connection it had already dropped).
pub async fn read_response(
    stream: &mut BufReader<TcpStream>,
    max_body_bytes: usize,
    head_request: bool,
) -> Result<Option<Response>, DriverError> {
    let mut head = Vec::with_capacity(512);
    loop {
        let before = head.len();
        let n = stream.read_until(b'\n', &mut head).await?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(malformed("connection closed inside the HTTP head"));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(DriverError::TooLarge(MAX_HEAD_BYTES));
        }
        // A bare CRLF (or LF) line ends the head.
        if matches!(&head[before..], b"\r\n" | b"\n") {
            head.truncate(before);
            break;
        }
    }
    while head.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        head.pop();
    }
    let (status, headers, mut keep_alive) = parse_head(&head)?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = match header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| malformed(format!("bad Content-Length {v:?}")))?,
        ),
        None => None,
    };
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    let body = if no_body {
        Vec::new()
    } else if chunked {
        read_chunked(stream, max_body_bytes).await?
    } else if let Some(len) = length {
        if len > max_body_bytes {
            return Err(DriverError::TooLarge(max_body_bytes));
        }
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|_| malformed(format!("HTTP body cut short (expected {len} bytes)")))?;
        body
    } else {
        // No length: the body runs to the end of the connection.
        keep_alive = false;
        let mut body = Vec::new();
        let cap = max_body_bytes as u64 + 1;
        (&mut *stream).take(cap).read_to_end(&mut body).await?;
        if body.len() > max_body_bytes {
            return Err(DriverError::TooLarge(max_body_bytes));
        }
        body
    };
    Ok(Some(Response {
        status,
        headers,
        body,
        keep_alive,
    }))
}

async fn read_chunked(
    stream: &mut BufReader<TcpStream>,
    max_body_bytes: usize,
) -> Result<Vec<u8>, DriverError> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(16);
    loop {
        line.clear();
        let n = (&mut *stream)
            .take(256)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(malformed("chunked body cut short"));
        }
        let text = std::str::from_utf8(&line).map_err(|_| malformed("bad chunk size line"))?;
        let size_text = text.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| malformed(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, if any, end with a blank line.
            loop {
                line.clear();
                let n = (&mut *stream)
                    .take(1024)
                    .read_until(b'\n', &mut line)
                    .await?;
                if n == 0 || matches!(line.as_slice(), b"\r\n" | b"\n") {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > max_body_bytes {
            return Err(DriverError::TooLarge(max_body_bytes));
        }
        let start = body.len();
        body.resize(start + size, 0);
        stream
            .read_exact(&mut body[start..])
            .await
            .map_err(|_| malformed("chunk cut short"))?;
        let mut crlf = [0u8; 2];
        stream
            .read_exact(&mut crlf)
            .await
            .map_err(|_| malformed("chunk cut short"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse() {
        let (s, h, ka) = parse_head(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\"\r\nConnection: close")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, 401);
        assert_eq!(h[0].0, "www-authenticate");
        assert!(!ka);
        let (_, _, ka) = parse_head(b"HTTP/1.0 200 OK").unwrap_or_else(|e| panic!("{e}"));
        assert!(!ka);
        assert!(parse_head(b"SSH-2.0-dropbear").is_err());
        assert!(parse_head(b"HTTP/1.1 abc").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon here").is_err());
    }

    #[test]
    fn requests_encode() {
        let r = encode_request(
            "POST",
            "/a",
            "h:80",
            &["X: y".into()],
            Some(("application/json", b"{}")),
        );
        let t = String::from_utf8_lossy(&r);
        assert!(t.starts_with("POST /a HTTP/1.1\r\nHost: h:80\r\n"), "{t}");
        assert!(
            t.ends_with("X: y\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
            "{t}"
        );
        let r = encode_request("GET", "/", "h", &[], None);
        assert!(r.ends_with(b"Accept: application/json\r\n\r\n"));
    }
}
