//! The poller: every device polled on its own schedule, at the configured interval with jitter,
//! with bounded concurrency, deadlines, never two polls of one device at once, backoff for
//! devices that stay offline, and figures about itself (cycle time, late polls, errors by kind).
//!
//! One scheduler task keeps a heap of (due time, device); when a device falls due it takes a
//! slot of the concurrency semaphore and runs in its own task, which reschedules the device when
//! it finishes. So a hanging device holds one slot until its deadline and delays nobody else,
//! and a device cannot be polled again before its previous poll has ended.

use crate::live::{DeviceInfo, DeviceStatus, LiveDevice, LiveState, PollFailure, Reading};
use crate::row;
use hashmesh_core::{DeviceKind, MinerSnapshot};
use hashmesh_drivers::modbus::{MeterDriver, MeterModel, MeterTarget};
use hashmesh_drivers::{DriverError, Registry, Target, Timeouts};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// How the poller runs.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Time between two polls of one device.
    pub interval: Duration,
    /// Random shift of each poll as a share of the interval.
    pub jitter: f64,
    /// Polls in flight at once.
    pub concurrency: usize,
    /// Deadlines of one poll.
    pub timeouts: Timeouts,
    /// Longest wait between polls of a device that stays offline.
    pub offline_backoff_max: Duration,
    /// Ports devices are polled at.
    pub ports: Ports,
}

/// The ports devices listen at (real devices: 4028, 80, 4433, 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// cgminer-style RPC.
    pub rpc: u16,
    /// Web interface.
    pub web: u16,
    /// Whatsminer API v3.
    pub whatsminer_v3: u16,
    /// Modbus TCP.
    pub modbus: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            rpc: 4028,
            web: 80,
            whatsminer_v3: 4433,
            modbus: 502,
        }
    }
}

/// One stored row, on its way to the store.
#[derive(Debug, Clone)]
pub struct IngestRow {
    /// Device index in the live table.
    pub device: u32,
    /// When the poll finished, unix ms.
    pub time_unix_ms: i64,
    /// Column values (see [`row::COLUMNS`]).
    pub values: [f64; row::N],
}

/// Figures of one poll cycle (one interval's worth of scheduled polls).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CycleStats {
    /// When the cycle began, unix ms.
    pub started_unix_ms: i64,
    /// Polls started in the cycle.
    pub polls: u64,
    /// Polls that failed.
    pub errors: u64,
    /// Polls that started later than [`LATE_AFTER`] past their due time.
    pub late: u64,
    /// The largest start delay of the cycle, ms.
    pub max_start_delay_ms: f64,
    /// Mean poll duration, ms.
    pub mean_poll_ms: f64,
    /// Devices known when the cycle ended.
    pub devices: u64,
    /// Devices whose last poll is older than two intervals (missed a cycle or backed off).
    pub overdue_devices: u64,
}

/// A poll that starts this long after it was due counts as late.
pub const LATE_AFTER: Duration = Duration::from_secs(1);

/// Error kinds counted separately, in the order of [`PollerStats::errors_by_kind`].
pub const ERROR_KINDS: [&str; 8] = [
    "connect",
    "timeout",
    "io",
    "too_large",
    "malformed",
    "auth",
    "rejected",
    "unsupported",
];

/// The poller's own figures, updated as it runs.
#[derive(Debug, Default)]
pub struct PollerStats {
    /// Polls finished.
    pub polls_total: AtomicU64,
    /// Polls that failed.
    pub errors_total: AtomicU64,
    /// Failed polls by kind, indexed like [`ERROR_KINDS`].
    pub errors_by_kind: [AtomicU64; 8],
    /// Polls that started late.
    pub late_total: AtomicU64,
    /// Polls in flight now.
    pub in_flight: AtomicU64,
    /// Due polls that had to wait for a free slot: the concurrency limit, not the schedule,
    /// decided when they started.
    pub slot_waits_total: AtomicU64,
    /// Sum of poll durations, µs.
    pub poll_time_us_total: AtomicU64,
    /// Rows the store could not take in time (dropped, counted).
    pub rows_dropped_total: AtomicU64,
    cycle: Mutex<CycleAcc>,
    last_cycle: Mutex<Option<CycleStats>>,
}

