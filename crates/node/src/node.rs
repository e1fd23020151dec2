//! A running node: opens the inventory and the store under the data directory, loads every
//! known device into live state and the poller, starts discovery, the store's ingest thread,
//! the HTTP server and the exporters, and stops them in order.

use crate::config::Config;
use crate::discovery::{self, ScanSummary};
use crate::live::{DeviceInfo, LiveState};
use crate::poller::{CredentialSource, IngestRow, Poller, PollerConfig, Ports, RowReceiver};
use crate::rollup::group_keys;
use crate::row;
use hashmesh_drivers::{Registry, Timeouts};
use hashmesh_store::meta::{DeviceRecord, Inventory};
use hashmesh_store::tsdb::{Retention, SeriesId, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created or used.
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    /// The inventory could not be opened.
    #[error("inventory: {0}")]
    Inventory(#[from] hashmesh_store::meta::MetaError),
    /// The time-series store could not be opened.
    #[error("time-series store: {0}")]
    Store(String),
    /// The HTTP listener could not be bound.
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The user database could not be opened.
    #[error("users and sessions: {0}")]
    Auth(String),
    /// The remote-write exporter could not start.
    #[error("remote-write: {0}")]
    Export(String),
    /// The poller's thread could not start.
    #[error("starting the poller: {0}")]
    Poller(std::io::Error),
}

/// Rows waiting for the store; beyond this the poller drops rows (and counts them) rather
/// than wait, so a slow disk never stalls polling.
const INGEST_QUEUE_ROWS: usize = 200_000;

/// Stored columns whose values are rounded to [`HASHRATE_PRECISION_BITS`].
const HASHRATE_COLUMNS: [&str; 2] = ["hashrate_ths", "hashrate_avg_ths"];
/// Mantissa bits kept of measured hashrates (the store bench uses the same).
const HASHRATE_PRECISION_BITS: u32 = 12;

/// How often the ingest thread moves queued rows into the store.
const INGEST_BEAT: Duration = Duration::from_millis(20);

/// The parts of a running node, shared by its tasks and the HTTP handlers.
pub struct NodeInner {
    /// The configuration it runs with.
    pub config: Config,
    /// The device inventory.
    pub inventory: Arc<Inventory>,
    /// History.
    pub store: Arc<Store>,
    /// Every device's latest state.
    pub live: Arc<LiveState>,
    /// Drivers by family.
    pub registry: Registry,
    /// The poller.
    pub poller: Poller,
    /// Store series of each device, by live index.
    series: Arc<RwLock<Vec<SeriesId>>>,
    /// Scans run since start.
    pub discovery_scans: AtomicU64,
    /// The last scan's figures.
    pub last_scan: Mutex<Option<ScanSummary>>,
    /// When the node started, unix ms.
    pub started_unix_ms: i64,
    /// Ingest figures.
    pub ingest: Arc<IngestStats>,
    admit_lock: Mutex<()>,
}

/// The store ingest thread's figures.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Rows written to the store.
    pub rows_total: AtomicU64,
    /// Store writes that failed.
    pub errors_total: AtomicU64,
}

impl NodeInner {
    /// Brings an inventory record into live state, the store's groups and the poller: new
    /// devices are scheduled, known ones get their new address and location.
    pub fn admit(&self, record: &DeviceRecord) -> Result<(), String> {
        // Discovery and inventory reloads may admit the same device at once; one at a time
        // keeps the index-to-series table in step with the live table.
        let _guard = self.admit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let info = info_from(record);
        let groups: Vec<String> = group_keys(&info).iter().map(|g| g.store_name()).collect();
        let old = self.live.by_id(&info.id).map(|d| d.info());
        let (device, new) = self.live.upsert(info.clone());
        let index = device.index as usize;
        if new {
            let series = self
                .store
                .series(&info.id.0)
                .map_err(|e| format!("store series for {}: {e}", info.id))?;
            let mut table = self.series.write().unwrap_or_else(|e| e.into_inner());
            if table.len() <= index {
                table.resize(index + 1, series);
            }
            table[index] = series;
        }
        let moved_groups = old
            .as_ref()
            .is_none_or(|o| group_keys(o) != group_keys(&info));
        if moved_groups {
            let series = self.series.read().unwrap_or_else(|e| e.into_inner())[index];
            self.store
                .set_groups(series, &groups)
                .map_err(|e| format!("store groups for {}: {e}", info.id))?;
        }
        if new {
            self.poller.add(device.index);
        }
        Ok(())
    }

