//! The auth database, `<data_dir>/auth.sqlite`: users (argon2id hashes), server-side sessions
//! and API tokens. Sessions and tokens are stored only as SHA-256 digests, so a copy of the file
//! lets nobody in. The schema version is `PRAGMA user_version`; a file written by a newer
//! hashmesh is refused rather than guessed at.
//!
//! Every method is synchronous and short; the one slow step, argon2, runs before the
//! connection lock is taken. Async callers run these methods on a blocking thread.

use super::password::{self, PasswordError};
use super::role::Role;
use super::secret::{self, RandomError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The file name of the auth database inside the data directory.
pub const AUTH_DB_FILE: &str = "auth.sqlite";
/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;
/// The name of the principal of anonymous reads; no user may take it.
pub const ANONYMOUS: &str = "anonymous";
/// The longest username accepted.
pub const MAX_USERNAME_CHARS: usize = 64;
/// The longest API token label accepted.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

const SCHEMA_V1: &str = "
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_unix_ms INTEGER NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
CREATE TABLE sessions (
    id_sha256         BLOB    PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token        TEXT    NOT NULL,
    created_unix_ms   INTEGER NOT NULL,
    last_seen_unix_ms INTEGER NOT NULL,
    expires_unix_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE TABLE api_tokens (
    id                INTEGER PRIMARY KEY,
    token_sha256      BLOB    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope             TEXT    NOT NULL CHECK (scope IN ('viewer', 'operator', 'admin')),
    created_unix_ms   INTEGER NOT NULL,
    last_used_unix_ms INTEGER,
    revoked_unix_ms   INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens(user_id);
";

/// What went wrong in the auth database or with a request to it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// SQLite failed.
    #[error("auth database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The data directory or the database file could not be prepared.
    #[error("auth database {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// There is no auth database where one was expected.
    #[error("no auth database at {0}")]
    Missing(PathBuf),
    /// The file was written by a newer hashmesh.
    #[error(
        "auth database schema v{found} is newer than this hashmesh understands (v{SCHEMA_VERSION})"
    )]
    SchemaTooNew {
        /// The version in the file.
        found: i64,
    },
    /// A username that breaks the naming rules.
    #[error("invalid username '{name}': {reason}")]
    InvalidUsername {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A token label that is empty, too long or has control characters.
    #[error("invalid token name: {0}")]
    InvalidTokenName(&'static str),
    /// A user of that name exists already (names compare without case).
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// No user of that name.
    #[error("no user '{0}'")]
    NoSuchUser(String),
    /// No token with that id (or not one the caller may see).
    #[error("no API token {0}")]
    NoSuchToken(i64),
    /// The change would leave no enabled admin.
    #[error("'{0}' is the last enabled admin; make another admin first")]
    LastAdmin(String),
    /// A token may not be scoped above its user's role.
    #[error("a token of a {role} cannot have the {scope} role")]
    ScopeTooHigh {
        /// The scope asked for.
        scope: Role,
        /// The user's role.
        role: Role,
    },
    /// A password that breaks the rules, or a stored hash that cannot be read.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A row holds a value this code cannot read (edited by hand?).
    #[error("auth database holds an unreadable value: {0}")]
    Corrupt(String),
}

/// A user as shown to admins: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// The database id.
    #[serde(skip)]
    pub id: i64,
    /// The login name, as spelt when created.
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_unix_ms: i64,
    /// A disabled user cannot log in, and their sessions and tokens stop working.
    pub disabled: bool,
}

/// A live session as read back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose session it is.
    pub user: User,
    /// The CSRF token the client must echo on writes.
    pub csrf_token: String,
    /// When the session was created.
    pub created_unix_ms: i64,
    /// When the session ends however active it is.
    pub expires_unix_ms: i64,
}

