//! The server side of HTTP Digest (MD5, `qop=auth`) as the Antminer web server does it: a
//! challenge with the current nonce, and a check of the client's `Authorization` header.

use md5::{Digest as _, Md5};
use std::collections::HashMap;

/// What a check of an `Authorization` header found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCheck {
    /// The response is right for the current nonce.
    Ok,
    /// The response was right, but for an old nonce: answer 401 with `stale=true`.
    Stale,
    /// Missing, malformed, or wrong credentials.
    Denied,
}

fn hex_md5(input: &str) -> String {
    let digest = Md5::digest(input.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits the `k=v` / `k="v"` list of a Digest header into a map.
fn fields(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim().strip_prefix("Digest")?.trim_start();
    let mut out = HashMap::new();
    let mut s = rest;
    while !s.is_empty() {
        s = s.trim_start_matches([' ', ',']);
        let Some(eq) = s.find('=') else { break };
        let key = s[..eq].trim().to_ascii_lowercase();
        s = &s[eq + 1..];
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let end = quoted.find('"')?;
            value = quoted[..end].to_string();
            s = &quoted[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        out.insert(key, value);
    }
    Some(out)
}

/// A Digest realm with its user, current and previous nonce.
#[derive(Debug, Clone)]
pub struct DigestRealm {
    /// Protection space sent in challenges.
    pub realm: String,
    /// Accepted user name.
    pub username: String,
    /// Accepted password.
    pub password: String,
    nonce: String,
    previous: Option<String>,
    issued: u64,
    seed: u64,
}

impl DigestRealm {
    /// A realm with one user; `seed` makes the nonces differ between devices.
    pub fn new(realm: &str, username: &str, password: &str, seed: u64) -> Self {
        let mut r = DigestRealm {
            realm: realm.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            nonce: String::new(),
            previous: None,
            issued: 0,
            seed,
        };
        r.rotate();
        r
    }

    /// Issues a new nonce; the old one is then answered as stale.
    pub fn rotate(&mut self) {
        self.issued += 1;
        let prev = std::mem::take(&mut self.nonce);
        if !prev.is_empty() {
            self.previous = Some(prev);
        }
        self.nonce = hex_md5(&format!("{}:{}:nonce", self.seed, self.issued));
    }

    /// Nonces issued so far (each costs a client one extra round trip).
    pub fn nonces_issued(&self) -> u64 {
        self.issued
    }

    /// The `WWW-Authenticate` value for a 401.
    pub fn challenge(&self, stale: bool) -> String {
        format!(
            "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm=MD5{}",
            self.realm,
            self.nonce,
            if stale { ", stale=true" } else { "" }
        )
    }

    /// Checks an `Authorization` header for `method` on `path`.
    pub fn check(&self, header: Option<&str>, method: &str, path: &str) -> AuthCheck {
        let Some(f) = header.and_then(fields) else {
            return AuthCheck::Denied;
        };
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        if get("username") != self.username || get("realm") != self.realm || get("uri") != path {
            return AuthCheck::Denied;
        }
        let ha1 = hex_md5(&format!(
            "{}:{}:{}",
            self.username, self.realm, self.password
        ));
        let ha2 = hex_md5(&format!("{method}:{path}"));
        let nonce = get("nonce");
        let expected = if get("qop") == "auth" {
            hex_md5(&format!(
                "{ha1}:{nonce}:{}:{}:auth:{ha2}",
                get("nc"),
                get("cnonce")
            ))
        } else {
            hex_md5(&format!("{ha1}:{nonce}:{ha2}"))
        };
        if get("response") != expected {
            return AuthCheck::Denied;
        }
        if nonce == self.nonce {
            AuthCheck::Ok
        } else if self.previous.as_deref() == Some(nonce) {
            AuthCheck::Stale
        } else {
            AuthCheck::Denied
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(r: &DigestRealm, user: &str, pass: &str, nonce: &str, path: &str) -> String {
        let ha1 = hex_md5(&format!("{user}:{}:{pass}", r.realm));
        let ha2 = hex_md5(&format!("GET:{path}"));
        let resp = hex_md5(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{path}\", qop=auth, nc=00000001, cnonce=\"abc\", response=\"{resp}\"",
            r.realm
        )
    }

    #[test]
    fn checks_answers() {
        let mut r = DigestRealm::new("antMiner Configuration", "root", "root", 7);
        let n1 = r.nonce.clone();
        let good = answer(&r, "root", "root", &n1, "/cgi-bin/x.cgi");
        assert_eq!(r.check(Some(&good), "GET", "/cgi-bin/x.cgi"), AuthCheck::Ok);
        assert_eq!(
            r.check(Some(&good), "GET", "/cgi-bin/y.cgi"),
            AuthCheck::Denied
        );
        let bad = answer(&r, "root", "nope", &n1, "/cgi-bin/x.cgi");
        assert_eq!(
            r.check(Some(&bad), "GET", "/cgi-bin/x.cgi"),
            AuthCheck::Denied
        );
        r.rotate();
        assert_eq!(
            r.check(Some(&good), "GET", "/cgi-bin/x.cgi"),
            AuthCheck::Stale
        );
        assert_eq!(r.check(None, "GET", "/"), AuthCheck::Denied);
        assert!(r.challenge(true).contains("stale=true"));
    }
}