    /// Re-reads the inventory (after another process changed it) and admits every record.
    pub fn reload_inventory(&self) -> Result<usize, String> {
        let records = self.inventory.list().map_err(|e| e.to_string())?;
        for r in &records {
            self.admit(r)?;
        }
        Ok(records.len())
    }
}

/// What live state keeps of an inventory record.
pub fn info_from(r: &DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: r.id.clone(),
        ip: r.ip,
        kind: r.kind,
        family: hashmesh_core::intern(&r.family),
        vendor: hashmesh_core::intern(&r.vendor),
        model: hashmesh_core::intern(&r.model),
        firmware: hashmesh_core::intern(&r.firmware),
        mac: r.mac.clone(),
        serial: r.serial.clone(),
        unit_id: r.unit_id,
        location: r.location.clone(),
        tags: r.tags.clone(),
        credentials_ref: r.credentials_ref.clone(),
        missing_since_unix_ms: r.missing_since_unix_ms,
    }
}

/// A running node.
pub struct Node {
    inner: Arc<NodeInner>,
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    ingest: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    remote: Option<crate::export::remote_write::RemoteWriter>,
}

impl Node {
    /// Starts a node with `config`; devices log in with the credential store in the data
    /// directory (`hashmesh creds`), then the vendors' factory logins.
    pub async fn start(config: Config) -> Result<Node, NodeError> {
        let logins = Arc::new(crate::logins::StoredLogins::open(&config.data_dir));
        let mut node = Node::start_with(config, Registry::with_defaults(), logins.clone()).await?;
        // Pick up `hashmesh creds` changes while the node runs.
        node.tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let l = logins.clone();
                let _ = tokio::task::spawn_blocking(move || l.reload_if_changed()).await;
            }
        }));
        Ok(node)
    }

    /// Starts a node with its own drivers and credential source.
    pub async fn start_with(
        config: Config,
        registry: Registry,
        credentials: Arc<dyn CredentialSource>,
    ) -> Result<Node, NodeError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|e| NodeError::DataDir(dir.display().to_string(), e))?;
        let inventory = Arc::new(Inventory::open(&dir.join("inventory.sqlite"))?);
        let store = Arc::new(open_store(&config)?);

        let live = Arc::new(LiveState::new());
        let (rows_tx, rows_rx) = crate::poller::row_queue(INGEST_QUEUE_ROWS);
        let p = &config.poll;
        let poller = Poller::start(
            live.clone(),
            registry.clone(),
            PollerConfig {
                interval: p.interval(),
                jitter: p.jitter,
                concurrency: p.concurrency,
                timeouts: Timeouts {
                    connect: Duration::from_millis(p.connect_timeout_ms),
                    total: Duration::from_millis(p.timeout_ms),
                    ..Timeouts::default()
                },
                offline_backoff_max: Duration::from_secs_f64(p.offline_backoff_max_s),
                ports: Ports {
                    rpc: config.discovery.rpc_port,
                    web: config.discovery.web_port,
                    modbus: config.discovery.modbus_port,
                    ..Ports::default()
                },
            },
            rows_tx,
            credentials,
        )
        .map_err(NodeError::Poller)?;
        let series = Arc::new(RwLock::new(Vec::new()));
        let ingest_stats = Arc::new(IngestStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ingest = {
            let store = store.clone();
            let series = series.clone();
            let stats = ingest_stats.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("hashmesh-ingest".into())
                .spawn(move || ingest_loop(store, series, rows_rx, stats, stop))
                .map_err(|e| NodeError::Store(format!("starting the ingest thread: {e}")))?
        };

        let inner = Arc::new(NodeInner {
            config: config.clone(),
            inventory,
            store,
            live,
            registry,
            poller,
            series,
            discovery_scans: AtomicU64::new(0),
            last_scan: Mutex::new(None),
            started_unix_ms: hashmesh_drivers::now_unix_ms(),
            ingest: ingest_stats,
            admit_lock: Mutex::new(()),
        });
        let known = inner.reload_inventory().map_err(NodeError::Store)?;
        tracing::info!(devices = known, "inventory loaded");

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| NodeError::Listen(config.listen, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| NodeError::Listen(config.listen, e))?;
        let auth = crate::auth::Auth::open(&dir, config.auth.clone())
            .map_err(|e| NodeError::Auth(e.to_string()))?;
        let state = crate::api::AppState::new(inner.clone(), auth);
        let mut tasks = Vec::new();
        let (http_stop, stop_rx) = tokio::sync::oneshot::channel();
        let http = tokio::spawn(crate::http::serve(listener, state, stop_rx));
        tasks.push(tokio::spawn(discovery::run(
            inner.clone(),
            Duration::from_secs(config.discovery.interval_s),
        )));
        tasks.push(tokio::spawn(watch_inventory(inner.clone())));
        let remote = match &config.remote_write {
            Some(rw) => {
                let (writer, task) =
                    crate::remote::start(inner.clone(), rw).map_err(NodeError::Export)?;
                tasks.push(task);
                Some(writer)
            }
            None => None,
        };
        tracing::info!(%local_addr, "node listening");
        Ok(Node {
            inner,
            local_addr,
            stop,
            ingest: Some(ingest),
            tasks,
            http: Some((http_stop, http)),
            remote,
        })
    }

    /// The shared parts, for the API and tests.
    pub fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the tasks, sends what the exporter can within a few seconds, and flushes the store.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.inner.poller.stop();
        if let Some((stop, task)) = self.http.take() {
            let _ = stop.send(());
            let abort = task.abort_handle();
            // Open connections (a dashboard's WebSocket) get a moment to close, then go.
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(r) = self.remote.take() {
            r.shutdown(Duration::from_secs(5)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.ingest.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        if let Err(e) = self.inner.store.flush() {
            tracing::error!("flushing the store at shutdown: {e}");
        }
    }
}

fn open_store(config: &Config) -> Result<Store, NodeError> {
    let s = &config.store;
    let day = Duration::from_secs(86_400);
    let mut sc = StoreConfig::new(
        config.data_dir.join("tsdb"),
        row::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
    );
    sc.flush_interval = Duration::from_millis(s.flush_interval_ms);
    sc.seal_interval = Duration::from_secs(s.seal_interval_s);
    // Live state holds every device's latest reading; the store need not keep another copy.
    sc.keep_latest = false;
    // Hashrate readings wander by a percent or more between polls; their last digits are
    // noise that costs ~1.7 bytes a row on disk. 12 mantissa bits keep them within 0.013 %
    // (±0.03 TH/s at 200 TH/s, ±0.0001 TH/s on a 1 TH/s Bitaxe).
    sc.precision_bits = HASHRATE_COLUMNS
        .iter()
        .map(|c| ((*c).to_owned(), HASHRATE_PRECISION_BITS))
        .collect();
    sc.retention = Retention {
        raw: day * s.retention_raw_days as u32,
        min1: day * s.retention_1m_days as u32,
        min5: day * s.retention_5m_days as u32,
        hour1: day * s.retention_1h_days as u32,
    };
    Store::open(sc).map_err(|e| NodeError::Store(e.to_string()))
}

/// Moves rows from the poller to the store in batches, and keeps the store's housekeeping
/// going (WAL flushes, sealing, retention) once a second.
fn ingest_loop(
    store: Arc<Store>,
    series: Arc<RwLock<Vec<SeriesId>>>,
    rx: RowReceiver,
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
) {
    let mut batch: Vec<IngestRow> = Vec::with_capacity(8192);
    let mut last_tick = Instant::now();
    loop {
        // Drain on a fixed beat instead of waiting on the channel: a receiver parked on the
        // channel is woken by every row, a futex wake and a context switch per poll (~5 % of the
        // node's CPU at 10,000 polls/s); rows sit at most one beat before they reach the store.
        while batch.len() < 8192 {
            match rx.try_recv() {
                Ok(row) => batch.push(row),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let full = batch.len() == 8192;
        if !batch.is_empty() {
            let table = series.read().unwrap_or_else(|e| e.into_inner());
            let rows: Vec<(SeriesId, i64, &[f64])> = batch
                .iter()
                .filter_map(|r| {
                    table
                        .get(r.device as usize)
                        .map(|s| (*s, r.time_unix_ms, &r.values[..]))
                })
                .collect();
            match store.append_batch(&rows) {
                Ok(()) => {
                    stats
                        .rows_total
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.errors_total.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("writing {} rows to the store: {e}", rows.len());
                }
            }
            drop(rows);
            drop(table);
            batch.clear();
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            if let Err(e) = store.tick(hashmesh_drivers::now_unix_ms()) {
                tracing::error!("store housekeeping: {e}");
            }
        }
        if full {
            continue;
        }
        // Stopping only once the queue is empty: the poller has stopped by then.
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(INGEST_BEAT);
    }
}

/// Reloads the inventory when another process (the `hashmesh device` commands) changes it.
async fn watch_inventory(node: Arc<NodeInner>) {
    let mut version = node.inventory.data_version().ok();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = node.inventory.data_version().ok();
        if now != version {
            version = now;
            match node.reload_inventory() {
                Ok(n) => tracing::info!(devices = n, "inventory changed on disk; reloaded"),
                Err(e) => tracing::error!("reloading the inventory: {e}"),
            }
        }
    }
}
