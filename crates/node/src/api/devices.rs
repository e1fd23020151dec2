//! Device routes: the filtered, sorted, paged device table (fast at 100,000 devices), the
//! values the filters offer, one device in full, and one device's history.
//!
//! The table is built from live state at most once a second into a [`RowCache`] of compact
//! rows (shared `Arc`s, a few numbers), so a request filters and sorts plain memory instead of
//! locking 100,000 devices.

use super::params::{HistoryQuery, resolution_name};
use super::{AppState, blocking};
use crate::auth::RequireViewer;
use crate::error::ApiError;
use crate::live::{DeviceInfo, DeviceStatus, LiveState, PollFailure, Reading};
use crate::node::NodeInner;
use axum::Json;
use axum::extract::{Path, Query, State};
use hashmesh_core::DeviceId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One device as the table shows it.
#[derive(Debug, Clone)]
pub struct Row {
    info: Arc<DeviceInfo>,
    status: DeviceStatus,
    // The few reading fields the table shows, copied out: holding the snapshot itself would
    // keep every device's previous snapshot alive beside its current one (~1.6 KB each).
    expected_hashrate_ths: Option<f64>,
    efficiency_j_per_th: Option<f64>,
    fan_rpm_max: Option<u32>,
    uptime_s: Option<u64>,
    active_pool: Option<Arc<str>>,
    failure: Option<PollFailure>,
    last_poll_unix_ms: Option<i64>,
    hashrate_ths: Option<f64>,
    power_w: Option<f64>,
    chip_temp_max_c: Option<f64>,
    /// The address as text, for prefix filters.
    ip_text: Arc<str>,
    /// Lower-case id, address, model, serial and MAC, for free-text search.
    text: Arc<str>,
}

