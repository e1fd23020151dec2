//! Prometheus remote-write: pushes series to a receiver (VictoriaMetrics, Prometheus, …)
//! through a bounded on-disk queue, so an outage of the receiver loses nothing.
//!
//! The parts, in the order data goes through them:
//!
//! - [`RemoteWriter::push`] (this file) checks and labels the series, splits them into batches
//!   of at most `batch_max_samples`, encodes them (`proto`) and compresses them (snappy block).
//! - `queue` writes each batch as a checksummed file before `push` returns.
//! - `sender` POSTs the oldest batches through `client`, deletes them once the receiver
//!   answers 2xx, drops them on other 4xx, and retries 5xx, 429 and connection errors with
//!   jittered exponential backoff.
//!
//! Delivery is at-least-once: a batch whose 2xx answer is lost (crash, timeout right after
//! the receiver stored it) is sent again.

mod client;
mod proto;
mod queue;
mod sender;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ExportError;
use super::names::{is_valid_label_name, is_valid_metric_name};
use queue::{NewBatch, Queue, QueueLock};

/// Where and how to remote-write.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// The receiver's endpoint, e.g. `http://127.0.0.1:8428/api/v1/write` (http or https).
    pub url: String,
    /// The folder of the on-disk queue; one writer at a time may use it.
    pub queue_dir: PathBuf,
    /// Bound of the queue on disk; beyond it the oldest batches are dropped and counted.
    pub queue_max_bytes: u64,
    /// Most samples in one batch and one request; larger pushes are split.
    pub batch_max_samples: usize,
    /// Send at least this often when anything is pending.
    pub flush_interval: Duration,
    /// Deadline of one request, answer included.
    pub timeout: Duration,
    /// First retry delay after a failure (jittered, doubled at each further failure).
    pub min_backoff: Duration,
    /// Cap of the retry delay.
    pub max_backoff: Duration,
    /// Extra request headers, e.g. `("Authorization", "Bearer …")`.
    pub headers: Vec<(String, String)>,
    /// Labels added to every series that lacks them (e.g. `node="site-a"`).
    pub external_labels: Vec<(String, String)>,
    /// PEM file of extra root certificates trusted for an `https` url (beside the system's).
    pub tls_ca_file: Option<PathBuf>,
}

impl RemoteWriteConfig {
    /// A config for `url` queueing in `queue_dir`, with defaults close to Prometheus' own:
    /// 256 MiB queue, 5,000 samples per batch, 5 s flush, 30 s timeout, 30 ms–5 s backoff.
    pub fn new(url: impl Into<String>, queue_dir: impl Into<PathBuf>) -> Self {
        RemoteWriteConfig {
            url: url.into(),
            queue_dir: queue_dir.into(),
            queue_max_bytes: 256 * 1024 * 1024,
            batch_max_samples: 5_000,
            flush_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            headers: Vec::new(),
            external_labels: Vec::new(),
            tls_ca_file: None,
        }
    }
}

/// One series to write: its labels (including `__name__`) and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// Label names and values; `__name__` is the metric name. Empty values mean "no label".
    pub labels: Vec<(String, String)>,
    /// Samples as (unix time in ms, value).
    pub samples: Vec<(i64, f64)>,
}

/// What a writer has done so far; counts since [`RemoteWriter::spawn`], depths right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteWriteStats {
    /// Samples the receiver accepted (2xx).
    pub samples_sent: u64,
    /// Queued batches the receiver accepted.
    pub batches_sent: u64,
    /// HTTP requests the receiver accepted (several small batches may share one).
    pub requests_sent: u64,
    /// Requests that failed, retryable or not.
    pub send_failures: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Bytes of batch files in the queue.
    pub queued_bytes: u64,
    /// Batches in the queue, including the one being sent.
    pub queued_batches: u64,
    /// Samples in the queue.
    pub queued_samples: u64,
    /// Batches dropped because the queue was over `queue_max_bytes`.
    pub dropped_batches: u64,
    /// Samples in those dropped batches.
    pub dropped_samples: u64,
    /// Batches the receiver refused for good (4xx other than 429), and so dropped.
    pub rejected_batches: u64,
    /// Samples in those rejected batches.
    pub rejected_samples: u64,
    /// Batch files found corrupt and set aside as `.corrupt`.
    pub corrupt_batches: u64,
    /// The last failure, as text, if any.
    pub last_error: Option<String>,
}

