//! Stored logins against the simulators over real sockets on 127.0.0.1: an Antminer web
//! interface, a Braiins OS REST API and Whatsminers (API v2 and v3), each with a password that
//! is not the factory one. The logins come from a real credential store on disk.
//!
//! For each: the right stored login gets the command confirmed; only wrong ones give an
//! authentication error (never "offline") naming the usernames tried in order and no password;
//! a wrong device login with a right group login works (device first, then group), and the
//! login that worked is tried first next time (seen on the wire through a logging proxy, or in
//! the tokens the device issued). LuxOS is not here: its `logon` takes no password (§5.2).

use hashmesh_core::{Command, CommandResult};
use hashmesh_drivers::antminer::{AntminerDriver, web};
use hashmesh_drivers::braiins::BraiinsDriver;
use hashmesh_drivers::credentials::{CredentialStore, DeviceRef, Scope};
use hashmesh_drivers::whatsminer::WhatsminerDriver;
use hashmesh_drivers::{
    CredentialSet, Credentials, Driver, DriverError, Target, Timeouts, VerifyPolicy,
};
use hashmesh_sim::web::antminer::{AntminerWebConfig, spawn_antminer_web};
use hashmesh_sim::web::braiins::{BraiinsWebConfig, spawn_braiins_web};
use hashmesh_sim::{
    DeviceConfig, Family, RunningDevice, Timing, WhatsminerApi, WhatsminerConfig, spawn_device,
    spawn_whatsminer,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GROUP: &str = "site=A";

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(200),
        restart_timeout: Duration::from_secs(15),
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(2),
        max_reply_bytes: 1 << 20,
    }
}

/// A credential store in a fresh temporary data directory, removed on drop.
struct Store {
    dir: PathBuf,
    store: CredentialStore,
}

impl Store {
    fn new(entries: &[(&str, &str, &str)]) -> Store {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hashmesh-creds-sim-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::new(&dir);
        for (scope, user, password) in entries {
            let scope: Scope = scope.parse().unwrap_or_else(|e| panic!("{scope}: {e}"));
            store
                .set(&scope, &Credentials::new(*user, *password))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Store { dir, store }
    }

    /// The logins of the device at `target` in group [`GROUP`], read back from disk.
    fn logins(&self, target: &Target, family: &str) -> CredentialSet {
        let groups = vec![GROUP.to_owned()];
        self.store
            .unlock()
            .unwrap_or_else(|e| panic!("{e}"))
            .lookup(&DeviceRef {
                ip: target.ip,
                mac: None,
                groups: &groups,
                family,
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy that records what each side sent, to see logins on the wire.
struct Proxy {
    addr: SocketAddr,
    to_device: Arc<Mutex<Vec<u8>>>,
    from_device: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let to_device = Arc::new(Mutex::new(Vec::new()));
        let from_device = Arc::new(Mutex::new(Vec::new()));
        let (up_log, down_log) = (to_device.clone(), from_device.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, up_log.clone()));
                tokio::spawn(pipe(sr, cw, down_log.clone()));
            }
        });
        Proxy {
            addr,
            to_device,
            from_device,
        }
    }

    fn count(log: &Mutex<Vec<u8>>, needle: &str) -> usize {
        let bytes = log.lock().map(|l| l.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).matches(needle).count()
    }

    fn sent(&self, needle: &str) -> usize {
        Self::count(&self.to_device, needle)
    }