/// A new session: the id goes into the cookie and exists nowhere else.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The secret session id (cookie value).
    pub id: String,
    /// The CSRF token.
    pub csrf_token: String,
    /// When the session ends however active it is.
    pub expires_unix_ms: i64,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// The id used to revoke it.
    pub id: i64,
    /// The label given at creation.
    pub name: String,
    /// Whose token it is.
    pub username: String,
    /// The most the token may do (never more than its user's current role).
    pub role: Role,
    /// When it was created.
    pub created_unix_ms: i64,
    /// When it was last used (to within a minute), if ever.
    pub last_used_unix_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_unix_ms: Option<i64>,
}

/// A token that authenticated a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    /// The token's id.
    pub token_id: i64,
    /// Its user.
    pub user: User,
    /// The role the request gets: the lower of the token's scope and the user's role.
    pub role: Role,
}

/// The result of checking a username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right and the user may log in.
    Ok(User),
    /// No such user (the same work was spent as for a real one).
    UnknownUser,
    /// The password is wrong.
    WrongPassword,
    /// The password is right but the user is disabled.
    Disabled(User),
}

/// A change to a user; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// The new role.
    pub role: Option<Role>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// The new password (checked against the rules and hashed here).
    pub password: Option<String>,
    /// A session to keep when the password changes (the one making the change); every other
    /// session of the user ends.
    pub keep_session: Option<String>,
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle_ms: i64,
    /// A session ends this long after login however active it is.
    pub absolute_ms: i64,
}

impl SessionLimits {
    /// How stale `last_seen` may get before a request writes it again: writes on every request
    /// would make each dashboard read a database write.
    fn touch_interval_ms(self) -> i64 {
        (self.idle_ms / 4).clamp(0, 60_000)
    }
}

/// The auth database.
pub struct AuthStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Checks a username against the naming rules.
pub fn check_username(name: &str) -> Result<(), AuthError> {
    let invalid = |reason| AuthError::InvalidUsername {
        name: name.chars().take(MAX_USERNAME_CHARS + 1).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("it must start with a letter or a digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(invalid(
            "only letters, digits and . _ - @ are allowed (no spaces)",
        ));
    }
    if name.eq_ignore_ascii_case(ANONYMOUS) {
        return Err(invalid("'anonymous' is reserved for anonymous reads"));
    }
    Ok(())
}

