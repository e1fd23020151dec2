//! The auth layer over real HTTP: a small router with a read route and a write route guarded by
//! the extractors, plus the auth routes, served by axum on 127.0.0.1:0 with connect info and
//! driven by reqwest. Time is a manual clock, so expiry and rate-limit windows are exact.

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use hashmesh_node::auth::store::AUTH_DB_FILE;
use hashmesh_node::auth::{
    self, Auth, AuthConfig, AuthStore, Clock, RequireAdmin, RequireOperator, RequireViewer, Role,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The state of the test router: like the node's, it is not `Arc<Auth>` itself.
#[derive(Clone)]
struct AppState {
    auth: Arc<Auth>,
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Arc<Auth> {
        Arc::clone(&state.auth)
    }
}

async fn read_thing(RequireViewer(p): RequireViewer) -> Json<Value> {
    Json(json!({"read_by": p.username, "role": p.role, "via": p.via}))
}

async fn write_thing(RequireOperator(p): RequireOperator) -> Json<Value> {
    Json(json!({"written_by": p.username, "role": p.role, "via": p.via}))
}

async fn admin_thing(RequireAdmin(p): RequireAdmin) -> Json<Value> {
    Json(json!({"admin": p.username}))
}

const PASSWORD: &str = "correct horse battery";
const START_MS: i64 = 1_764_540_000_000;

struct Server {
    base: String,
    auth: Arc<Auth>,
    clock: Clock,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// A logged-in browser: the cookie value and the CSRF token.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

async fn start(config: AuthConfig) -> Server {
    log_buffer();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(START_MS);
    let store = AuthStore::open_in(dir.path()).unwrap();
    for (name, role) in [
        ("admin", Role::Admin),
        ("oper", Role::Operator),
        ("view", Role::Viewer),
    ] {
        store.add_user(name, PASSWORD, role, START_MS).unwrap();
    }
    let auth = Arc::new(Auth::new(store, config, clock.clone()));
    let app = Router::new()
        .route("/api/v1/things", get(read_thing).post(write_thing))
        .route("/api/v1/admin-thing", axum::routing::delete(admin_thing))
        .merge(auth::routes())
        .with_state(AppState {
            auth: Arc::clone(&auth),
        });
    let app = auth::with_request_layers(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        auth,
        clock,
        dir,
        http: reqwest::Client::new(),
    }
}

/// A response reduced to what the tests look at.
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Server {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn login_raw(&self, username: &str, password: &str) -> Reply {
        self.send(
            self.req(Method::POST, "/api/v1/auth/login")
                .json(&json!({"username": username, "password": password})),
        )
        .await
    }

    async fn login(&self, username: &str) -> Browser {
        let reply = self.login_raw(username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
        let cookie = set_cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("hashmesh_session=")
            .unwrap()
            .to_owned();
        Browser {
            cookie,
            csrf: reply.body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request with the session cookie and, if `csrf`, the CSRF header.
    fn as_browser(
        &self,
        b: &Browser,
        method: Method,
        path: &str,
        csrf: bool,
    ) -> reqwest::RequestBuilder {
        let req = self
            .req(method, path)
            .header("cookie", format!("hashmesh_session={}", b.cookie));
        if csrf {
            req.header("x-csrf-token", &b.csrf)
        } else {
            req
        }
    }

    fn with_token(&self, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.req(method, path).bearer_auth(token)
    }

    async fn make_token(&self, b: &Browser, name: &str, role: Option<&str>) -> (i64, String) {
        let mut body = json!({"name": name});
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        let reply = self
            .send(
                self.as_browser(b, Method::POST, "/api/v1/tokens", true)
                    .json(&body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (
            reply.body["id"].as_i64().unwrap(),
            reply.body["token"].as_str().unwrap().to_owned(),
        )
    }
}

fn assert_problem(reply: &Reply, status: StatusCode, detail_contains: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.headers["content-type"], "application/problem+json",
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], status.as_u16());
    assert_eq!(reply.body["type"], "about:blank");
    assert_eq!(reply.body["title"], status.canonical_reason().unwrap());
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains(detail_contains),
        "detail {detail:?} should mention {detail_contains:?}"
    );
}

fn config() -> AuthConfig {
    AuthConfig::default()
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_me_returns_the_same_csrf_token() {
    let s = start(config()).await;
    let reply = s.login_raw("oper", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK);
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    let (pair, attrs) = set_cookie.split_once("; ").unwrap();
    let value = pair.strip_prefix("hashmesh_session=").unwrap();
    assert_eq!(value.len(), 43, "256 random bits, base64url");
    assert_eq!(attrs, "HttpOnly; SameSite=Strict; Path=/; Max-Age=604800");
    assert_eq!(reply.body["username"], "oper");
    assert_eq!(reply.body["role"], "operator");
    let csrf = reply.body["csrf_token"].as_str().unwrap();
    assert_eq!(csrf.len(), 43);

    let b = Browser {
        cookie: value.to_owned(),
        csrf: csrf.to_owned(),
    };
    let me = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/auth/me", false))
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.headers["cache-control"], "no-store");
    assert_eq!(
        me.body,
        json!({"username": "oper", "role": "operator", "csrf_token": csrf})
    );

    // Usernames compare without case; the name comes back as it was created.
    let reply = s.login_raw("OPER", PASSWORD).await;
    assert_eq!(reply.body["username"], "oper");
}

#[tokio::test]
async fn secure_cookies_setting_adds_secure() {
    let s = start(AuthConfig {
        secure_cookies: true,
        ..config()
    })
    .await;
    let reply = s.login_raw("view", PASSWORD).await;
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/; Max-Age=604800; Secure"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_401() {
    let s = start(config()).await;
    let wrong = s.login_raw("oper", "not the password").await;
    assert_problem(
        &wrong,
        StatusCode::UNAUTHORIZED,
        "wrong username or password",
    );
    assert!(wrong.headers.get("set-cookie").is_none());
    let unknown = s.login_raw("nobody", PASSWORD).await;
    assert_problem(
        &unknown,
        StatusCode::UNAUTHORIZED,
        "wrong username or password",
    );
    assert_eq!(wrong.body, unknown.body);
    let me = s.send(s.req(Method::GET, "/api/v1/auth/me")).await;
    assert_problem(&me, StatusCode::UNAUTHORIZED, "not logged in");
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_with_retry_after_and_a_success_resets() {
    let s = start(config()).await;
    for _ in 0..5 {
        let r = s.login_raw("oper", "guess-guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while limited, without checking it.
    let limited = s.login_raw("oper", PASSWORD).await;
    assert_problem(
        &limited,
        StatusCode::TOO_MANY_REQUESTS,
        "try again in 300 s",
    );
    assert_eq!(limited.headers["retry-after"], "300");
    s.clock.advance(Duration::from_secs(120));
    let limited = s.login_raw("oper", PASSWORD).await;
    assert_eq!(limited.headers["retry-after"], "180");
    s.clock.advance(Duration::from_secs(180));
    s.login("oper").await;
    // The success cleared the count: four more failures are allowed before the limit.
    for _ in 0..4 {
        assert_eq!(
            s.login_raw("oper", "guess-guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    s.login("oper").await;
}

#[tokio::test]
async fn one_client_address_is_limited_across_usernames() {
    let s = start(config()).await;
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        assert_eq!(
            s.login_raw(name, "guess-guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // A sixth username from the same address (127.0.0.1) is refused.
    let r = s.login_raw("view", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn reads_need_a_login_unless_anonymous_read_is_on() {
    let s = start(config()).await;
    let r = s.send(s.req(Method::GET, "/api/v1/things")).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "log in");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"hashmesh\"");
    let b = s.login("view").await;
    let r = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/things", false))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"read_by": "view", "role": "viewer", "via": "session"})
    );

    let open = start(AuthConfig {
        anonymous_read: true,
        ..config()
    })
    .await;
    let r = open.send(open.req(Method::GET, "/api/v1/things")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"read_by": "anonymous", "role": "viewer", "via": "anonymous"})
    );
    // Writes still need a login, and /me still says nobody is logged in.
    let r = open.send(open.req(Method::POST, "/api/v1/things")).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "log in");
    let r = open.send(open.req(Method::GET, "/api/v1/auth/me")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = open.send(open.req(Method::GET, "/api/v1/users")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_viewer_cannot_write_an_operator_can_and_only_an_admin_administers() {
    let s = start(config()).await;
    let viewer = s.login("view").await;
    let r = s
        .send(s.as_browser(&viewer, Method::POST, "/api/v1/things", true))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "needs the operator role");

    let oper = s.login("oper").await;
    let r = s
        .send(s.as_browser(&oper, Method::POST, "/api/v1/things", true))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"written_by": "oper", "role": "operator", "via": "session"})
    );
    let r = s
        .send(s.as_browser(&oper, Method::DELETE, "/api/v1/admin-thing", true))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "needs the admin role");

    let admin = s.login("admin").await;
    let r = s
        .send(s.as_browser(&admin, Method::DELETE, "/api/v1/admin-thing", true))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_write_without_the_right_csrf_header_is_403() {
    let s = start(config()).await;
    let b = s.login("oper").await;
    let r = s
        .send(s.as_browser(&b, Method::POST, "/api/v1/things", false))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "X-CSRF-Token");
    let wrong = Browser {
        csrf: format!("{}x", &b.csrf[..42]),
        ..b.clone()
    };
    let r = s
        .send(s.as_browser(&wrong, Method::POST, "/api/v1/things", true))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "X-CSRF-Token");
    // Another session's token does not fit this one.
    let other = s.login("oper").await;
    let mixed = Browser {
        csrf: other.csrf,
        ..b.clone()
    };
    let r = s
        .send(s.as_browser(&mixed, Method::POST, "/api/v1/things", true))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Reads need no CSRF token; the right one lets the write through.
    let r = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/things", false))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .send(s.as_browser(&b, Method::POST, "/api/v1/things", true))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer_tokens_work_without_csrf_respect_their_scope_and_stop_when_revoked() {
    let s = start(config()).await;
    let oper = s.login("oper").await;
    let (id, token) = s.make_token(&oper, "ci deploys", None).await;
    assert!(token.starts_with("hm_"));
    let r = s
        .send(s.with_token(&token, Method::POST, "/api/v1/things"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"written_by": "oper", "role": "operator", "via": "token"})
    );

    // Listing never shows the value again.
    let list = s
        .send(s.as_browser(&oper, Method::GET, "/api/v1/tokens", false))
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let listed = &list.body.as_array().unwrap()[0];
    assert_eq!(listed["id"], id);
    assert_eq!(listed["name"], "ci deploys");
    assert_eq!(listed["role"], "operator");
    assert!(listed.get("token").is_none());
    assert!(!list.body.to_string().contains(&token));

    // A viewer-scoped token reads but cannot write.
    let (_, read_only) = s.make_token(&oper, "grafana", Some("viewer")).await;
    let r = s
        .send(s.with_token(&read_only, Method::GET, "/api/v1/things"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .send(s.with_token(&read_only, Method::POST, "/api/v1/things"))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "needs the operator role");
    // ... and cannot mint a stronger token.
    let r = s
        .send(
            s.with_token(&read_only, Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "escalate", "role": "operator"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "cannot make a operator token");
    let r = s
        .send(
            s.with_token(&read_only, Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "default scope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["role"], "viewer");
    // An operator cannot have an admin token.
    let r = s
        .send(
            s.as_browser(&oper, Method::POST, "/api/v1/tokens", true)
                .json(&json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Another non-admin user cannot revoke it (and cannot tell it exists).
    let viewer = s.login("view").await;
    let r = s
        .send(s.as_browser(
            &viewer,
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            true,
        ))
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, &format!("no API token {id}"));
    let r = s
        .send(s.as_browser(&oper, Method::DELETE, &format!("/api/v1/tokens/{id}"), true))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s
        .send(s.with_token(&token, Method::GET, "/api/v1/things"))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unknown or revoked");

    // Made-up and malformed tokens are refused too.
    let r = s
        .send(s.with_token("hm_made-up", Method::GET, "/api/v1/things"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = s
        .send(
            s.req(Method::GET, "/api/v1/things")
                .header("authorization", "Basic b3BlcjpwYXNz"),
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "Bearer hm_");
}

#[tokio::test]
async fn a_demoted_or_disabled_user_loses_their_rights_at_once() {
    let s = start(config()).await;
    let admin = s.login("admin").await;
    let oper = s.login("oper").await;
    let (_, token) = s.make_token(&oper, "ci", None).await;
    let r = s
        .send(
            s.as_browser(&admin, Method::PUT, "/api/v1/users/oper", true)
                .json(&json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "viewer");
    for req in [
        s.as_browser(&oper, Method::POST, "/api/v1/things", true),
        s.with_token(&token, Method::POST, "/api/v1/things"),
    ] {
        assert_eq!(s.send(req).await.status, StatusCode::FORBIDDEN);
    }
    let r = s
        .send(
            s.as_browser(&admin, Method::PUT, "/api/v1/users/oper", true)
                .json(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(r.body["disabled"], true);
    for req in [
        s.as_browser(&oper, Method::GET, "/api/v1/things", false),
        s.with_token(&token, Method::GET, "/api/v1/things"),
    ] {
        assert_eq!(s.send(req).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = s.login_raw("oper", PASSWORD).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "disabled");
}

#[tokio::test]
async fn sessions_expire_after_12_hours_idle_or_7_days_in_all() {
    let s = start(config()).await;
    let b = s.login("view").await;
    let read = || s.as_browser(&b, Method::GET, "/api/v1/things", false);
    // Used every 11 hours, the session lives until its absolute end.
    let mut elapsed = Duration::ZERO;
    let absolute = Duration::from_secs(7 * 24 * 3600);
    while elapsed + Duration::from_secs(11 * 3600) < absolute {
        s.clock.advance(Duration::from_secs(11 * 3600));
        elapsed += Duration::from_secs(11 * 3600);
        assert_eq!(
            s.send(read()).await.status,
            StatusCode::OK,
            "at {elapsed:?}"
        );
    }
    s.clock.advance(absolute - elapsed);
    let r = s.send(read()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "expired");

    let b = s.login("view").await;
    s.clock.advance(Duration::from_secs(12 * 3600));
    let r = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/things", false))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let s = start(config()).await;
    let b = s.login("oper").await;
    // Without the CSRF token a (cross-site) logout is refused and the session lives on.
    let r = s
        .send(s.as_browser(&b, Method::POST, "/api/v1/auth/logout", false))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s
        .send(s.as_browser(&b, Method::POST, "/api/v1/auth/logout", true))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let cleared = r.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("hashmesh_session=; "), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // Replaying the old cookie gets nowhere.
    let r = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/things", false))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "log in again");
    let r = s
        .send(s.as_browser(&b, Method::GET, "/api/v1/auth/me", false))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Logging out again is harmless.
    let r = s
        .send(s.as_browser(&b, Method::POST, "/api/v1/auth/logout", true))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(s.auth.store().session_count().unwrap(), 0);
}

#[tokio::test]
async fn the_database_holds_no_password_session_id_or_token_in_clear() {
    let s = start(config()).await;
    let b = s.login("oper").await;
    let (_, token) = s.make_token(&b, "ci", None).await;
    let admin = s.login("admin").await;
    let new_password = "another long passphrase";
    let r = s
        .send(
            s.as_browser(&admin, Method::POST, "/api/v1/users", true)
                .json(&json!({"username": "dave", "password": new_password, "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(AUTH_DB_FILE) {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("$argon2id$v=19$"), "hashes are there");
    for secret in [PASSWORD, new_password, &b.cookie, &token, &token[3..]] {
        assert!(!text.contains(secret), "{secret} is stored in clear");
    }
    // The file is its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.path().join(AUTH_DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_problem_naming_the_problem() {
    let s = start(config()).await;
    let login = || s.req(Method::POST, "/api/v1/auth/login");
    let r = s
        .send(
            login()
                .header("content-type", "application/json")
                .body("{\"username\": \"oper\", "),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "EOF while parsing");
    let r = s
        .send(login().json(&json!({"username": "oper", "password": PASSWORD, "remember": true})))
        .await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown field `remember`",
    );
    let r = s
        .send(login().json(&json!({"username": "oper", "password": 12345678})))
        .await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid type: integer",
    );
    let r = s.send(login().json(&json!({"username": "oper"}))).await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing field `password`",
    );
    let r = s
        .send(login().body(format!(
            "{{\"username\":\"oper\",\"password\":\"{PASSWORD}\"}}"
        )))
        .await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type");
    let huge = json!({"username": "oper", "password": "x".repeat(70 * 1024)});
    let r = s.send(login().json(&huge)).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "larger than 64 KiB");

    // The same on routes behind a login.
    let admin = s.login("admin").await;
    let put = || s.as_browser(&admin, Method::PUT, "/api/v1/users/view", true);
    let r = s.send(put().json(&json!({"role": "superuser"}))).await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown variant `superuser`",
    );
    let r = s.send(put().json(&json!({"disabled": "yes"}))).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "disabled");
    let r = s.send(put().json(&json!({}))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "nothing to change");
    let r = s
        .send(s.as_browser(&admin, Method::DELETE, "/api/v1/tokens/seven", true))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "not a number");
    let r = s
        .send(
            s.as_browser(&admin, Method::POST, "/api/v1/users", true)
                .json(&json!({"username": "has space", "password": PASSWORD, "role": "viewer"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid username");
    let r = s
        .send(
            s.as_browser(&admin, Method::POST, "/api/v1/users", true)
                .json(&json!({"username": "eve", "password": "short", "role": "viewer"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "too short");
}

#[tokio::test]
async fn admins_manage_users_and_never_remove_the_last_admin() {
    let s = start(config()).await;
    let admin = s.login("admin").await;
    let users = s
        .send(s.as_browser(&admin, Method::GET, "/api/v1/users", false))
        .await;
    assert_eq!(users.status, StatusCode::OK);
    let names: Vec<&str> = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "oper", "view"]);
    assert!(!users.body.to_string().contains("argon2"));

    let create = |name: &str| {
        s.as_browser(&admin, Method::POST, "/api/v1/users", true)
            .json(&json!({"username": name, "password": PASSWORD, "role": "operator"}))
    };
    let r = s.send(create("carol")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["username"], "carol");
    assert_eq!(r.body["role"], "operator");
    assert_eq!(r.body["created_unix_ms"], START_MS);
    let r = s.send(create("Carol")).await;
    assert_problem(&r, StatusCode::CONFLICT, "already exists");

    let r = s
        .send(s.as_browser(&admin, Method::DELETE, "/api/v1/users/admin", true))
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "last enabled admin");
    let r = s
        .send(
            s.as_browser(&admin, Method::PUT, "/api/v1/users/admin", true)
                .json(&json!({"role": "operator"})),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "last enabled admin");
    let r = s
        .send(s.as_browser(&admin, Method::DELETE, "/api/v1/users/carol", true))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s
        .send(s.as_browser(&admin, Method::DELETE, "/api/v1/users/carol", true))
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no user 'carol'");

    // Non-admins see none of it.
    let oper = s.login("oper").await;
    for (method, path) in [
        (Method::GET, "/api/v1/users"),
        (Method::POST, "/api/v1/users"),
        (Method::DELETE, "/api/v1/users/view"),
    ] {
        let r = s
            .send(
                s.as_browser(&oper, method, path, true)
                    .json(&json!({"username": "x1", "password": PASSWORD, "role": "admin"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    let r = s
        .send(
            s.as_browser(&oper, Method::PUT, "/api/v1/users/view", true)
                .json(&json!({"password": "a new password"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only an admin");
    let r = s
        .send(
            s.as_browser(&oper, Method::PUT, "/api/v1/users/oper", true)
                .json(&json!({"role": "admin"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "only an admin");
}

#[tokio::test]
async fn a_user_changes_their_own_password_with_the_old_one_and_other_sessions_end() {
    let s = start(config()).await;
    let here = s.login("view").await;
    let elsewhere = s.login("view").await;
    let put = |body: Value| {
        s.as_browser(&here, Method::PUT, "/api/v1/users/view", true)
            .json(&body)
    };
    let r = s.send(put(json!({"password": "a new password"}))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "needs old_password");
    let r = s
        .send(put(
            json!({"password": "a new password", "old_password": "wrong one"}),
        ))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "not the current password");
    let r = s
        .send(put(
            json!({"password": "a new password", "old_password": PASSWORD}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // This session stays; the other one has ended.
    let read = |b: &Browser| s.as_browser(b, Method::GET, "/api/v1/things", false);
    assert_eq!(s.send(read(&here)).await.status, StatusCode::OK);
    assert_eq!(
        s.send(read(&elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login_raw("view", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login_raw("view", "a new password").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_response_has_a_request_id_and_refusals_are_logged_without_secrets() {
    let s = start(config()).await;
    let r = s.send(s.req(Method::GET, "/api/v1/things")).await;
    let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let r = s
        .send(
            s.req(Method::GET, "/api/v1/things")
                .header("x-request-id", "from-the-proxy-42"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "from-the-proxy-42");
    // An id that could pose as other log fields is replaced.
    let r = s
        .send(
            s.req(Method::GET, "/api/v1/things")
                .header("x-request-id", "x reason=\"forged\""),
        )
        .await;
    let replaced = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(replaced.len(), 36, "{replaced}");

    let r = s
        .send(
            s.req(Method::POST, "/api/v1/auth/login")
                .header("x-request-id", "login-attempt-7")
                .json(&json!({"username": "oper", "password": "secret-guess-123"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let viewer = s.login("view").await;
    let r = s
        .send(
            s.as_browser(&viewer, Method::POST, "/api/v1/things", true)
                .header("x-request-id", "viewer-write-9"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let bogus = "hm_bogus-token-value-0000000000000000000000000";
    let r = s
        .send(
            s.with_token(bogus, Method::DELETE, "/api/v1/admin-thing")
                .header("x-request-id", "bad-token-3"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let logs = logs();
    let line = |id: &str| {
        logs.lines()
            .find(|l| l.contains(id) && l.contains("request refused"))
            .unwrap_or_else(|| panic!("no refusal logged for {id}:\n{logs}"))
            .to_owned()
    };
    let login = line("login-attempt-7");
    for part in [
        "WARN",
        "method=POST",
        "path=/api/v1/auth/login",
        "client_ip=127.0.0.1",
        "username=\"oper\"",
        "login: wrong password",
    ] {
        assert!(login.contains(part), "{part} missing in {login}");
    }
    let write = line("viewer-write-9");
    for part in ["username=\"view\"", "role too low", "status=403"] {
        assert!(write.contains(part), "{part} missing in {write}");
    }
    let token = line("bad-token-3");
    assert!(token.contains("unknown or revoked token"), "{token}");
    for secret in [
        "secret-guess-123",
        bogus,
        &viewer.cookie,
        &viewer.csrf,
        PASSWORD,
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
