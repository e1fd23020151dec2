//! What the node exports: its own health (poller, store, discovery), the current totals of every
//! group, and, when asked, one series per device. Built once as plain [`Family`] values, then
//! written as Prometheus text for `/metrics` or as remote-write series.

use crate::export::prometheus::{MetricKind, TextEncoder};
use crate::live::{DeviceStatus, Reading};
use crate::node::NodeInner;
use crate::poller::ERROR_KINDS;
use crate::rollup::{self, GroupKey};
use std::sync::atomic::Ordering;

/// One sample: labels and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// A metric family and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricKind) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }

    fn one(name: &'static str, help: &'static str, kind: MetricKind, value: f64) -> Self {
        let mut f = Family::new(name, help, kind);
        f.push(vec![], value);
        f
    }
}

fn load(a: &std::sync::atomic::AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// The node's own figures.
pub fn health(node: &NodeInner) -> Vec<Family> {
    use MetricKind::{Counter, Gauge};
    let now = hashmesh_drivers::now_unix_ms();
    let s = node.poller.stats();
    let mut out = vec![
        Family::one(
            "hashmesh_node_uptime_seconds",
            "Seconds since the node started.",
            Gauge,
            (now - node.started_unix_ms) as f64 / 1000.0,
        ),
        Family::one(
            "hashmesh_poller_polls_total",
            "Polls finished since start.",
            Counter,
            load(&s.polls_total),
        ),
        Family::one(
            "hashmesh_poller_late_polls_total",
            "Polls that started more than a second after they were due.",
            Counter,
            load(&s.late_total),
        ),
        Family::one(
            "hashmesh_poller_slot_waits_total",
            "Due polls that waited for a free slot (every slot held by a poll in flight).",
            Counter,
            load(&s.slot_waits_total),
        ),
        Family::one(
            "hashmesh_poller_in_flight",
            "Polls running now.",
            Gauge,
            load(&s.in_flight),
        ),
        Family::one(
            "hashmesh_poller_poll_seconds_total",
            "Time spent in polls, summed over polls.",
            Counter,
            s.poll_time_us_total.load(Ordering::Relaxed) as f64 / 1e6,
        ),
        Family::one(
            "hashmesh_poller_rows_dropped_total",
            "Poll results the store could not take in time.",
            Counter,
            load(&s.rows_dropped_total),
        ),
        Family::one(
            "hashmesh_ingest_rows_total",
            "Rows written to the time-series store.",
            Counter,
            load(&node.ingest.rows_total),
        ),
        Family::one(
            "hashmesh_ingest_errors_total",
            "Failed writes to the time-series store.",
            Counter,
            load(&node.ingest.errors_total),
        ),
        Family::one(
            "hashmesh_discovery_scans_total",
            "Discovery scans finished since start.",
            Counter,
            load(&node.discovery_scans),
        ),
    ];
    let mut errors = Family::new(
        "hashmesh_poller_errors_total",
        "Failed polls by kind.",
        Counter,
    );
    for (i, kind) in ERROR_KINDS.iter().enumerate() {
        errors.push(
            vec![("kind", (*kind).to_owned())],
            load(&s.errors_by_kind[i]),
        );
    }
    out.push(errors);
    if let Some(c) = s.last_cycle() {
        for (name, help, value) in [
            (
                "hashmesh_poller_cycle_polls",
                "Polls started in the last full poll interval.",
                c.polls as f64,
            ),
            (
                "hashmesh_poller_cycle_late_polls",
                "Late polls in the last full poll interval.",
                c.late as f64,
            ),
            (
                "hashmesh_poller_cycle_errors",
                "Failed polls in the last full poll interval.",
                c.errors as f64,
            ),
            (
                "hashmesh_poller_cycle_max_start_delay_seconds",
                "Largest delay between a poll's due time and its start in the last interval.",
                c.max_start_delay_ms / 1000.0,
            ),
            (
                "hashmesh_poller_cycle_mean_poll_seconds",
                "Mean poll duration in the last interval.",
                c.mean_poll_ms / 1000.0,
            ),
            (
                "hashmesh_poller_cycle_overdue_devices",
                "Devices not polled for two intervals (offline backoff included).",
                c.overdue_devices as f64,
            ),
        ] {
            out.push(Family::one(name, help, Gauge, value));
        }
    }
    if let Some(scan) = node
        .last_scan
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        out.push(Family::one(
            "hashmesh_discovery_last_scan_found",
            "Supported devices the last scan found.",
            Gauge,
            scan.found as f64,
        ));
        out.push(Family::one(
            "hashmesh_discovery_last_scan_missing",
            "Known devices the last scan did not find.",
            Gauge,
            scan.missing as f64,
        ));
        out.push(Family::one(
            "hashmesh_discovery_last_scan_seconds",
            "Duration of the last scan.",
            Gauge,
            scan.duration_s,
        ));
    }
    let st = node.store.stats();
    for (name, help, kind, value) in [
        (
            "hashmesh_store_disk_bytes",
            "Bytes the time-series store holds on disk (chunks, rollups, WAL, state).",
            Gauge,
            st.bytes_on_disk,
        ),
        (
            "hashmesh_store_wal_bytes",
            "Bytes in the write-ahead log.",
            Gauge,
            st.wal_bytes,
        ),
        (
            "hashmesh_store_head_rows",
            "Rows held in memory, not yet sealed into chunks.",
            Gauge,
            st.head_rows,
        ),
        (
            "hashmesh_store_rows_total",
            "Rows ingested by the time-series store since it opened.",
            Counter,
            st.rows_ingested,
        ),
        (
            "hashmesh_store_corrupt_chunks_skipped_total",
            "Chunks found corrupt and never served.",
            Counter,
            st.corrupt_chunks_skipped,
        ),
        (
            "hashmesh_store_late_rows_total",
            "Rows that arrived for a time already sealed or rolled up.",
            Counter,
            st.late_rows,
        ),
    ] {
        out.push(Family::one(name, help, kind, value as f64));
    }
    out
}

