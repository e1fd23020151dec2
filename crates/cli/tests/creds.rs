//! `hashmesh creds` and the stored logins over the real binary: a password set with
//! `--password-stdin` is listed without the password and stored sealed; `miner do` against a
//! simulated Antminer whose web password was changed fails with "authentication failed"
//! without it and is confirmed with it (device, then group logins); a wrong key file is a clear
//! error. The simulated device runs in this test process at its real ports (4028 and 80) on an
//! address of its own.

use hashmesh_sim::web::antminer::{AntminerWebConfig, RunningAntminerWeb, spawn_antminer_web};
use hashmesh_sim::{DeviceConfig, Family, RunningDevice, Timing, spawn_device};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");
const IP: &str = "127.68.0.1";
const PASSWORD: &str = "Cli-S3cret-pw";

/// Runs the binary with `stdin` fed in: (success, stdout, stderr).
async fn hashmesh(args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("HASHMESH_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start hashmesh");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .await
            .expect("write stdin");
    }
    let out = child.wait_with_output().await.expect("run hashmesh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn antminer_with_password(password: &str) -> (Arc<RunningDevice>, RunningAntminerWeb) {
    let mut cfg = DeviceConfig::new(Family::Antminer, "Antminer S19 Pro");
    cfg.timing = Timing::fast();
    let dev = Arc::new(
        spawn_device(cfg, format!("{IP}:4028").parse().expect("address"))
            .await
            .expect("bind the simulated Antminer at 4028"),
    );
    let web_cfg = AntminerWebConfig {
        password: password.into(),
        ..AntminerWebConfig::default()
    };
    let web = spawn_antminer_web(
        dev.clone(),
        web_cfg,
        format!("{IP}:80").parse().expect("address"),
    )
    .await
    .expect("bind the simulated web interface at 80");
    (dev, web)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hashmesh-cli-creds-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn outcome(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_logins_reach_a_device_with_a_changed_password() {
    let (dev, web) = antminer_with_password(PASSWORD).await;
    let dir = temp_dir("e2e");
    let data = dir.join("data");
    let data_s = data.to_str().expect("utf-8 path").to_owned();
    let d = data_s.as_str();
    let led = |state: &'static str| {
        let data = d.to_owned();
        async move {
            hashmesh(
                &[
                    "miner",
                    "do",
                    IP,
                    "--json",
                    "--verify-timeout-s",
                    "10",
                    "--data-dir",
                    &data,
                    "led",
                    state,
                ],
                "",
                &[],
            )
            .await
        }
    };

    // No store: the factory login is refused, and that is what the outcome says.
    let (ok, stdout, stderr) = led("on").await;
    assert!(!ok, "{stdout} {stderr}");
    let out = outcome(&stdout);
    assert_eq!(out["result"], "failed", "{out}");
    let msg = out["message"].as_str().unwrap_or_default();
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(msg.contains("'root'"), "{msg}");
    assert!(
        !msg.contains("offline") && !msg.contains("refused or unreachable"),
        "{msg}"
    );
    assert!(!web.led_on());

    // A password is never a flag; without --password-stdin and no terminal, a clear refusal.
    let (ok, _, stderr) = hashmesh(
        &[
            "creds",
            "set",
            "--device",
            IP,
            "--username",
            "root",
            "--password",
            PASSWORD,
            "--data-dir",
            d,
        ],
        "",
        &[],
    )
    .await;
    assert!(!ok && stderr.contains("--password"), "{stderr}");
    let (ok, _, stderr) = hashmesh(
        &[
            "creds",
            "set",
            "--device",
            IP,
            "--username",
            "root",
            "--data-dir",
            d,
        ],
        "",
        &[],
    )
    .await;
    assert!(!ok && stderr.contains("--password-stdin"), "{stderr}");
    assert!(!data.join("credentials.json").exists());

    // Set through stdin.
    let (ok, stdout, stderr) = hashmesh(
        &[
            "creds",
            "set",
            "--device",
            IP,
            "--username",
            "root",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("added device:{IP} (user root)"));
    assert!(
        stderr.contains("credentials.key"),
        "the new key file is announced: {stderr}"
    );

    // On disk: no password in the credential file, the key file 0600.
    let file = std::fs::read_to_string(data.join("credentials.json")).expect("credential file");
    assert!(!file.contains(PASSWORD), "{file}");
    let mode = std::fs::metadata(data.join("credentials.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // List (the data directory from the environment this time): scopes and users only.
    let (ok, stdout, stderr) =
        hashmesh(&["creds", "list"], "", &[("HASHMESH_DATA_DIR", &data)]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("device:{IP}")) && stdout.contains("root"),
        "{stdout}"
    );
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    let (ok, stdout, _) = hashmesh(&["creds", "list", "--json", "--data-dir", d], "", &[]).await;
    assert!(ok);
    let list: Value = serde_json::from_str(&stdout).expect("list --json is JSON");
    assert_eq!(list[0]["scope"], format!("device:{IP}"), "{list}");
    assert_eq!(
        (&list[0]["username"], &list[0]["readable"]),
        (&"root".into(), &true.into())
    );
    assert!(!stdout.contains(PASSWORD));

    // Now the command goes through and is confirmed by read-back.
    let (ok, stdout, stderr) = led("on").await;
    assert!(ok, "{stdout} {stderr}");
    assert_eq!(outcome(&stdout)["result"], "confirmed", "{stdout}");
    assert!(web.led_on());
    // Identification reads the web details (MAC) with the stored login too.
    let (ok, stdout, stderr) =
        hashmesh(&["miner", "get", IP, "--json", "--data-dir", d], "", &[]).await;
    assert!(ok, "{stderr}");
    let got = outcome(&stdout);
    assert_eq!(
        got["identity"]["mac"],
        dev.config().mac.to_ascii_uppercase(),
        "{got}"
    );

    // A group login, used only for devices said to be in the group; the device's own wrong
    // login is tried first and does not stop it.
    let set = |args: Vec<String>, pw: &'static str| {
        let d = d.to_owned();
        async move {
            let mut all: Vec<String> = vec!["creds".into(), "set".into()];
            all.extend(args);
            all.extend([
                "--username".into(),
                "root".into(),
                "--password-stdin".into(),
            ]);
            all.extend(["--data-dir".into(), d]);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            hashmesh(&refs, pw, &[]).await
        }
    };
    let (ok, stdout, _) = set(vec!["--device".into(), IP.into()], "wrong-device-pw\n").await;
    assert!(ok && stdout.starts_with("replaced"), "{stdout}");
    let (ok, _, _) = set(vec!["--group".into(), "site=cli".into()], "Cli-S3cret-pw").await;
    assert!(ok);
    let (ok, stdout, _) = led("off").await;
    assert!(
        !ok,
        "without --group the group login does not apply: {stdout}"
    );
    let (ok, stdout, stderr) = hashmesh(
        &[
            "miner",
            "do",
            IP,
            "--json",
            "--verify-timeout-s",
            "10",
            "--data-dir",
            d,
            "--group",
            "site=cli",
            "led",
            "off",
        ],
        "",
        &[],
    )
    .await;
    assert!(ok, "{stdout} {stderr}");
    assert_eq!(outcome(&stdout)["result"], "confirmed", "{stdout}");
    assert!(!web.led_on());

    // Remove by the scope `list` prints; removing again is an error.
    let (ok, stdout, _) = hashmesh(
        &["creds", "remove", "group:site=cli", "--data-dir", d],
        "",
        &[],
    )
    .await;
    assert!(ok && stdout.contains("removed group:site=cli"), "{stdout}");
    let (ok, _, stderr) = hashmesh(
        &["creds", "remove", "group:site=cli", "--data-dir", d],
        "",
        &[],
    )
    .await;
    assert!(!ok && stderr.contains("no login stored"), "{stderr}");
    let (ok, _, stderr) = hashmesh(&["creds", "remove", "rack:1", "--data-dir", d], "", &[]).await;
    assert!(!ok && stderr.contains("not a scope"), "{stderr}");

    // Another key file: every command that needs the store says so, nothing is guessed.
    std::fs::write(
        data.join("credentials.key"),
        format!("{}\n", "cd".repeat(32)),
    )
    .expect("write");
    let (ok, _, stderr) = led("on").await;
    assert!(!ok);
    assert!(
        stderr.contains("credentials.key") && stderr.contains("does not belong"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = hashmesh(&["creds", "list", "--data-dir", d], "", &[]).await;
    assert!(ok, "listing needs no key: {stderr}");
    assert!(stdout.contains("key unavailable"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
