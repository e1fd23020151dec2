//! Passwords: the rules a new password must meet, and argon2id hashing in the PHC string
//! format (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), which carries its own parameters so
//! that hashes made with other parameters keep verifying. Hashing costs tens of milliseconds of
//! CPU and 19 MiB on purpose: callers on an async runtime run it on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in bytes (bounds the work one request can cause).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that cannot be used, or a stored hash that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password is too short: at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The password contains a control character (a pasted newline, most likely).
    #[error("password contains a control character")]
    ControlCharacter,
    /// Hashing failed (the parameters or the random source).
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// The stored hash is not a PHC string argon2 can read.
    #[error("the stored password hash is unreadable: {0}")]
    StoredHash(String),
}

/// Checks the rules a new password must meet.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacter);
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_new_password(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(stored).map_err(|e| PasswordError::StoredHash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Spends the same work as a real verification, for logins naming an unknown user, so the
/// response time does not tell which usernames exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password of anyone").ok());
    if let Some(stored) = dummy {
        let _ = verify_password(password, stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("correct horse"));
        assert_eq!(verify_password("correct horse", &a), Ok(true));
        assert_eq!(verify_password("correct horsf", &a), Ok(false));
        assert_eq!(verify_password("", &a), Ok(false));
    }

    #[test]
    fn weak_or_strange_passwords_are_refused() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            check_new_password("line one\nline two"),
            Err(PasswordError::ControlCharacter)
        );
        // Eight characters are enough even when they are multi-byte.
        assert_eq!(check_new_password("ééééé€€€"), Ok(()));
    }

    #[test]
    fn an_unreadable_stored_hash_is_an_error_not_a_match() {
        assert!(matches!(
            verify_password("whatever1", "plaintext"),
            Err(PasswordError::StoredHash(_))
        ));
    }
}
