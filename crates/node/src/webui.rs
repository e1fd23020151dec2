//! The web dashboard and the API docs page, served from files embedded in the binary.
//!
//! `scripts/build-web` builds the TypeScript app in `web/` into `web/dist` (with a `.gz` beside
//! every text file, and Swagger UI from the `swagger-ui-dist` npm package in `apidocs/`);
//! this module embeds that folder at compile time with `rust-embed`, so the binary serves the
//! dashboard alone, with no files beside it and no CDN. Routes:
//!
//! - `/` and `/index.html`: the app (hash-routed, so the server needs no other page routes);
//! - `/assets/*`: content-hashed bundles, cached for a year;
//! - `/favicon.svg`;
//! - `/api/docs`: Swagger UI reading `/api/openapi.json`.
//!
//! A binary built before `web/dist` existed still starts: these routes then answer 503 with a
//! page that says to run `scripts/build-web` and rebuild, and [`router`] logs the same at start.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

/// The built dashboard (`web/dist`), embedded at compile time.
#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Dist;

/// What to tell the operator when the dashboard was not built into this binary.
pub const NOT_BUILT: &str = "the web dashboard is not built into this binary: run scripts/build-web, then build hashmesh again";

/// Cache policy of hashed bundles: their names change with their content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of pages: always revalidate, so a new binary's app is picked up at once.
const REVALIDATE: &str = "no-cache";
/// Cache policy of files with stable names (favicon, Swagger UI's files).
const SHORT: &str = "public, max-age=3600";

/// What the dashboard page may load: only itself; inline styles because the chart libraries
/// set them; WebSocket to the same host for live updates.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Whether the dashboard is built into this binary; `Err` says what to do when it is not.
pub fn check() -> Result<(), &'static str> {
    check_in::<Dist>()
}

fn check_in<E: RustEmbed>() -> Result<(), &'static str> {
    match E::get("index.html") {
        Some(_) => Ok(()),
        None => Err(NOT_BUILT),
    }
}

/// The dashboard's routes, to merge into the node's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    if let Err(why) = check() {
        tracing::warn!("{why}");
    }
    router_for::<Dist, S>()
}

/// The routes over any embedded folder of the same layout (tests use a small fixture).
fn router_for<E: RustEmbed + Send + Sync + 'static, S: Clone + Send + Sync + 'static>() -> Router<S>
{
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { page::<E>("index.html", &h) }),
        )
        .route(
            "/index.html",
            get(|h: HeaderMap| async move { page::<E>("index.html", &h) }),
        )
        .route(
            "/favicon.svg",
            get(|h: HeaderMap| async move { file::<E>("favicon.svg", SHORT, &h) }),
        )
        .route(
            "/assets/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move {
                file::<E>(&format!("assets/{p}"), IMMUTABLE, &h)
            }),
        )
        .route(
            "/api/docs",
            get(|h: HeaderMap| async move { page::<E>("apidocs/index.html", &h) }),
        )
        .route(
            "/api/docs/",
            get(|h: HeaderMap| async move { page::<E>("apidocs/index.html", &h) }),
        )
        .route(
            "/api/docs/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move {
                file::<E>(&format!("apidocs/{p}"), SHORT, &h)
            }),
        )
}

