//! The HTTP side of remote-write: one POST per batch over kept-alive connections (HTTP/1.1,
//! TLS through rustls with the `ring` provider), and the receiver's answer sorted into
//! delivered, rejected for good, or worth retrying, the way Prometheus sorts it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::export::ExportError;

/// How much of a receiver's answer is kept for logs and `last_error`.
const MESSAGE_MAX_BYTES: usize = 1024;
/// How much of an answer body is read before giving up on it (the connection is then dropped).
const BODY_READ_MAX_BYTES: usize = 64 * 1024;
/// How long an idle kept-alive connection is reused; receivers close theirs after ~1-2 min.
const POOL_IDLE: Duration = Duration::from_secs(50);

/// What came of one POST.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// 2xx: the receiver has the samples.
    Delivered,
    /// A 4xx other than 429 (or another non-retryable status): sending again would fail again.
    Rejected { status: StatusCode, message: String },
    /// 5xx, 429, a connection error or a timeout: try again later.
    Retry {
        reason: String,
        /// What the receiver asked for in `Retry-After` (seconds form), if anything.
        retry_after: Option<Duration>,
    },
}

/// A remote-write HTTP client bound to one endpoint.
pub(crate) struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
}

impl Client {
    /// Checks the endpoint and headers and builds the connection pool; for `https` loads the
    /// system's root certificates and the extra ones of `ca_file`.
    pub(crate) fn new(
        url: &str,
        headers: &[(String, String)],
        ca_file: Option<&Path>,
    ) -> Result<Client, ExportError> {
        let bad_url = |reason: String| ExportError::InvalidConfig {
            field: "url",
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| bad_url(format!("{url:?} is not a URL: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(bad_url(format!(
                    "{url:?} must start with http:// or https://"
                )));
            }
        };
        if uri.host().is_none() {
            return Err(bad_url(format!("{url:?} has no host")));
        }
        let mut map = HeaderMap::new();
        map.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        map.insert(
            HeaderName::from_static("x-prometheus-remote-write-version"),
            HeaderValue::from_static("0.1.0"),
        );
        map.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("hashmesh/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in headers {
            let bad = |reason: String| ExportError::InvalidConfig {
                field: "headers",
                reason,
            };
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("{name:?} is not a header name: {e}")))?;
            // Values may be secrets (Authorization): never echo them in the error.
            let value = HeaderValue::from_str(value)
                .map_err(|_| bad(format!("the value of {name:?} is not a valid header value")))?;
            map.insert(header, value);
        }

        let mut roots = rustls::RootCertStore::empty();
        if https {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "while loading the system's root certificates");
            }
            let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
        }
        if let Some(path) = ca_file {
            let tls = |reason: String| ExportError::Tls(format!("{}: {reason}", path.display()));
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| tls(e.to_string()))?;
            if certs.is_empty() {
                return Err(tls("no PEM certificate in the file".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| tls(e.to_string()))?;
            }
        }
        if https && roots.is_empty() {
            return Err(ExportError::Tls(
                "no root certificate: the system has none and no tls_ca_file is set".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ExportError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(2)
            .build(connector);
        Ok(Client {
            http,
            uri,
            headers: map,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`, waiting at most `timeout` for the whole
    /// exchange.
    pub(crate) async fn send(&self, body: Bytes, timeout: Duration) -> Outcome {
        match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry {
                reason: format!("no answer from {} within {timeout:?}", self.uri),
                retry_after: None,
            },
        }
    }

    async fn exchange(&self, body: Bytes) -> Outcome {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        let response = match self.http.request(request).await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("POST {}: {}", self.uri, error_chain(&e)),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read the body even on success so the connection goes back to the pool.
        let message = match Limited::new(response.into_body(), BODY_READ_MAX_BYTES)
            .collect()
            .await
        {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                let cut = &bytes[..bytes.len().min(MESSAGE_MAX_BYTES)];
                String::from_utf8_lossy(cut).trim().to_string()
            }
            Err(e) => format!("(answer body unreadable: {e})"),
        };
        if status.is_success() {
            Outcome::Delivered
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Outcome::Retry {
                reason: format!("{} answered {status}: {message}", self.uri),
                retry_after,
            }
        } else {
            Outcome::Rejected { status, message }
        }
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
