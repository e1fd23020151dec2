//! HTTP Digest authentication (RFC 7616 with MD5, `qop=auth`, and the RFC 2069 form without
//! qop), as the Antminer web stack and its clones use it (PROTOCOLS.md §2.2).
//!
//! A [`DigestSession`] keeps the server's nonce and counts `nc` so that every request after the
//! first authenticates at once, without a 401 round trip.

use md5::{Digest as _, Md5};
use std::fmt::Write as _;

/// What a server's `WWW-Authenticate: Digest …` header asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// Protection space, e.g. `antMiner Configuration`.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// The server offers `qop=auth`.
    pub qop_auth: bool,
    /// The previous nonce expired; the credentials were right.
    pub stale: bool,
}

/// Parses a `WWW-Authenticate` value; `None` unless it is a Digest challenge with MD5 (or no
/// algorithm) and a nonce.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let scheme_end = rest.find(char::is_whitespace)?;
    if !rest[..scheme_end].eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Challenge::default();
    let mut nonce = None;
    for (k, v) in params(&rest[scheme_end..]) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => c.realm = v,
            "nonce" => nonce = Some(v),
            "opaque" => c.opaque = Some(v),
            "qop" => c.qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")),
            "stale" => c.stale = v.eq_ignore_ascii_case("true"),
            "algorithm" if !v.eq_ignore_ascii_case("md5") => return None,
            _ => {}
        }
    }
    c.nonce = nonce.filter(|n| !n.is_empty())?;
    Some(c)
}

/// Splits `k=v, k="v, with comma"` parameter lists.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((key, value));
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let mut out = String::with_capacity(32);
    for b in h.finalize() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A live Digest login with one server: its challenge, our `HA1`, and the nonce count.
#[derive(Debug, Clone)]
pub struct DigestSession {
    challenge: Challenge,
    username: String,
    ha1: String,
    nc: u32,
    cnonce_seed: u64,
}

impl DigestSession {
    /// A session for `challenge` with these credentials.
    pub fn new(challenge: Challenge, username: &str, password: &str) -> Self {
        let ha1 = md5_hex(&[
            username.as_bytes(),
            challenge.realm.as_bytes(),
            password.as_bytes(),
        ]);
        let cnonce_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        DigestSession {
            challenge,
            username: username.to_owned(),
            ha1,
            nc: 0,
            cnonce_seed,
        }
    }

    /// Whether this session was made for these credentials (a changed password needs a new one).
    pub fn is_for(&self, username: &str, password: &str) -> bool {
        self.username == username
            && self.ha1
                == md5_hex(&[
                    username.as_bytes(),
                    self.challenge.realm.as_bytes(),
                    password.as_bytes(),
                ])
    }

    /// The nonce this session answers.
    pub fn nonce(&self) -> &str {
        &self.challenge.nonce
    }

    /// The `Authorization` header line for the next request (counts `nc` up).
    pub fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nc = self.nc.wrapping_add(1);
        let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
        let c = &self.challenge;
        let mut line = format!(
            "Authorization: Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm=MD5",
            self.username, c.realm, c.nonce, uri
        );
        let response = if c.qop_auth {
            let nc = format!("{:08x}", self.nc);
            let cnonce = format!(
                "{:016x}",
                self.cnonce_seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add(u64::from(self.nc))
            );
            let r = md5_hex(&[
                self.ha1.as_bytes(),
                c.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                b"auth",
                ha2.as_bytes(),
            ]);
            let _ = write!(line, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
            r
        } else {
            md5_hex(&[self.ha1.as_bytes(), c.nonce.as_bytes(), ha2.as_bytes()])
        };
        let _ = write!(line, ", response=\"{response}\"");
        if let Some(o) = &c.opaque {
            let _ = write!(line, ", opaque=\"{o}\"");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = parse_challenge(
            r#"Digest realm="antMiner Configuration", nonce="abc,def", qop="auth,auth-int", opaque="o1", stale=TRUE"#,
        );
        assert_eq!(
            c,
            Some(Challenge {
                realm: "antMiner Configuration".into(),
                nonce: "abc,def".into(),
                opaque: Some("o1".into()),
                qop_auth: true,
                stale: true,
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        assert_eq!(parse_challenge("Digest realm=\"x\""), None);
        assert_eq!(
            parse_challenge("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256"),
            None
        );
        assert_eq!(parse_challenge(""), None);
    }

    /// The worked example of RFC 2617 §3.5 (qop=auth, MD5).
    #[test]
    fn rfc2617_example() {
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
            stale: false,
        };
        let mut s = DigestSession::new(c, "Mufasa", "Circle Of Life");
        s.cnonce_seed = 0;
        // Recompute with the RFC's cnonce to check the formula itself.
        let ha2 = md5_hex(&[b"GET", b"/dir/index.html"]);
        let r = md5_hex(&[
            s.ha1.as_bytes(),
            b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            b"00000001",
            b"0a4f113b",
            b"auth",
            ha2.as_bytes(),
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let line = s.authorization("GET", "/dir/index.html");
        assert!(line.contains("nc=00000001"), "{line}");
        let line = s.authorization("GET", "/dir/index.html");
        assert!(line.contains("nc=00000002"), "{line}");
        assert!(s.is_for("Mufasa", "Circle Of Life"));
        assert!(!s.is_for("Mufasa", "wrong"));
    }
}