    fn received(&self, needle: &str) -> usize {
        Self::count(&self.from_device, needle)
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Ok(mut l) = log.lock() {
                    l.extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

async fn rpc_device(family: Family) -> Arc<RunningDevice> {
    let mut cfg = DeviceConfig::new(family, "Antminer S19 Pro");
    cfg.timing = Timing::fast();
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    Arc::new(
        spawn_device(cfg, addr)
            .await
            .unwrap_or_else(|e| panic!("spawn: {e}")),
    )
}

fn target_for(dev: &RunningDevice, web_port: u16) -> Target {
    let mut t = Target::new(dev.local_addr().ip());
    t.rpc_port = dev.local_addr().port();
    t.web_port = web_port;
    t.timeouts = timeouts();
    t
}

/// Asserts an authentication error (not offline) that names `users` in order, and no password.
fn assert_refused(r: Result<impl std::fmt::Debug, DriverError>, users: &[&str], secrets: &[&str]) {
    let e = match r {
        Err(e) => e,
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    };
    assert!(matches!(e, DriverError::Auth(_)), "{e:?}");
    assert!(!e.is_offline());
    assert_eq!(e.kind(), "auth");
    let msg = e.to_string();
    assert!(msg.starts_with("authentication failed"), "{msg}");
    let quoted: Vec<String> = users.iter().map(|u| format!("'{u}'")).collect();
    assert!(
        msg.contains(&format!("users {}", quoted.join(", "))),
        "usernames not named in order in: {msg}"
    );
    for s in secrets {
        assert!(!msg.contains(s), "password {s} in: {msg}");
    }
}

#[tokio::test]
async fn antminer_web_uses_the_stored_logins() {
    let dev = rpc_device(Family::Antminer).await;
    let web_cfg = AntminerWebConfig {
        password: "w3b-Secret".into(),
        ..AntminerWebConfig::default()
    };
    let web = spawn_antminer_web(
        dev.clone(),
        web_cfg,
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let proxy = Proxy::start(web.local_addr()).await;
    let mut target = target_for(&dev, proxy.addr.port());

    // The right password as the family's login: confirmed by read-back.
    let store = Store::new(&[("family:antminer", "root", "w3b-Secret")]);
    target.credentials = store.logins(&target, "antminer");
    let driver = AntminerDriver::new();
    let out = driver
        .execute(&target, &Command::LocateLed { on: true }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert!(web.led_on());

    // Only wrong logins: every one tried, device first, then group, family, factory default.
    let store = Store::new(&[
        ("device:127.0.0.1", "alice", "pw-a"),
        ("group:site=A", "bob", "pw-b"),
        ("family:antminer", "carol", "pw-c"),
    ]);
    target.credentials = store.logins(&target, "antminer");
    let fresh = AntminerDriver::new();
    let r = fresh.send(&target, &Command::Sleep).await;
    assert_refused(
        r,
        &["alice", "bob", "carol", "root"],
        &["pw-a", "pw-b", "pw-c"],
    );
    let out = fresh.execute(&target, &Command::Sleep, &policy()).await;
    assert_eq!(out.result, CommandResult::Failed);
    assert!(
        out.message.contains("authentication failed"),
        "{}",
        out.message
    );
    assert!(!dev.update(|s| s.sleeping));

    // A wrong device login and the right group login: the group's works, and is remembered.
    let store = Store::new(&[
        ("device:127.0.0.1", "root", "wrong-device-pw"),
        ("group:site=A", "root", "w3b-Secret"),
    ]);
    target.credentials = store.logins(&target, "antminer");
    let client = web::WebClient::new();
    web::blink(&client, &target, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!web.led_on());
    assert_eq!(
        client.login_in_use(&target).map(|c| c.password),
        Some("w3b-Secret".to_owned())
    );
    let refusals = proxy.received("401 Unauthorized");
    for on in [true, false, true] {
        web::blink(&client, &target, on)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(web.led_on());
    assert_eq!(
        proxy.received("401 Unauthorized"),
        refusals,
        "the refused device login was tried again"
    );

    // Nothing listening on the web port: offline, not an authentication failure.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    target.web_port = closed.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    drop(closed);
    let r = AntminerDriver::new().send(&target, &Command::Sleep).await;
    assert!(matches!(r, Err(DriverError::Connect(_))), "{r:?}");
}

#[tokio::test]
async fn braiins_rest_uses_the_stored_logins() {
    let dev = rpc_device(Family::Braiins).await;
    let cfg = BraiinsWebConfig {
        password: "b0s-Secret".into(),
        ..BraiinsWebConfig::default()
    };
    let web = spawn_braiins_web(
        dev.clone(),
        cfg,
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let proxy = Proxy::start(web.local_addr()).await;
    let mut target = target_for(&dev, proxy.addr.port());

    // Factory logins alone are refused, naming both tries of root.
    let r = BraiinsDriver::new()
        .send(&target, &Command::LocateLed { on: true })
        .await;
    assert_refused(r, &["root", "root"], &[]);

    let store = Store::new(&[("device:127.0.0.1", "root", "b0s-Secret")]);
    target.credentials = store.logins(&target, "braiins");
    let driver = BraiinsDriver::new();
    let out = driver
        .execute(&target, &Command::LocateLed { on: true }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert!(dev.update(|s| s.led));

    let store = Store::new(&[
        ("device:127.0.0.1", "alice", "pw-a"),
        ("group:site=A", "bob", "pw-b"),
        ("family:braiins", "carol", "pw-c"),
    ]);
    target.credentials = store.logins(&target, "braiins");
    let r = BraiinsDriver::new()
        .send(&target, &Command::LocateLed { on: false })
        .await;
    assert_refused(
        r,
        &["alice", "bob", "carol", "root", "root"],
        &["pw-a", "pw-b", "pw-c"],
    );
    assert!(dev.update(|s| s.led));

    // Device login wrong, group login right: device tried first, then the group's, which is
    // remembered: an expired session logs in again without the wrong password.
    let store = Store::new(&[
        ("device:127.0.0.1", "root", "wrong-device-pw"),
        ("group:site=A", "root", "b0s-Secret"),
    ]);
    target.credentials = store.logins(&target, "braiins");
    let driver = BraiinsDriver::new();
    let logins = web.logins();
    let out = driver
        .execute(&target, &Command::LocateLed { on: false }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let wrong = r#""password":"wrong-device-pw""#;
    let right = r#""password":"b0s-Secret""#;
    assert_eq!(proxy.sent(wrong), 1);
    let sent_right = proxy.sent(right);
    web.expire_sessions();
    let out = driver
        .execute(&target, &Command::LocateLed { on: true }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert_eq!(proxy.sent(wrong), 1, "the refused login was tried again");
    assert_eq!(proxy.sent(right), sent_right + 1);
    assert_eq!(web.logins(), logins + 2);
}

async fn whatsminer(api: WhatsminerApi, password: &str) -> hashmesh_sim::RunningWhatsminer {
    let model = match api {
        WhatsminerApi::V2 => "Whatsminer M50S",
        WhatsminerApi::V3 => "Whatsminer M60S",
    };
    let mut cfg = WhatsminerConfig::new(api, model);
    cfg.device.timing = Timing::fast();
    cfg.write_api_enabled = true;
    cfg.password = password.into();
    spawn_whatsminer(cfg, "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn whatsminer_target(dev: &hashmesh_sim::RunningWhatsminer) -> Target {
    let addr = dev.local_addr();
    let mut t = Target::new(addr.ip());
    t.rpc_port = addr.port();
    // A v2 device has nothing on the v3 port: port 1 on loopback refuses at once.
    t.whatsminer_v3_port = dev.v3_addr().map_or(1, |a| a.port());
    t.timeouts = timeouts();
    t
}

#[tokio::test]
async fn whatsminer_v2_uses_the_stored_logins() {
    let dev = whatsminer(WhatsminerApi::V2, "wm-Secret2").await;
    let mut t = whatsminer_target(&dev);
    let led = Command::LocateLed { on: true };

    let store = Store::new(&[
        ("device:127.0.0.1", "admin", "pw-a"),
        ("group:site=A", "admin2", "pw-b"),
    ]);
    t.credentials = store.logins(&t, "whatsminer");
    let r = WhatsminerDriver::new().send(&t, &led).await;
    assert_refused(r, &["admin", "admin2", "admin"], &["pw-a", "pw-b"]);

    // Wrong device login, right group login: one token per login tried, then none while the
    // right login's token is fresh.
    let store = Store::new(&[
        ("device:127.0.0.1", "admin", "wrong-device-pw"),
        ("group:site=A", "admin", "wm-Secret2"),
    ]);
    t.credentials = store.logins(&t, "whatsminer");
    let d = WhatsminerDriver::new();
    let before = dev.tokens_issued();
    let out = d.execute(&t, &led, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert_eq!(dev.tokens_issued(), before + 2);
    let out = d
        .execute(&t, &Command::LocateLed { on: false }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    assert_eq!(
        dev.tokens_issued(),
        before + 2,
        "the wrong login was tried again"
    );
}

#[tokio::test]
async fn whatsminer_v3_uses_the_stored_logins() {
    let dev = whatsminer(WhatsminerApi::V3, "wm-Secret3").await;
    let mut t = whatsminer_target(&dev);
    let target_w = Command::SetPowerTarget { power_w: 3000 };

    // Factory login refused.
    let r = WhatsminerDriver::new().send(&t, &target_w).await;
    assert_refused(r, &["super"], &[]);

    let store = Store::new(&[
        ("device:127.0.0.1", "alice", "pw-a"),
        ("family:whatsminer", "super", "pw-c"),
    ]);
    t.credentials = store.logins(&t, "whatsminer");
    let r = WhatsminerDriver::new().send(&t, &target_w).await;
    assert_refused(r, &["alice", "super", "super"], &["pw-a", "pw-c"]);

    let store = Store::new(&[
        ("device:127.0.0.1", "super", "wrong-device-pw"),
        ("group:site=A", "super", "wm-Secret3"),
    ]);
    t.credentials = store.logins(&t, "whatsminer");
    let d = WhatsminerDriver::new();
    let out = d.execute(&t, &target_w, &policy()).await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
    let out = d
        .execute(&t, &Command::SetPowerTarget { power_w: 3200 }, &policy())
        .await;
    assert_eq!(out.result, CommandResult::Confirmed, "{out:?}");
}