impl Row {
    /// A row for `d`; identity text is reused from `prev` when the identity did not change.
    fn build(d: &crate::live::LiveDevice, prev: Option<&Row>) -> Row {
        let info = d.info();
        let (ip_text, text) = match prev {
            Some(p) if Arc::ptr_eq(&p.info, &info) => (p.ip_text.clone(), p.text.clone()),
            _ => {
                let ip = info.ip.to_string();
                let text = [
                    Some(info.id.0.as_str()),
                    Some(ip.as_str()),
                    Some(&*info.model),
                    info.serial.as_deref(),
                    info.mac.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\u{1f}")
                .to_lowercase();
                (Arc::from(ip), Arc::from(text))
            }
        };
        let (status, reading, failure, last_poll) = d.with_state(|s| {
            (
                s.status,
                s.reading.clone(),
                s.failure.clone(),
                s.last_poll_unix_ms,
            )
        });
        let (hashrate_ths, power_w, chip_temp_max_c) = match &reading {
            Some(Reading::Miner(s)) if status.is_online() => {
                (s.hashrate_ths, s.power_w, s.max_chip_temp_c())
            }
            Some(Reading::Meter(m)) if status.is_online() => (None, m.active_power_total_w, None),
            _ => (None, None, None),
        };
        let miner = match &reading {
            Some(Reading::Miner(s)) if status.is_online() => Some(s.as_ref()),
            _ => None,
        };
        // Pool URLs are shared between snapshots: no allocation per device per rebuild.
        let active_pool = miner.and_then(|m| m.active_pool()).map(|p| p.url.clone());
        Row {
            info,
            status,
            expected_hashrate_ths: miner.and_then(|m| m.expected_hashrate_ths),
            efficiency_j_per_th: miner.and_then(|m| m.efficiency_j_per_th),
            fan_rpm_max: miner.and_then(|m| m.fans_rpm.iter().copied().max()),
            uptime_s: miner.and_then(|m| m.uptime_s),
            active_pool,
            failure,
            last_poll_unix_ms: last_poll,
            hashrate_ths,
            power_w,
            chip_temp_max_c,
            ip_text,
            text,
        }
    }

    /// Identity and location.
    pub fn info(&self) -> &Arc<DeviceInfo> {
        &self.info
    }

    /// Current status.
    pub fn status(&self) -> DeviceStatus {
        self.status
    }

    /// Current hashrate (none while not answering).
    pub fn hashrate_ths(&self) -> Option<f64> {
        self.hashrate_ths
    }

    /// Hottest chip now.
    pub fn chip_temp_max_c(&self) -> Option<f64> {
        self.chip_temp_max_c
    }

    /// Nominal hashrate, from the last reading.
    pub fn expected_hashrate_ths(&self) -> Option<f64> {
        self.expected_hashrate_ths
    }

    /// The JSON form of the row.
    pub fn to_json(&self) -> RowJson {
        let i = &self.info;
        RowJson {
            id: i.id.0.clone(),
            ip: i.ip.to_string(),
            kind: match i.kind {
                hashmesh_core::DeviceKind::PowerMeter => "power_meter",
                _ => "miner",
            },
            family: i.family.clone(),
            vendor: i.vendor.clone(),
            model: i.model.clone(),
            firmware: i.firmware.clone(),
            status: self.status.as_str(),
            hashrate_ths: self.hashrate_ths,
            expected_hashrate_ths: self.expected_hashrate_ths,
            power_w: self.power_w,
            efficiency_j_per_th: self.efficiency_j_per_th,
            chip_temp_max_c: self.chip_temp_max_c,
            fan_rpm_max: self.fan_rpm_max,
            site: i.location.site.clone(),
            container: i.location.container.clone(),
            rack: i.location.rack.clone(),
            shelf: i.location.shelf,
            slot: i.location.slot,
            uptime_s: self.uptime_s,
            active_pool: self.active_pool.as_deref().map(str::to_owned),
            error: self.failure.as_ref().map(|f| f.message.clone()),
            last_poll_unix_ms: self.last_poll_unix_ms,
        }
    }

    fn number(&self, field: &str) -> Option<f64> {
        match field {
            "hashrate_ths" => self.hashrate_ths,
            "power_w" => self.power_w,
            "chip_temp_max_c" => self.chip_temp_max_c,
            "expected_hashrate_ths" => self.expected_hashrate_ths,
            "efficiency_j_per_th" => self.efficiency_j_per_th,
            "fan_rpm_max" => self.fan_rpm_max.map(f64::from),
            "uptime_s" => self.uptime_s.map(|u| u as f64),
            "shelf" => self.info.location.shelf.map(f64::from),
            "slot" => self.info.location.slot.map(f64::from),
            "last_poll_unix_ms" => self.last_poll_unix_ms.map(|t| t as f64),
            _ => None,
        }
    }
}

/// A device row in JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowJson {
    id: String,
    ip: String,
    kind: &'static str,
    #[schema(value_type = String)]
    family: Arc<str>,
    #[schema(value_type = String)]
    vendor: Arc<str>,
    #[schema(value_type = String)]
    model: Arc<str>,
    #[schema(value_type = String)]
    firmware: Arc<str>,
    status: &'static str,
    hashrate_ths: Option<f64>,
    expected_hashrate_ths: Option<f64>,
    power_w: Option<f64>,
    efficiency_j_per_th: Option<f64>,
    chip_temp_max_c: Option<f64>,
    fan_rpm_max: Option<u32>,
    site: Option<String>,
    container: Option<String>,
    rack: Option<String>,
    shelf: Option<u16>,
    slot: Option<u16>,
    uptime_s: Option<u64>,
    active_pool: Option<String>,
    error: Option<String>,
    last_poll_unix_ms: Option<i64>,
}

/// The device table, rebuilt from live state when older than [`ROW_TTL`]. A request never
/// waits for a rebuild once a table exists: it gets the current one while a background thread
/// builds the next.
#[derive(Default)]
pub struct RowCache {
    inner: Mutex<Option<(Instant, Arc<Vec<Row>>)>>,
    rebuilding: std::sync::atomic::AtomicBool,
}

/// How old the device table may be before a request rebuilds it.
pub const ROW_TTL: Duration = Duration::from_secs(1);

fn build_rows(live: &LiveState, prev: Option<&[Row]>) -> Vec<Row> {
    live.all()
        .iter()
        .enumerate()
        .map(|(i, d)| Row::build(d, prev.and_then(|p| p.get(i))))
        .collect()
}