fn check_token_name(name: &str) -> Result<(), AuthError> {
    if name.trim().is_empty() {
        return Err(AuthError::InvalidTokenName("it is empty"));
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(AuthError::InvalidTokenName(
            "it is longer than 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::InvalidTokenName("it has control characters"));
    }
    Ok(())
}

fn parse_role(s: &str) -> Result<Role, AuthError> {
    s.parse()
        .map_err(|e: super::role::UnknownRole| AuthError::Corrupt(e.to_string()))
}

const USER_COLUMNS: &str = "u.id, u.username, u.role, u.created_unix_ms, u.disabled";

/// Reads a [`User`] from the first five columns of a row selected with [`USER_COLUMNS`].
fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, i64, bool)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn user_from_parts(parts: (i64, String, String, i64, bool)) -> Result<User, AuthError> {
    let (id, username, role, created_unix_ms, disabled) = parts;
    Ok(User {
        id,
        username,
        role: parse_role(&role)?,
        created_unix_ms,
        disabled,
    })
}

impl AuthStore {
    /// Opens (creating if needed) `<data_dir>/auth.sqlite`, creating the directory too.
    pub fn open_in(data_dir: &Path) -> Result<AuthStore, AuthError> {
        std::fs::create_dir_all(data_dir).map_err(|source| AuthError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        AuthStore::open(&data_dir.join(AUTH_DB_FILE))
    }

    /// Opens `<data_dir>/auth.sqlite` only if it exists (for commands that read users).
    pub fn open_existing_in(data_dir: &Path) -> Result<AuthStore, AuthError> {
        let path = data_dir.join(AUTH_DB_FILE);
        if !path.exists() {
            return Err(AuthError::Missing(path));
        }
        AuthStore::open(&path)
    }

    /// Opens (creating if needed) the auth database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<AuthStore, AuthError> {
        let conn = Connection::open(path)?;
        restrict_permissions(path)?;
        // WAL lets the CLI add a user while the node reads; the busy timeout makes the two wait
        // for each other instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                conn.execute_batch(&format!(
                    "BEGIN; {SCHEMA_V1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))?;
            }
            SCHEMA_VERSION => {}
            found => return Err(AuthError::SchemaTooNew { found }),
        }
        Ok(AuthStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (an open transaction
        // rolls back when dropped), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many users exist.
    pub fn user_count(&self) -> Result<u64, AuthError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Creates a user with an argon2id hash of `password`.
    pub fn add_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        now_unix_ms: i64,
    ) -> Result<User, AuthError> {
        check_username(username)?;
        let hash = password::hash_password(password)?;
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO users (username, password_hash, role, created_unix_ms) VALUES (?1, ?2, ?3, ?4)",
            params![username, hash, role.as_str(), now_unix_ms],
        );
        match inserted {
            Ok(_) => Ok(User {
                id: conn.last_insert_rowid(),
                username: username.to_owned(),
                role,
                created_unix_ms: now_unix_ms,
                disabled: false,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(AuthError::UserExists(username.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the user `admin` when there is no user at all, with `password` or else a
    /// generated one, and returns the password (to show once, as `hashmesh demo` does);
    /// `None` when users exist already.
    pub fn ensure_initial_admin(
        &self,
        password: Option<&str>,
        now_unix_ms: i64,
    ) -> Result<Option<String>, AuthError> {
        if self.user_count()? > 0 {
            return Ok(None);
        }
        let password = match password {
            Some(p) => p.to_owned(),
            None => secret::generated_password()?,
        };
        match self.add_user("admin", &password, Role::Admin, now_unix_ms) {
            Ok(_) => Ok(Some(password)),
            // Another process made the first user between the count and the insert.
            Err(AuthError::UserExists(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<User>, AuthError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.username COLLATE NOCASE"
        ))?;
        let rows = stmt
            .query_map([], user_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(user_from_parts).collect()
    }

    /// One user by name (without case), if they exist.
    pub fn user(&self, username: &str) -> Result<Option<User>, AuthError> {
        let conn = self.conn();
        Self::user_locked(&conn, username)
    }

    fn user_locked(conn: &Connection, username: &str) -> Result<Option<User>, AuthError> {
        conn.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"),
            [username],
            user_from_row,
        )
        .optional()?
        .map(user_from_parts)
        .transpose()
    }

    /// Checks a login. Unknown users cost the same argon2 work as known ones.
    pub fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<PasswordCheck, AuthError> {
        let found = {
            let conn = self.conn();
            conn.query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ?1"
                ),
                [username],
                |row| Ok((user_from_row(row)?, row.get::<_, String>(5)?)),
            )
            .optional()?
        };
        let Some((parts, hash)) = found else {
            password::verify_dummy(password);
            return Ok(PasswordCheck::UnknownUser);
        };
        let user = user_from_parts(parts)?;
        if !password::verify_password(password, &hash)? {
            return Ok(PasswordCheck::WrongPassword);
        }
        if user.disabled {
            return Ok(PasswordCheck::Disabled(user));
        }
        Ok(PasswordCheck::Ok(user))
    }

    /// Changes a user's role, disabled flag and/or password in one transaction. Refuses a
    /// change that would leave no enabled admin. A new password ends every other session of
    /// the user; disabling ends them all.
    pub fn update_user(&self, username: &str, change: UserChange) -> Result<User, AuthError> {
        let new_hash = change
            .password
            .as_deref()
            .map(password::hash_password)
            .transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let user = Self::user_locked(&tx, username)?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
        let role = change.role.unwrap_or(user.role);
        let disabled = change.disabled.unwrap_or(user.disabled);
        let loses_admin =
            user.role == Role::Admin && !user.disabled && (role != Role::Admin || disabled);
        if loses_admin && Self::other_enabled_admins(&tx, user.id)? == 0 {
            return Err(AuthError::LastAdmin(user.username));
        }
        tx.execute(
            "UPDATE users SET role = ?1, disabled = ?2 WHERE id = ?3",
            params![role.as_str(), disabled, user.id],
        )?;
        if let Some(hash) = &new_hash {
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, user.id],
            )?;
            let keep = change
                .keep_session
                .as_deref()
                .map(|s| secret::digest(s).to_vec())
                .unwrap_or_default();
            tx.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND id_sha256 != ?2",
                params![user.id, keep],
            )?;
        }
        if disabled {
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user.id])?;
        }
        tx.commit()?;
        Ok(User {
            role,
            disabled,
            ..user
        })
    }

    /// Deletes a user with their sessions and tokens; never the last enabled admin.
    pub fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let user = Self::user_locked(&tx, username)?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
        if user.role == Role::Admin
            && !user.disabled
            && Self::other_enabled_admins(&tx, user.id)? == 0
        {
            return Err(AuthError::LastAdmin(user.username));
        }
        tx.execute("DELETE FROM users WHERE id = ?1", [user.id])?;
        tx.commit()?;
        Ok(())
    }

    fn other_enabled_admins(conn: &Connection, user_id: i64) -> Result<i64, AuthError> {
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
            [user_id],
            |r| r.get(0),
        )?)
    }

    /// Starts a session for `user`; also clears out sessions that have expired.
    pub fn create_session(
        &self,
        user: &User,
        limits: SessionLimits,
        now_unix_ms: i64,
    ) -> Result<NewSession, AuthError> {
        let id = secret::random_secret()?;
        let csrf_token = secret::random_secret()?;
        let expires_unix_ms = now_unix_ms.saturating_add(limits.absolute_ms);
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sessions WHERE expires_unix_ms <= ?1 OR last_seen_unix_ms <= ?2",
            params![now_unix_ms, now_unix_ms.saturating_sub(limits.idle_ms)],
        )?;
        conn.execute(
            "INSERT INTO sessions (id_sha256, user_id, csrf_token, created_unix_ms, last_seen_unix_ms, expires_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                secret::digest(&id).to_vec(),
                user.id,
                csrf_token,
                now_unix_ms,
                expires_unix_ms
            ],
        )?;
        Ok(NewSession {
            id,
            csrf_token,
            expires_unix_ms,
        })
    }

    /// The live session with this id, if any: expired sessions are deleted and not returned,
    /// and so are sessions of disabled users.
    pub fn session(
        &self,
        id: &str,
        limits: SessionLimits,
        now_unix_ms: i64,
    ) -> Result<Option<Session>, AuthError> {
        let key = secret::digest(id).to_vec();
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, s.csrf_token, s.created_unix_ms, s.last_seen_unix_ms, s.expires_unix_ms
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = ?1"
                ),
                [&key],
                |row| {
                    Ok((
                        user_from_row(row)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, i64>(7)?,
                        row.get::<_, i64>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((parts, csrf_token, created_unix_ms, last_seen, expires_unix_ms)) = found else {
            return Ok(None);
        };
        let user = user_from_parts(parts)?;
        let idle_expired = now_unix_ms >= last_seen.saturating_add(limits.idle_ms);
        if now_unix_ms >= expires_unix_ms || idle_expired || user.disabled {
            conn.execute("DELETE FROM sessions WHERE id_sha256 = ?1", [&key])?;
            return Ok(None);
        }
        if now_unix_ms - last_seen >= limits.touch_interval_ms() {
            conn.execute(
                "UPDATE sessions SET last_seen_unix_ms = ?1 WHERE id_sha256 = ?2",
                params![now_unix_ms, key],
            )?;
        }
        Ok(Some(Session {
            user,
            csrf_token,
            created_unix_ms,
            expires_unix_ms,
        }))
    }

    /// Ends a session (logout); ending one that does not exist is not an error.
    pub fn delete_session(&self, id: &str) -> Result<(), AuthError> {
        self.conn().execute(
            "DELETE FROM sessions WHERE id_sha256 = ?1",
            [secret::digest(id).to_vec()],
        )?;
        Ok(())
    }

    /// How many sessions are stored (live or not yet cleared).
    pub fn session_count(&self) -> Result<u64, AuthError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Creates an API token for `username` and returns it with the token value, which is
    /// stored only as a digest and cannot be shown again. `scope` defaults to the user's role
    /// and may not exceed it.
    pub fn create_token(
        &self,
        username: &str,
        name: &str,
        scope: Option<Role>,
        now_unix_ms: i64,
    ) -> Result<(ApiToken, String), AuthError> {
        check_token_name(name)?;
        let token = secret::new_api_token()?;
        let conn = self.conn();
        let user = Self::user_locked(&conn, username)?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
        let scope = scope.unwrap_or(user.role);
        if !user.role.allows(scope) {
            return Err(AuthError::ScopeTooHigh {
                scope,
                role: user.role,
            });
        }
        conn.execute(
            "INSERT INTO api_tokens (token_sha256, name, user_id, scope, created_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                secret::digest(&token).to_vec(),
                name,
                user.id,
                scope.as_str(),
                now_unix_ms
            ],
        )?;
        let info = ApiToken {
            id: conn.last_insert_rowid(),
            name: name.to_owned(),
            username: user.username,
            role: scope,
            created_unix_ms: now_unix_ms,
            last_used_unix_ms: None,
            revoked_unix_ms: None,
        };
        Ok((info, token))
    }

    /// The user and role a token stands for, if it is known, not revoked and its user is
    /// enabled. Records the use (to within a minute).
    pub fn use_token(&self, token: &str, now_unix_ms: i64) -> Result<Option<TokenUse>, AuthError> {
        let key = secret::digest(token).to_vec();
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, t.id, t.scope, t.last_used_unix_ms
                     FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_sha256 = ?1 AND t.revoked_unix_ms IS NULL"
                ),
                [&key],
                |row| {
                    Ok((
                        user_from_row(row)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, Option<i64>>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((parts, token_id, scope, last_used)) = found else {
            return Ok(None);
        };
        let user = user_from_parts(parts)?;
        if user.disabled {
            return Ok(None);
        }
        if last_used.is_none_or(|t| now_unix_ms - t >= 60_000) {
            conn.execute(
                "UPDATE api_tokens SET last_used_unix_ms = ?1 WHERE id = ?2",
                params![now_unix_ms, token_id],
            )?;
        }
        // A user demoted after making a token does not keep the old rights through it.
        let role = parse_role(&scope)?.min(user.role);
        Ok(Some(TokenUse {
            token_id,
            user,
            role,
        }))
    }

    /// API tokens, newest first: those of `username`, or every user's when `None`.
    pub fn list_tokens(&self, username: Option<&str>) -> Result<Vec<ApiToken>, AuthError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, t.name, u.username, t.scope, t.created_unix_ms, t.last_used_unix_ms, t.revoked_unix_ms
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE ?1 IS NULL OR u.username = ?1
             ORDER BY t.id DESC",
        )?;
        let rows = stmt
            .query_map([username], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, name, username, scope, created, last_used, revoked)| {
                Ok(ApiToken {
                    id,
                    name,
                    username,
                    role: parse_role(&scope)?,
                    created_unix_ms: created,
                    last_used_unix_ms: last_used,
                    revoked_unix_ms: revoked,
                })
            })
            .collect()
    }

    /// Revokes token `id`. With `owner`, only a token of that user (others are "not found", so
    /// their existence does not leak). Revoking a revoked token changes nothing.
    pub fn revoke_token(
        &self,
        id: i64,
        owner: Option<&str>,
        now_unix_ms: i64,
    ) -> Result<(), AuthError> {
        let conn = self.conn();
        let exists: Option<i64> = conn
            .query_row(
                "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.id = ?1 AND (?2 IS NULL OR u.username = ?2)",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(AuthError::NoSuchToken(id));
        }
        conn.execute(
            "UPDATE api_tokens SET revoked_unix_ms = ?1 WHERE id = ?2 AND revoked_unix_ms IS NULL",
            params![now_unix_ms, id],
        )?;
        Ok(())
    }
}

