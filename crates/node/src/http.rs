//! The node's HTTP server: the dashboard, the API under `/api/v1` with its auth routes and
//! OpenAPI document, `/metrics` for Prometheus and `/healthz` for service managers, behind one
//! set of request layers (request ids, tracing).

use crate::api::{self, AppState};
use crate::export::prometheus::CONTENT_TYPE;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// Largest request body of an API route (a bulk command naming 10,000 devices fits).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route of the node.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .merge(crate::auth::routes::<AppState>())
        .merge(api::router().layer(DefaultBodyLimit::max(MAX_BODY_BYTES)))
        .merge(crate::webui::router::<AppState>())
        // JSON of 100,000 devices shrinks about tenfold; files already gzipped pass untouched.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .with_state(state);
    crate::auth::with_request_layers(app)
}

/// Serves until `stop` fires, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let feed = tokio::spawn(state.feed.clone().run(state.clone()));
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = stop.await;
    })
    .await;
    feed.abort();
    if let Err(e) = served {
        tracing::error!("HTTP server stopped: {e}");
    }
}

/// `/metrics` is a read like any other: it needs a viewer (Prometheus sends a bearer token:
/// `authorization: {type: Bearer, credentials: hm_…}`) unless anonymous reads are on.
async fn metrics(_who: crate::auth::RequireViewer, State(s): State<AppState>) -> impl IntoResponse {
    // Building the page walks every device; keep that off the async workers.
    let node = Arc::clone(&s.node);
    let body = tokio::task::spawn_blocking(move || crate::metrics::render(&node))
        .await
        .unwrap_or_else(|e| format!("# metrics unavailable: {e}\n"));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "devices": s.node.live.len(),
        "started_unix_ms": s.node.started_unix_ms,
    }))
}
