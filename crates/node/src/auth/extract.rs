//! The extractors that guard handlers. A handler that takes `RequireOperator(principal)` only
//! runs for a request made with a session cookie or API token whose role allows `operator`;
//! every other request gets a 401 (no or bad credentials) or 403 (role too low, missing or
//! wrong CSRF token) problem response, and a `warn` log line with the method, path, client
//! address, username if known and the reason, never a password or token.
//!
//! Cookie-authenticated requests other than GET/HEAD/OPTIONS must carry `X-CSRF-Token` equal
//! to the session's token: a page on another site can make a browser send the cookie, but it
//! cannot read the token to put in the header. Bearer tokens need no CSRF token, because a
//! browser never attaches them on its own.

use super::store::{ANONYMOUS, Session};
use super::{Auth, CSRF_HEADER, Role, SESSION_COOKIE, secret};
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// How a principal proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The session cookie.
    Session,
    /// An API token.
    Token,
    /// Nothing: an anonymous read allowed by `auth.anonymous_read`.
    Anonymous,
}

/// Who is making a request, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The user's name (`anonymous` for anonymous reads).
    pub username: String,
    /// The role the request has (for a token: the lower of its scope and the user's role).
    pub role: Role,
    /// How the request authenticated.
    pub via: Via,
}

/// Any logged-in user (not anonymous), whatever their role.
#[derive(Debug, Clone)]
pub struct RequireLogin(pub Principal);
/// A principal that may read: a viewer or above, or anonymous when `anonymous_read` is on and
/// the method is GET/HEAD/OPTIONS.
#[derive(Debug, Clone)]
pub struct RequireViewer(pub Principal);
/// A principal that may command devices.
#[derive(Debug, Clone)]
pub struct RequireOperator(pub Principal);
/// A principal that may do anything.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub Principal);

/// The credentials a request carries.
enum Credentials {
    None,
    Session(String),
    Bearer(String),
}

/// A request that proved who it is.
pub(crate) struct Authenticated {
    pub principal: Principal,
    /// With the session id, for a cookie-authenticated request.
    pub session: Option<(String, Session)>,
}

/// Why a request is refused: the response, and what to log.
pub(crate) struct Refusal {
    pub error: ApiError,
    pub reason: &'static str,
    pub username: Option<String>,
}

impl Refusal {
    fn new(error: ApiError, reason: &'static str, username: Option<String>) -> Refusal {
        Refusal {
            error,
            reason,
            username,
        }
    }
}

/// The client's address, when the server was started with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`).
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Logs a refused request and hands back its response.
pub(crate) fn log_refusal(parts: &Parts, refusal: Refusal) -> ApiError {
    tracing::warn!(
        method = %parts.method,
        path = %parts.uri.path(),
        client_ip = %client_ip(parts).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        username = refusal.username.as_deref().unwrap_or("-"),
        status = refusal.error.status.as_u16(),
        reason = refusal.reason,
        "request refused"
    );
    refusal.error
}

/// GET, HEAD and OPTIONS change nothing; every other method may.
pub(crate) fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of the session cookie, if the request has one.
pub(crate) fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

fn credentials(parts: &Parts) -> Result<Credentials, Refusal> {
    let unauthorized = |reason| {
        Refusal::new(
            ApiError::unauthorized("malformed Authorization header: expected 'Bearer hm_…'"),
            reason,
            None,
        )
    };
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("Authorization header is not text"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| unauthorized("Authorization header without scheme"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized("Authorization scheme is not Bearer"));
        }
        let token = token.trim();
        if !token.starts_with(secret::TOKEN_PREFIX) || token.len() > 256 {
            return Err(unauthorized("bearer value is not an hm_ token"));
        }
        return Ok(Credentials::Bearer(token.to_owned()));
    }
    Ok(session_cookie(parts).map_or(Credentials::None, Credentials::Session))
}

