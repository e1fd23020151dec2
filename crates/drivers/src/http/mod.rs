//! A small HTTP/1.1 client for the web-API families (Bitaxe AxeOS, the Antminer CGI interface):
//! keep-alive connections reused per device, a connect and an overall deadline on every
//! request, a body size cap, and HTTP Digest auth that reuses the server's nonce (counting
//! `nc`) and re-authenticates when the server rotates it or calls it stale.
//!
//! Errors map to device states: refused connections are [`DriverError::Connect`], deadlines
//! [`DriverError::Timeout`], 401/403 after a fresh challenge [`DriverError::Auth`], other
//! non-2xx statuses [`DriverError::Rejected`] (via [`check_status`]).

pub mod digest;
pub mod wire;

use crate::error::DriverError;
use crate::target::{Credentials, Timeouts};
use digest::{DigestSession, parse_challenge};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::BufReader;
use tokio::net::TcpStream;
pub use wire::Response;

/// Idle connections kept per device; polls are sequential, so one is usually enough.
const MAX_IDLE_PER_DEVICE: usize = 2;

/// Idle connections kept by all clients of the process together. A node polling 100,000
/// devices must not hold a socket to every web interface it ever touched (identification
/// reads many of them once): a process may have only 20,000 open files here.
pub const MAX_IDLE_TOTAL: usize = 4096;

/// Idle connections held now, by every client of the process.
static IDLE_TOTAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// An idle connection older than this is not reused: embedded web servers drop idle
/// keep-alive connections after a few seconds, and a stale socket costs a failed write.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(15);
/// How often a full pool is swept for connections older than [`MAX_IDLE_AGE`].
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A Digest login unused for this long is forgotten. Discovery logs in to every Antminer's web
/// interface once and nothing may ask it again for hours; kept, those logins held ~10 MB at
/// 100,000 devices. A login needed again after a pause costs one 401 exchange to renew.
pub const MAX_SESSION_IDLE: Duration = Duration::from_secs(600);
/// How often the Digest logins are swept for ones unused for [`MAX_SESSION_IDLE`].
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, `PATCH`, …
    pub method: &'a str,
    /// Path and query, e.g. `/cgi-bin/get_system_info.cgi`.
    pub path: &'a str,
    /// Content type and body, if any.
    pub body: Option<(&'a str, &'a [u8])>,
}

impl<'a> Request<'a> {
    /// A GET of `path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            body: None,
        }
    }

    /// A request with a JSON body.
    pub fn json(method: &'a str, path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method,
            path,
            body: Some(("application/json", body)),
        }
    }
}

type Conn = BufReader<TcpStream>;
/// An idle connection keeps only its socket: the 8 KiB read buffer of each of up to
/// `MAX_IDLE_TOTAL` idle connections was 33 MB at 100,000 devices.
type IdleConn = (TcpStream, Instant);
/// Read buffer of a connection in use.
const READ_BUFFER: usize = 8 * 1024;

/// Counts connections leaving the idle pools (taken for reuse, aged out or dropped).
fn idle_released(n: usize) {
    if n > 0 {
        // Saturating: a client dropped with idle connections never decremented them.
        let _ = IDLE_TOTAL.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            Some(t.saturating_sub(n))
        });
    }
}

/// The drivers' HTTP client: one per driver, shared by all its devices.
#[derive(Debug, Default)]
pub struct HttpClient {
    idle: Mutex<HashMap<SocketAddr, Vec<IdleConn>>>,
    sessions: Mutex<Sessions>,
    /// When a full pool was last swept for expired connections.
    swept: Mutex<Option<Instant>>,
}

/// The Digest logins of a client, each with when it was last used.
#[derive(Debug, Default)]
struct Sessions {
    by_addr: HashMap<SocketAddr, (DigestSession, Instant)>,
    swept: Option<Instant>,
}

impl Sessions {
    /// The login for `addr`, marked as used now.
    fn use_for(&mut self, addr: SocketAddr) -> Option<&mut DigestSession> {
        let (session, used) = self.by_addr.get_mut(&addr)?;
        *used = Instant::now();
        Some(session)
    }

    fn insert(&mut self, addr: SocketAddr, session: DigestSession) {
        self.sweep_if_due();
        self.by_addr.insert(addr, (session, Instant::now()));
    }