/// An HTML page of the app: revalidated on every load, with the content security policy.
fn page<E: RustEmbed>(path: &str, req: &HeaderMap) -> Response {
    if check_in::<E>().is_err() {
        return not_built();
    }
    let mut res = file::<E>(path, REVALIDATE, req);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// One embedded file, gzipped when the client takes it and a `.gz` was built, with its MIME
/// type, cache policy and an ETag (answering 304 when the client has it already).
fn file<E: RustEmbed>(path: &str, cache: &'static str, req: &HeaderMap) -> Response {
    if !safe(path) {
        return missing(path);
    }
    let Some(plain) = E::get(path) else {
        return if check_in::<E>().is_err() {
            not_built()
        } else {
            missing(path)
        };
    };
    let etag = etag(&plain.metadata.sha256_hash());
    let mut headers = HeaderMap::new();
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    insert(&mut headers, header::CONTENT_TYPE, mime.essence_str());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    insert(&mut headers, header::ETAG, &etag);
    let gz = E::get(&format!("{path}.gz"));
    if gz.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = match gz {
        Some(gz) if accepts_gzip(req) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz.data
        }
        _ => plain.data,
    };
    (headers, Body::from(body.into_owned())).into_response()
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    // Values here are MIME types and hex digests, always valid header text; skip one if not.
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn etag(sha256: &[u8; 32]) -> String {
    let hex: String = sha256[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A relative path inside the folder: no parent steps, no absolute or Windows-style paths.
fn safe(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` without `q=0`).
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

fn missing(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("no file {path} in the dashboard\n"),
    )
        .into_response()
}

fn not_built() -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hashmesh: dashboard not built</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em\">\
         <h1>Dashboard not built</h1><p>The node is running, but {NOT_BUILT}.</p>\
         <pre>scripts/build-web\ncargo build --release -p hashmesh</pre>\
         <p>The HTTP API under <code>/api/v1</code> works without it.</p></body></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// A small folder of the same layout as `web/dist`.
    #[derive(RustEmbed)]
    #[folder = "../../web/fixtures/dist"]
    struct Fixture;

    /// A folder that does not exist: a binary built before `scripts/build-web`.
    #[derive(RustEmbed)]
    #[folder = "../../web/fixtures/never-built"]
    #[allow_missing = true]
    struct NeverBuilt;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/fixtures/dist");

    async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let client = reqwest::Client::new();
        let mut req = client.get(format!("http://{addr}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURE}/{path}")).unwrap()
    }

    #[tokio::test]
    async fn index_is_html_that_always_revalidates_with_a_policy() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        for path in ["/", "/index.html"] {
            let res = get(addr, path, &[]).await;
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(header(&res, "content-type"), "text/html");
            assert_eq!(header(&res, "cache-control"), "no-cache");
            assert!(header(&res, "content-security-policy").contains("default-src 'self'"));
            assert_eq!(res.bytes().await.unwrap(), fixture("index.html"));
        }
    }

    #[tokio::test]
    async fn assets_are_immutable_with_their_mime_type() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        let res = get(addr, "/assets/app-3f2a1b.js", &[]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "content-type"), "text/javascript");
        assert_eq!(header(&res, "cache-control"), IMMUTABLE);
        assert_eq!(header(&res, "content-encoding"), "");
        assert_eq!(header(&res, "vary"), "accept-encoding");
        assert_eq!(res.bytes().await.unwrap(), fixture("assets/app-3f2a1b.js"));

        let res = get(addr, "/assets/app-9c8d7e.css", &[]).await;
        assert_eq!(header(&res, "content-type"), "text/css");
        let res = get(addr, "/favicon.svg", &[]).await;
        assert_eq!(header(&res, "content-type"), "image/svg+xml");
        assert_eq!(header(&res, "cache-control"), SHORT);
    }

    #[tokio::test]
    async fn gzip_goes_only_to_clients_that_accept_it() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        let res = get(
            addr,
            "/assets/app-3f2a1b.js",
            &[("accept-encoding", "br, gzip")],
        )
        .await;
        assert_eq!(header(&res, "content-encoding"), "gzip");
        assert_eq!(header(&res, "content-type"), "text/javascript");
        let body = res.bytes().await.unwrap();
        assert_eq!(body, fixture("assets/app-3f2a1b.js.gz"));
        assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");

        let res = get(
            addr,
            "/assets/app-3f2a1b.js",
            &[("accept-encoding", "gzip;q=0, br")],
        )
        .await;
        assert_eq!(header(&res, "content-encoding"), "");
        assert_eq!(res.bytes().await.unwrap(), fixture("assets/app-3f2a1b.js"));

        // A file without a .gz beside it is sent as it is.
        let res = get(addr, "/favicon.svg", &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(&res, "content-encoding"), "");
        assert_eq!(header(&res, "vary"), "");
    }

    #[tokio::test]
    async fn a_known_etag_gets_304() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        let first = get(addr, "/assets/app-3f2a1b.js", &[]).await;
        let tag = header(&first, "etag").to_owned();
        assert!(tag.starts_with('"') && tag.len() == 26, "{tag}");
        let again = get(addr, "/assets/app-3f2a1b.js", &[("if-none-match", &tag)]).await;
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
        let other = get(
            addr,
            "/assets/app-3f2a1b.js",
            &[("if-none-match", "\"0000\"")],
        )
        .await;
        assert_eq!(other.status(), 200);
    }

    #[tokio::test]
    async fn api_docs_load_swagger_ui_from_the_binary() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        for path in ["/api/docs", "/api/docs/"] {
            let res = get(addr, path, &[]).await;
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(header(&res, "content-type"), "text/html");
            let html = res.text().await.unwrap();
            assert!(html.contains("/api/docs/swagger-ui-bundle.js"), "{html}");
        }
        let res = get(addr, "/api/docs/init.js", &[]).await;
        assert_eq!(header(&res, "content-type"), "text/javascript");
        assert!(res.text().await.unwrap().contains("/api/openapi.json"));
    }

    /// Sends `path` exactly as written (an HTTP client would normalise `..` away) and returns
    /// the status code.
    async fn raw_status(addr: SocketAddr, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out);
        text.split(' ').nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn unknown_and_escaping_paths_are_404() {
        let addr = serve(router_for::<Fixture, ()>()).await;
        assert_eq!(raw_status(addr, "/assets/app-3f2a1b.js").await, 200);
        for path in [
            "/assets/nope.js",
            "/assets/../index.html",
            "/assets/%2e%2e/index.html",
            "/assets/..%2f..%2fCargo.toml",
            "/api/docs/../../index.html",
            "/api/docs/..%2f..%2findex.html",
            "/assets/a%5c..%5cindex.html",
            "/assets//index.html",
        ] {
            assert_eq!(raw_status(addr, path).await, 404, "{path}");
        }
    }

    #[tokio::test]
    async fn a_binary_without_the_dashboard_says_how_to_build_it() {
        assert_eq!(check_in::<NeverBuilt>(), Err(NOT_BUILT));
        assert_eq!(check_in::<Fixture>(), Ok(()));
        let addr = serve(router_for::<NeverBuilt, ()>()).await;
        for path in ["/", "/api/docs", "/assets/app.js"] {
            let res = get(addr, path, &[]).await;
            assert_eq!(res.status(), 503, "{path}");
            assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
            assert!(res.text().await.unwrap().contains("scripts/build-web"));
        }
    }

    #[test]
    fn gzip_acceptance_follows_q_values() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip"));
        assert!(h("deflate, GZIP;q=0.5"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("gzip; q=0.0, br"));
        assert!(!h("br, deflate"));
        assert!(!h("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn only_plain_relative_paths_are_served() {
        for ok in ["index.html", "assets/a.js", "apidocs/swagger-ui.css"] {
            assert!(safe(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "assets/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0",
        ] {
            assert!(!safe(bad), "{bad:?}");
        }
    }
}