/// Who the request is from: `Ok(None)` when it carries no credentials at all.
pub(crate) async fn authenticate(
    auth: &Arc<Auth>,
    parts: &Parts,
) -> Result<Option<Authenticated>, Refusal> {
    let internal = |e: ApiError| Refusal::new(e, "internal error", None);
    match credentials(parts)? {
        Credentials::None => Ok(None),
        Credentials::Bearer(token) => {
            let found = auth
                .blocking(move |a| a.store().use_token(&token, a.now_unix_ms()))
                .await
                .map_err(internal)?
                .map_err(|e| internal(e.into()))?;
            let Some(used) = found else {
                return Err(Refusal::new(
                    ApiError::unauthorized("the API token is unknown or revoked"),
                    "unknown or revoked token",
                    None,
                ));
            };
            Ok(Some(Authenticated {
                principal: Principal {
                    username: used.user.username,
                    role: used.role,
                    via: Via::Token,
                },
                session: None,
            }))
        }
        Credentials::Session(id) => {
            let lookup = id.clone();
            let found = auth
                .blocking(move |a| {
                    a.store()
                        .session(&lookup, a.session_limits(), a.now_unix_ms())
                })
                .await
                .map_err(internal)?
                .map_err(|e| internal(e.into()))?;
            let Some(session) = found else {
                return Err(Refusal::new(
                    ApiError::unauthorized("the session has expired or was ended; log in again"),
                    "unknown or expired session",
                    None,
                ));
            };
            Ok(Some(Authenticated {
                principal: Principal {
                    username: session.user.username.clone(),
                    role: session.user.role,
                    via: Via::Session,
                },
                session: Some((id, session)),
            }))
        }
    }
}

/// Refuses a cookie-authenticated write without the session's CSRF token.
pub(crate) fn check_csrf(parts: &Parts, who: &Authenticated) -> Result<(), Refusal> {
    let Some((_, session)) = &who.session else {
        return Ok(());
    };
    if is_safe_method(&parts.method) {
        return Ok(());
    }
    let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match given {
        Some(given) if secret::constant_time_eq(given, &session.csrf_token) => Ok(()),
        given => Err(Refusal::new(
            ApiError::forbidden(
                "a change made with the session cookie needs the X-CSRF-Token header \
                 (the csrf_token from login or /api/v1/auth/me)",
            ),
            if given.is_some() {
                "wrong CSRF token"
            } else {
                "missing CSRF token"
            },
            Some(who.principal.username.clone()),
        )),
    }
}

/// What a guarded handler needs.
#[derive(Clone, Copy)]
enum Need {
    /// A login of any role.
    Login,
    /// At least this role (anonymous counts as a viewer for safe methods when allowed).
    Role(Role),
}

async fn require(auth: &Arc<Auth>, parts: &Parts, need: Need) -> Result<Principal, Refusal> {
    let Some(who) = authenticate(auth, parts).await? else {
        let anonymous_ok = matches!(need, Need::Role(Role::Viewer))
            && auth.config().anonymous_read
            && is_safe_method(&parts.method);
        if anonymous_ok {
            return Ok(Principal {
                username: ANONYMOUS.to_owned(),
                role: Role::Viewer,
                via: Via::Anonymous,
            });
        }
        return Err(Refusal::new(
            ApiError::unauthorized("log in, or send an API token as 'Authorization: Bearer hm_…'"),
            "no credentials",
            None,
        ));
    };
    check_csrf(parts, &who)?;
    let required = match need {
        Need::Login => return Ok(who.principal),
        Need::Role(required) => required,
    };
    if !who.principal.role.allows(required) {
        return Err(Refusal::new(
            ApiError::forbidden(format!(
                "this needs the {required} role; '{}' has {}",
                who.principal.username, who.principal.role
            )),
            "role too low",
            Some(who.principal.username),
        ));
    }
    Ok(who.principal)
}

async fn guard<S>(parts: &Parts, state: &S, need: Need) -> Result<Principal, ApiError>
where
    Arc<Auth>: FromRef<S>,
{
    let auth = Arc::<Auth>::from_ref(state);
    require(&auth, parts, need)
        .await
        .map_err(|refusal| log_refusal(parts, refusal))
}

macro_rules! guard_extractor {
    ($name:ident, $need:expr) => {
        impl<S> FromRequestParts<S> for $name
        where
            Arc<Auth>: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                guard(parts, state, $need).await.map($name)
            }
        }
    };
}

guard_extractor!(RequireLogin, Need::Login);
guard_extractor!(RequireViewer, Need::Role(Role::Viewer));
guard_extractor!(RequireOperator, Need::Role(Role::Operator));
guard_extractor!(RequireAdmin, Need::Role(Role::Admin));