/// Sending settings that the sender task reads; checked by [`RemoteWriter::spawn`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) batch_max_samples: u64,
    pub(crate) flush_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) samples_sent: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) send_failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rejected_batches: AtomicU64,
    pub(crate) rejected_samples: AtomicU64,
}

/// State shared by the handles and the sender task.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    pub(crate) counters: Counters,
    pub(crate) wake: Notify,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn note_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// Owned by all clones of one writer: stops the sender and unlocks the queue on last drop.
struct Guard {
    task: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<Option<Instant>>,
    _lock: QueueLock,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// A handle to a remote-write sender and its queue; cheap to clone.
///
/// Dropping the last clone stops the sender at once (queued batches stay on disk for the
/// next writer on the same folder); [`RemoteWriter::shutdown`] first tries to send them.
#[derive(Clone)]
pub struct RemoteWriter {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
    batch_max_samples: usize,
    external_labels: Arc<[(String, String)]>,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RemoteWriter {
    /// Starts the sender task (needs a tokio runtime); resends anything left in queue_dir first.
    pub fn spawn(config: RemoteWriteConfig) -> Result<RemoteWriter, ExportError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ExportError::NoRuntime)?;
        let settings = check(&config)?;
        let external_labels = check_external_labels(&config.external_labels)?;
        let client =
            client::Client::new(&config.url, &config.headers, config.tls_ca_file.as_deref())?;
        let (queue, lock) = Queue::open(&config.queue_dir, config.queue_max_bytes)?;
        let depth = queue.depth();
        if depth.batches > 0 {
            tracing::info!(batches = depth.batches, samples = depth.samples, dir = %config.queue_dir.display(), "remote-write resumes a queue left on disk");
        }
        let shared = Arc::new(Shared {
            queue,
            counters: Counters::default(),
            wake: Notify::new(),
            last_error: Mutex::new(None),
        });
        let (stop_tx, stop_rx) = watch::channel(None);
        let task = runtime.spawn(sender::run(shared.clone(), client, settings, stop_rx));
        Ok(RemoteWriter {
            shared,
            guard: Arc::new(Guard {
                task: Mutex::new(Some(task)),
                stop: stop_tx,
                _lock: lock,
            }),
            batch_max_samples: config.batch_max_samples,
            external_labels: external_labels.into(),
        })
    }

