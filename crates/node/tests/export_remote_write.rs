//! Remote-write and the text exposition format against a real VictoriaMetrics server started on
//! loopback (the `victoria-metrics` Debian package), plus a small scripted HTTP receiver for
//! the error paths (400 dropped, 5xx and 429 retried).
//!
//! Every test starts its own server on a free port with its own data folder; a guard kills it
//! on every path, panics included.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashmesh_node::export::prometheus::{MetricKind, TextEncoder};
use hashmesh_node::export::remote_write::{
    RemoteWriteConfig, RemoteWriteStats, RemoteWriter, TimeSeries,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// VictoriaMetrics on loopback
// ---------------------------------------------------------------------------------------------

fn vm_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VICTORIA_METRICS_BIN") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        let candidate = dir.join("victoria-metrics");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("victoria-metrics is not installed. {INSTALL_HINT}");
}

const INSTALL_HINT: &str = "These tests start a real VictoriaMetrics server: install the Debian \
     package (`apt-get install victoria-metrics`; scripts/test does it) or point \
     VICTORIA_METRICS_BIN at the binary.";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Raw samples by label set, oldest first.
type Exported = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

/// A VictoriaMetrics child process, killed on drop.
struct Vm {
    child: Child,
    port: u16,
    log: PathBuf,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// TLS files for a server and the client config that trusts them.
struct VmTls {
    cert: PathBuf,
    key: PathBuf,
    client: Arc<rustls::ClientConfig>,
}

impl Vm {
    fn start(port: u16, dir: &Path) -> Vm {
        Vm::start_with(port, dir, None)
    }

