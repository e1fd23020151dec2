//! The auth routes of the API (contract: `docs` API v1, "Auth"):
//!
//! | Route | Who |
//! |---|---|
//! | `POST /api/v1/auth/login` `{"username","password"}` | anyone (rate limited) |
//! | `POST /api/v1/auth/logout` | the session's owner (CSRF token required) |
//! | `GET /api/v1/auth/me` | logged in |
//! | `GET/POST /api/v1/users` | admin |
//! | `PUT /api/v1/users/{username}` `{"role","disabled","password","old_password"}` | admin; a user for their own password |
//! | `DELETE /api/v1/users/{username}` | admin, never the last admin |
//! | `GET/POST /api/v1/tokens` | logged in: their own tokens (admins: everyone's) |
//! | `DELETE /api/v1/tokens/{id}` | the token's owner or an admin |
//!
//! Bodies are JSON with no unknown fields, at most 64 KiB.

use super::extract::{
    Refusal, RequireAdmin, RequireLogin, Via, authenticate, check_csrf, client_ip, log_refusal,
    session_cookie,
};
use super::limiter::LimitKey;
use super::store::{ApiToken, PasswordCheck, User, UserChange};
use super::{Auth, Role, SESSION_COOKIE};
use crate::error::{ApiError, ApiJson, MAX_BODY_BYTES};
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// The auth routes, for the lead router to merge; its state must hand out `Arc<Auth>`.
pub fn routes<S>() -> Router<S>
where
    Arc<Auth>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{username}",
            put(update_user).delete(delete_user),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

/// The answer of login and `/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Me {
    username: String,
    role: Role,
    /// The token to echo in `X-CSRF-Token`; `null` for API tokens, which need none.
    csrf_token: Option<String>,
}

/// At most this much of a client-chosen name goes into a log line.
fn for_log(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn limit_keys(username: &str, ip: Option<IpAddr>) -> Vec<LimitKey> {
    let mut keys = vec![LimitKey::user(username)];
    keys.extend(ip.map(LimitKey::ip));
    keys
}

fn session_cookie_header(
    auth: &Auth,
    value: &str,
    max_age_s: u64,
) -> Result<HeaderValue, ApiError> {
    let secure = if auth.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .map_err(ApiError::internal)
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    description = "Starts a session: sets the HttpOnly, SameSite=Strict cookie `hashmesh_session`; send `csrf_token` back as `X-CSRF-Token` on every write.",
    responses((status = 200, description = "Logged in", body = Me), (status = 401, description = "Wrong user name or password"),
              (status = 403, description = "Account disabled"), (status = 429, description = "Too many failed logins; see Retry-After")))]
pub(crate) async fn login(
    State(auth): State<Arc<Auth>>,
    parts: Parts,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&parts);
    let keys = limit_keys(&body.username, ip);
    let refuse = |error, reason, name: &str| {
        log_refusal(
            &parts,
            Refusal {
                error,
                reason,
                username: Some(for_log(name)),
            },
        )
    };
    if let Err(wait) = auth.limiter().begin(&keys, auth.now_unix_ms()) {
        return Err(refuse(
            ApiError::too_many_requests(wait),
            "login rate limit",
            &body.username,
        ));
    }
    let LoginBody { username, password } = body;
    let name = username.clone();
    let check = auth
        .blocking(move |a| a.store().check_password(&name, &password))
        .await??;
    let user = match check {
        PasswordCheck::Ok(user) => user,
        PasswordCheck::UnknownUser | PasswordCheck::WrongPassword => {
            let reason = if check == PasswordCheck::UnknownUser {
                "login: unknown user"
            } else {
                "login: wrong password"
            };
            return Err(refuse(
                ApiError::unauthorized("wrong username or password"),
                reason,
                &username,
            ));
        }
        PasswordCheck::Disabled(user) => {
            return Err(refuse(
                ApiError::forbidden(format!("the account '{}' is disabled", user.username)),
                "login: account disabled",
                &username,
            ));
        }
    };
    auth.limiter().succeeded(&keys);
    // A login from a browser that still holds a session ends that one: one cookie, one session.
    let previous = session_cookie(&parts);
    let session = auth
        .blocking(move |a| {
            if let Some(previous) = previous {
                a.store().delete_session(&previous)?;
            }
            a.store()
                .create_session(&user, a.session_limits(), a.now_unix_ms())
                .map(|s| (s, user))
        })
        .await??;
    let (session, user) = session;
    tracing::info!(
        username = %user.username,
        client_ip = %ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        "logged in"
    );
    let cookie = session_cookie_header(&auth, &session.id, auth.config().session_absolute_s)?;
    let me = Me {
        username: user.username,
        role: user.role,
        csrf_token: Some(session.csrf_token),
    };
    // The answer carries the CSRF token: no cache may keep it.
    let no_store = HeaderValue::from_static("no-store");
    Ok((
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, no_store),
        ],
        Json(me),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "The session is ended on the server")))]
