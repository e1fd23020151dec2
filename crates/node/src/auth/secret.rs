//! Secrets: random session ids, CSRF tokens, API tokens and generated passwords, and the hash
//! under which sessions and tokens are stored. Session ids and tokens are 256-bit random
//! values, so one round of SHA-256 is enough to store them (unlike passwords, they cannot be
//! guessed from a dictionary); the database never holds a usable credential.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every API token, so that leaked tokens are easy to spot (and to grep for).
pub const TOKEN_PREFIX: &str = "hm_";

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed: {0}")]
pub struct RandomError(String);

/// `n` bytes from the operating system's random source.
fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A new 256-bit random value, URL-safe base64 without padding (43 characters).
pub fn random_secret() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A new API token: `hm_` followed by 256 random bits.
pub fn new_api_token() -> Result<String, RandomError> {
    Ok(format!("{TOKEN_PREFIX}{}", random_secret()?))
}

/// A new password for a generated account: 144 random bits, 24 URL-safe characters.
pub fn generated_password() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// The SHA-256 digest under which a session id or token is stored and looked up.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    // Lengths are not secret (every token has the same length); contents are.
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_url_safe() {
        let a = random_secret().unwrap();
        let b = random_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let token = new_api_token().unwrap();
        assert!(token.starts_with("hm_"));
        assert_eq!(token.len(), 46);
        assert_eq!(generated_password().unwrap().len(), 24);
    }

    #[test]
    fn digest_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex: String = digest("abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(constant_time_eq("", ""));
    }
}