impl RowCache {
    /// The current table (built now if there is none yet or devices were added).
    pub fn get(self: &Arc<Self>, live: &Arc<LiveState>) -> Arc<Vec<Row>> {
        use std::sync::atomic::Ordering;
        let current = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match current {
            Some((at, rows)) if rows.len() == live.len() => {
                if at.elapsed() >= ROW_TTL && !self.rebuilding.swap(true, Ordering::AcqRel) {
                    let (cache, live, prev) = (self.clone(), live.clone(), rows.clone());
                    let spawned = std::thread::Builder::new()
                        .name("hashmesh-rows".into())
                        .spawn(move || {
                            let started = Instant::now();
                            let rows = Arc::new(build_rows(&live, Some(&prev)));
                            *cache.inner.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((started, rows));
                            cache.rebuilding.store(false, Ordering::Release);
                        });
                    if spawned.is_err() {
                        self.rebuilding.store(false, Ordering::Release);
                    }
                }
                rows
            }
            prev => {
                let rows = Arc::new(build_rows(live, prev.as_ref().map(|(_, r)| r.as_slice())));
                *self.inner.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), rows.clone()));
                rows
            }
        }
    }
}

/// `GET /api/v1/devices` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Statuses, comma-separated (any of them).
    pub status: Option<String>,
    /// Vendors, comma-separated.
    pub vendor: Option<String>,
    /// Models, comma-separated.
    pub model: Option<String>,
    /// Driver families, comma-separated.
    pub family: Option<String>,
    /// Sites, comma-separated.
    pub site: Option<String>,
    /// Containers, comma-separated.
    pub container: Option<String>,
    /// Racks, comma-separated.
    pub rack: Option<String>,
    /// Address prefix.
    pub ip: Option<String>,
    /// Free text: id, address, model, serial, MAC.
    pub q: Option<String>,
    /// `miner` or `power_meter`.
    pub kind: Option<String>,
    /// Field to sort by.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    /// First row of the page.
    pub offset: Option<usize>,
    /// Rows in the page (default 200, at most 5000).
    pub limit: Option<usize>,
}

/// Largest page.
pub const MAX_LIMIT: usize = 5000;

const SORTABLE: [&str; 19] = [
    "id",
    "ip",
    "family",
    "vendor",
    "model",
    "status",
    "site",
    "container",
    "rack",
    "hashrate_ths",
    "expected_hashrate_ths",
    "power_w",
    "efficiency_j_per_th",
    "chip_temp_max_c",
    "fan_rpm_max",
    "uptime_s",
    "shelf",
    "slot",
    "last_poll_unix_ms",
];

/// A checked filter.
struct Filter {
    statuses: Option<Vec<DeviceStatus>>,
    vendor: Option<Vec<String>>,
    model: Option<Vec<String>>,
    family: Option<Vec<String>>,
    site: Option<Vec<String>>,
    container: Option<Vec<String>>,
    rack: Option<Vec<String>>,
    kind: Option<hashmesh_core::DeviceKind>,
    ip: Option<String>,
    q: Option<String>,
}

