//! The cryptography of the Whatsminer write APIs (PROTOCOLS.md §4.2, §4.3): MD5-crypt (`$1$`),
//! AES-256-ECB with NUL padding, SHA-256 keys and standard base64 without line breaks.
//!
//! MD5-crypt is short and has no well-kept pure-Rust crate without a C build, so it is written
//! out here from the published algorithm (FreeBSD `crypt-md5.c`) and tested against `openssl
//! passwd -1` vectors.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use sha2::Sha256;

/// The alphabet MD5-crypt writes its hash in.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 22-character hash part of MD5-crypt of `password` with `salt` (at most 8 characters are
/// used, as the algorithm defines), i.e. what follows the last `$` in `$1$<salt>$<hash>`.
pub fn md5_crypt_hash(password: &[u8], salt: &str) -> String {
    let salt = salt.strip_prefix("$1$").unwrap_or(salt);
    let salt = salt.split('$').next().unwrap_or_default().as_bytes();
    let salt = salt.get(..salt.len().min(8)).unwrap_or_default();

    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    // One byte per bit of the length: a NUL for a set bit, else the first password byte.
    let first = password.first().copied().unwrap_or(0);
    let mut bits = password.len();
    while bits > 0 {
        ctx.update([if bits & 1 == 1 { 0 } else { first }]);
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    // A thousand rounds, to make guessing slow.
    for round in 0..1000u32 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let d = digest;
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, chars: usize| {
        let mut v = v;
        for _ in 0..chars {
            out.push(CRYPT64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    let triple = |a: usize, b: usize, c: usize| {
        (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c])
    };
    put(triple(0, 6, 12), 4);
    put(triple(1, 7, 13), 4);
    put(triple(2, 8, 14), 4);
    put(triple(3, 9, 15), 4);
    put(triple(4, 10, 5), 4);
    put(u32::from(d[11]), 2);
    out
}

/// SHA-256 of `data`, the raw 32 bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// AES-256-ECB encryption of `plain` padded with NUL bytes to a whole number of blocks.
pub fn aes_ecb_encrypt(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let cipher = Aes256::new(GenericArray::from_slice(key));
    let mut buf = plain.to_vec();
    let padded = buf.len().div_ceil(16).max(1) * 16;
    buf.resize(padded, 0);
    for block in buf.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    buf
}

/// AES-256-ECB decryption with the NUL padding removed. `None` when the input is not a whole
/// number of blocks.
pub fn aes_ecb_decrypt(key: &[u8; 32], data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return None;
    }
    let cipher = Aes256::new(GenericArray::from_slice(key));
    let mut buf = data.to_vec();
    for block in buf.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    while buf.last() == Some(&0) {
        buf.pop();
    }
    Some(buf)
}

/// Standard base64 with padding and no line breaks.
pub fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64, tolerating surrounding whitespace and embedded line breaks.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(clean.as_bytes()).ok()
}

/// The API v2 write keys derived from a `get_token` reply (§4.2 steps 2–4).
#[derive(Clone, PartialEq, Eq)]
pub struct V2Keys {
    /// The AES-256 key: SHA-256 of the MD5-crypt hash of the admin password.
    pub aes_key: [u8; 32],
    /// The `token` member every encrypted request carries.
    pub sign: String,
}

impl std::fmt::Debug for V2Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are as good as the password: never print them.
        f.write_str("V2Keys(***)")
    }
}

impl V2Keys {
    /// Derives the keys from the admin password and the token's `time`, `salt` and `newsalt`.
    pub fn derive(password: &str, time: &str, salt: &str, newsalt: &str) -> Self {
        let key = md5_crypt_hash(password.as_bytes(), salt);
        let sign = md5_crypt_hash(format!("{key}{time}").as_bytes(), newsalt);
        V2Keys {
            aes_key: sha256(key.as_bytes()),
            sign,
        }
    }