pub(crate) async fn logout(
    State(auth): State<Arc<Auth>>,
    parts: Parts,
) -> Result<Response, ApiError> {
    match authenticate(&auth, &parts).await {
        Ok(Some(who)) => {
            check_csrf(&parts, &who).map_err(|r| log_refusal(&parts, r))?;
            if let Some((id, _)) = who.session {
                auth.blocking(move |a| a.store().delete_session(&id))
                    .await??;
                tracing::info!(username = %who.principal.username, "logged out");
            }
        }
        // Nothing to end: an expired cookie, or none. Logging out stays idempotent.
        Ok(None) => {}
        Err(refusal) if refusal.error.status == StatusCode::UNAUTHORIZED => {}
        Err(refusal) => return Err(log_refusal(&parts, refusal)),
    }
    let clear = session_cookie_header(&auth, "", 0)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, description = "Who is logged in, and the session's CSRF token", body = Me), (status = 401, description = "Not logged in")))]
pub(crate) async fn me(State(auth): State<Arc<Auth>>, parts: Parts) -> Result<Response, ApiError> {
    match authenticate(&auth, &parts).await {
        Ok(Some(who)) => {
            let me = Me {
                username: who.principal.username,
                role: who.principal.role,
                csrf_token: who.session.map(|(_, s)| s.csrf_token),
            };
            let no_store = HeaderValue::from_static("no-store");
            Ok(([(header::CACHE_CONTROL, no_store)], Json(me)).into_response())
        }
        Ok(None) => Err(log_refusal(
            &parts,
            Refusal {
                error: ApiError::unauthorized("not logged in"),
                reason: "no credentials",
                username: None,
            },
        )),
        Err(refusal) => Err(log_refusal(&parts, refusal)),
    }
}

/// `POST /api/v1/users` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    username: String,
    password: String,
    role: Role,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "auth",
    responses((status = 200, description = "Every user (admin)", body = Vec<User>), (status = 403, description = "Needs the admin role")))]
pub(crate) async fn list_users(
    RequireAdmin(_): RequireAdmin,
    State(auth): State<Arc<Auth>>,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(auth.blocking(|a| a.store().list_users()).await??))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "auth", request_body = NewUser,
    responses((status = 201, description = "Created", body = User), (status = 409, description = "The user exists"), (status = 403, description = "Needs the admin role")))]