fn list_of(v: &Option<String>) -> Option<Vec<String>> {
    v.as_ref().map(|s| {
        s.split(',')
            .map(|x| x.trim().to_lowercase())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

impl Filter {
    fn parse(q: &ListQuery) -> Result<Filter, ApiError> {
        let statuses = match &q.status {
            None => None,
            Some(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(|x| {
                        DeviceStatus::ALL
                            .into_iter()
                            .find(|st| st.as_str() == x)
                            .ok_or_else(|| {
                                ApiError::bad_request(format!(
                                    "status: unknown status '{x}' (expected {})",
                                    DeviceStatus::ALL.map(|s| s.as_str()).join(", ")
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let kind = match q.kind.as_deref() {
            None => None,
            Some("miner") => Some(hashmesh_core::DeviceKind::Miner),
            Some("power_meter") => Some(hashmesh_core::DeviceKind::PowerMeter),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "kind: unknown kind '{other}' (expected miner or power_meter)"
                )));
            }
        };
        if let Some(ip) = &q.ip
            && !ip
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
        {
            return Err(ApiError::bad_request(format!(
                "ip: '{ip}' is not an address or address prefix"
            )));
        }
        Ok(Filter {
            statuses,
            vendor: list_of(&q.vendor),
            model: list_of(&q.model),
            family: list_of(&q.family),
            site: list_of(&q.site),
            container: list_of(&q.container),
            rack: list_of(&q.rack),
            kind,
            ip: q.ip.clone(),
            q: q.q
                .as_ref()
                .map(|s| s.to_lowercase())
                .filter(|s| !s.is_empty()),
        })
    }

    fn matches(&self, r: &Row) -> bool {
        let i = &r.info;
        let one = |want: &Option<Vec<String>>, have: Option<&str>| match want {
            None => true,
            Some(list) => have.is_some_and(|h| list.iter().any(|w| w.eq_ignore_ascii_case(h))),
        };
        self.statuses.as_ref().is_none_or(|s| s.contains(&r.status))
            && self.kind.is_none_or(|k| k == i.kind)
            && one(&self.vendor, Some(&i.vendor))
            && one(&self.model, Some(&i.model))
            && one(&self.family, Some(&i.family))
            && one(&self.site, i.location.site.as_deref())
            && one(&self.container, i.location.container.as_deref())
            && one(&self.rack, i.location.rack.as_deref())
            && self
                .ip
                .as_ref()
                .is_none_or(|p| r.ip_text.starts_with(p.as_str()))
            // The row's search text is already lower case, its fields joined by a separator no
            // query holds, so one scan per row and no allocation.
            && self.q.as_ref().is_none_or(|q| r.text.contains(q.as_str()))
    }
}

fn text_key<'a>(r: &'a Row, field: &str) -> Option<&'a str> {
    let i = &r.info;
    match field {
        "id" => Some(&i.id.0),
        "family" => Some(&i.family),
        "vendor" => Some(&i.vendor),
        "model" => Some(&i.model),
        "status" => Some(r.status.as_str()),
        "site" => i.location.site.as_deref(),
        "container" => i.location.container.as_deref(),
        "rack" => i.location.rack.as_deref(),
        _ => None,
    }
}

/// A row's sort key for one field, taken once per request rather than once per comparison.
#[derive(Clone, Copy)]
enum SortKey<'a> {
    /// Sorting by address: the tie-breaker alone.
    Ip,
    Text(Option<&'a str>),
    Num(Option<f64>),
}

fn sort_key<'a>(r: &'a Row, field: &str) -> SortKey<'a> {
    match field {
        "ip" => SortKey::Ip,
        "id" | "family" | "vendor" | "model" | "status" | "site" | "container" | "rack" => {
            SortKey::Text(text_key(r, field))
        }
        _ => SortKey::Num(r.number(field)),
    }
}

/// Orders two keys of one field; devices without the value come last in either direction.
fn compare_keys(a: SortKey, b: SortKey, desc: bool) -> Ordering {
    let dir = |o: Ordering| if desc { o.reverse() } else { o };
    match (a, b) {
        // Natural order, so R2 comes before R10.
        (SortKey::Text(Some(x)), SortKey::Text(Some(y))) => dir(natural(x, y)),
        (SortKey::Text(x), SortKey::Text(y)) => x.is_none().cmp(&y.is_none()),
        (SortKey::Num(Some(x)), SortKey::Num(Some(y))) => dir(x.total_cmp(&y)),
        (SortKey::Num(x), SortKey::Num(y)) => x.is_none().cmp(&y.is_none()),
        _ => Ordering::Equal,
    }
}

fn natural(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            // Compare the numbers without leading zeros: longer is larger, else digit by digit.
            let x = trim_zeros(&a[si..i]);
            let y = trim_zeros(&b[sj..j]);
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = a[i].to_ascii_lowercase().cmp(&b[j].to_ascii_lowercase());
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

/// A page of the device table.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// Devices the node manages.
    pub total: usize,
    /// Devices the filter matched.
    pub matched: usize,
    /// Offset of the first item.
    pub offset: usize,
    /// The page.
    pub items: Vec<RowJson>,
}

/// Filters, sorts and pages the table (pure; used by the handler and the benchmark).
pub fn page(rows: &[Row], q: &ListQuery) -> Result<Page, ApiError> {
    let filter = Filter::parse(q)?;
    let sort = q.sort.as_deref().unwrap_or("ip");
    if !SORTABLE.contains(&sort) {
        return Err(ApiError::bad_request(format!(
            "sort: cannot sort by '{sort}' (expected one of {})",
            SORTABLE.join(", ")
        )));
    }
    let desc = match q.order.as_deref().unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "order: '{other}' (expected asc or desc)"
            )));
        }
    };
    let limit = q.limit.unwrap_or(200);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is above the maximum of {MAX_LIMIT}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    // The address rides beside the key: the tie-break then needs no trip to each row's
    // identity, which at 100,000 rows is a cache miss per comparison.
    let mut hits: Vec<(SortKey, std::net::IpAddr, &Row)> = rows
        .iter()
        .filter(|r| filter.matches(r))
        .map(|r| (sort_key(r, sort), r.info.ip, r))
        .collect();
    let matched = hits.len();
    let cmp = |a: &(SortKey, std::net::IpAddr, &Row), b: &(SortKey, std::net::IpAddr, &Row)| {
        let tie = || {
            let o = a.1.cmp(&b.1);
            if matches!(a.0, SortKey::Ip) && desc {
                o.reverse()
            } else {
                o
            }
        };
        // Ties broken by address so pages are stable.
        compare_keys(a.0, b.0, desc).then_with(tie)
    };
    // Only the rows up to the end of the page need to be in order.
    let end = offset.saturating_add(limit).min(matched);
    if end > 0 && end < matched {
        hits.select_nth_unstable_by(end - 1, cmp);
        hits.truncate(end);
    }
    hits.sort_unstable_by(cmp);
    let items = hits
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, _, r)| r.to_json())
        .collect();
    Ok(Page {
        total: rows.len(),
        matched,
        offset,
        items,
    })
}