    /// Forgets the logins unused for [`MAX_SESSION_IDLE`], at most once per
    /// [`SESSION_SWEEP_EVERY`].
    fn sweep_if_due(&mut self) {
        if once_per(&mut self.swept, SESSION_SWEEP_EVERY) {
            self.forget_unused_for(MAX_SESSION_IDLE);
        }
    }

    fn remove(&mut self, addr: &SocketAddr) {
        self.by_addr.remove(addr);
    }

    /// Forgets the logins not used for `age`, and gives back the table once mostly empty.
    fn forget_unused_for(&mut self, age: Duration) {
        self.by_addr.retain(|_, (_, used)| used.elapsed() < age);
        if self.by_addr.capacity() > 4 * self.by_addr.len().max(256) {
            self.by_addr.shrink_to_fit();
        }
    }
}

/// True, and `last` set to now, when `last` is unset or at least `every` ago.
fn once_per(last: &mut Option<Instant>, every: Duration) -> bool {
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold only sockets and nonces; a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HttpClient {
    /// A client with no connections yet.
    pub fn new() -> Self {
        HttpClient::default()
    }

    /// Sends `req` to `addr` within `total` (connect within `timeouts.connect`), answering a
    /// Digest challenge with `credentials` when given. Returns any status; see [`check_status`].
    pub async fn send(
        &self,
        addr: SocketAddr,
        req: Request<'_>,
        credentials: Option<&Credentials>,
        timeouts: &Timeouts,
        total: Duration,
    ) -> Result<Response, DriverError> {
        match tokio::time::timeout(total, self.send_inner(addr, req, credentials, timeouts)).await {
            Ok(r) => r,
            Err(_) => Err(DriverError::Timeout(total, "HTTP request")),
        }
    }

    /// [`send`](Self::send) with the target's overall deadline, mapping non-2xx statuses to errors.
    pub async fn send_ok(
        &self,
        addr: SocketAddr,
        req: Request<'_>,
        credentials: Option<&Credentials>,
        timeouts: &Timeouts,
    ) -> Result<Response, DriverError> {
        check_status(
            self.send(addr, req, credentials, timeouts, timeouts.total)
                .await?,
            req.path,
        )
    }

    /// Forgets the connections and the Digest login of `addr` (after a reboot, say).
    pub fn forget(&self, addr: SocketAddr) {
        if let Some(list) = lock(&self.idle).remove(&addr) {
            idle_released(list.len());
        }
        lock(&self.sessions).remove(&addr);
    }

    async fn send_inner(
        &self,
        addr: SocketAddr,
        req: Request<'_>,
        credentials: Option<&Credentials>,
        timeouts: &Timeouts,
    ) -> Result<Response, DriverError> {
        let mut answered_nonce: Option<String> = None;
        // First try, one answer to a fresh challenge, one to a rotated nonce.
        for _ in 0..3 {
            let auth_line = credentials.and_then(|c| {
                let mut sessions = lock(&self.sessions);
                let s = sessions.use_for(addr)?;
                if !s.is_for(&c.username, &c.password) {
                    sessions.remove(&addr);
                    return None;
                }
                answered_nonce = Some(s.nonce().to_owned());
                Some(s.authorization(req.method, req.path))
            });
            let resp = self.round_trip(addr, req, auth_line, timeouts).await?;
            if resp.status != 401 {
                return Ok(resp);
            }
            let Some(c) = credentials else {
                return Err(DriverError::Auth(format!(
                    "{} needs credentials (HTTP 401)",
                    req.path
                )));
            };
            let Some(challenge) = resp
                .headers_named("www-authenticate")
                .find_map(parse_challenge)
            else {
                return Err(DriverError::Auth(format!(
                    "{} answered HTTP 401 without a Digest challenge",
                    req.path
                )));
            };
            if answered_nonce.as_deref() == Some(challenge.nonce.as_str()) && !challenge.stale {
                lock(&self.sessions).remove(&addr);
                return Err(DriverError::Auth(format!(
                    "user '{}' refused by {} (HTTP 401: wrong user name or password)",
                    c.username, req.path
                )));
            }
            lock(&self.sessions).insert(
                addr,
                DigestSession::new(challenge, &c.username, &c.password),
            );
        }
        lock(&self.sessions).remove(&addr);
        Err(DriverError::Auth(format!(
            "{} kept answering HTTP 401 with new nonces",
            req.path
        )))
    }

    async fn connect(addr: SocketAddr, timeouts: &Timeouts) -> Result<Conn, DriverError> {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                // Small requests and replies: waiting to coalesce them only adds latency.
                let _ = s.set_nodelay(true);
                Ok(BufReader::with_capacity(READ_BUFFER, s))
            }
            Ok(Err(e)) => Err(DriverError::Connect(e)),
            Err(_) => Err(DriverError::Timeout(timeouts.connect, "connect")),
        }
    }

    /// One request and its response, on an idle connection if there is one (retried once on a
    /// fresh connection if the idle one turns out to have been closed by the device).
    async fn round_trip(
        &self,
        addr: SocketAddr,
        req: Request<'_>,
        auth_line: Option<String>,
        timeouts: &Timeouts,
    ) -> Result<Response, DriverError> {
        let host = addr.to_string();
        let headers: Vec<String> = auth_line.into_iter().collect();
        let bytes = wire::encode_request(req.method, req.path, &host, &headers, req.body);
        let reused = {
            let mut idle = lock(&self.idle);
            let list = idle.get_mut(&addr);
            let fresh = list.and_then(|l| {
                let before = l.len();
                l.retain(|(_, since)| since.elapsed() < MAX_IDLE_AGE);
                let popped = l.pop();
                idle_released(before - l.len());
                popped
            });
            if idle.get(&addr).is_some_and(Vec::is_empty) {
                idle.remove(&addr);
            }
            fresh.map(|(s, _)| BufReader::with_capacity(READ_BUFFER, s))
        };
        let head = req.method == "HEAD";
        if let Some(mut conn) = reused {
            let attempt = async {
                wire::send(&mut conn, &bytes).await?;
                wire::read_response(&mut conn, timeouts.max_reply_bytes, head).await
            };
            match attempt.await {
                Ok(Some(resp)) => return Ok(self.keep(addr, conn, resp)),
                // The device dropped the idle connection: start over on a new one.
                Ok(None) | Err(DriverError::Io(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = Self::connect(addr, timeouts).await?;
        wire::send(&mut conn, &bytes).await?;
        match wire::read_response(&mut conn, timeouts.max_reply_bytes, head).await? {
            Some(resp) => Ok(self.keep(addr, conn, resp)),
            None => Err(DriverError::Malformed(format!(
                "{} closed the connection without a reply",
                req.path
            ))),
        }
    }

    fn keep(&self, addr: SocketAddr, conn: Conn, resp: Response) -> Response {
        // Bytes past the response would belong to no request: such a connection is not reused.
        if !resp.keep_alive || !conn.buffer().is_empty() {
            return resp;
        }
        let mut idle = lock(&self.idle);
        if IDLE_TOTAL.load(Ordering::Relaxed) >= MAX_IDLE_TOTAL && self.sweep_due() {
            // Full: first let go of connections too old to be reused anyway. At most once a
            // second: on a big site the pool stays full, and a sweep of all of it on every
            // request cost a tenth of the poller's time.
            let mut freed = 0;
            idle.retain(|_, list| {
                let before = list.len();
                list.retain(|(_, since)| since.elapsed() < MAX_IDLE_AGE);
                freed += before - list.len();
                !list.is_empty()
            });
            idle_released(freed);
            // The map once held every device that answered over HTTP (discovery): give the
            // table back once most of it is empty.
            if idle.capacity() > 4 * idle.len().max(256) {
                idle.shrink_to_fit();
            }
        }
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_DEVICE && IDLE_TOTAL.load(Ordering::Relaxed) < MAX_IDLE_TOTAL {
            list.push((conn.into_inner(), Instant::now()));
            IDLE_TOTAL.fetch_add(1, Ordering::Relaxed);
        } else if list.is_empty() {
            idle.remove(&addr);
        }
        resp
    }

    /// True at most once per [`SWEEP_EVERY`].
    fn sweep_due(&self) -> bool {
        once_per(&mut lock(&self.swept), SWEEP_EVERY)
    }

    /// Forgets Digest logins unused for [`MAX_SESSION_IDLE`] (at most once a minute; cheap
    /// otherwise). For a caller's periodic housekeeping: with no requests, nothing else would.
    pub fn housekeep(&self) {
        lock(&self.sessions).sweep_if_due();
    }

    /// Idle connections this process holds now (all clients together).
    pub fn idle_total() -> usize {
        IDLE_TOTAL.load(Ordering::Relaxed)
    }
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        let held: usize = lock(&self.idle).values().map(Vec::len).sum();
        idle_released(held);
    }
}

/// Maps a response's status to the driver's errors: 2xx passes; 401 and 403 are
/// [`DriverError::Auth`]; anything else is [`DriverError::Rejected`] with the body's start.
pub fn check_status(resp: Response, path: &str) -> Result<Response, DriverError> {
    match resp.status {
        200..=299 => Ok(resp),
        401 => Err(DriverError::Auth(format!("{path}: HTTP 401 unauthorized"))),
        403 => Err(DriverError::Auth(format!(
            "{path}: HTTP 403 forbidden{}",
            body_hint(&resp.body)
        ))),
        s => Err(DriverError::Rejected(format!(
            "{path}: HTTP {s}{}",
            body_hint(&resp.body)
        ))),
    }
}

fn body_hint(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers each connection's requests with `replies` in turn, then closes.
    async fn server(replies: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let replies = replies.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    for r in replies {
                        if s.read(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let _ = s.write_all(r).await;
                    }
                });
            }
        });
        addr
    }

    fn timeouts(max: usize) -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(500),
            total: Duration::from_secs(2),
            max_reply_bytes: max,
        }
    }

    #[tokio::test]
    async fn bodies_by_length_chunks_and_close() {
        let addr = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
        ])
        .await;
        let c = HttpClient::new();
        let t = timeouts(1024);
        let get = |p| c.send_ok(addr, Request::get(p), None, &t);
        assert_eq!(
            get("/a").await.map(|r| r.body).ok(),
            Some(b"hello".to_vec())
        );
        assert_eq!(
            get("/b").await.map(|r| r.body).ok(),
            Some(b"abcde".to_vec())
        );
        assert_eq!(
            get("/c").await.map(|r| r.body).ok(),
            Some(b"to the end".to_vec())
        );
    }

    #[tokio::test]
    async fn a_dropped_idle_connection_is_replaced() {
        // Each connection answers once and then closes, though it promised keep-alive.
        let addr = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]).await;
        let c = HttpClient::new();
        let t = timeouts(1024);
        for _ in 0..3 {
            let r = c.send_ok(addr, Request::get("/"), None, &t).await;
            assert_eq!(r.map(|r| r.body).ok(), Some(b"ok".to_vec()));
        }
    }

    #[tokio::test]
    async fn digest_logins_unused_for_long_are_forgotten() {
        // Each connection: a challenge, then the page once the client answers it.
        let addr = server(vec![
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"miner\", nonce=\"n1\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ])
        .await;
        let c = HttpClient::new();
        let login = Credentials {
            username: "root".into(),
            password: "root".into(),
        };
        let logins = |c: &HttpClient| lock(&c.sessions).by_addr.len();
        let t = timeouts(1024);
        let get = || c.send_ok(addr, Request::get("/"), Some(&login), &t);
        assert_eq!(get().await.map(|r| r.body).ok(), Some(b"ok".to_vec()));
        assert_eq!(logins(&c), 1);
        lock(&c.sessions).forget_unused_for(Duration::from_secs(60));
        assert_eq!(logins(&c), 1, "a login used just now is kept");
        tokio::time::sleep(Duration::from_millis(30)).await;
        lock(&c.sessions).forget_unused_for(Duration::from_millis(20));
        assert_eq!(logins(&c), 0, "a login unused for longer is forgotten");
        // The next request logs in again.
        assert_eq!(get().await.map(|r| r.body).ok(), Some(b"ok".to_vec()));
        assert_eq!(logins(&c), 1);
    }

    #[tokio::test]
    async fn bad_replies_are_errors() {
        let addr = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]).await;
        let c = HttpClient::new();
        let r = c
            .send_ok(addr, Request::get("/"), None, &timeouts(1024))
            .await;
        assert!(matches!(r, Err(DriverError::Malformed(_))), "{r:?}");
        let addr = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"]).await;
        let r = c
            .send_ok(addr, Request::get("/"), None, &timeouts(1024))
            .await;
        assert!(matches!(r, Err(DriverError::TooLarge(1024))), "{r:?}");
        let addr = server(vec![
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let r = c
            .send_ok(addr, Request::get("/"), None, &timeouts(1024))
            .await;
        assert!(matches!(r, Err(DriverError::Auth(_))), "{r:?}");
        let addr = server(vec![b"garbage\r\n\r\n"]).await;
        let r = c
            .send_ok(addr, Request::get("/"), None, &timeouts(1024))
            .await;
        assert!(matches!(r, Err(DriverError::Malformed(_))), "{r:?}");
    }
}
