//! The cryptography of the credential store, kept small and in one place: a 32-byte random key
//! in its own file (hex, mode 0600), XChaCha20-Poly1305 with a random 24-byte nonce per
//! password, and associated data that binds each ciphertext to its entry's scope and username,
//! so a ciphertext copied onto another entry, or a username edited in the file, fails to open.

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;

/// Bytes of the store key.
pub const KEY_BYTES: usize = 32;
/// Bytes of one nonce.
pub const NONCE_BYTES: usize = 24;

/// The store key (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; KEY_BYTES]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey({})", self.id())
    }
}

/// Why a key file or a sealed value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key file does not hold 64 hex digits.
    #[error("expected 64 hex digits (a 32-byte key), found {0}")]
    BadKeyText(String),
    /// The operating system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// Nonce or ciphertext is not valid base64 or has the wrong length.
    #[error("{0}")]
    Encoding(String),
    /// Authentication failed: altered ciphertext, scope or username, or another key.
    #[error("the ciphertext does not authenticate")]
    Forged,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl StoreKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, SealError> {
        let key = Key::try_generate().map_err(|e| SealError::Random(e.to_string()))?;
        let mut bytes = [0u8; KEY_BYTES];
        bytes.copy_from_slice(key.as_slice());
        Ok(StoreKey(bytes))
    }

    /// The key file's text: 64 lower-case hex digits and a newline.
    pub fn to_file_text(&self) -> String {
        let mut s = hex(&self.0);
        s.push('\n');
        s
    }

    /// Reads a key file's text (surrounding whitespace ignored).
    pub fn from_file_text(text: &str) -> Result<Self, SealError> {
        let t = text.trim();
        let describe = || {
            if t.is_empty() {
                "an empty file".to_owned()
            } else {
                format!("{} characters", t.chars().count())
            }
        };
        if t.len() != KEY_BYTES * 2 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SealError::BadKeyText(describe()));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)
                .map_err(|_| SealError::BadKeyText(describe()))?;
        }
        Ok(StoreKey(bytes))
    }

    /// A short public fingerprint of the key, written into the credential file so that a
    /// mismatched key file is named as such instead of showing as every entry being forged.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"hashmesh-credentials-key-id\0");
        h.update(self.0);
        hex(&h.finalize()[..8])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Encrypts `password` for the entry (`scope`, `username`): (nonce, ciphertext), base64.
    pub fn seal(
        &self,
        scope: &str,
        username: &str,
        password: &str,
    ) -> Result<(String, String), SealError> {
        let nonce = XNonce::try_generate().map_err(|e| SealError::Random(e.to_string()))?;
        let aad = associated_data(scope, username);
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: password.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encoding("encryption failed".into()))?;
        Ok((b64_encode(nonce.as_slice()), b64_encode(&sealed)))
    }

    /// Decrypts what [`seal`](Self::seal) made for the same entry.
    pub fn open(
        &self,
        scope: &str,
        username: &str,
        nonce_b64: &str,
        sealed_b64: &str,
    ) -> Result<String, SealError> {
        let nonce = b64_decode(nonce_b64, "nonce")?;
        let nonce = XNonce::try_from(nonce.as_slice()).map_err(|_| {
            SealError::Encoding(format!(
                "nonce is {} bytes, expected {NONCE_BYTES}",
                nonce.len()
            ))
        })?;
        let sealed = b64_decode(sealed_b64, "password_sealed")?;
        let aad = associated_data(scope, username);
        let plain = self
            .cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Forged)?;
        String::from_utf8(plain).map_err(|_| SealError::Forged)
    }
}

fn associated_data(scope: &str, username: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + scope.len() + username.len());
    aad.extend_from_slice(b"hashmesh-credentials/1\0");
    aad.extend_from_slice(scope.as_bytes());
    aad.push(0);
    aad.extend_from_slice(username.as_bytes());
    aad
}

fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64_decode(text: &str, what: &str) -> Result<Vec<u8>, SealError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| SealError::Encoding(format!("{what} is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = StoreKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let (n, c) = key
            .seal("device:10.0.0.5", "root", "hunter2")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            key.open("device:10.0.0.5", "root", &n, &c).ok().as_deref(),
            Some("hunter2")
        );
        // Another entry, another user, another key: all refused.
        assert_eq!(
            key.open("device:10.0.0.6", "root", &n, &c),
            Err(SealError::Forged)
        );
        assert_eq!(
            key.open("device:10.0.0.5", "admin", &n, &c),
            Err(SealError::Forged)
        );
        let other = StoreKey::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(other.id(), key.id());
        assert_eq!(
            other.open("device:10.0.0.5", "root", &n, &c),
            Err(SealError::Forged)
        );
        // Two seals of one password differ (fresh nonce each time).
        let (n2, c2) = key
            .seal("device:10.0.0.5", "root", "hunter2")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!((n, c), (n2, c2));
    }

    #[test]
    fn key_text() {
        let key = StoreKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let text = key.to_file_text();
        assert_eq!(text.len(), 65);
        assert_eq!(StoreKey::from_file_text(&text).ok(), Some(key.clone()));
        assert!(!format!("{key:?}").contains(text.trim()));
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(
                matches!(StoreKey::from_file_text(bad), Err(SealError::BadKeyText(_))),
                "{bad}"
            );
        }
        let (n, _) = key.seal("s", "u", "p").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            key.open("s", "u", &n, "!!!"),
            Err(SealError::Encoding(_))
        ));
        assert!(matches!(
            key.open("s", "u", "AAAA", "AAAA"),
            Err(SealError::Encoding(_))
        ));
    }
}