/// `GET /api/v1/devices`.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(ListQuery),
    responses((status = 200, description = "A page of the filtered, sorted device table", body = Page),
              (status = 400, description = "A filter is wrong; `detail` names it")))]
pub async fn list(
    _who: RequireViewer,
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (cache, live) = (s.rows.clone(), s.node.live.clone());
    Ok(Json(blocking(move || page(&cache.get(&live), &q)).await?))
}

/// Values the filters can take.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Facets {
    statuses: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    vendors: BTreeSet<Arc<str>>,
    #[schema(value_type = Vec<String>)]
    models: BTreeSet<Arc<str>>,
    #[schema(value_type = Vec<String>)]
    families: BTreeSet<Arc<str>>,
    sites: BTreeSet<String>,
    containers: BTreeSet<String>,
    racks: BTreeSet<String>,
}

/// `GET /api/v1/devices/facets`.
#[utoipa::path(get, path = "/api/v1/devices/facets", tag = "devices",
    responses((status = 200, description = "The values each filter can take", body = Facets)))]
pub async fn facets(
    _who: RequireViewer,
    State(s): State<AppState>,
) -> Result<Json<Facets>, ApiError> {
    let (cache, live) = (s.rows.clone(), s.node.live.clone());
    blocking(move || {
        let rows = cache.get(&live);
        let mut f = Facets {
            statuses: DeviceStatus::ALL.iter().map(|s| s.as_str()).collect(),
            vendors: BTreeSet::new(),
            models: BTreeSet::new(),
            families: BTreeSet::new(),
            sites: BTreeSet::new(),
            containers: BTreeSet::new(),
            racks: BTreeSet::new(),
        };
        for r in rows.iter() {
            let i = &r.info;
            f.vendors.insert(i.vendor.clone());
            f.models.insert(i.model.clone());
            f.families.insert(i.family.clone());
            let l = &i.location;
            if let Some(x) = &l.site {
                f.sites.insert(x.clone());
            }
            if let Some(x) = &l.container {
                f.containers.insert(x.clone());
            }
            if let Some(x) = &l.rack {
                f.racks.insert(x.clone());
            }
        }
        Ok(Json(f))
    })
    .await
}

