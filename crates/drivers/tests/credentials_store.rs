//! The credential store through real files in a temporary data directory: round trip, the key
//! file's mode, no password in the credential file, clear errors for a tampered entry, a wrong
//! or missing key and a corrupt file (which is then left as it was), lookup order, and many
//! writers at once without a lost entry or a half-written file.

use hashmesh_drivers::Credentials;
use hashmesh_drivers::credentials::{
    Change, CredentialError, CredentialStore, DeviceRef, Keyring, Scope,
};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hashmesh-creds-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    /// A data directory inside (not created yet: the store creates it).
    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scope(s: &str) -> Scope {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn login(u: &str, p: &str) -> Credentials {
    Credentials::new(u, p)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn unlock(store: &CredentialStore) -> Keyring {
    store.unlock().unwrap_or_else(|e| panic!("{e}"))
}

fn pairs(set: &hashmesh_drivers::CredentialSet) -> Vec<(String, String)> {
    set.configured()
        .iter()
        .map(|c| (c.username.clone(), c.password.clone()))
        .collect()
}

#[test]
fn round_trip_through_real_files() {
    let tmp = TempDir::new("roundtrip");
    let store = CredentialStore::new(tmp.data());
    assert!(!store.exists());
    assert_eq!(store.list().ok(), Some(Vec::new()));
    assert!(unlock(&store).is_empty());

    let secret = "Sup3r-S3cret!pw";
    let dev = scope("device:10.1.2.3");
    assert_eq!(
        store.set(&dev, &login("root", secret)).ok(),
        Some(Change::Added)
    );
    assert_eq!(
        store
            .set(&scope("group:site=A"), &login("admin", "group-pw"))
            .ok(),
        Some(Change::Added)
    );
    assert_eq!(
        store.set(&dev, &login("root", "newer-pw")).ok(),
        Some(Change::Replaced)
    );
    assert_eq!(
        store.set(&dev, &login("root", secret)).ok(),
        Some(Change::Replaced)
    );

    // Key file: 0600, never inside the credential file.
    let key_mode = std::fs::metadata(store.key_path())
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "{key_mode:o}");
    let key_text = std::fs::read_to_string(store.key_path()).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::read_to_string(store.file_path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.contains(secret), "the password is in clear: {file}");
    assert!(!file.contains("group-pw"), "{file}");
    assert!(!file.contains(key_text.trim()), "the key is in the file");
    assert!(
        file.contains("\"root\"") && file.contains("device:10.1.2.3"),
        "{file}"
    );
    // No temp files left behind.
    let names: Vec<String> = std::fs::read_dir(store.data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    // Listing shows scopes and usernames only, in file order.
    let listed: Vec<(String, String)> = store
        .list()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|e| (e.scope.to_string(), e.username))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("device:10.1.2.3".to_owned(), "root".to_owned()),
            ("group:site=A".to_owned(), "admin".to_owned())
        ]
    );

    // A second process (a fresh store value) reads the same logins back.
    let again = CredentialStore::new(tmp.data());
    let set = unlock(&again)
        .lookup(&DeviceRef {
            ip: ip("10.1.2.3"),
            mac: None,
            groups: &["site=A".to_owned()],
            family: "antminer",
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        pairs(&set),
        vec![
            ("root".to_owned(), secret.to_owned()),
            ("admin".to_owned(), "group-pw".to_owned())
        ]
    );
    assert!(set.tries_factory_defaults());

    assert_eq!(store.remove(&scope("group:site=A")).ok(), Some(true));
    assert_eq!(store.remove(&scope("group:site=A")).ok(), Some(false));
    assert_eq!(store.list().map(|l| l.len()).ok(), Some(1));
}

