//! The simulator's own side of the Whatsminer write authentication: MD5-crypt, AES-256-ECB
//! with zero padding, SHA-256 and base64. Written apart from the driver's code (PROTOCOLS.md
//! §4.2–§4.3) so that a mistake in one is caught by the other.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;

const ITOA64: &str = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `$1$<salt>$<hash>` of `pw`, the full MD5-crypt string as `openssl passwd -1` prints it.
pub fn md5_crypt(pw: &str, salt: &str) -> String {
    let pw = pw.as_bytes();
    let salt: String = salt.chars().take_while(|c| *c != '$').take(8).collect();
    let sb = salt.as_bytes();
    let alt = md5_of(&[pw, sb, pw]);
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(pw);
    input.extend_from_slice(b"$1$");
    input.extend_from_slice(sb);
    // The alternate digest repeated to the password's length.
    input.extend(alt.iter().cycle().take(pw.len()));
    let mut n = pw.len();
    while n != 0 {
        input.push(if n % 2 == 1 {
            0
        } else {
            pw.first().copied().unwrap_or(0)
        });
        n /= 2;
    }
    let mut d = md5_of(&[&input]);
    for i in 0..1000 {
        let odd = i % 2 == 1;
        let a: &[u8] = if odd { pw } else { &d };
        let s: &[u8] = if i % 3 != 0 { sb } else { b"" };
        let p: &[u8] = if i % 7 != 0 { pw } else { b"" };
        let z: &[u8] = if odd { &d } else { pw };
        d = md5_of(&[a, s, p, z]);
    }
    let order: [(usize, usize, usize); 5] =
        [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];
    let alphabet = ITOA64.as_bytes();
    let mut hash = String::new();
    let mut emit = |mut w: u32, count: u32| {
        for _ in 0..count {
            hash.push(char::from(alphabet[(w % 64) as usize]));
            w /= 64;
        }
    };
    for (a, b, c) in order {
        emit(
            u32::from(d[a]) * 65536 + u32::from(d[b]) * 256 + u32::from(d[c]),
            4,
        );
    }
    emit(u32::from(d[11]), 2);
    format!("$1${salt}${hash}")
}

/// The part of an MD5-crypt string after its last `$`.
pub fn crypt_tail(full: &str) -> &str {
    full.rsplit('$').next().unwrap_or(full)
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize().into()
}

/// Encrypts with AES-256-ECB after zero padding.
pub fn encrypt(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let aes = Aes256::new_from_slice(key).unwrap_or_else(|_| Aes256::new(&GenericArray::default()));
    let mut out = Vec::with_capacity(data.len() + 16);
    for chunk in data.chunks(16) {
        let mut block = GenericArray::clone_from_slice(&{
            let mut b = [0u8; 16];
            b[..chunk.len()].copy_from_slice(chunk);
            b
        });
        aes.encrypt_block(&mut block);
        out.extend_from_slice(&block);
    }
    out
}

/// Decrypts AES-256-ECB and drops the zero padding; `None` for a partial block.
pub fn decrypt(key: &[u8; 32], data: &[u8]) -> Option<Vec<u8>> {
    if !data.len().is_multiple_of(16) {
        return None;
    }
    let aes = Aes256::new_from_slice(key).ok()?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(16) {
        let mut block = GenericArray::clone_from_slice(chunk);
        aes.decrypt_block(&mut block);
        out.extend_from_slice(&block);
    }
    let keep = out.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    out.truncate(keep);
    Some(out)
}

/// Base64 (standard alphabet, padded).
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 decoding.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_passwd() {
        assert_eq!(
            md5_crypt("admin", "kJ8d1FqZ"),
            "$1$kJ8d1FqZ$4xqf0SnejOVP3ssdPVJ6x/"
        );
        assert_eq!(
            md5_crypt("", "abcdefgh"),
            "$1$abcdefgh$M55TzYaaccxVGbptZWaxX/"
        );
        assert_eq!(
            md5_crypt("a much longer password than sixteen bytes", "12345678901"),
            "$1$12345678$yLppq.aqtfjKiej5RWDLq/"
        );
    }

    #[test]
    fn aes_round_trip() {
        let k = sha256(b"x");
        let e = encrypt(&k, b"hello, miner");
        assert_eq!(e.len(), 16);
        assert_eq!(decrypt(&k, &e).as_deref(), Some(&b"hello, miner"[..]));
    }
}