/// The device a path names, or 404.
pub fn device(node: &NodeInner, id: &str) -> Result<Arc<crate::live::LiveDevice>, ApiError> {
    node.live
        .by_id(&DeviceId(id.to_owned()))
        .ok_or_else(|| ApiError::not_found(format!("no device '{id}'")))
}

/// `GET /api/v1/devices/{id}`.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, description = "The device in full", body = DeviceDetail),
              (status = 404, description = "No such device")))]
pub async fn detail(
    _who: RequireViewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let d = device(&s.node, &id)?;
    let info = d.info();
    let state = d.state();
    let ip_history = s
        .node
        .inventory
        .ip_history(&info.id)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|h| IpSpanJson {
            ip: h.ip.to_string(),
            first_seen_unix_ms: h.first_seen_unix_ms,
            last_seen_unix_ms: h.last_seen_unix_ms,
        })
        .collect();
    let capabilities = s
        .node
        .registry
        .get(&info.family)
        .map(|drv| serde_json::to_value(drv.capabilities()))
        .transpose()
        .map_err(ApiError::internal)?;
    let snapshot = match &state.reading {
        Some(Reading::Miner(m)) => Some(SnapshotJson::Miner(Box::new(m.as_ref().clone()))),
        Some(Reading::Meter(m)) => Some(SnapshotJson::Meter(Box::new(m.as_ref().clone()))),
        None => None,
    };
    Ok(Json(DeviceDetail {
        info: (*info).clone(),
        state: StateJson {
            status: state.status,
            last_poll_unix_ms: state.last_poll_unix_ms,
            last_ok_unix_ms: state.last_ok_unix_ms,
            last_poll_ms: state.last_poll_ms,
            stale: !state.status.is_online() && state.reading.is_some(),
            failure: state.failure,
            consecutive_failures: state.consecutive_failures,
        },
        snapshot,
        ip_history,
        capabilities,
    }))
}

/// One device in full.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceDetail {
    /// Identity and location.
    info: DeviceInfo,
    /// What the poller knows now.
    state: StateJson,
    /// The last successful reading (kept while offline; then `state.stale` is true).
    snapshot: Option<SnapshotJson>,
    /// Every address the device has had.
    ip_history: Vec<IpSpanJson>,
    /// Commands its driver can carry out (`null` for meters).
    #[schema(value_type = Option<Object>)]
    capabilities: Option<serde_json::Value>,
}

/// The poller's view of a device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateJson {
    status: DeviceStatus,
    last_poll_unix_ms: Option<i64>,
    last_ok_unix_ms: Option<i64>,
    last_poll_ms: Option<f64>,
    /// The snapshot is from before the device stopped answering.
    stale: bool,
    failure: Option<PollFailure>,
    consecutive_failures: u32,
}

/// A miner's or a meter's snapshot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SnapshotJson {
    /// A miner.
    Miner(Box<hashmesh_core::MinerSnapshot>),
    /// A power meter.
    Meter(Box<hashmesh_core::MeterSnapshot>),
}

/// One address a device has had.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IpSpanJson {
    ip: String,
    first_seen_unix_ms: i64,
    last_seen_unix_ms: i64,
}

/// `GET /api/v1/devices/{id}/history`.
#[utoipa::path(get, path = "/api/v1/devices/{id}/history", tag = "devices",
    params(("id" = String, Path, description = "Device id"), HistoryQuery),
    responses((status = 200, description = "One device's column over time", body = super::fleet::History),
              (status = 400, description = "A parameter is wrong"), (status = 404, description = "No such device")))]