pub(crate) async fn create_user(
    RequireAdmin(admin): RequireAdmin,
    State(auth): State<Arc<Auth>>,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = auth
        .blocking(move |a| {
            a.store()
                .add_user(&body.username, &body.password, body.role, a.now_unix_ms())
        })
        .await??;
    tracing::info!(by = %admin.username, username = %user.username, role = %user.role, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PUT /api/v1/users/{username}` body: the fields to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserUpdate {
    role: Option<Role>,
    disabled: Option<bool>,
    password: Option<String>,
    /// Required when changing one's own password.
    old_password: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/users/{username}", tag = "auth", request_body = UserUpdate,
    params(("username" = String, Path, description = "User name")),
    responses((status = 200, description = "Changed", body = User), (status = 403, description = "Not allowed"), (status = 404, description = "No such user")))]
pub(crate) async fn update_user(
    RequireLogin(who): RequireLogin,
    State(auth): State<Arc<Auth>>,
    Path(username): Path<String>,
    parts: Parts,
    ApiJson(body): ApiJson<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    if body.role.is_none() && body.disabled.is_none() && body.password.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give role, disabled or password",
        ));
    }
    if body.old_password.is_some() && body.password.is_none() {
        return Err(ApiError::bad_request("old_password given without password"));
    }
    let is_self = who.username.eq_ignore_ascii_case(&username);
    let is_admin = who.role.allows(Role::Admin);
    let forbid = |detail: &str, reason| {
        log_refusal(
            &parts,
            Refusal {
                error: ApiError::forbidden(detail),
                reason,
                username: Some(who.username.clone()),
            },
        )
    };
    if !is_admin && !is_self {
        return Err(forbid(
            "only an admin can change another user",
            "not admin: change another user",
        ));
    }
    if !is_admin && (body.role.is_some() || body.disabled.is_some()) {
        return Err(forbid(
            "only an admin can change roles or disable users",
            "not admin: change role or disabled",
        ));
    }
    if is_self && body.password.is_some() {
        let Some(old_password) = body.old_password.clone() else {
            return Err(ApiError::bad_request(
                "changing your own password needs old_password",
            ));
        };
        check_old_password(&auth, &parts, &who.username, old_password).await?;
    }
    // The session changing its own password stays; every other one of the user ends.
    let keep_session = (is_self && who.via == Via::Session)
        .then(|| session_cookie(&parts))
        .flatten();
    let change = UserChange {
        role: body.role,
        disabled: body.disabled,
        password: body.password,
        keep_session,
    };
    let user = auth
        .blocking(move |a| a.store().update_user(&username, change))
        .await??;
    tracing::info!(by = %who.username, username = %user.username, role = %user.role, disabled = user.disabled, "user changed");
    Ok(Json(user))
}

/// Checks a user's current password before they change it, under the login rate limit (else
/// a stolen session would be a password-guessing oracle).
async fn check_old_password(
    auth: &Arc<Auth>,
    parts: &Parts,
    username: &str,
    old_password: String,
) -> Result<(), ApiError> {
    let keys = limit_keys(username, client_ip(parts));
    let refuse = |error, reason| {
        log_refusal(
            parts,
            Refusal {
                error,
                reason,
                username: Some(username.to_owned()),
            },
        )
    };
    if let Err(wait) = auth.limiter().begin(&keys, auth.now_unix_ms()) {
        return Err(refuse(
            ApiError::too_many_requests(wait),
            "password change rate limit",
        ));
    }
    let name = username.to_owned();
    let check = auth
        .blocking(move |a| a.store().check_password(&name, &old_password))
        .await??;
    if !matches!(check, PasswordCheck::Ok(_)) {
        return Err(refuse(
            ApiError::forbidden("old_password is not the current password"),
            "password change: wrong old password",
        ));
    }
    auth.limiter().succeeded(&keys);
    Ok(())
}

#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "auth",
    params(("username" = String, Path, description = "User name")),
    responses((status = 204, description = "Removed"), (status = 409, description = "The last admin cannot be removed")))]
pub(crate) async fn delete_user(
    RequireAdmin(admin): RequireAdmin,
    State(auth): State<Arc<Auth>>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = username.clone();
    auth.blocking(move |a| a.store().delete_user(&name))
        .await??;
    tracing::info!(by = %admin.username, username = %for_log(&username), "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/tokens` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// A label to recognise the token by.
    name: String,
    /// The token's role; default: the caller's.
    role: Option<Role>,
    /// Whose token (admins only); default: the caller's.
    username: Option<String>,
}

/// A token as created: the only time its value is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    info: ApiToken,
    token: String,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth",
    responses((status = 200, description = "The caller's API tokens (an admin's: all)", body = Vec<ApiToken>)))]
pub(crate) async fn list_tokens(
    RequireLogin(who): RequireLogin,
    State(auth): State<Arc<Auth>>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let owner = (!who.role.allows(Role::Admin)).then_some(who.username);
    let tokens = auth
        .blocking(move |a| a.store().list_tokens(owner.as_deref()))
        .await??;
    Ok(Json(tokens))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = NewToken,
    responses((status = 201, description = "Created; `token` is shown this once", body = CreatedToken), (status = 403, description = "Scope above the caller's role")))]
pub(crate) async fn create_token(
    RequireLogin(who): RequireLogin,
    State(auth): State<Arc<Auth>>,
    parts: Parts,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let owner = body.username.unwrap_or_else(|| who.username.clone());
    let for_self = owner.eq_ignore_ascii_case(&who.username);
    let forbid = |detail: String, reason| {
        log_refusal(
            &parts,
            Refusal {
                error: ApiError::forbidden(detail),
                reason,
                username: Some(who.username.clone()),
            },
        )
    };
    if !for_self && !who.role.allows(Role::Admin) {
        return Err(forbid(
            "only an admin can make tokens for another user".into(),
            "not admin: token for another user",
        ));
    }
    // A request never hands out more than it has: a viewer-scoped token of an operator makes
    // viewer tokens only.
    let scope = match body.role {
        Some(role) if !who.role.allows(role) => {
            return Err(forbid(
                format!("a {} cannot make a {role} token", who.role),
                "token scope above the caller's role",
            ));
        }
        Some(role) => Some(role),
        None if for_self => Some(who.role),
        None => None,
    };
    let name = body.name;
    let (info, token) = auth
        .blocking(move |a| {
            a.store()
                .create_token(&owner, &name, scope, a.now_unix_ms())
        })
        .await??;
    tracing::info!(by = %who.username, username = %info.username, id = info.id, role = %info.role, "API token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such token")))]
pub(crate) async fn revoke_token(
    RequireLogin(who): RequireLogin,
    State(auth): State<Arc<Auth>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!("token id '{}' is not a number", for_log(&id)))
    })?;
    let owner = (!who.role.allows(Role::Admin)).then(|| who.username.clone());
    auth.blocking(move |a| {
        a.store()
            .revoke_token(id, owner.as_deref(), a.now_unix_ms())
    })
    .await??;
    tracing::info!(by = %who.username, id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
