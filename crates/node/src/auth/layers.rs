//! Request ids and request tracing for the whole HTTP router. Each request gets an
//! `x-request-id` (a UUID, or the one a proxy in front already set if it is short and plain),
//! which is echoed in the response and carried by the request's tracing span, so every log line a request causes,
//! refusals included, can be matched to it.

use axum::Router;
use axum::extract::Request;
use axum::middleware::map_request;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client; longer ones are replaced by a fresh id.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Drops a client's request id that is too long or has characters other than letters, digits
/// and `-_.:`, so that what lands in the logs cannot pose as other log fields.
async fn drop_odd_request_id(mut request: Request) -> Request {
    let odd = request.headers().get(REQUEST_ID_HEADER).is_some_and(|v| {
        let bytes = v.as_bytes();
        bytes.is_empty()
            || bytes.len() > MAX_REQUEST_ID_CHARS
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if odd {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// The span of one request: method, path and request id (never the query, which may carry
/// user input, nor any header other than the id).
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// Wraps `router` so that every request has an id, echoed in the response and present in its
/// logs. Apply it once, to the node's complete router, after every route is added.
pub fn with_request_layers<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Layers added later wrap earlier ones: the id is set first (outermost), then the span is
    // opened with it, and the innermost layer copies it to the response.
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(map_request(drop_odd_request_id))
}
