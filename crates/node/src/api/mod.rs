//! The HTTP API under `/api/v1`: thin handlers over live state, the store and the job runner.
//! Every route needs a role (reads: viewer, commands: operator, users: admin); the extractors
//! in [`crate::auth`] enforce it. Errors are `application/problem+json` ([`ApiError`]).

pub mod devices;
pub mod fleet;
pub mod jobs;
pub mod openapi;
pub mod params;
pub mod sitemap;
pub mod ws;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::node::NodeInner;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The running node.
    pub node: Arc<NodeInner>,
    /// Users, sessions, tokens.
    pub auth: Arc<Auth>,
    /// Command jobs.
    pub jobs: Arc<jobs::Jobs>,
    /// The device table as last built, for fast filtering.
    pub rows: Arc<devices::RowCache>,
    /// Live frames for WebSocket clients.
    pub feed: Arc<ws::Feed>,
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(s: &AppState) -> Arc<Auth> {
        s.auth.clone()
    }
}

impl AppState {
    /// State for a node and its auth service.
    pub fn new(node: Arc<NodeInner>, auth: Arc<Auth>) -> Self {
        AppState {
            node,
            auth,
            jobs: Arc::new(jobs::Jobs::default()),
            rows: Arc::new(devices::RowCache::default()),
            feed: Arc::new(ws::Feed::default()),
        }
    }
}

/// The `/api/v1` routes (without auth's own, which [`crate::http`] mounts beside them).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/fleet/summary", get(fleet::summary))
        .route("/api/v1/fleet/history", get(fleet::history))
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/devices/facets", get(devices::facets))
        .route("/api/v1/devices/{id}", get(devices::detail))
        .route("/api/v1/devices/{id}/history", get(devices::history))
        .route("/api/v1/devices/{id}/commands", post(jobs::command_one))
        .route("/api/v1/commands", post(jobs::command_many))
        .route("/api/v1/jobs/{id}", get(jobs::get_job))
        .route("/api/v1/jobs", get(jobs::list_jobs))
        .route("/api/v1/sitemap", get(sitemap::sitemap))
        .route("/api/v1/ws", get(ws::upgrade))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// Runs a CPU-heavy piece of a request off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker: {e}")))?
}