#[derive(Debug, Default)]
struct CycleAcc {
    started_unix_ms: i64,
    polls: u64,
    errors: u64,
    late: u64,
    max_delay: Duration,
    poll_time: Duration,
}

impl PollerStats {
    /// The last completed cycle's figures.
    pub fn last_cycle(&self) -> Option<CycleStats> {
        self.last_cycle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn started(&self, delay: Duration) {
        let mut c = self.cycle.lock().unwrap_or_else(|e| e.into_inner());
        c.polls += 1;
        if delay > LATE_AFTER {
            c.late += 1;
            self.late_total.fetch_add(1, Ordering::Relaxed);
        }
        c.max_delay = c.max_delay.max(delay);
    }

    fn finished(&self, took: Duration, error: Option<&'static str>) {
        self.polls_total.fetch_add(1, Ordering::Relaxed);
        self.poll_time_us_total
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let mut c = self.cycle.lock().unwrap_or_else(|e| e.into_inner());
        c.poll_time += took;
        if let Some(kind) = error {
            c.errors += 1;
            self.errors_total.fetch_add(1, Ordering::Relaxed);
            if let Some(i) = ERROR_KINDS.iter().position(|k| *k == kind) {
                self.errors_by_kind[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn close_cycle(&self, now_unix_ms: i64, live: &LiveState, interval: Duration) {
        let acc = std::mem::take(&mut *self.cycle.lock().unwrap_or_else(|e| e.into_inner()));
        let stale_before = now_unix_ms - 2 * interval.as_millis() as i64;
        let all = live.all();
        let overdue = all
            .iter()
            .filter(|d| d.with_state(|s| s.last_poll_unix_ms.is_none_or(|t| t < stale_before)))
            .count() as u64;
        let stats = CycleStats {
            started_unix_ms: acc.started_unix_ms,
            polls: acc.polls,
            errors: acc.errors,
            late: acc.late,
            max_start_delay_ms: acc.max_delay.as_secs_f64() * 1000.0,
            mean_poll_ms: if acc.polls > 0 {
                acc.poll_time.as_secs_f64() * 1000.0 / acc.polls as f64
            } else {
                0.0
            },
            devices: all.len() as u64,
            overdue_devices: overdue,
        };
        *self.last_cycle.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        self.cycle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started_unix_ms = now_unix_ms;
    }
}

/// A bounded queue of rows for the store that holds memory only for the rows in it (a
/// preallocated bounded channel of 200,000 rows held ~38 MB whether used or not).
pub fn row_queue(capacity: usize) -> (RowSender, RowReceiver) {
    let (tx, rx) = std::sync::mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        RowSender {
            tx,
            queued: queued.clone(),
            capacity,
        },
        RowReceiver { rx, queued },
    )
}

/// Hands rows to whoever stores them.
#[derive(Clone)]
pub struct RowSender {
    tx: std::sync::mpsc::Sender<IngestRow>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl RowSender {
    /// Queues a row; false when the queue is full or its receiver is gone.
    pub fn try_send(&self, row: IngestRow) -> bool {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if self.tx.send(row).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

/// The store's end of a [`row_queue`].
pub struct RowReceiver {
    rx: std::sync::mpsc::Receiver<IngestRow>,
    queued: Arc<AtomicUsize>,
}

impl RowReceiver {
    /// The next queued row, without waiting.
    pub fn try_recv(&self) -> Result<IngestRow, std::sync::mpsc::TryRecvError> {
        let row = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Ok(row)
    }
}

/// A running poller.
#[derive(Clone)]
pub struct Poller {
    ctl: mpsc::UnboundedSender<(Instant, u32)>,
    ctx: Arc<Ctx>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    thread: Arc<PollerThread>,
}

/// The poller's own thread and single-threaded runtime; ends when the last handle goes.
///
/// Polls run apart from the HTTP API's runtime for two reasons: ten thousand poll tasks a
/// second queued beside an API request delayed it by hundreds of milliseconds, and one thread
/// bounds polling to one core whatever the fleet does, leaving the rest of the machine to the
/// API, the store and the host. (One thread also spares the cross-thread wake-ups of a
/// work-stealing runtime, which cost more than they gain for I/O-bound polls.)
struct PollerThread {
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl PollerThread {
    /// Starts the thread and returns it with a handle to its runtime.
    fn start() -> std::io::Result<(PollerThread, tokio::runtime::Handle)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("hashmesh-poller".into())
            .spawn(move || {
                lower_priority();
                // Returns when the sender is used or dropped; polls in flight are dropped with
                // the runtime (each holds nothing a cancelled poll could leave half-done).
                let _ = rt.block_on(stopped);
            })?;
        Ok((
            PollerThread {
                stop: Mutex::new(Some(stop)),
            },
            handle,
        ))
    }

    fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

/// Gives the calling thread a lower CPU priority (nice +5) than the rest of the node.
///
/// Polling is steady background work; the API, discovery and the store are bursts someone or
/// something waits on. On a saturated machine the scheduler then runs an API request promptly
/// and polling loses only what the request used. Failing to set it leaves the thread as it was.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes
        // this thread's nice value (Linux keeps one per thread).
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 5);
        }
    }
}

impl Drop for PollerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a poll task needs.
struct Ctx {
    live: Arc<LiveState>,
    registry: Registry,
    meters: MeterDriver,
    config: Arc<PollerConfig>,
    stats: Arc<PollerStats>,
    rows: RowSender,
    credentials: Arc<dyn CredentialSource>,
}

/// Where the poller gets the credentials a device logs in with.
pub trait CredentialSource: Send + Sync + 'static {
    /// Fills the target's credentials for this device.
    fn fill(&self, info: &DeviceInfo, target: &mut Target);
}

/// No stored credentials: drivers use the vendors' factory defaults.
pub struct FactoryDefaults;

impl CredentialSource for FactoryDefaults {
    fn fill(&self, _info: &DeviceInfo, _target: &mut Target) {}
}

impl Poller {
    /// Starts the scheduler on its own thread. Devices join with [`Poller::add`].
    pub fn start(
        live: Arc<LiveState>,
        registry: Registry,
        config: PollerConfig,
        rows: RowSender,
        credentials: Arc<dyn CredentialSource>,
    ) -> std::io::Result<Poller> {
        let (thread, rt) = PollerThread::start()?;
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(PollerStats::default());
        let config = Arc::new(config);
        let ctx = Arc::new(Ctx {
            live,
            registry,
            meters: MeterDriver::new(),
            config: config.clone(),
            stats: stats.clone(),
            rows,
            credentials,
        });
        stats
            .cycle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started_unix_ms = hashmesh_drivers::now_unix_ms();
        let tasks = vec![
            rt.spawn(schedule(ctx.clone(), ctl.clone(), ctl_rx))
                .abort_handle(),
            rt.spawn(cycles(ctx.clone())).abort_handle(),
        ];
        Ok(Poller {
            ctl,
            ctx,
            tasks: Arc::new(Mutex::new(tasks)),
            thread: Arc::new(thread),
        })
    }

    /// Schedules a new device: its first poll comes at a fixed phase within one interval,
    /// derived from its index, so a site's polls are spread evenly rather than bunched.
    pub fn add(&self, index: u32) {
        let interval = self.ctx.config.interval.as_secs_f64();
        // Golden-ratio spacing spreads consecutive indexes evenly over the interval.
        let phase = (index as f64 * 0.618_033_988_749_895).fract() * interval;
        let due = Instant::now() + Duration::from_secs_f64(phase);
        let _ = self.ctl.send((due, index));
    }

    /// Stops scheduling polls and ends the poller's thread (polls in flight are dropped).
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        self.thread.stop();
    }

    /// The poller's figures.
    pub fn stats(&self) -> &Arc<PollerStats> {
        &self.ctx.stats
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &PollerConfig {
        &self.ctx.config
    }

    /// How to reach a miner: its address, the configured ports and deadlines, its credentials.
    pub fn miner_target(&self, info: &DeviceInfo) -> Target {
        miner_target(&self.ctx, info)
    }
}

/// Closes a cycle every interval.
async fn cycles(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        ctx.stats.close_cycle(
            hashmesh_drivers::now_unix_ms(),
            &ctx.live,
            ctx.config.interval,
        );
        ctx.registry.housekeep();
    }
}

async fn schedule(
    ctx: Arc<Ctx>,
    ctl: mpsc::UnboundedSender<(Instant, u32)>,
    mut rx: mpsc::UnboundedReceiver<(Instant, u32)>,
) {
    let sem = Arc::new(Semaphore::new(ctx.config.concurrency));
    let mut heap: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    loop {
        let next = heap.peek().map(|Reverse((due, _))| *due);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(item) => heap.push(Reverse(item)),
                None => return,
            },
            _ = sleep_until_opt(next) => {
                let now = Instant::now();
                while let Some(Reverse((due, index))) = heap.peek().copied() {
                    if due > now {
                        break;
                    }
                    heap.pop();
                    let permit = match sem.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            ctx.stats.slot_waits_total.fetch_add(1, Ordering::Relaxed);
                            let Ok(p) = sem.clone().acquire_owned().await else { return };
                            p
                        }
                    };
                    let Some(device) = ctx.live.get(index) else { continue };
                    let delay = Instant::now().saturating_duration_since(due);
                    ctx.stats.started(delay);
                    let ctx = ctx.clone();
                    let ctl = ctl.clone();
                    tokio::spawn(async move {
                        let next = poll_device(&ctx, &device, due).await;
                        drop(permit);
                        let _ = ctl.send((next, index));
                    });
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Polls one device, records the outcome, and returns when it is due next.
async fn poll_device(ctx: &Ctx, device: &LiveDevice, due: Instant) -> Instant {
    ctx.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let info = device.info();
    let started = Instant::now();
    let result = read(ctx, &info).await;
    let took = started.elapsed();
    ctx.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    let now_ms = hashmesh_drivers::now_unix_ms();

    let (status, failure, reading) = match result {
        Ok(reading) => {
            let status = match &reading {
                Reading::Miner(s) => DeviceStatus::from_miner(s.status),
                Reading::Meter(_) => DeviceStatus::Online,
            };
            (status, None, Some(reading))
        }
        Err(e) => {
            let status = match &e {
                DriverError::Auth(_) => DeviceStatus::AuthFailed,
                e if e.is_offline() => DeviceStatus::Offline,
                _ => DeviceStatus::Error,
            };
            let failure = PollFailure {
                kind: e.kind(),
                message: e.to_string(),
            };
            (status, Some(failure), None)
        }
    };
    ctx.stats.finished(took, failure.as_ref().map(|f| f.kind));
    let values = row::values(status, reading.as_ref());
    let failures = device.with_state(|s| {
        s.status = status;
        s.last_poll_unix_ms = Some(now_ms);
        s.last_poll_ms = Some(took.as_secs_f64() * 1000.0);
        if reading.is_some() {
            s.reading = reading;
            s.last_ok_unix_ms = Some(now_ms);
            s.failure = None;
            s.consecutive_failures = 0;
        } else {
            s.failure = failure;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        }
        s.consecutive_failures
    });
    let row = IngestRow {
        device: device.index,
        time_unix_ms: now_ms,
        values,
    };
    if !ctx.rows.try_send(row) {
        ctx.stats.rows_dropped_total.fetch_add(1, Ordering::Relaxed);
    }
    next_due(&ctx.config, due, started, failures, status)
}

/// When a device is due next: one interval after this poll was due (so the cadence does not
/// drift with poll duration), shifted by jitter; later and later while it stays offline.
///
/// A poll that started late (more than [`LATE_AFTER`] after it was due) sets the device's
/// cadence from when it started instead. Otherwise one slow stretch (a discovery scan, a burst
/// of commands) would leave every later poll of the device late by the same amount for good,
/// with the poller already polling it once an interval; and the devices it made late would
/// all come due at once again, instead of spread as the poller reached them.
fn next_due(
    config: &PollerConfig,
    due: Instant,
    started: Instant,
    failures: u32,
    status: DeviceStatus,
) -> Instant {
    let interval = config.interval.as_secs_f64();
    let now = Instant::now();
    let due = if started.saturating_duration_since(due) > LATE_AFTER {
        started
    } else {
        due
    };
    if status == DeviceStatus::Offline && failures > 1 {
        let backoff = (interval * 2f64.powi(failures.min(20) as i32 - 1))
            .min(config.offline_backoff_max.as_secs_f64());
        return now + Duration::from_secs_f64(backoff);
    }
    let shift = (fastrand::f64() * 2.0 - 1.0) * config.jitter * interval;
    let next = due + Duration::from_secs_f64((interval + shift).max(0.0));
    // A poll that overran its interval is followed by the next one right away, not a burst.
    next.max(now)
}

fn miner_target(ctx: &Ctx, info: &DeviceInfo) -> Target {
    let ports = ctx.config.ports;
    let mut t = Target::new(info.ip);
    t.rpc_port = ports.rpc;
    t.web_port = ports.web;
    t.whatsminer_v3_port = ports.whatsminer_v3;
    t.timeouts = ctx.config.timeouts;
    ctx.credentials.fill(info, &mut t);
    t
}

/// One read of a device with its driver.
async fn read(ctx: &Ctx, info: &DeviceInfo) -> Result<Reading, DriverError> {
    let ports = ctx.config.ports;
    match info.kind {
        DeviceKind::PowerMeter => {
            let model = match &*info.family {
                "abb_b2x" => MeterModel::AbbB2x,
                "schneider_pm5xxx" => MeterModel::SchneiderPm5xxx,
                other => {
                    return Err(DriverError::Unsupported(format!(
                        "no register map '{other}' for polling"
                    )));
                }
            };
            let mut t = MeterTarget::at(
                SocketAddr::new(info.ip, ports.modbus),
                info.unit_id.unwrap_or(1),
                model,
            );
            t.timeouts = ctx.config.timeouts;
            let snap = ctx.meters.poll(&t).await?;
            Ok(Reading::Meter(Arc::new(snap)))
        }
        _ => {
            let driver = ctx.registry.get(&info.family).ok_or_else(|| {
                DriverError::Unsupported(format!("no driver for family '{}'", info.family))
            })?;
            let t = miner_target(ctx, info);
            let snap: MinerSnapshot = driver.poll(&t).await?;
            Ok(Reading::Miner(Arc::new(snap)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PollerConfig {
        PollerConfig {
            interval: Duration::from_secs(10),
            jitter: 0.05,
            concurrency: 4,
            timeouts: Timeouts::default(),
            offline_backoff_max: Duration::from_secs(300),
            ports: Ports::default(),
        }
    }

    #[test]
    fn next_poll_keeps_cadence_within_jitter() {
        let c = config();
        let due = Instant::now();
        for _ in 0..100 {
            let n = next_due(&c, due, due, 0, DeviceStatus::Mining);
            let d = n.duration_since(due).as_secs_f64();
            assert!((9.5..=10.5).contains(&d), "{d}");
        }
    }

    #[test]
    fn a_late_poll_sets_the_cadence_from_its_start() {
        let c = config();
        let due = Instant::now();
        // Started 300 ms after it was due: still on time, the cadence keeps the due time.
        let n = next_due(
            &c,
            due,
            due + Duration::from_millis(300),
            0,
            DeviceStatus::Mining,
        );
        let d = n.duration_since(due).as_secs_f64();
        assert!((9.5..=10.5).contains(&d), "{d}");
        // Started 4 s late: next due an interval after it started, not 6 s after it.
        let started = due + Duration::from_secs(4);
        let n = next_due(&c, due, started, 0, DeviceStatus::Mining);
        let d = n.duration_since(started).as_secs_f64();
        assert!((9.5..=10.5).contains(&d), "{d}");
    }

    #[test]
    fn offline_devices_back_off_up_to_the_cap() {
        let c = config();
        let now = Instant::now();
        let gap = |f| {
            next_due(&c, now, now, f, DeviceStatus::Offline)
                .duration_since(now)
                .as_secs_f64()
        };
        assert!((9.0..=11.0).contains(&gap(1)));
        assert!((19.0..=21.0).contains(&gap(2)));
        assert!((39.0..=41.0).contains(&gap(3)));
        assert!((299.0..=301.0).contains(&gap(12)));
        // Errors other than offline keep the normal cadence: the device answers.
        let e = next_due(&c, now, now, 9, DeviceStatus::Error)
            .duration_since(now)
            .as_secs_f64();
        assert!(e <= 10.6, "{e}");
    }
}
