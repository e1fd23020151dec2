//! The sender task: takes the oldest queued batches, POSTs them, and decides what happens
//! next: delete (delivered), drop and count (rejected for good), or back off and retry.
//!
//! One request is in flight at a time, so batches arrive in queue order. Small batches are
//! merged into one request up to `batch_max_samples`; a request goes out as soon as a full
//! batch is pending, or `flush_interval` after the previous attempt when less is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{Client, Outcome};
use super::queue::{Entry, ReadFailure};
use super::{Settings, Shared};

/// Runs until the writer is dropped, or until a shutdown's queue is empty or its deadline near.
///
/// `stop` holds `Some(deadline)` once shutdown is asked for; from then on everything queued is
/// sent without waiting for `flush_interval`, as long as the deadline allows.
pub(crate) async fn run(
    shared: Arc<Shared>,
    client: Client,
    settings: Settings,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let mut backoff = settings.min_backoff;
    let mut last_attempt: Option<Instant> = None;
    // While failing, retries follow the backoff, not flush_interval.
    let mut failing = false;
    loop {
        let deadline = *stop.borrow_and_update();
        let depth = shared.queue.depth();
        if depth.batches == 0 {
            if deadline.is_some() || !idle(&shared, &mut stop, None).await {
                return;
            }
            continue;
        }
        // Less than a batch pending: wait for the flush interval, unless shutting down or
        // retrying after a failure (then the backoff sets the pace).
        if deadline.is_none()
            && !failing
            && depth.samples < settings.batch_max_samples
            && let Some(due) = last_attempt.map(|t| t + settings.flush_interval)
            && Instant::now() < due
        {
            if !idle(&shared, &mut stop, Some(due)).await {
                return;
            }
            continue;
        }
        let now = Instant::now();
        let timeout = match deadline {
            Some(d) if d <= now => return,
            Some(d) => settings.timeout.min(d - now),
            None => settings.timeout,
        };
        let Some(entries) = shared.queue.take(settings.batch_max_samples) else {
            // Only this task takes batches, so the queue cannot be busy; guard anyway.
            if !idle(&shared, &mut stop, Some(now + settings.min_backoff)).await {
                return;
            }
            continue;
        };
        last_attempt = Some(now);
        let body = match assemble(&shared, &entries) {
            Ok(body) => body,
            Err(Assembly::SetAside) => continue,
            Err(Assembly::Io(reason)) => {
                shared.queue.release(&entries);
                shared.note_error(reason);
                let delay = jittered(backoff);
                backoff = (backoff * 2).min(settings.max_backoff);
                if !pause(&mut stop, Instant::now() + delay).await {
                    return;
                }
                continue;
            }
        };
        let samples: u64 = entries.iter().map(|e| e.samples).sum();
        match client.send(body, timeout).await {
            Outcome::Delivered => {
                shared.queue.remove(&entries);
                let c = &shared.counters;
                c.samples_sent.fetch_add(samples, Ordering::Release);
                c.batches_sent
                    .fetch_add(entries.len() as u64, Ordering::Release);
                c.requests_sent.fetch_add(1, Ordering::Release);
                backoff = settings.min_backoff;
                if failing {
                    tracing::info!("remote-write receiver accepts data again");
                    failing = false;
                }
            }
            Outcome::Rejected { status, message } => {
                let reason =
                    format!("receiver rejected {samples} samples with {status}: {message}");
                tracing::warn!(%status, samples, receiver_says = %message, "remote-write batch rejected; dropped");
                // The error first: whoever sees the counter move also sees why.
                shared.note_error(reason);
                shared.queue.remove(&entries);
                failing = false;
                let c = &shared.counters;
                c.send_failures.fetch_add(1, Ordering::Release);
                c.rejected_batches
                    .fetch_add(entries.len() as u64, Ordering::Release);
                c.rejected_samples.fetch_add(samples, Ordering::Release);
            }
            Outcome::Retry {
                reason,
                retry_after,
            } => {
                if !failing {
                    tracing::warn!(%reason, "remote-write send failed; retrying with backoff");
                    failing = true;
                } else {
                    tracing::debug!(%reason, "remote-write send failed again");
                }
                shared.note_error(reason);
                shared.queue.release(&entries);
                shared
                    .counters
                    .send_failures
                    .fetch_add(1, Ordering::Release);
                let delay =
                    retry_after.map_or_else(|| jittered(backoff), |d| d.min(settings.max_backoff));
                backoff = (backoff * 2).min(settings.max_backoff);
                let retry_at = Instant::now() + delay;
                if deadline.is_some_and(|d| retry_at >= d) {
                    return;
                }
                if !pause(&mut stop, retry_at).await {
                    return;
                }
                shared.counters.retries.fetch_add(1, Ordering::Release);
            }
        }
    }
}