/// Makes the database readable by its owner only: it holds password hashes.
fn restrict_permissions(path: &Path) -> Result<(), AuthError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| AuthError::Io {
                path: path.to_owned(),
                source,
            },
        )?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        idle_ms: 12 * 3_600_000,
        absolute_ms: 7 * 24 * 3_600_000,
    };

    fn store() -> (tempfile::TempDir, AuthStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open_in(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn users_are_unique_without_case_and_names_are_checked() {
        let (_dir, store) = store();
        store
            .add_user("Alice", "password-1", Role::Admin, 1)
            .unwrap();
        assert!(matches!(
            store.add_user("alice", "password-2", Role::Viewer, 2),
            Err(AuthError::UserExists(_))
        ));
        for bad in ["", "a b", "-x", "anonymous", "ß", &"x".repeat(65)] {
            assert!(
                matches!(
                    store.add_user(bad, "password-1", Role::Viewer, 1),
                    Err(AuthError::InvalidUsername { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(store.user("ALICE").unwrap().unwrap().username, "Alice");
        assert_eq!(store.user_count().unwrap(), 1);
    }

    #[test]
    fn passwords_check_and_disabled_users_cannot_log_in() {
        let (_dir, store) = store();
        store
            .add_user("root", "password-1", Role::Admin, 1)
            .unwrap();
        store
            .add_user("bob", "password-1", Role::Viewer, 1)
            .unwrap();
        assert!(matches!(
            store.check_password("bob", "password-1").unwrap(),
            PasswordCheck::Ok(_)
        ));
        assert_eq!(
            store.check_password("bob", "password-2").unwrap(),
            PasswordCheck::WrongPassword
        );
        assert_eq!(
            store.check_password("nobody", "password-1").unwrap(),
            PasswordCheck::UnknownUser
        );
        store
            .update_user(
                "bob",
                UserChange {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(matches!(
            store.check_password("bob", "password-1").unwrap(),
            PasswordCheck::Disabled(_)
        ));
    }

    #[test]
    fn the_last_enabled_admin_cannot_be_removed_demoted_or_disabled() {
        let (_dir, store) = store();
        store
            .add_user("root", "password-1", Role::Admin, 1)
            .unwrap();
        assert!(matches!(
            store.delete_user("root"),
            Err(AuthError::LastAdmin(_))
        ));
        for change in [
            UserChange {
                role: Some(Role::Operator),
                ..Default::default()
            },
            UserChange {
                disabled: Some(true),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                store.update_user("root", change),
                Err(AuthError::LastAdmin(_))
            ));
        }
        store
            .add_user("second", "password-1", Role::Admin, 1)
            .unwrap();
        store
            .update_user(
                "second",
                UserChange {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        // A disabled admin does not count.
        assert!(matches!(
            store.delete_user("root"),
            Err(AuthError::LastAdmin(_))
        ));
        store
            .update_user(
                "second",
                UserChange {
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .unwrap();
        store.delete_user("root").unwrap();
        assert_eq!(store.user("root").unwrap(), None);
        assert!(matches!(
            store.delete_user("root"),
            Err(AuthError::NoSuchUser(_))
        ));
    }

    #[test]
    fn sessions_end_when_idle_or_old_and_are_stored_hashed() {
        let (_dir, store) = store();
        let user = store
            .add_user("op", "password-1", Role::Operator, 0)
            .unwrap();
        let s = store.create_session(&user, LIMITS, 0).unwrap();
        // Active every 11 h: survives idle expiry until the absolute limit.
        let mut now = 0;
        while now + 11 * 3_600_000 < LIMITS.absolute_ms {
            now += 11 * 3_600_000;
            assert!(
                store.session(&s.id, LIMITS, now).unwrap().is_some(),
                "at {now}"
            );
        }
        assert!(
            store
                .session(&s.id, LIMITS, LIMITS.absolute_ms)
                .unwrap()
                .is_none()
        );
        // Idle for 12 h ends a session.
        let s = store.create_session(&user, LIMITS, 0).unwrap();
        assert!(
            store
                .session(&s.id, LIMITS, LIMITS.idle_ms - 1)
                .unwrap()
                .is_some()
        );
        let last_seen = LIMITS.idle_ms - 1;
        assert!(
            store
                .session(&s.id, LIMITS, last_seen + LIMITS.idle_ms)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.session_count().unwrap(),
            0,
            "expired sessions are deleted"
        );
        let s = store.create_session(&user, LIMITS, 0).unwrap();
        let stored: Vec<u8> = store
            .conn()
            .query_row("SELECT id_sha256 FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, secret::digest(&s.id).to_vec());
    }

    #[test]
    fn tokens_are_scoped_revocable_and_follow_their_user() {
        let (_dir, store) = store();
        store
            .add_user("root", "password-1", Role::Admin, 1)
            .unwrap();
        store
            .add_user("op", "password-1", Role::Operator, 1)
            .unwrap();
        assert!(matches!(
            store.create_token("op", "ci", Some(Role::Admin), 5),
            Err(AuthError::ScopeTooHigh { .. })
        ));
        let (info, token) = store.create_token("op", "ci", None, 5).unwrap();
        assert_eq!(info.role, Role::Operator);
        let used = store.use_token(&token, 10).unwrap().unwrap();
        assert_eq!(
            (used.user.username.as_str(), used.role),
            ("op", Role::Operator)
        );
        // Demoting the user lowers what the token can do.
        store
            .update_user(
                "op",
                UserChange {
                    role: Some(Role::Viewer),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            store.use_token(&token, 11).unwrap().unwrap().role,
            Role::Viewer
        );
        // Another user cannot revoke it, and cannot tell it exists.
        assert!(matches!(
            store.revoke_token(info.id, Some("root"), 12),
            Err(AuthError::NoSuchToken(_))
        ));
        store.revoke_token(info.id, Some("op"), 12).unwrap();
        assert_eq!(store.use_token(&token, 13).unwrap(), None);
        let listed = store.list_tokens(Some("op")).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_unix_ms, Some(12));
        assert_eq!(listed[0].last_used_unix_ms, Some(10));
        assert!(store.list_tokens(Some("root")).unwrap().is_empty());
    }

    #[test]
    fn initial_admin_is_created_once() {
        let (_dir, store) = store();
        let password = store.ensure_initial_admin(None, 1).unwrap().unwrap();
        assert_eq!(password.len(), 24);
        assert!(matches!(
            store.check_password("admin", &password).unwrap(),
            PasswordCheck::Ok(User {
                role: Role::Admin,
                ..
            })
        ));
        assert_eq!(store.ensure_initial_admin(None, 2).unwrap(), None);
        assert_eq!(
            store.ensure_initial_admin(Some("chosen pass"), 3).unwrap(),
            None
        );

        let (_dir2, chosen) = super::tests::store();
        assert_eq!(
            chosen
                .ensure_initial_admin(Some("chosen pass"), 1)
                .unwrap()
                .as_deref(),
            Some("chosen pass")
        );
        assert!(matches!(
            chosen.check_password("admin", "chosen pass").unwrap(),
            PasswordCheck::Ok(_)
        ));
        let (_dir3, weak) = super::tests::store();
        assert!(matches!(
            weak.ensure_initial_admin(Some("short"), 1),
            Err(AuthError::Password(PasswordError::TooShort))
        ));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUTH_DB_FILE);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        assert!(matches!(
            AuthStore::open(&path),
            Err(AuthError::SchemaTooNew { found: 7 })
        ));
    }
}
