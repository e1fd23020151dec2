//! Simulated web interfaces: the Antminer stock CGI API with HTTP Digest ([`antminer`]) and a
//! Bitaxe / NerdAxe AxeOS device ([`bitaxe`]), over a small HTTP/1.1 server written for this
//! crate (written independently of the drivers' client, so a framing bug is not shared).
//!
//! Faults at the HTTP level are [`WebFault`]s: forced 401/403/500 answers, a Digest nonce that
//! changes on every request, slow answers and a hang.

pub mod antminer;
pub mod bitaxe;
pub mod braiins;
pub mod digest;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head and body the simulated servers accept, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What can go wrong with a simulated web interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebFault {
    /// Every request is answered 401 with a fresh challenge (as for a wrong password).
    Unauthorized,
    /// Every request is answered 403 Forbidden.
    Forbidden,
    /// Every request is answered 500 Internal Server Error.
    ServerError,
    /// The Digest nonce changes after every request (forces a re-challenge each time).
    NonceChange,
    /// Answers come after `Timing::slow_reply_min`.
    Slow,
    /// Requests are read but never answered.
    Hang,
}

impl WebFault {
    /// Every web fault, in a stable order.
    pub const ALL: [WebFault; 6] = [
        WebFault::Unauthorized,
        WebFault::Forbidden,
        WebFault::ServerError,
        WebFault::NonceChange,
        WebFault::Slow,
        WebFault::Hang,
    ];

    /// Kebab-case name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            WebFault::Unauthorized => "http-401",
            WebFault::Forbidden => "http-403",
            WebFault::ServerError => "http-500",
            WebFault::NonceChange => "nonce-change",
            WebFault::Slow => "slow",
            WebFault::Hang => "hang",
        }
    }
}

impl fmt::Display for WebFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        WebFault::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| format!("unknown web fault '{s}'"))
    }
}

/// One parsed HTTP request.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// Method, upper-case as sent.
    pub method: String,
    /// Request target (path and query).
    pub path: String,
    /// Headers with lower-case names.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One response to write.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Content type of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Close the connection after this response.
    pub close: bool,
}

impl HttpResponse {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.into(),
            close: false,
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            content_type: "text/plain",
            ..HttpResponse::json(status, body)
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// What a handler decides for one request.
pub enum Answer {
    /// Write this response.
    Respond(HttpResponse),
    /// Write it after a delay.
    Delayed(Duration, HttpResponse),
    /// Never answer (hang), keeping the connection open until the client gives up.
    Hang,
    /// Close the connection without a word (a device going down).
    Drop,
}

/// Reads one request; `Ok(None)` on a clean close between requests.
async fn read_request(stream: &mut BufReader<TcpStream>) -> std::io::Result<Option<HttpRequest>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut line = String::new();
    let mut head_bytes = 0usize;
    let n = stream.read_line(&mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    if method.is_empty() || !path.starts_with('/') {
        return Err(bad("bad request line"));
    }
    let mut headers = HashMap::new();
    loop {
        line.clear();
        let n = stream.read_line(&mut line).await?;
        head_bytes += n;
        if n == 0 || head_bytes > MAX_REQUEST_BYTES {
            return Err(bad("request head cut or too long"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_REQUEST_BYTES {
        return Err(bad("request body too long"));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(HttpRequest {
        method,
        path,
        headers,
        body,
    }))
}

async fn write_response(stream: &mut TcpStream, r: &HttpResponse) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        if r.close { "close" } else { "keep-alive" }
    );
    for (k, v) in &r.headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&r.body);
    stream.write_all(&bytes).await
}

/// Serves HTTP/1.1 with keep-alive on `listener`, one task per connection, calling `handle`
/// for every request and counting accepted connections in `accepted`. Returns when the task
/// is aborted.
pub async fn serve<H, F>(listener: TcpListener, handle: Arc<H>, accepted: Arc<AtomicU64>)
where
    H: Fn(HttpRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted_conn = listener.accept() => {
                let Ok((stream, _)) = accepted_conn else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                let h = handle.clone();
                conns.spawn(connection(stream, h));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection<H, F>(stream: TcpStream, handle: Arc<H>)
where
    H: Fn(HttpRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    loop {
        let req = match read_request(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => {
                let r = HttpResponse {
                    close: true,
                    ..HttpResponse::text(400, "bad request")
                };
                let _ = write_response(reader.get_mut(), &r).await;
                return;
            }
        };
        let wants_close = req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let mut resp = match handle(req).await {
            Answer::Respond(r) => r,
            Answer::Delayed(d, r) => {
                tokio::time::sleep(d).await;
                r
            }
            Answer::Hang => {
                // Hold the socket until the client gives up; a cap keeps tasks from piling up.
                tokio::time::sleep(Duration::from_secs(600)).await;
                return;
            }
            Answer::Drop => return,
        };
        resp.close |= wants_close;
        if write_response(reader.get_mut(), &resp).await.is_err() || resp.close {
            let _ = reader.get_mut().shutdown().await;
            return;
        }
    }
}

/// Binds `addr` (port 0 picks one) for a simulated web interface.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let local = l.local_addr()?;
    Ok((l, local))
}

/// A one-shot HTTP client for the simulators' own tests (written apart from the drivers').
#[cfg(test)]
pub(crate) async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}