    /// Hands series over; they are durable in the queue once this returns Ok.
    ///
    /// All or nothing: a series that breaks the rules (a label name outside
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, a label twice, no valid `__name__`) fails the whole push and
    /// queues none of it. Series without samples are skipped. This writes and syncs files, so
    /// it blocks for a few milliseconds on a slow disk.
    pub fn push(&self, series: Vec<TimeSeries>) -> Result<(), ExportError> {
        let batches = build_batches(&series, &self.external_labels, self.batch_max_samples)?;
        if batches.is_empty() {
            return Ok(());
        }
        self.shared.queue.append(batches)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// What the writer has done so far and what is queued.
    pub fn stats(&self) -> RemoteWriteStats {
        let c = &self.shared.counters;
        let q = &self.shared.queue.counters;
        let depth = self.shared.queue.depth();
        // Acquire pairs with the sender's Release: a counter seen moved comes with the
        // last_error and queue state written before it.
        let get = |a: &AtomicU64| a.load(Ordering::Acquire);
        RemoteWriteStats {
            samples_sent: get(&c.samples_sent),
            batches_sent: get(&c.batches_sent),
            requests_sent: get(&c.requests_sent),
            send_failures: get(&c.send_failures),
            retries: get(&c.retries),
            queued_bytes: depth.bytes,
            queued_batches: depth.batches,
            queued_samples: depth.samples,
            dropped_batches: get(&q.dropped_batches),
            dropped_samples: get(&q.dropped_samples),
            rejected_batches: get(&c.rejected_batches),
            rejected_samples: get(&c.rejected_samples),
            corrupt_batches: get(&q.corrupt_batches),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Stops after trying to send what is queued, within `deadline`; unsent batches stay on disk.
    ///
    /// Other clones of this writer can still push afterwards; what they push waits on disk for
    /// the next writer on the same folder.
    pub async fn shutdown(self, deadline: Duration) {
        let task = self
            .guard
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut task) = task else {
            return;
        };
        let until = Instant::now() + deadline;
        self.guard.stop.send_replace(Some(until));
        if tokio::time::timeout_at(until, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}

fn check(config: &RemoteWriteConfig) -> Result<Settings, ExportError> {
    let bad = |field: &'static str, reason: &str| {
        Err(ExportError::InvalidConfig {
            field,
            reason: reason.to_string(),
        })
    };
    if config.batch_max_samples == 0 {
        return bad("batch_max_samples", "must be at least 1");
    }
    if config.queue_max_bytes == 0 {
        return bad("queue_max_bytes", "must be more than 0");
    }
    if config.flush_interval.is_zero() {
        return bad("flush_interval", "must be more than 0");
    }
    if config.timeout.is_zero() {
        return bad("timeout", "must be more than 0");
    }
    if config.min_backoff.is_zero() {
        return bad("min_backoff", "must be more than 0");
    }
    if config.max_backoff < config.min_backoff {
        return bad("max_backoff", "must not be less than min_backoff");
    }
    Ok(Settings {
        batch_max_samples: config.batch_max_samples as u64,
        flush_interval: config.flush_interval,
        timeout: config.timeout,
        min_backoff: config.min_backoff,
        max_backoff: config.max_backoff,
    })
}

fn check_external_labels(
    labels: &[(String, String)],
) -> Result<Vec<(String, String)>, ExportError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(labels.len());
    for (name, value) in labels {
        let reason = if !is_valid_label_name(name) {
            format!("{name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        } else if name == "__name__" {
            "__name__ cannot be an external label".to_string()
        } else if out.iter().any(|(n, _)| n == name) {
            format!("{name:?} is given twice")
        } else {
            if !value.is_empty() {
                out.push((name.clone(), value.clone()));
            }
            continue;
        };
        return Err(ExportError::InvalidConfig {
            field: "external_labels",
            reason,
        });
    }
    Ok(out)
}

/// Label (name, value) pairs of one series, borrowed from the push and the config.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// Checks every series, adds the external labels, sorts labels by name, and encodes the
/// samples into compressed batches of at most `max_samples` (a long series spans batches).
fn build_batches(
    series: &[TimeSeries],
    external_labels: &[(String, String)],
    max_samples: usize,
) -> Result<Vec<NewBatch>, ExportError> {
    // Check everything before encoding anything: a push is all or nothing. The labels are
    // worked out again while encoding, into the same scratch vector, rather than kept per
    // series: one allocation per push instead of one per series.
    let mut labels: Labels<'_> = Vec::new();
    for (index, s) in series.iter().enumerate() {
        if !s.samples.is_empty() {
            series_labels(index, s, external_labels, &mut labels)?;
        }
    }
    let mut batches = Vec::new();
    let mut encoder = snap::raw::Encoder::new();
    let mut raw = Vec::new();
    let mut in_batch = 0;
    let mut finish = |raw: &mut Vec<u8>, in_batch: &mut usize| -> Result<(), ExportError> {
        let payload = encoder
            .compress_vec(raw)
            .map_err(|e| ExportError::InvalidSeries {
                index: 0,
                name: "?".into(),
                reason: format!("snappy refused the batch: {e}"),
            })?;
        batches.push(NewBatch {
            payload,
            samples: *in_batch as u64,
        });
        raw.clear();
        *in_batch = 0;
        Ok(())
    };
    for (index, s) in series.iter().enumerate() {
        if s.samples.is_empty() {
            continue;
        }
        series_labels(index, s, external_labels, &mut labels)?;
        let mut rest: &[(i64, f64)] = &s.samples;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(max_samples - in_batch));
            proto::encode_series(&mut raw, &labels, chunk);
            in_batch += chunk.len();
            rest = tail;
            if in_batch == max_samples {
                finish(&mut raw, &mut in_batch)?;
            }
        }
    }
    if in_batch > 0 {
        finish(&mut raw, &mut in_batch)?;
    }
    Ok(batches)
}