enum Assembly {
    /// A batch was corrupt and has been set aside; take again.
    SetAside,
    /// A file could not be read; retry later.
    Io(String),
}

/// Builds one request body from the taken batches: a lone batch is sent as stored; several are
/// decompressed, laid end to end (one `WriteRequest`, see `proto`) and compressed again.
fn assemble(shared: &Shared, entries: &[Entry]) -> Result<Bytes, Assembly> {
    let mut payloads = Vec::with_capacity(entries.len());
    for entry in entries {
        match shared.queue.load(entry) {
            Ok(loaded) => payloads.push(loaded.payload),
            Err(ReadFailure::Corrupt(why)) => {
                shared.queue.quarantine(entry, &why);
                shared.queue.release(entries);
                return Err(Assembly::SetAside);
            }
            Err(ReadFailure::Io(e)) => {
                return Err(Assembly::Io(format!("reading a queued batch: {e}")));
            }
        }
    }
    if payloads.len() == 1 {
        return Ok(Bytes::from(payloads.pop().unwrap_or_default()));
    }
    let mut raw = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    for (entry, payload) in entries.iter().zip(&payloads) {
        let start = raw.len();
        let len = snap::raw::decompress_len(payload).unwrap_or(0);
        raw.resize(start + len, 0);
        match decoder.decompress(payload, &mut raw[start..]) {
            Ok(n) => raw.truncate(start + n),
            Err(e) => {
                // The checksum matched, so the file holds what was written: a bad snappy block
                // can only come from a bug or an old format. Set it aside rather than loop.
                shared
                    .queue
                    .quarantine(entry, &format!("snappy block does not decode: {e}"));
                shared.queue.release(entries);
                return Err(Assembly::SetAside);
            }
        }
    }
    Ok(Bytes::from(
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .map_err(|e| Assembly::Io(format!("compressing a merged request: {e}")))?,
    ))
}

/// Waits for a push, a shutdown request, or `until`; false when the writer is gone.
async fn idle(
    shared: &Shared,
    stop: &mut watch::Receiver<Option<Instant>>,
    until: Option<Instant>,
) -> bool {
    let sleep = async {
        match until {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shared.wake.notified() => true,
        changed = stop.changed() => changed.is_ok(),
        _ = sleep => true,
    }
}

/// Sleeps until `until` (a backoff); false when the writer is gone or a shutdown deadline comes
/// before `until`.
async fn pause(stop: &mut watch::Receiver<Option<Instant>>, until: Instant) -> bool {
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            changed = stop.changed() => {
                if changed.is_err() {
                    return false;
                }
                if stop.borrow_and_update().is_some_and(|d| d <= until) {
                    return false;
                }
            }
        }
    }
}

/// `backoff` with "equal jitter": half of it fixed, half random, so many nodes that lost the
/// same receiver do not all come back in the same millisecond.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let random_ns = fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
    half + Duration::from_nanos(random_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Duration::from_millis(200);
        let delays: Vec<Duration> = (0..1000).map(|_| jittered(backoff)).collect();
        assert!(delays.iter().all(|d| *d >= backoff / 2 && *d <= backoff));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jitter should vary");
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
