//! Fleet routes: the current totals of the node and its groups, and a group's history.

use super::params::{EFFICIENCY, HistoryQuery, ratio, resolution_name};
use super::{AppState, blocking};
use crate::auth::RequireViewer;
use crate::error::ApiError;
use crate::node::NodeInner;
use crate::poller::CycleStats;
use crate::rollup::{self, GroupKey, GroupTotals};
use axum::Json;
use axum::extract::{Query, State};
use hashmesh_store::tsdb::{Agg, Point};
use serde::Serialize;
use std::collections::BTreeMap;

/// Totals of one group, flattened for JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupRow {
    /// `site`, `container`, `rack`, `model` or `vendor`.
    pub level: &'static str,
    /// The group's labels (`site`, `container`, …) as fields.
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub labels: BTreeMap<&'static str, String>,
    /// The group's name in history queries.
    pub group: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: GroupTotals,
}

/// Meter totals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeterTotals {
    /// Meters.
    pub devices: u64,
    /// Active power, W.
    pub power_w: f64,
    /// Imported energy, kWh.
    pub energy_import_kwh: f64,
}

/// Poller figures shown with the summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PollerSummary {
    /// Configured interval, s.
    pub interval_s: f64,
    /// The last full cycle.
    pub last_cycle: Option<CycleStats>,
}

/// `GET /api/v1/fleet/summary`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// When computed, unix ms.
    pub time_unix_ms: i64,
    /// Node-wide miner totals.
    #[serde(flatten)]
    pub totals: GroupTotals,
    /// Power meter totals.
    pub meters: MeterTotals,
    /// The poller.
    pub poller: PollerSummary,
    /// Every site, container, rack, model and vendor.
    pub groups: Vec<GroupRow>,
}

/// Computes the summary (walks every device once).
pub fn compute(node: &NodeInner, with_groups: bool) -> Summary {
    let all = rollup::totals(&node.live);
    let node_key = |meters| GroupKey {
        meters,
        level: "node",
        labels: vec![],
    };
    let totals = all.get(&node_key(false)).cloned().unwrap_or_default();
    let m = all.get(&node_key(true)).cloned().unwrap_or_default();
    let groups = if with_groups {
        all.into_iter()
            .filter(|(k, _)| !k.meters && k.level != "node")
            .map(|(k, t)| GroupRow {
                level: k.level,
                group: k.store_name(),
                labels: k.labels.into_iter().collect(),
                totals: t,
            })
            .collect()
    } else {
        Vec::new()
    };
    Summary {
        time_unix_ms: hashmesh_drivers::now_unix_ms(),
        totals,
        meters: MeterTotals {
            devices: m.devices,
            power_w: m.power_w,
            energy_import_kwh: m.energy_import_kwh,
        },
        poller: PollerSummary {
            interval_s: node.config.poll.interval_s,
            last_cycle: node.poller.stats().last_cycle(),
        },
        groups,
    }
}

/// `GET /api/v1/fleet/summary`.
#[utoipa::path(get, path = "/api/v1/fleet/summary", tag = "fleet",
    responses((status = 200, description = "Totals of the node and of every group", body = Summary)))]
pub async fn summary(
    _who: RequireViewer,
    State(s): State<AppState>,
) -> Result<Json<Summary>, ApiError> {
    let node = s.node.clone();
    Ok(Json(blocking(move || Ok(compute(&node, true))).await?))
}

/// A history response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    /// The metric.
    pub metric: String,
    /// The aggregate (groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agg: Option<&'static str>,
    /// The group (fleet history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `raw`, `1m`, `5m` or `1h`.
    pub resolution: &'static str,
    /// `[time_unix_ms, value]` pairs.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub points: Vec<(i64, f64)>,
}

fn agg_name(a: Agg) -> &'static str {
    match a {
        Agg::Sum => "sum",
        Agg::Avg => "avg",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Count => "count",
    }
}

/// Pairs for JSON, without NaN (JSON has none; a gap is an absent point).
pub fn pairs(points: Vec<Point>) -> Vec<(i64, f64)> {
    points
        .into_iter()
        .filter(|p| p.value.is_finite())
        .map(|p| (p.time_unix_ms, p.value))
        .collect()
}

/// `GET /api/v1/fleet/history`.
#[utoipa::path(get, path = "/api/v1/fleet/history", tag = "fleet", params(HistoryQuery),
    responses((status = 200, description = "A group's aggregate over time", body = History),
              (status = 400, description = "A parameter is wrong; `detail` names it")))]
pub async fn history(
    _who: RequireViewer,
    State(s): State<AppState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    q.metric()?;
    let group = q.group.clone().unwrap_or_else(|| "all".to_owned());
    let window = q.window(hashmesh_drivers::now_unix_ms(), true)?;
    let agg = q.agg()?;
    let metric = q.metric.clone();
    let store = s.node.store.clone();
    let points = blocking(move || {
        let read = |column: &str| {
            store
                .query_group(
                    &group,
                    column,
                    agg,
                    window.from_ms,
                    window.to_ms,
                    window.resolution,
                )
                .map_err(|e| ApiError::bad_request(e.to_string()))
        };
        if metric == EFFICIENCY {
            if !matches!(agg, Agg::Sum | Agg::Avg) {
                return Err(ApiError::bad_request(
                    "agg: efficiency_j_per_th is power over hashrate; ask for sum",
                ));
            }
            // A fleet's efficiency is its total power over its total hashrate, not an average
            // of the devices' ratios (a small inefficient miner would weigh as much as a big one).
            let power = read("power_w")?;
            let hash = read("hashrate_ths")?;
            return Ok((ratio(power, hash), group));
        }
        Ok((read(&metric)?, group))
    })
    .await?;
    Ok(Json(History {
        metric: q.metric.clone(),
        agg: Some(agg_name(agg)),
        group: Some(points.1),
        resolution: resolution_name(window.resolution),
        points: pairs(points.0),
    }))
}