/// Fills `labels` with those of one series as sent: checked, empty values left out, external
/// labels added where the series lacks them, sorted by name.
fn series_labels<'a>(
    index: usize,
    s: &'a TimeSeries,
    external_labels: &'a [(String, String)],
    labels: &mut Labels<'a>,
) -> Result<(), ExportError> {
    labels.clear();
    let name = s
        .labels
        .iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.as_str());
    let fail = |reason: String| ExportError::InvalidSeries {
        index,
        name: name.unwrap_or("?").to_string(),
        reason,
    };
    match name {
        None | Some("") => return Err(fail("no __name__ label".into())),
        Some(n) if !is_valid_metric_name(n) => {
            return Err(fail(format!(
                "metric name {n:?} does not match [a-zA-Z_:][a-zA-Z0-9_:]*"
            )));
        }
        Some(_) => {}
    }
    for (i, (k, v)) in s.labels.iter().enumerate() {
        if !is_valid_label_name(k) {
            return Err(fail(format!(
                "label name {k:?} does not match [a-zA-Z_][a-zA-Z0-9_]*"
            )));
        }
        if s.labels[..i].iter().any(|(seen, _)| seen == k) {
            return Err(fail(format!("label {k:?} appears twice")));
        }
        if !v.is_empty() {
            labels.push((k, v));
        }
    }
    for (k, v) in external_labels {
        // As in Prometheus, a series' own label wins over an external label of the same name.
        if !s.labels.iter().any(|(own, _)| own == k) {
            labels.push((k, v));
        }
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: samples.to_vec(),
        }
    }

    fn decode(batch: &NewBatch) -> Vec<proto::decode::Series> {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&batch.payload)
            .unwrap();
        proto::decode::write_request(&raw)
    }

    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_are_sorted_and_external_labels_added_unless_present() {
        let external = owned(&[("node", "site-a"), ("site", "default")]);
        let input = vec![series(
            &[
                ("site", "north"),
                ("__name__", "power_w"),
                ("device", "m1"),
                ("rack", ""),
            ],
            &[(1, 3000.0)],
        )];
        let batches = build_batches(&input, &external, 100).unwrap();
        assert_eq!(batches.len(), 1);
        let decoded = decode(&batches[0]);
        assert_eq!(
            decoded[0].0,
            owned(&[
                ("__name__", "power_w"),
                ("device", "m1"),
                ("node", "site-a"),
                ("site", "north"),
            ])
        );
        assert_eq!(decoded[0].1, vec![(1, 3000.0)]);
    }

    #[test]
    fn pushes_split_into_batches_of_at_most_max_samples() {
        let long: Vec<(i64, f64)> = (0..7).map(|i| (i, i as f64)).collect();
        let input = vec![
            series(&[("__name__", "a")], &long),
            series(&[("__name__", "empty")], &[]),
            series(&[("__name__", "b")], &[(100, 1.0), (101, 2.0)]),
        ];
        let batches = build_batches(&input, &[], 3).unwrap();
        let counts: Vec<u64> = batches.iter().map(|b| b.samples).collect();
        assert_eq!(counts, [3, 3, 3]);
        let mut all = Vec::new();
        for b in &batches {
            let decoded = decode(b);
            assert_eq!(
                decoded.iter().map(|s| s.1.len() as u64).sum::<u64>(),
                b.samples
            );
            for (labels, samples) in decoded {
                for s in samples {
                    all.push((labels[0].1.clone(), s));
                }
            }
        }
        let mut want: Vec<(String, (i64, f64))> = long.iter().map(|s| ("a".into(), *s)).collect();
        want.push(("b".into(), (100, 1.0)));
        want.push(("b".into(), (101, 2.0)));
        assert_eq!(all, want);
    }

    #[test]
    fn invalid_series_fail_the_whole_push_with_context() {
        let cases = [
            (series(&[("job", "x")], &[(1, 1.0)]), "no __name__"),
            (series(&[("__name__", "a-b")], &[(1, 1.0)]), "metric name"),
            (
                series(&[("__name__", "a"), ("bad-label", "v")], &[(1, 1.0)]),
                "label name",
            ),
            (
                series(&[("__name__", "a"), ("x", "1"), ("x", "2")], &[(1, 1.0)]),
                "twice",
            ),
            (
                series(&[("__name__", "a"), ("x", ""), ("x", "2")], &[(1, 1.0)]),
                "twice",
            ),
        ];
        for (bad, expected) in cases {
            let input = vec![series(&[("__name__", "ok")], &[(1, 1.0)]), bad];
            match build_batches(&input, &[], 10) {
                Err(ExportError::InvalidSeries { index, reason, .. }) => {
                    assert_eq!(index, 1);
                    assert!(reason.contains(expected), "{reason}");
                }
                other => panic!("expected InvalidSeries, got {:?}", other.map(|b| b.len())),
            }
        }
    }

    /// Prints the CPU cost of turning series into compressed batches (checks, sort, protobuf,
    /// snappy), without the disk. Run on purpose:
    /// `cargo test --release -p hashmesh-node --lib measure_encoding -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement; prints figures"]
    fn measure_encoding_cost_per_sample() {
        let metrics = ["hashrate_ths", "power_w", "temp_c", "fan_rpm", "uptime_s"];
        for samples_per_series in [1usize, 10] {
            let mut input = Vec::new();
            for d in 0..20_000 {
                let device = format!("miner-{d:05}");
                let rack = format!("r{:03}", d / 40);
                for metric in metrics {
                    let samples: Vec<(i64, f64)> = (0..samples_per_series)
                        .map(|i| (1_700_000_000_000 + i as i64 * 10_000, d as f64 * 1.25))
                        .collect();
                    input.push(series(
                        &[
                            ("__name__", &format!("hashmesh_miner_{metric}")),
                            ("device", &device),
                            ("model", "Antminer S19j Pro"),
                            ("rack", &rack),
                            ("site", "north"),
                        ],
                        &samples,
                    ));
                }
            }
            let external = owned(&[("node", "site-a")]);
            let total = (input.len() * samples_per_series) as f64;
            // Thread CPU time, so other work on the machine does not inflate the figure.
            let cpu = || {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: clock_gettime writes one timespec, which `ts` is.
                unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
                Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
            };
            let mut best = Duration::MAX;
            let mut bytes = 0;
            for _ in 0..5 {
                let t = cpu();
                let batches = build_batches(&input, &external, 5_000).unwrap();
                best = best.min(cpu() - t);
                bytes = batches.iter().map(|b| b.payload.len()).sum::<usize>();
            }
            println!(
                "{samples_per_series} sample(s)/series, {} series: {:.0} ns CPU/sample (best of 5), \
                 {:.1} compressed bytes/sample",
                input.len(),
                best.as_nanos() as f64 / total,
                bytes as f64 / total
            );
        }
    }

    #[test]
    fn config_mistakes_are_named() {
        let mut c = RemoteWriteConfig::new("http://127.0.0.1:1/api/v1/write", "/nonexistent");
        c.batch_max_samples = 0;
        assert!(matches!(
            check(&c),
            Err(ExportError::InvalidConfig {
                field: "batch_max_samples",
                ..
            })
        ));
        let mut c = RemoteWriteConfig::new("http://127.0.0.1:1/api/v1/write", "/nonexistent");
        c.max_backoff = Duration::from_millis(1);
        assert!(matches!(
            check(&c),
            Err(ExportError::InvalidConfig {
                field: "max_backoff",
                ..
            })
        ));
        for bad in [
            owned(&[("1x", "a")]),
            owned(&[("__name__", "a")]),
            owned(&[("a", "1"), ("a", "2")]),
        ] {
            assert!(matches!(
                check_external_labels(&bad),
                Err(ExportError::InvalidConfig {
                    field: "external_labels",
                    ..
                })
            ));
        }
    }

    #[test]
    fn spawn_checks_url_headers_and_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let config = RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write", dir.path());
        assert!(matches!(
            RemoteWriter::spawn(config.clone()),
            Err(ExportError::NoRuntime)
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for url in ["ftp://127.0.0.1/x", "not a url", "/api/v1/write"] {
                let mut c = config.clone();
                c.url = url.into();
                let err = RemoteWriter::spawn(c).unwrap_err();
                assert!(
                    matches!(err, ExportError::InvalidConfig { field: "url", .. }),
                    "{url}: {err}"
                );
            }
            let mut c = config.clone();
            c.headers = vec![("Authorization".into(), "Bearer a\nb".into())];
            let err = RemoteWriter::spawn(c).unwrap_err();
            assert!(matches!(
                err,
                ExportError::InvalidConfig {
                    field: "headers",
                    ..
                }
            ));
            assert!(
                !err.to_string().contains("Bearer"),
                "secrets stay out of errors: {err}"
            );
            let mut c = config.clone();
            c.tls_ca_file = Some(dir.path().join("missing.pem"));
            c.url = "https://127.0.0.1:9/api/v1/write".into();
            assert!(matches!(RemoteWriter::spawn(c), Err(ExportError::Tls(_))));
        });
    }
}