fn group_labels(k: &GroupKey) -> Vec<(&'static str, String)> {
    let mut l = vec![("level", k.level.to_owned())];
    l.extend(k.labels.iter().cloned());
    l
}

/// Current totals of every group (node, site, container, rack, model, vendor; meters apart).
pub fn groups(node: &NodeInner) -> Vec<Family> {
    use MetricKind::Gauge;
    let totals = rollup::totals(&node.live);
    let mut devices = Family::new(
        "hashmesh_group_devices",
        "Devices of a group by status.",
        Gauge,
    );
    let mut hash = Family::new(
        "hashmesh_group_hashrate_ths",
        "Current hashrate of a group, TH/s.",
        Gauge,
    );
    let mut expected = Family::new(
        "hashmesh_group_expected_hashrate_ths",
        "Nominal hashrate of a group's devices, TH/s.",
        Gauge,
    );
    let mut power = Family::new(
        "hashmesh_group_power_w",
        "Power drawn by a group's miners, W.",
        Gauge,
    );
    let mut eff = Family::new(
        "hashmesh_group_efficiency_j_per_th",
        "Power over hashrate of a group's miners that report both, J/TH.",
        Gauge,
    );
    let mut temp = Family::new(
        "hashmesh_group_chip_temp_max_c",
        "Hottest chip of a group, °C.",
        Gauge,
    );
    let mut meter_power = Family::new(
        "hashmesh_meter_group_power_w",
        "Active power measured by a group's power meters, W.",
        Gauge,
    );
    let mut meter_energy = Family::new(
        "hashmesh_meter_group_energy_import_kwh",
        "Energy imported as counted by a group's power meters, kWh.",
        Gauge,
    );
    for (k, t) in &totals {
        let labels = group_labels(k);
        let kind = if k.meters { "power_meter" } else { "miner" };
        for status in DeviceStatus::ALL {
            let mut l = labels.clone();
            l.push(("kind", kind.to_owned()));
            l.push(("status", status.as_str().to_owned()));
            let n = t.by_status.get(status.as_str()).copied().unwrap_or(0);
            devices.push(l, n as f64);
        }
        if k.meters {
            meter_power.push(labels.clone(), t.power_w);
            meter_energy.push(labels, t.energy_import_kwh);
            continue;
        }
        hash.push(labels.clone(), t.hashrate_ths);
        expected.push(labels.clone(), t.expected_hashrate_ths);
        power.push(labels.clone(), t.power_w);
        if let Some(e) = t.efficiency_j_per_th {
            eff.push(labels.clone(), e);
        }
        if let Some(c) = t.chip_temp_max_c {
            temp.push(labels, c);
        }
    }
    vec![
        devices,
        hash,
        expected,
        power,
        eff,
        temp,
        meter_power,
        meter_energy,
    ]
}

