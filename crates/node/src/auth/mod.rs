//! Authentication and authorisation of the HTTP API.
//!
//! Where things are:
//! - [`store`]: the SQLite database of users (argon2id hashes), sessions and API tokens.
//! - [`role`]: `viewer < operator < admin`.
//! - [`extract`]: the axum extractors handlers declare to require a role
//!   ([`RequireViewer`], [`RequireOperator`], [`RequireAdmin`], [`RequireLogin`]); they accept the
//!   `hashmesh_session` cookie (with `X-CSRF-Token` on writes) or `Authorization: Bearer hm_…`,
//!   and refuse everything else with a logged 401 or 403.
//! - [`routes`]: `/api/v1/auth/*`, `/api/v1/users*`, `/api/v1/tokens*`.
//! - [`layers`]: request ids and request tracing for the whole router.
//! - [`limiter`]: the login rate limit; [`clock`]: the time source (manual in tests).
//!
//! [`Auth`] ties them together and is what the router state must hand out (`Arc<Auth>:
//! FromRef<S>`).

pub mod clock;
pub mod extract;
pub mod layers;
pub mod limiter;
pub mod password;
pub mod role;
pub mod routes;
pub mod secret;
pub mod store;

pub use clock::Clock;
pub use extract::{Principal, RequireAdmin, RequireLogin, RequireOperator, RequireViewer, Via};
pub use layers::with_request_layers;
pub use role::Role;
pub use routes::routes;
pub use store::{AuthError, AuthStore};

use crate::error::ApiError;
use limiter::{LimiterConfig, LoginLimiter};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::SessionLimits;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "hashmesh_session";
/// The header that must carry the session's CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `[auth]` section of the node's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Let requests without credentials read (GET/HEAD) as an anonymous viewer; writes still
    /// need a login. Off by default.
    pub anonymous_read: bool,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Turn on when the node is served
    /// behind TLS; off by default because the node itself speaks plain HTTP.
    pub secure_cookies: bool,
    /// A session unused for this long ends. Default 12 h: one working shift, so a dashboard
    /// left open on a shared machine is logged out by the next day.
    pub session_idle_s: u64,
    /// A session ends this long after login however active it is. Default 7 days: a wall
    /// display polling all week still has to log in again weekly, which bounds the life of a
    /// stolen cookie.
    pub session_absolute_s: u64,
    /// Failed logins allowed per username and per client address within the window.
    pub login_max_failures: u32,
    /// The window of the login rate limit.
    pub login_window_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_read: false,
            secure_cookies: false,
            session_idle_s: 12 * 3600,
            session_absolute_s: 7 * 24 * 3600,
            login_max_failures: 5,
            login_window_s: 300,
        }
    }
}

impl AuthConfig {
    /// Checks the values make sense; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.session_idle_s == 0 {
            return Err("auth.session_idle_s must be at least 1".into());
        }
        if self.session_absolute_s < self.session_idle_s {
            return Err("auth.session_absolute_s must be at least auth.session_idle_s".into());
        }
        if self.login_max_failures == 0 {
            return Err("auth.login_max_failures must be at least 1".into());
        }
        if self.login_window_s == 0 {
            return Err("auth.login_window_s must be at least 1".into());
        }
        Ok(())
    }

    fn session_limits(&self) -> SessionLimits {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        SessionLimits {
            idle_ms: ms(self.session_idle_s),
            absolute_ms: ms(self.session_absolute_s),
        }
    }
}

/// The auth service: the store, the login limiter, the settings and the clock. Shared by every
/// request as `Arc<Auth>`.
#[derive(Debug)]
pub struct Auth {
    store: AuthStore,
    limiter: LoginLimiter,
    config: AuthConfig,
    clock: Clock,
}

impl Auth {
    /// Opens the auth database in `data_dir` with the system clock.
    pub fn open(data_dir: &Path, config: AuthConfig) -> Result<Arc<Auth>, AuthError> {
        Ok(Arc::new(Auth::new(
            AuthStore::open_in(data_dir)?,
            config,
            Clock::System,
        )))
    }

    /// An auth service over `store` with `config`, reading time from `clock`.
    pub fn new(store: AuthStore, config: AuthConfig, clock: Clock) -> Auth {
        let limiter = LoginLimiter::new(LimiterConfig {
            max_failures: config.login_max_failures,
            window: Duration::from_secs(config.login_window_s),
            ..LimiterConfig::default()
        });
        Auth {
            store,
            limiter,
            config,
            clock,
        }
    }

    /// The database.
    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The time source.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The login rate limiter.
    pub fn limiter(&self) -> &LoginLimiter {
        &self.limiter
    }

    /// The current time in unix milliseconds.
    pub fn now_unix_ms(&self) -> i64 {
        self.clock.now_unix_ms()
    }

    pub(crate) fn session_limits(&self) -> SessionLimits {
        self.config.session_limits()
    }

    /// Runs `f` on a blocking thread: SQLite and argon2 must not stall the async workers.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Auth) -> T + Send + 'static,
        T: Send + 'static,
    {
        let auth = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&auth))
            .await
            .map_err(ApiError::internal)
    }
}

/// Creates the user `admin` in `data_dir` when no user exists yet, with `password` or else a
/// generated one, and returns the password to show once (for `hashmesh demo`); `None` when
/// users exist already (their passwords are left alone).
pub fn ensure_demo_admin(
    data_dir: &Path,
    password: Option<&str>,
) -> Result<Option<String>, AuthError> {
    AuthStore::open_in(data_dir)?.ensure_initial_admin(password, Clock::System.now_unix_ms())
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match &e {
            AuthError::InvalidUsername { .. }
            | AuthError::InvalidTokenName(_)
            | AuthError::ScopeTooHigh { .. }
            | AuthError::Password(password::PasswordError::TooShort)
            | AuthError::Password(password::PasswordError::TooLong)
            | AuthError::Password(password::PasswordError::ControlCharacter) => {
                ApiError::bad_request(e.to_string())
            }
            AuthError::UserExists(_) | AuthError::LastAdmin(_) => ApiError::conflict(e.to_string()),
            AuthError::NoSuchUser(_) | AuthError::NoSuchToken(_) => {
                ApiError::not_found(e.to_string())
            }
            AuthError::Db(_)
            | AuthError::Io { .. }
            | AuthError::Missing(_)
            | AuthError::SchemaTooNew { .. }
            | AuthError::Password(_)
            | AuthError::Random(_)
            | AuthError::Corrupt(_) => ApiError::internal(e),
        }
    }
}