pub async fn history(
    _who: RequireViewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<super::fleet::History>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let metric = q.metric()?.to_owned();
    if q.group.is_some() || q.agg.is_some() {
        return Err(ApiError::bad_request(
            "group and agg apply to fleet history, not to one device",
        ));
    }
    let d = device(&s.node, &id)?;
    let window = q.window(hashmesh_drivers::now_unix_ms(), false)?;
    let store = s.node.store.clone();
    let key = d.info().id.0.clone();
    let m = metric.clone();
    let points = blocking(move || {
        let series = store.series(&key).map_err(ApiError::internal)?;
        let read = |column: &str| {
            store
                .query_series(
                    series,
                    column,
                    window.from_ms,
                    window.to_ms,
                    window.resolution,
                )
                .map_err(|e| ApiError::bad_request(e.to_string()))
        };
        if m == super::params::EFFICIENCY {
            return Ok(super::params::ratio(
                read("power_w")?,
                read("hashrate_ths")?,
            ));
        }
        read(&m)
    })
    .await?;
    Ok(Json(super::fleet::History {
        metric,
        agg: None,
        group: None,
        resolution: resolution_name(window.resolution),
        points: super::fleet::pairs(points),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_with(hashrates: &[Option<f64>]) -> Arc<LiveState> {
        let live = LiveState::new();
        for (i, h) in hashrates.iter().enumerate() {
            let info = DeviceInfo {
                id: DeviceId(format!("d{i}")),
                ip: format!("10.0.0.{}", i + 1).parse().unwrap(),
                kind: hashmesh_core::DeviceKind::Miner,
                family: "antminer".into(),
                vendor: "Bitmain".into(),
                model: "Antminer S19 Pro".into(),
                firmware: "".into(),
                mac: None,
                serial: None,
                unit_id: None,
                location: Default::default(),
                tags: vec![],
                credentials_ref: None,
                missing_since_unix_ms: None,
            };
            let (d, _) = live.upsert(info);
            if let Some(h) = h {
                let mut s =
                    hashmesh_core::MinerSnapshot::empty(0, hashmesh_core::MinerStatus::Mining);
                s.hashrate_ths = Some(*h);
                d.with_state(|st| {
                    st.status = DeviceStatus::Mining;
                    st.reading = Some(Reading::Miner(Arc::new(s)));
                });
            }
        }
        Arc::new(live)
    }

    fn order(rows: &[Row], q: ListQuery) -> Vec<String> {
        page(rows, &q)
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn devices_without_a_value_sort_last_both_ways() {
        let live = live_with(&[Some(100.0), None, Some(120.0), Some(90.0)]);
        let rows = Arc::new(RowCache::default()).get(&live);
        let q = |order: &str, limit| ListQuery {
            sort: Some("hashrate_ths".into()),
            order: Some(order.into()),
            limit: Some(limit),
            ..Default::default()
        };
        assert_eq!(order(&rows, q("desc", 10)), ["d2", "d0", "d3", "d1"]);
        assert_eq!(order(&rows, q("asc", 10)), ["d3", "d0", "d2", "d1"]);
        // A page cut by select_nth keeps the same order as the full sort.
        assert_eq!(order(&rows, q("desc", 2)), ["d2", "d0"]);
        let mut offset = q("asc", 2);
        offset.offset = Some(2);
        assert_eq!(order(&rows, offset), ["d2", "d1"]);
    }

    #[test]
    fn filters_combine_and_bad_ones_are_named() {
        let live = live_with(&[Some(100.0), None, Some(120.0)]);
        let rows = Arc::new(RowCache::default()).get(&live);
        let q = ListQuery {
            status: Some("unknown".into()),
            ..Default::default()
        };
        assert_eq!(order(&rows, q), ["d1"]);
        let q = ListQuery {
            ip: Some("10.0.0.3".into()),
            status: Some("mining,degraded".into()),
            ..Default::default()
        };
        assert_eq!(order(&rows, q), ["d2"]);
        let bad = ListQuery {
            ip: Some("10.0.0.x; drop".into()),
            ..Default::default()
        };
        let e = page(&rows, &bad).unwrap_err();
        assert!(format!("{e:?}").contains("ip"), "{e:?}");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["R10", "R2", "R1", "r3", "R02"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, vec!["R1", "R2", "R02", "r3", "R10"]);
    }
}