    /// The `{"enc":1,"data":"…"}` envelope for a write: `command_json` is the command object
    /// without the token (e.g. `{"cmd":"set_led","param":"auto"}`); the token is added here.
    pub fn seal(&self, command_json: &str) -> Vec<u8> {
        let body = command_json.trim_end();
        let body = body.strip_suffix('}').unwrap_or(body);
        let mut plain = String::with_capacity(body.len() + self.sign.len() + 16);
        plain.push_str(body);
        if !body.trim_end().ends_with('{') {
            plain.push(',');
        }
        plain.push_str("\"token\":\"");
        plain.push_str(&self.sign);
        plain.push_str("\"}");
        let data = b64_encode(&aes_ecb_encrypt(&self.aes_key, plain.as_bytes()));
        format!("{{\"enc\":1,\"data\":\"{data}\"}}").into_bytes()
    }

    /// Decrypts the base64 `enc` member of an encrypted reply.
    pub fn open(&self, enc_b64: &str) -> Option<Vec<u8>> {
        aes_ecb_decrypt(&self.aes_key, &b64_decode(enc_b64)?)
    }
}

/// The API v3 write token and parameter key (§4.3): SHA-256 of `cmd + password + salt + ts`;
/// the token is the first 8 characters of its base64, the raw digest encrypts sensitive params.
pub fn v3_token(cmd: &str, password: &str, salt: &str, ts: u64) -> (String, [u8; 32]) {
    let digest = sha256(format!("{cmd}{password}{salt}{ts}").as_bytes());
    let token: String = b64_encode(&digest).chars().take(8).collect();
    (token, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_crypt_matches_openssl() {
        // From `openssl passwd -1 -salt <salt> <password>`.
        let cases: &[(&str, &str, &str)] = &[
            ("admin", "kJ8d1FqZ", "4xqf0SnejOVP3ssdPVJ6x/"),
            ("admin", "Xz3Lm0pQ", "BVTFWcbq9SzWj3r9qYsjz1"),
            ("", "abcdefgh", "M55TzYaaccxVGbptZWaxX/"),
            (
                "a much longer password than sixteen bytes",
                "12345678901",
                "yLppq.aqtfjKiej5RWDLq/",
            ),
        ];
        for (pw, salt, want) in cases {
            assert_eq!(md5_crypt_hash(pw.as_bytes(), salt), *want, "{pw:?} {salt}");
        }
        assert_eq!(
            md5_crypt_hash(b"admin", "$1$kJ8d1FqZ$"),
            "4xqf0SnejOVP3ssdPVJ6x/"
        );
    }

    #[test]
    fn aes_round_trip_and_padding() {
        let key = sha256(b"k");
        let enc = aes_ecb_encrypt(&key, b"{\"cmd\":\"x\"}");
        assert_eq!(enc.len(), 16);
        assert_eq!(
            aes_ecb_decrypt(&key, &enc),
            Some(b"{\"cmd\":\"x\"}".to_vec())
        );
        assert_eq!(aes_ecb_decrypt(&key, &enc[..15]), None);
        assert_eq!(aes_ecb_encrypt(&key, &[7u8; 16]).len(), 16);
    }

    #[test]
    fn sealed_request_carries_the_token() {
        let keys = V2Keys::derive("admin", "4412", "kJ8d1FqZ", "Xz3Lm0pQ");
        let sealed =
            String::from_utf8(keys.seal(r#"{"cmd":"set_led","param":"auto"}"#)).unwrap_or_default();
        let data = sealed
            .strip_prefix("{\"enc\":1,\"data\":\"")
            .and_then(|s| s.strip_suffix("\"}"))
            .unwrap_or_default();
        let plain = keys.open(data).unwrap_or_default();
        let want = format!(
            "{{\"cmd\":\"set_led\",\"param\":\"auto\",\"token\":\"{}\"}}",
            keys.sign
        );
        assert_eq!(String::from_utf8_lossy(&plain), want);
        assert_eq!(keys.sign.len(), 22);
    }

    #[test]
    fn v3_token_is_eight_base64_chars() {
        let (token, key) = v3_token("set.miner.power_limit", "super", "abc", 1_718_000_000);
        assert_eq!(token.len(), 8);
        assert_eq!(token, b64_encode(&key)[..8]);
    }
}