#[test]
fn lookup_order_is_device_then_groups_then_family() {
    let tmp = TempDir::new("order");
    let store = CredentialStore::new(tmp.data());
    for (s, u) in [
        ("family:antminer", "fam"),
        ("group:rack=A/C01/R03", "rack"),
        ("group:site=A", "site"),
        ("device:10.0.0.9", "by-ip"),
        ("device:AA-BB-CC-00-11-22", "by-mac"),
        ("device:10.0.0.10", "other-device"),
        ("family:braiins", "other-family"),
    ] {
        store
            .set(&scope(s), &login(u, &format!("{u}-pw")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let keyring = unlock(&store);
    let groups = vec!["site=A".to_owned(), "rack=A/C01/R03".to_owned()];
    let users = |mac: Option<&str>, groups: &[String]| -> Vec<String> {
        keyring
            .lookup(&DeviceRef {
                ip: ip("10.0.0.9"),
                mac,
                groups,
                family: "antminer",
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .configured()
            .iter()
            .map(|c| c.username.clone())
            .collect()
    };
    assert_eq!(
        users(Some("aa:bb:cc:00:11:22"), &groups),
        vec!["by-mac", "by-ip", "site", "rack", "fam"]
    );
    // Groups in the order given; no MAC known; unknown groups ignored.
    let reversed: Vec<String> = groups.iter().rev().cloned().collect();
    assert_eq!(users(None, &reversed), vec!["by-ip", "rack", "site", "fam"]);
    assert_eq!(users(None, &["tag=none".to_owned()]), vec!["by-ip", "fam"]);
    // A device with nothing of its own gets its family's entry; another family nothing.
    let set = keyring
        .lookup(&DeviceRef {
            ip: ip("10.0.0.77"),
            mac: None,
            groups: &[],
            family: "whatsminer",
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(set.is_empty());
}

#[test]
fn tampered_entries_are_named_and_spare_the_others() {
    let tmp = TempDir::new("tamper");
    let store = CredentialStore::new(tmp.data());
    store
        .set(&scope("device:10.0.0.1"), &login("root", "pw-alpha"))
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .set(&scope("device:10.0.0.2"), &login("root", "pw-bravo"))
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .set(&scope("device:10.0.0.3"), &login("root", "pw-charlie"))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = store.file_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    // Entry 1: one ciphertext character changed. Entry 2: its username edited in clear.
    let sealed = v["entries"][0]["password_sealed"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut chars: Vec<char> = sealed.chars().collect();
    chars[4] = if chars[4] == 'A' { 'B' } else { 'A' };
    v["entries"][0]["password_sealed"] = chars.into_iter().collect::<String>().into();
    v["entries"][1]["username"] = "admin".into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));

    let keyring = unlock(&store);
    assert_eq!(keyring.problems().len(), 2);
    for (addr, bad) in [("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)] {
        let r = keyring.lookup(&DeviceRef {
            ip: ip(addr),
            mac: None,
            groups: &[],
            family: "antminer",
        });
        match r {
            Err(e @ CredentialError::Tampered { .. }) if bad => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("device:{addr}")), "{msg}");
                assert!(!msg.contains("pw-"), "a password in the error: {msg}");
            }
            Ok(set) if !bad => {
                assert_eq!(pairs(&set), vec![("root".into(), "pw-charlie".into())])
            }
            other => panic!("{addr}: {other:?}"),
        }
        // The lenient lookup (scans) skips the bad entry instead of failing.
        let lenient = keyring.lookup_lenient(&DeviceRef {
            ip: ip(addr),
            mac: None,
            groups: &[],
            family: "antminer",
        });
        assert_eq!(lenient.is_empty(), bad);
    }
    // Setting a tampered entry again repairs it.
    store
        .set(&scope("device:10.0.0.1"), &login("root", "pw-alpha"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unlock(&store).problems().len(), 1);
}

#[test]
fn wrong_or_missing_key_and_corrupt_files_are_clear_errors() {
    let tmp = TempDir::new("keys");
    let store = CredentialStore::new(tmp.data());
    let dev = scope("device:10.0.0.1");
    store
        .set(&dev, &login("root", "pw"))
        .unwrap_or_else(|e| panic!("{e}"));
    let good_key = std::fs::read(store.key_path()).unwrap_or_else(|e| panic!("{e}"));
    let file_before = std::fs::read(store.file_path()).unwrap_or_else(|e| panic!("{e}"));

    // Another key: named as such, for reads and writes; the file is left as it was.
    std::fs::write(store.key_path(), format!("{}\n", "ab".repeat(32)))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = store.unlock().err();
    assert!(
        matches!(err, Some(CredentialError::WrongKey { .. })),
        "{err:?}"
    );
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("credentials.key") && msg.contains("credentials.json"),
        "{msg}"
    );
    let err = store
        .set(&scope("device:10.0.0.2"), &login("root", "x"))
        .err();
    assert!(
        matches!(err, Some(CredentialError::WrongKey { .. })),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(store.file_path()).ok(),
        Some(file_before.clone())
    );

    // Not a key at all.
    std::fs::write(store.key_path(), "not a key\n").unwrap_or_else(|e| panic!("{e}"));
    let err = store.unlock().err();
    assert!(
        matches!(err, Some(CredentialError::BadKeyFile { .. })),
        "{err:?}"
    );

    // No key: reads and writes refuse, and no new key is made that would orphan the entries.
    std::fs::remove_file(store.key_path()).unwrap_or_else(|e| panic!("{e}"));
    let err = store.unlock().err();
    assert!(
        matches!(err, Some(CredentialError::MissingKey { entries: 1, .. })),
        "{err:?}"
    );
    let err = store
        .set(&scope("device:10.0.0.2"), &login("root", "x"))
        .err();
    assert!(
        matches!(err, Some(CredentialError::MissingKey { .. })),
        "{err:?}"
    );
    assert!(!store.key_path().exists());
    // Listing and removing need no key.
    assert_eq!(store.list().map(|l| l.len()).ok(), Some(1));

    // The right key back: all is well again.
    std::fs::write(store.key_path(), &good_key).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unlock(&store).problems().len(), 0);

    // A corrupt file is an error that names it, and a write does not replace it.
    for junk in [&b"{ not json"[..], b"", br#"{"format":"other/9","cipher":"x","key_id":"","entries":[]}"#,
        br#"{"format":"hashmesh-credentials/1","cipher":"xchacha20poly1305","key_id":"","entries":[{"scope":"rack:1","username":"u","nonce":"","password_sealed":""}]}"#]
    {
        std::fs::write(store.file_path(), junk).unwrap_or_else(|e| panic!("{e}"));
        let err = store.unlock().err();
        assert!(matches!(err, Some(CredentialError::Corrupt { .. })), "{err:?}");
        assert!(err.map(|e| e.to_string()).unwrap_or_default().contains("credentials.json"));
        let err = store.set(&dev, &login("root", "pw")).err();
        assert!(matches!(err, Some(CredentialError::Corrupt { .. })), "{err:?}");
        assert_eq!(std::fs::read(store.file_path()).ok(), Some(junk.to_vec()));
    }
}

#[test]
fn bad_scopes_and_logins_are_refused_before_writing() {
    let tmp = TempDir::new("invalid");
    let store = CredentialStore::new(tmp.data());
    for bad in [
        login("", "pw"),
        login("root", "two\nlines"),
        login("ro\u{7}ot", "pw"),
    ] {
        let err = store.set(&scope("family:antminer"), &bad).err();
        assert!(matches!(err, Some(CredentialError::Invalid(_))), "{err:?}");
    }
    assert!(
        !store.data_dir().exists(),
        "nothing written for refused input"
    );
    assert!(Scope::family("avalon").is_err());
    assert!(Scope::device("10.0.0.300").is_err());
}

#[test]
fn concurrent_writers_lose_nothing_and_readers_see_whole_files() {
    let tmp = TempDir::new("concurrent");
    let data = tmp.data();
    let writers = 8;
    let per_writer = 6;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader polls the file the whole time: it must always parse (rename is atomic).
    let reader = {
        let data = data.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let store = CredentialStore::new(&data);
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                if store.exists() {
                    if let Err(e) = store.list() {
                        return Err(format!("read a broken file: {e}"));
                    }
                    reads += 1;
                }
            }
            Ok(reads)
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let data = data.clone();
            std::thread::spawn(move || {
                // Each writer has a store value of its own, as separate processes would.
                let store = CredentialStore::new(&data);
                for i in 0..per_writer {
                    let s = scope(&format!("device:10.9.{w}.{}", i + 1));
                    store
                        .set(&s, &login("root", &format!("pw-{w}-{i}")))
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .unwrap_or_else(|_| Err("writer panicked".into()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .unwrap_or_else(|_| Err("reader panicked".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reads > 0);
    let store = CredentialStore::new(&data);
    assert_eq!(
        store.list().map(|l| l.len()).ok(),
        Some(writers * per_writer)
    );
    let keyring = unlock(&store);
    assert!(keyring.problems().is_empty());
    for w in 0..writers {
        for i in 0..per_writer {
            let set = keyring
                .lookup(&DeviceRef {
                    ip: ip(&format!("10.9.{w}.{}", i + 1)),
                    mac: None,
                    groups: &[],
                    family: "antminer",
                })
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pairs(&set), vec![("root".into(), format!("pw-{w}-{i}"))]);
        }
    }
}
