//! The one error type of the HTTP API. Every handler returns `Result<_, ApiError>`; an error
//! becomes an RFC 7807 `application/problem+json` document
//! (`{"type","title","status","detail"}`), so the dashboard and scripts handle every failure
//! the same way. [`ApiJson`] is the JSON body extractor whose rejections (bad syntax, unknown
//! fields, wrong types, oversized bodies) become the same documents instead of axum's plain text.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// The largest request body the API reads; larger ones are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An API failure: a status and a detail for the client, turned into a problem document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// What went wrong, in words the client can act on.
    pub detail: String,
    /// For 429: how long the client should wait before trying again.
    pub retry_after: Option<Duration>,
}

/// The JSON body of a problem response (RFC 7807).
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl ApiError {
    /// An error with any status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `detail` names what is wrong.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401: no credentials, or credentials that are not (or no longer) valid.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404: the thing named in the request does not exist.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409: the request conflicts with the current state (a duplicate, the last admin, …).
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    /// 413: the request body is larger than [`MAX_BODY_BYTES`].
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {} KiB", MAX_BODY_BYTES / 1024),
        )
    }

    /// 429 with a `Retry-After` header: the client must wait `retry_after`.
    pub fn too_many_requests(retry_after: Duration) -> ApiError {
        // Round up so a client that waits exactly the advertised time is let in.
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            detail: format!("too many failed attempts; try again in {secs} s"),
            retry_after: Some(Duration::from_secs(secs.max(1))),
        }
    }

    /// 500: logs `cause` and tells the client only that something failed on the server, so
    /// internals (paths, SQL) never leak.
    pub fn internal(cause: impl fmt::Display) -> ApiError {
        tracing::error!("internal error: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the node's log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let body = match serde_json::to_vec(&problem) {
            Ok(body) => body,
            // Serialising four plain fields cannot fail; keep a valid answer regardless.
            Err(_) => b"{\"type\":\"about:blank\",\"status\":500}".to_vec(),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(wait) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 asks a 401 to name a scheme; cookies have none, so name the token one.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hashmesh\""),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::payload_too_large();
        }
        // axum's texts name the problem ("expected `,` or `}` at line 1 column 9",
        // "unknown field `x`", "invalid type: string, expected a boolean at `disabled`").
        ApiError::new(status, rejection.body_text())
    }
}

/// A JSON request body, like `axum::Json`, whose rejections are [`ApiError`] problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn problem_document_has_the_rfc7807_fields() {
        let response = ApiError::bad_request("unknown status 'minning'").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_json(response).await;
        assert_eq!(
            body,
            serde_json::json!({"type":"about:blank","title":"Bad Request","status":400,
                "detail":"unknown status 'minning'"})
        );
    }

    #[tokio::test]
    async fn too_many_requests_rounds_retry_after_up() {
        let response = ApiError::too_many_requests(Duration::from_millis(12_300)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "13");
        let body = body_json(response).await;
        assert_eq!(
            body["detail"],
            "too many failed attempts; try again in 13 s"
        );
    }

    #[tokio::test]
    async fn internal_hides_the_cause() {
        let response = ApiError::internal("disk /secret/path is full").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(response).await;
        assert!(!body["detail"].as_str().unwrap().contains("/secret/path"));
    }

    #[tokio::test]
    async fn unauthorized_names_a_scheme() {
        let response = ApiError::unauthorized("not logged in").into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"hashmesh\""
        );
    }
}