    fn start_with(port: u16, dir: &Path, tls: Option<&VmTls>) -> Vm {
        let log = dir.join("victoria-metrics.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(vm_binary());
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg("-retentionPeriod=100y")
            // Fresh samples visible at once, and no cached answers between two reads.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        if let Some(tls) = tls {
            cmd.arg("-tls")
                .arg(format!("-tlsCertFile={}", tls.cert.display()))
                .arg(format!("-tlsKeyFile={}", tls.key.display()));
        }
        // If this test process dies without running destructors (killed by a CI timeout),
        // the server must not outlive it holding a port and CPU.
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start victoria-metrics ({}): {e}. {INSTALL_HINT}",
                vm_binary().display()
            )
        });
        let mut vm = Vm {
            child,
            port,
            log,
            tls: tls.map(|t| t.client.clone()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) = vm.request("GET", "/health", b"")
                && body.trim() == "OK"
            {
                return vm;
            }
            if let Some(status) = vm.child.try_wait().unwrap() {
                panic!(
                    "victoria-metrics exited with {status}: {}",
                    std::fs::read_to_string(&vm.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics not healthy within 30 s: {}",
                std::fs::read_to_string(&vm.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// One HTTP/1.0 exchange (the server closes the connection after answering).
    fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        let mut answer = Vec::new();
        match &self.tls {
            None => {
                let mut tcp = tcp;
                tcp.write_all(head.as_bytes())?;
                tcp.write_all(body)?;
                tcp.read_to_end(&mut answer)?;
            }
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                tls.write_all(head.as_bytes())?;
                tls.write_all(body)?;
                if let Err(e) = tls.read_to_end(&mut answer) {
                    // A server that closes without close_notify still sent a whole answer.
                    if e.kind() != std::io::ErrorKind::UnexpectedEof || answer.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// Every raw sample of the series matching `selector`, once `ready` holds for what is
    /// visible and a second read 1.5 s later (VictoriaMetrics makes new rows searchable within
    /// about a second) shows the same, so a late duplicate cannot slip by.
    fn export(&self, selector: &str, ready: impl Fn(&Exported) -> bool) -> Exported {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.export_once(selector);
            if ready(&got) {
                std::thread::sleep(Duration::from_millis(1500));
                let again = self.export_once(selector);
                assert_eq!(
                    again, got,
                    "{selector}: data changed after it looked complete"
                );
                return again;
            }
            assert!(
                Instant::now() < deadline,
                "{selector}: never complete; last read {got:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn export_once(&self, selector: &str) -> Exported {
        let (status, _) = self.request("GET", "/internal/force_flush", b"").unwrap();
        assert_eq!(status, 200, "force_flush");
        let path = format!("/api/v1/export?match[]={}", percent_encode(selector));
        let (status, body) = self.request("GET", &path, b"").unwrap();
        assert_eq!(status, 200, "export: {body}");
        let mut out = Exported::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let (labels, samples) = parse_export_line(line);
            out.entry(labels).or_default().extend(samples);
        }
        for samples in out.values_mut() {
            samples.sort_by_key(|s| s.0);
        }
        out
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One line of `/api/v1/export`. VictoriaMetrics writes `+Inf`, `-Inf` and `NaN` bare in the
/// values array, which is not JSON, so that array is read by hand.
fn parse_export_line(line: &str) -> (BTreeMap<String, String>, Vec<(i64, f64)>) {
    let start = line.find("\"values\":[").expect("values") + "\"values\":[".len();
    let end = start + line[start..].find(']').expect("end of values");
    let values: Vec<f64> = line[start..end]
        .split(',')
        .map(|v| match v.trim() {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().unwrap(),
        })
        .collect();
    let json = format!("{}{}", &line[..start], &line[end..]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let labels = v["metric"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let timestamps: Vec<i64> = v["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(timestamps.len(), values.len());
    (labels, timestamps.into_iter().zip(values).collect())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        samples: samples.to_vec(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fast_config(url: String, queue_dir: &Path) -> RemoteWriteConfig {
    let mut config = RemoteWriteConfig::new(url, queue_dir);
    config.flush_interval = Duration::from_millis(20);
    config.timeout = Duration::from_secs(5);
    config.min_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    config
}

/// Waits (generously: this is about correctness, not speed) until `done` holds for the stats.
async fn wait_stats(
    writer: &RemoteWriter,
    what: &str,
    done: impl Fn(&RemoteWriteStats) -> bool,
) -> RemoteWriteStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = writer.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn queue_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".rwb")
        })
        .count()
}

// ---------------------------------------------------------------------------------------------
// Against VictoriaMetrics
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arrive_with_exact_values_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(free_port(), dir.path());
    let mut config = fast_config(vm.write_url(), &dir.path().join("queue"));
    config.external_labels = vec![("node".into(), "site-a".into())];
    config.headers = vec![("Authorization".into(), "Bearer not-checked-here".into())];
    let writer = RemoteWriter::spawn(config).unwrap();

    let t0 = now_ms() - 600_000;
    let hashrate = [(t0, 110.25), (t0 + 10_000, 109.5), (t0 + 20_000, 0.0)];
    let power = [(t0, 3250.0), (t0 + 10_000, -1.5), (t0 + 20_000, 1e10)];
    let temp = [(t0 + 5_000, f64::INFINITY), (t0 + 15_000, 71.125)];
    writer
        .push(vec![
            series(
                &[
                    ("__name__", "hashmesh_miner_hashrate_ths"),
                    ("device", "antminer-s19 \"rack 3\" \\ ü"),
                    ("site", "north"),
                ],
                &hashrate,
            ),
            series(
                &[
                    ("__name__", "hashmesh_miner_power_w"),
                    ("device", "m2"),
                    ("node", "own"),
                ],
                &power,
            ),
            series(
                &[
                    ("__name__", "hashmesh_miner_temp_c"),
                    ("device", "m3"),
                    ("rack", ""),
                ],
                &temp,
            ),
        ])
        .unwrap();
    let stats = wait_stats(&writer, "8 samples sent", |s| s.samples_sent == 8).await;
    assert_eq!(stats.queued_batches, 0);
    assert_eq!(stats.send_failures, 0);
    assert_eq!(stats.batches_sent, 1);

    let got = vm.export(r#"{__name__=~"hashmesh_miner_.*"}"#, |g| g.len() == 3);
    let mut want = BTreeMap::new();
    want.insert(
        labels(&[
            ("__name__", "hashmesh_miner_hashrate_ths"),
            ("device", "antminer-s19 \"rack 3\" \\ ü"),
            ("node", "site-a"),
            ("site", "north"),
        ]),
        hashrate.to_vec(),
    );
    // The series' own `node` label wins over the external one.
    want.insert(
        labels(&[
            ("__name__", "hashmesh_miner_power_w"),
            ("device", "m2"),
            ("node", "own"),
        ]),
        power.to_vec(),
    );
    // An empty label value means "no label".
    want.insert(
        labels(&[
            ("__name__", "hashmesh_miner_temp_c"),
            ("device", "m3"),
            ("node", "site-a"),
        ]),
        temp.to_vec(),
    );
    assert_eq!(got, want);
    writer.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_push_is_split_into_batches_and_all_of_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(free_port(), dir.path());
    let mut config = fast_config(vm.write_url(), &dir.path().join("queue"));
    config.batch_max_samples = 100;
    let writer = RemoteWriter::spawn(config).unwrap();

    let t0 = now_ms() - 3_600_000;
    let long: Vec<(i64, f64)> = (0..1000).map(|i| (t0 + i * 1000, i as f64 * 0.5)).collect();
    let mut pushed = vec![series(&[("__name__", "split_long")], &long)];
    for d in 0..150 {
        let device = format!("d{d:03}");
        pushed.push(series(
            &[("__name__", "split_wide"), ("device", &device)],
            &[(t0, d as f64)],
        ));
    }
    writer.push(pushed).unwrap();
    let stats = wait_stats(&writer, "1150 samples sent", |s| s.samples_sent == 1150).await;
    assert_eq!(
        stats.batches_sent, 12,
        "1150 samples in batches of at most 100"
    );
    assert!(stats.requests_sent <= 12);

    let got = vm.export(r#"{__name__="split_long"}"#, |g| {
        g.values().next().is_some_and(|s| s.len() == 1000)
    });
    assert_eq!(got[&labels(&[("__name__", "split_long")])], long);
    let wide = vm.export(r#"{__name__="split_wide"}"#, |g| g.len() == 150);
    assert_eq!(wide.len(), 150);
    for (labels, samples) in wide {
        let d: f64 = labels["device"][1..].parse().unwrap();
        assert_eq!(samples, vec![(t0, d)]);
    }
    writer.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let t0 = now_ms() - 1_800_000;
    let push_round = |writer: &RemoteWriter, round: i64| {
        let mut batch = Vec::new();
        for d in 0..4 {
            let device = format!("m{d}");
            let samples: Vec<(i64, f64)> = (0..3)
                .map(|i| {
                    (
                        t0 + round * 60_000 + i * 10_000,
                        (round * 100 + d * 10 + i) as f64,
                    )
                })
                .collect();
            batch.push(series(
                &[("__name__", "outage_power_w"), ("device", &device)],
                &samples,
            ));
        }
        writer.push(batch).unwrap();
    };

    // The receiver is down: pushes succeed, the queue grows on disk, sends are retried.
    let writer = RemoteWriter::spawn(fast_config(url.clone(), &queue_dir)).unwrap();
    for round in 0..3 {
        push_round(&writer, round);
    }
    let stats = wait_stats(&writer, "retries while down", |s| s.retries >= 3).await;
    assert_eq!(stats.samples_sent, 0);
    assert_eq!(stats.queued_batches, 3);
    assert_eq!(stats.queued_samples, 36);
    assert!(stats.send_failures >= 3);
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("127.0.0.1"),
        "{stats:?}"
    );
    assert_eq!(queue_files(&queue_dir), 3);

    // The process "restarts": the writer goes away and a new one resumes the same folder.
    drop(writer);
    let writer = RemoteWriter::spawn(fast_config(url, &queue_dir)).unwrap();
    let stats = writer.stats();
    assert_eq!((stats.queued_batches, stats.queued_samples), (3, 36));
    push_round(&writer, 3);
    wait_stats(&writer, "retries after restart", |s| s.retries >= 2).await;

    // The receiver comes back: everything arrives, exactly once.
    let vm = Vm::start(port, dir.path());
    let stats = wait_stats(&writer, "all 48 samples sent", |s| {
        s.samples_sent == 48 && s.queued_batches == 0
    })
    .await;
    assert_eq!(stats.dropped_samples + stats.rejected_samples, 0);
    assert_eq!(queue_files(&queue_dir), 0);
    let got = vm.export(r#"{__name__="outage_power_w"}"#, |g| {
        g.len() == 4 && g.values().all(|s| s.len() >= 12)
    });
    assert_eq!(got.len(), 4);
    for d in 0..4i64 {
        let device = format!("m{d}");
        let want: Vec<(i64, f64)> = (0..4)
            .flat_map(|round| {
                (0..3).map(move |i| {
                    (
                        t0 + round * 60_000 + i * 10_000,
                        (round * 100 + d * 10 + i) as f64,
                    )
                })
            })
            .collect();
        assert_eq!(
            got[&labels(&[("__name__", "outage_power_w"), ("device", &device)])],
            want,
            "{device}"
        );
    }
    writer.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_what_is_queued_without_waiting_for_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(free_port(), dir.path());
    let queue_dir = dir.path().join("queue");
    let mut config = fast_config(vm.write_url(), &queue_dir);
    config.flush_interval = Duration::from_secs(3600);
    let writer = RemoteWriter::spawn(config.clone()).unwrap();
    let t0 = now_ms() - 60_000;
    // The first push goes out at once (nothing was sent yet); the second waits for the hour.
    writer
        .push(vec![series(&[("__name__", "shutdown_a")], &[(t0, 1.0)])])
        .unwrap();
    wait_stats(&writer, "first push sent", |s| s.samples_sent == 1).await;
    writer
        .push(vec![series(&[("__name__", "shutdown_b")], &[(t0, 2.0)])])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        writer.stats().queued_batches,
        1,
        "held back by flush_interval"
    );
    let observer = writer.clone();
    writer.shutdown(Duration::from_secs(10)).await;
    let stats = observer.stats();
    assert_eq!((stats.samples_sent, stats.queued_batches), (2, 0));
    assert_eq!(
        vm.export(r#"{__name__="shutdown_b"}"#, |g| !g.is_empty())
            [&labels(&[("__name__", "shutdown_b")])],
        vec![(t0, 2.0)]
    );
    drop(observer);

    // With the receiver gone, shutdown gives up at its deadline and leaves the batch on disk.
    drop(vm);
    let writer = RemoteWriter::spawn(config).unwrap();
    writer
        .push(vec![series(&[("__name__", "shutdown_c")], &[(t0, 3.0)])])
        .unwrap();
    let started = Instant::now();
    writer.shutdown(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown must end"
    );
    assert_eq!(queue_files(&queue_dir), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_a_wrong_ca_is_refused() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let make_ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    };
    let ca = make_ca("hashmesh test CA");
    let other_ca = make_ca("some other CA");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = write("ca.pem", ca.pem());
    let other_ca_file = write("other-ca.pem", other_ca.pem());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = VmTls {
        cert: write("cert.pem", leaf.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        client: Arc::new(client),
    };
    let vm = Vm::start_with(free_port(), dir.path(), Some(&tls));
    let t0 = now_ms() - 60_000;

    let mut wrong = fast_config(vm.write_url(), &dir.path().join("queue-wrong"));
    wrong.tls_ca_file = Some(other_ca_file);
    let wrong = RemoteWriter::spawn(wrong).unwrap();
    wrong
        .push(vec![series(&[("__name__", "tls_refused")], &[(t0, 1.0)])])
        .unwrap();
    let stats = wait_stats(&wrong, "certificate failures", |s| s.send_failures >= 2).await;
    assert_eq!(stats.samples_sent, 0);
    let error = stats.last_error.unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    let mut config = fast_config(vm.write_url(), &dir.path().join("queue"));
    config.tls_ca_file = Some(ca_file);
    let writer = RemoteWriter::spawn(config).unwrap();
    writer
        .push(vec![series(
            &[("__name__", "tls_accepted"), ("via", "https")],
            &[(t0, 42.5)],
        )])
        .unwrap();
    let stats = wait_stats(&writer, "sent over TLS", |s| s.samples_sent == 1).await;
    assert_eq!(stats.send_failures, 0);
    assert_eq!(
        vm.export(r#"{__name__=~"tls_.*"}"#, |g| !g.is_empty()),
        BTreeMap::from([(
            labels(&[("__name__", "tls_accepted"), ("via", "https")]),
            vec![(t0, 42.5)]
        )])
    );
    writer.shutdown(Duration::from_secs(5)).await;
    wrong.shutdown(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_exposition_is_read_back_exactly_by_victoria_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(free_port(), dir.path());
    let mut enc = TextEncoder::new();
    enc.family(
        "expo_temp_c",
        "Chip temperature.\nSecond line \\ too.",
        MetricKind::Gauge,
    );
    enc.sample(
        "expo_temp_c",
        &[("device", "quote \" back \\ nl \n end")],
        71.5,
    );
    enc.sample("expo_temp_c", &[("device", "hot")], f64::INFINITY);
    enc.sample("expo_temp_c", &[("device", "cold")], f64::NEG_INFINITY);
    enc.family("expo.shares-accepted_total", "Shares.", MetricKind::Counter);
    enc.sample(
        "expo.shares-accepted_total",
        &[("pool-url", "stratum+tcp://x:3333")],
        123456789.0,
    );
    enc.family("expo_temp_c", "again", MetricKind::Gauge);
    enc.sample("expo_temp_c", &[("device", "small")], 1.5e-7);
    let page = enc.finish();

    let (status, body) = vm
        .request("POST", "/api/v1/import/prometheus", page.as_bytes())
        .unwrap();
    assert_eq!(status, 204, "{body}\n{page}");
    let got = vm.export(r#"{__name__=~"expo_.*"}"#, |g| g.len() == 5);
    let values: BTreeMap<BTreeMap<String, String>, f64> = got
        .into_iter()
        .map(|(labels, samples)| {
            assert_eq!(samples.len(), 1, "{labels:?}");
            (labels, samples[0].1)
        })
        .collect();
    let want = BTreeMap::from([
        (
            labels(&[
                ("__name__", "expo_temp_c"),
                ("device", "quote \" back \\ nl \n end"),
            ]),
            71.5,
        ),
        (
            labels(&[("__name__", "expo_temp_c"), ("device", "hot")]),
            f64::INFINITY,
        ),
        (
            labels(&[("__name__", "expo_temp_c"), ("device", "cold")]),
            f64::NEG_INFINITY,
        ),
        (
            labels(&[("__name__", "expo_temp_c"), ("device", "small")]),
            1.5e-7,
        ),
        (
            labels(&[
                ("__name__", "expo_shares_accepted_total"),
                ("pool_url", "stratum+tcp://x:3333"),
            ]),
            123456789.0,
        ),
    ]);
    assert_eq!(values, want);
}

// ---------------------------------------------------------------------------------------------
// A scripted receiver for the error paths
// ---------------------------------------------------------------------------------------------

/// Labels and samples of one series as decoded from a request.
type DecodedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// A scripted answer: status, extra header lines (each ending in CRLF), body.
type Answer = (u16, &'static str, &'static str);

/// One request the scripted receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    headers: BTreeMap<String, String>,
    series: Vec<DecodedSeries>,
}

/// A tiny HTTP/1.1 keep-alive receiver that answers from a script (then 204) and decodes
/// every request body.
struct Receiver {
    port: u16,
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver {
            port,
            script: Arc::default(),
            seen: Arc::default(),
            connections: Arc::default(),
        };
        let (script, seen, connections) = (
            receiver.script.clone(),
            receiver.seen.clone(),
            receiver.connections.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (script, seen) = (script.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut stream = tokio::io::BufReader::new(stream);
                    loop {
                        let mut headers = BTreeMap::new();
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            stream.read_line(&mut line).await.unwrap();
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            let (k, v) = l.split_once(':').unwrap();
                            headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                        }
                        let len: usize = headers["content-length"].parse().unwrap();
                        let mut body = vec![0; len];
                        stream.read_exact(&mut body).await.unwrap();
                        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
                        seen.lock().unwrap().push(Seen {
                            headers,
                            series: decode_write_request(&raw),
                        });
                        let (status, extra, text) =
                            script.lock().unwrap().pop_front().unwrap_or((204, "", ""));
                        let answer = format!(
                            "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n{extra}\r\n{text}",
                            text.len()
                        );
                        stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        receiver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Decodes a `WriteRequest` independently of the crate's encoder.
fn decode_write_request(buf: &[u8]) -> Vec<DecodedSeries> {
    fn varint(buf: &[u8], pos: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    /// (field number, payload bytes or the varint as 8 LE bytes)
    fn fields(buf: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let (mut pos, mut out) = (0, Vec::new());
        while pos < buf.len() {
            let key = varint(buf, &mut pos);
            let bytes = match key & 7 {
                0 => varint(buf, &mut pos).to_le_bytes().to_vec(),
                1 => {
                    pos += 8;
                    buf[pos - 8..pos].to_vec()
                }
                2 => {
                    let len = varint(buf, &mut pos) as usize;
                    pos += len;
                    buf[pos - len..pos].to_vec()
                }
                w => panic!("wire type {w}"),
            };
            out.push((key >> 3, bytes));
        }
        out
    }
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    fields(buf)
        .into_iter()
        .map(|(f, ts)| {
            assert_eq!(f, 1);
            let (mut labels, mut samples) = (Vec::new(), Vec::new());
            for (f, msg) in fields(&ts) {
                let parts = fields(&msg);
                if f == 1 {
                    let text = |i: usize| String::from_utf8(parts[i].1.clone()).unwrap();
                    labels.push((text(0), text(1)));
                } else {
                    samples.push((
                        u64_of(&parts[1].1) as i64,
                        f64::from_bits(u64_of(&parts[0].1)),
                    ));
                }
            }
            (labels, samples)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_drops_the_batch_and_5xx_or_429_are_retried() {
    let receiver = Receiver::start().await;
    receiver.script.lock().unwrap().extend([
        (400, "", "out of order sample for series a"),
        (503, "", "overloaded"),
        (429, "Retry-After: 0\r\n", "slow down"),
        (500, "", "oops"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(receiver.url(), dir.path());
    config.headers = vec![("Authorization".into(), "Bearer t0ken".into())];
    config.external_labels = vec![("node".into(), "n1".into())];
    let writer = RemoteWriter::spawn(config).unwrap();

    writer
        .push(vec![series(&[("__name__", "a")], &[(1, 1.0), (2, 2.0)])])
        .unwrap();
    let stats = wait_stats(&writer, "the 400", |s| s.rejected_batches == 1).await;
    assert_eq!(stats.rejected_samples, 2);
    assert_eq!(
        (stats.queued_batches, stats.samples_sent, stats.retries),
        (0, 0, 0)
    );
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("400") && error.contains("out of order sample"),
        "{error}"
    );

    writer
        .push(vec![series(
            &[("__name__", "b")],
            &[(3, 3.0), (4, 4.0), (5, -5.5)],
        )])
        .unwrap();
    let stats = wait_stats(&writer, "b delivered", |s| s.samples_sent == 3).await;
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.send_failures, 4);
    assert_eq!((stats.rejected_batches, stats.queued_batches), (1, 0));
    assert_eq!(queue_files(dir.path()), 0);

    let seen = receiver.seen();
    let names: Vec<&str> = seen.iter().map(|s| s.series[0].0[0].1.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b", "b", "b", "b"],
        "a once (dropped), b until accepted"
    );
    assert_eq!(
        seen[4].series,
        vec![(
            vec![
                ("__name__".into(), "b".into()),
                ("node".into(), "n1".into())
            ],
            vec![(3, 3.0), (4, 4.0), (5, -5.5)]
        )]
    );
    for s in &seen {
        assert_eq!(s.headers["content-encoding"], "snappy");
        assert_eq!(s.headers["content-type"], "application/x-protobuf");
        assert_eq!(s.headers["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(s.headers["authorization"], "Bearer t0ken");
    }
    assert_eq!(
        receiver.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
    writer.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pushes_are_merged_into_one_request_up_to_the_batch_limit() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(receiver.url(), dir.path());
    config.flush_interval = Duration::from_secs(3600);
    config.batch_max_samples = 5;
    let writer = RemoteWriter::spawn(config).unwrap();
    // The first push is sent at once; the next ones wait for the flush interval (an hour)
    // unless a whole batch is pending, so they pile up and go out merged.
    writer
        .push(vec![series(&[("__name__", "m0")], &[(0, 0.0)])])
        .unwrap();
    wait_stats(&writer, "first request", |s| s.requests_sent == 1).await;
    for i in 1..=7 {
        let name = format!("m{i}");
        writer
            .push(vec![series(&[("__name__", &name)], &[(i, i as f64)])])
            .unwrap();
    }
    let stats = wait_stats(&writer, "a full batch sent", |s| s.samples_sent == 6).await;
    assert_eq!((stats.requests_sent, stats.batches_sent), (2, 6));
    assert_eq!(
        stats.queued_batches, 2,
        "two left waiting for the flush interval"
    );
    let seen = receiver.seen();
    let names: Vec<Vec<String>> = seen
        .iter()
        .map(|s| s.series.iter().map(|(l, _)| l[0].1.clone()).collect())
        .collect();
    assert_eq!(names, [vec!["m0"], vec!["m1", "m2", "m3", "m4", "m5"]]);
    writer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(receiver.seen().len(), 3, "shutdown flushed the rest");
}

// ---------------------------------------------------------------------------------------------
// Figures (run on purpose: cargo test --release -p hashmesh-node --test export_remote_write
// -- --ignored --nocapture)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn measure_push_and_send_throughput_to_victoria_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(free_port(), dir.path());
    let mut config = RemoteWriteConfig::new(vm.write_url(), dir.path().join("queue"));
    config.queue_max_bytes = 2 << 30;
    config.flush_interval = Duration::from_millis(100);
    let writer = RemoteWriter::spawn(config).unwrap();

    // One poll cycle of 10,000 miners with 10 metrics each: 100,000 series of one sample.
    let devices = 10_000;
    let metrics = [
        "hashrate_ths",
        "power_w",
        "temp_c",
        "fan_rpm",
        "efficiency_j_per_th",
        "chip_temp_c",
        "inlet_temp_c",
        "accepted_total",
        "rejected_total",
        "uptime_s",
    ];
    let cycles = 10i64;
    let t0 = now_ms() - 3_600_000;
    let build = |cycle: i64| -> Vec<TimeSeries> {
        let mut out = Vec::with_capacity(devices * metrics.len());
        for d in 0..devices {
            let device = format!("miner-{d:05}");
            let rack = format!("r{:03}", d / 40);
            for (m, metric) in metrics.iter().enumerate() {
                out.push(series(
                    &[
                        ("__name__", &format!("hashmesh_miner_{metric}")),
                        ("device", &device),
                        ("model", "Antminer S19j Pro"),
                        ("rack", &rack),
                        ("site", "north"),
                    ],
                    &[(
                        t0 + cycle * 10_000,
                        (d * 10 + m) as f64 + cycle as f64 * 0.25,
                    )],
                ));
            }
        }
        out
    };
    let total = cycles as u64 * (devices * metrics.len()) as u64;
    let process_cpu_before = process_cpu();
    let mut build_cpu = Duration::ZERO;
    let started = Instant::now();
    let mut push_time = Duration::ZERO;
    for cycle in 0..cycles {
        let t = thread_cpu();
        let batch = build(cycle);
        build_cpu += thread_cpu() - t;
        let t = Instant::now();
        writer.push(batch).unwrap();
        push_time += t.elapsed();
    }
    let stats = wait_stats(&writer, "everything sent", |s| s.samples_sent == total).await;
    let elapsed = started.elapsed();
    // Everything this process spent except making up the test data: push, queue, sender, HTTP.
    let writer_cpu = process_cpu() - process_cpu_before - build_cpu;
    println!(
        "push (label check + protobuf + snappy + fsync'd queue file): {:.0} ns/sample, {:.2} M samples/s",
        push_time.as_nanos() as f64 / total as f64,
        total as f64 / push_time.as_secs_f64() / 1e6
    );
    println!(
        "end to end into VictoriaMetrics on the same 2 cores: {total} samples in {:.2} s = {:.0} samples/s ({} requests, {} failures)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        stats.requests_sent,
        stats.send_failures
    );
    println!(
        "writer CPU (push + queue + sender + HTTP, all threads): {:.0} ns/sample",
        writer_cpu.as_nanos() as f64 / total as f64
    );
    let got = vm.export(
        r#"{__name__="hashmesh_miner_power_w",device="miner-00042"}"#,
        |g| {
            g.values()
                .next()
                .is_some_and(|s| s.len() >= cycles as usize)
        },
    );
    assert_eq!(got.values().next().map(Vec::len), Some(cycles as usize));
    writer.shutdown(Duration::from_secs(5)).await;
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}