/// One series per device (opt-in: large on big sites).
pub fn devices(node: &NodeInner) -> Vec<Family> {
    use MetricKind::Gauge;
    let mut up = Family::new(
        "hashmesh_device_up",
        "1 when the device answered its last poll.",
        Gauge,
    );
    let mut status = Family::new(
        "hashmesh_device_status_code",
        "Device status: 1 mining, 2 sleeping, 3 degraded, 4 error, 5 auth failed, 6 offline, 7 online (meters).",
        Gauge,
    );
    let mut hash = Family::new(
        "hashmesh_device_hashrate_ths",
        "Device hashrate, TH/s.",
        Gauge,
    );
    let mut power = Family::new("hashmesh_device_power_w", "Device power, W.", Gauge);
    let mut temp = Family::new(
        "hashmesh_device_chip_temp_max_c",
        "Hottest chip of the device, °C.",
        Gauge,
    );
    let mut eff = Family::new(
        "hashmesh_device_efficiency_j_per_th",
        "Device efficiency, J/TH.",
        Gauge,
    );
    for d in node.live.all() {
        let info = d.info();
        let (st, reading) = d.with_state(|s| (s.status, s.reading.clone()));
        let l = &info.location;
        let labels = vec![
            ("device", info.id.0.clone()),
            ("ip", info.ip.to_string()),
            ("model", info.model.to_string()),
            ("site", l.site.clone().unwrap_or_default()),
            ("container", l.container.clone().unwrap_or_default()),
            ("rack", l.rack.clone().unwrap_or_default()),
        ];
        up.push(labels.clone(), if st.is_online() { 1.0 } else { 0.0 });
        status.push(labels.clone(), st.code());
        if !st.is_online() {
            continue;
        }
        match reading {
            Some(Reading::Miner(s)) => {
                if let Some(h) = s.hashrate_ths {
                    hash.push(labels.clone(), h);
                }
                if let Some(p) = s.power_w {
                    power.push(labels.clone(), p);
                }
                if let Some(t) = s.max_chip_temp_c() {
                    temp.push(labels.clone(), t);
                }
                if let Some(e) = s.efficiency_j_per_th {
                    eff.push(labels, e);
                }
            }
            Some(Reading::Meter(m)) => {
                if let Some(p) = m.active_power_total_w {
                    power.push(labels, p);
                }
            }
            None => {}
        }
    }
    vec![up, status, hash, power, temp, eff]
}

/// The `/metrics` page.
pub fn render(node: &NodeInner) -> String {
    let mut families = health(node);
    families.extend(groups(node));
    if node.config.metrics.per_device {
        families.extend(devices(node));
    }
    let mut enc = TextEncoder::new();
    for f in &families {
        enc.family(f.name, f.help, f.kind);
        for s in &f.samples {
            let labels: Vec<(&str, &str)> =
                s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            enc.sample(f.name, &labels, s.value);
        }
    }
    enc.finish()
}
