//! `hashmesh user` end to end over the real binary: add a user with the password on stdin,
//! list users (never hashes), change the password, make a token (printed once) and revoke it.
//! What the binary wrote is checked by opening the same auth database from the library.

use hashmesh_node::auth::store::{AuthStore, PasswordCheck};
use hashmesh_node::auth::{Clock, Role};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");

/// A data directory of its own, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> DataDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "hashmesh-user-cli-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `hashmesh user …` with `stdin`; returns success, stdout, stderr.
fn user(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("HASHMESH_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hashmesh user");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn password_works(dir: &Path, name: &str, password: &str) -> bool {
    let store = AuthStore::open_existing_in(dir).unwrap();
    matches!(
        store.check_password(name, password).unwrap(),
        PasswordCheck::Ok(_)
    )
}

#[test]
fn add_list_passwd_and_tokens_over_the_real_binary() {
    let dir = DataDir::new("all");
    let d = &dir.0;

    // Before any user exists, list explains what to do.
    let (ok, _, err) = user(d, &["list"], "");
    assert!(!ok);
    assert!(err.contains("hashmesh user add"), "{err}");

    let (ok, _, err) = user(
        d,
        &["add", "alice", "--role", "admin", "--password-stdin"],
        "first password 1\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("added alice (admin)"), "{err}");
    let (ok, _, err) = user(
        d,
        &["add", "bob", "--role", "operator", "--password-stdin"],
        "bobs password\r\n",
    );
    assert!(ok, "{err}");
    assert!(password_works(d, "alice", "first password 1"));
    assert!(
        password_works(d, "bob", "bobs password"),
        "CRLF is stripped"
    );

    // A second alice, a bad role, a short password and no terminal are all refused.
    let (ok, _, err) = user(
        d,
        &["add", "Alice", "--role", "viewer", "--password-stdin"],
        "whatever pass\n",
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = user(
        d,
        &["add", "carol", "--role", "root", "--password-stdin"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("unknown role 'root'"), "{err}");
    let (ok, _, err) = user(
        d,
        &["add", "carol", "--role", "viewer", "--password-stdin"],
        "short\n",
    );
    assert!(!ok);
    assert!(err.contains("too short"), "{err}");
    let (ok, _, err) = user(d, &["add", "carol", "--role", "viewer"], "");
    assert!(!ok);
    assert!(err.contains("--password-stdin"), "{err}");

    // list: both users, no hash, as a table and as JSON.
    let (ok, out, _) = user(d, &["list"], "");
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("USERNAME"), "{out}");
    assert!(
        lines[1].starts_with("alice") && lines[1].contains("admin"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("bob") && lines[2].contains("operator"),
        "{out}"
    );
    let (ok, out, _) = user(d, &["list", "--json"], "");
    assert!(ok);
    let users: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["disabled"], false);
    assert!(users[0]["created_unix_ms"].as_i64().unwrap() > 1_704_067_200_000);
    for text in [&out, &user(d, &["list"], "").1] {
        assert!(!text.contains("argon2"), "{text}");
        assert!(!text.contains("first password"), "{text}");
    }

    // passwd: the old password stops working, the new one works.
    let (ok, _, err) = user(
        d,
        &["passwd", "bob", "--password-stdin"],
        "bobs new password\n",
    );
    assert!(ok, "{err}");
    assert!(!password_works(d, "bob", "bobs password"));
    assert!(password_works(d, "bob", "bobs new password"));
    let (ok, _, err) = user(
        d,
        &["passwd", "nobody", "--password-stdin"],
        "x long password\n",
    );
    assert!(!ok);
    assert!(err.contains("no user 'nobody'"), "{err}");

    // token: printed once on stdout, stored only hashed, usable, then revoked.
    let (ok, out, err) = user(
        d,
        &["token", "bob", "--name", "grafana", "--role", "viewer"],
        "",
    );
    assert!(ok, "{err}");
    let token = out.trim();
    assert!(token.starts_with("hm_") && token.len() == 46, "{out}");
    assert!(err.contains("shown only this once"), "{err}");
    let store = AuthStore::open_existing_in(d).unwrap();
    let used = store
        .use_token(token, Clock::System.now_unix_ms())
        .unwrap()
        .unwrap();
    assert_eq!(
        (used.user.username.as_str(), used.role),
        ("bob", Role::Viewer)
    );
    let (ok, out, _) = user(d, &["token", "bob"], "");
    assert!(ok);
    assert!(out.contains("grafana") && out.contains("active"), "{out}");
    assert!(
        !out.contains(token),
        "the list never shows the token: {out}"
    );
    let (ok, _, err) = user(d, &["token", "bob", "--name", "x", "--role", "admin"], "");
    assert!(!ok);
    assert!(err.contains("cannot have the admin role"), "{err}");

    let id = used.token_id.to_string();
    let (ok, _, err) = user(d, &["token", "alice", "--revoke", &id], "");
    assert!(!ok, "a token is revoked through its own user");
    assert!(err.contains(&format!("no API token {id}")), "{err}");
    let (ok, _, err) = user(d, &["token", "bob", "--revoke", &id], "");
    assert!(ok, "{err}");
    assert_eq!(
        store.use_token(token, Clock::System.now_unix_ms()).unwrap(),
        None
    );
    let (_, out, _) = user(d, &["token", "bob"], "");
    assert!(out.contains("revoked"), "{out}");
}
