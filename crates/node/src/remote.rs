//! Pushes the node's metrics to a remote-write receiver on a fixed cadence: the same families
//! as `/metrics` (health and group totals, per-device series when asked), stamped with the time
//! they were taken and labelled with the node's name.

use crate::config::RemoteWriteSection;
use crate::export::remote_write::{RemoteWriteConfig, RemoteWriter, TimeSeries};
use crate::metrics;
use crate::node::NodeInner;
use std::sync::Arc;
use std::time::Duration;

/// Starts the writer and the task that feeds it.
pub fn start(
    node: Arc<NodeInner>,
    rw: &RemoteWriteSection,
) -> Result<(RemoteWriter, tokio::task::JoinHandle<()>), String> {
    let mut config =
        RemoteWriteConfig::new(rw.url.clone(), node.config.data_dir.join("remote-write"));
    config.queue_max_bytes = rw.queue_max_mib.saturating_mul(1024 * 1024);
    config.headers = rw
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.external_labels = vec![("node".to_owned(), node.config.node_name.clone())];
    let writer = RemoteWriter::spawn(config).map_err(|e| e.to_string())?;
    let every = Duration::from_secs_f64(rw.interval_s);
    let per_device = rw.per_device;
    let w = writer.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let node = node.clone();
            let series = tokio::task::spawn_blocking(move || collect(&node, per_device)).await;
            match series {
                Ok(series) => {
                    if let Err(e) = w.push(series) {
                        tracing::error!("remote-write: {e}");
                    }
                }
                Err(e) => tracing::error!("remote-write: collecting metrics: {e}"),
            }
        }
    });
    Ok((writer, task))
}

/// Every sample of this moment as remote-write series.
pub fn collect(node: &NodeInner, per_device: bool) -> Vec<TimeSeries> {
    let now = hashmesh_drivers::now_unix_ms();
    let mut families = metrics::health(node);
    families.extend(metrics::groups(node));
    if per_device {
        families.extend(metrics::devices(node));
    }
    let mut out = Vec::new();
    for f in families {
        for s in f.samples {
            if !s.value.is_finite() {
                continue;
            }
            let mut labels = Vec::with_capacity(s.labels.len() + 1);
            labels.push(("__name__".to_owned(), f.name.to_owned()));
            labels.extend(s.labels.into_iter().map(|(k, v)| (k.to_owned(), v)));
            out.push(TimeSeries {
                labels,
                samples: vec![(now, s.value)],
            });
        }
    }
    out
}
