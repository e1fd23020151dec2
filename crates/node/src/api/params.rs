//! Query parameters shared by the history routes: the time range, its resolution, the metric
//! and the aggregate, each checked with an error that names the parameter.

use crate::error::ApiError;
use crate::row;
use hashmesh_store::tsdb::{Agg, Point, Resolution};
use serde::Deserialize;

/// `?metric=…&agg=…&group=…&range=…&from=…&to=…` as written.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// A stored column, or `efficiency_j_per_th` (power over hashrate, computed when read).
    pub metric: String,
    /// sum|avg|min|max|count (groups only).
    pub agg: Option<String>,
    /// Group name (fleet history only): `all`, `site=A`, …
    pub group: Option<String>,
    /// `1h`, `6h`, `24h`, `7d`, `30d`.
    pub range: Option<String>,
    /// Start, unix ms (instead of `range`).
    pub from: Option<i64>,
    /// End, unix ms (default now).
    pub to: Option<i64>,
}

/// A checked time window and the resolution to read it at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start, unix ms.
    pub from_ms: i64,
    /// End, unix ms.
    pub to_ms: i64,
    /// Raw rows, or rollup buckets.
    pub resolution: Resolution,
}

/// The name of a resolution in responses.
pub fn resolution_name(r: Resolution) -> &'static str {
    match r {
        Resolution::Raw => "raw",
        Resolution::Min1 => "1m",
        Resolution::Min5 => "5m",
        Resolution::Hour1 => "1h",
    }
}

const HOUR: i64 = 3_600_000;

/// The one metric that is not stored but computed: power over hashrate.
pub const EFFICIENCY: &str = "efficiency_j_per_th";

/// Power over hashrate at the times both series have a point (hashrate above 0.01 TH/s).
pub fn ratio(power: Vec<Point>, hashrate: Vec<Point>) -> Vec<Point> {
    let by_time: std::collections::BTreeMap<i64, f64> = hashrate
        .into_iter()
        .map(|p| (p.time_unix_ms, p.value))
        .collect();
    power
        .into_iter()
        .filter_map(|p| {
            let h = by_time.get(&p.time_unix_ms)?;
            (*h > 0.01).then(|| Point {
                time_unix_ms: p.time_unix_ms,
                value: p.value / h,
            })
        })
        .collect()
}

impl HistoryQuery {
    /// The window: `range` back from now, or `from`..`to`. Group rollups start at 1 min; device
    /// series are raw up to 6 h.
    pub fn window(&self, now_ms: i64, for_group: bool) -> Result<Window, ApiError> {
        let to_ms = self.to.unwrap_or(now_ms);
        let from_ms = match (&self.range, self.from) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either range or from/to, not both",
                ));
            }
            (Some(r), None) => to_ms - parse_range(r)?,
            (None, Some(f)) => f,
            (None, None) => to_ms - HOUR,
        };
        if from_ms >= to_ms {
            return Err(ApiError::bad_request("from must be before to"));
        }
        let span = to_ms - from_ms;
        if span > 400 * 24 * HOUR {
            return Err(ApiError::bad_request("the window is longer than 400 days"));
        }
        let resolution = if span <= 6 * HOUR && !for_group {
            Resolution::Raw
        } else if span <= 26 * HOUR {
            Resolution::Min1
        } else if span <= 8 * 24 * HOUR {
            Resolution::Min5
        } else {
            Resolution::Hour1
        };
        Ok(Window {
            from_ms,
            to_ms,
            resolution,
        })
    }

    /// The aggregate for a group query.
    pub fn agg(&self) -> Result<Agg, ApiError> {
        match self.agg.as_deref().unwrap_or("sum") {
            "sum" => Ok(Agg::Sum),
            "avg" => Ok(Agg::Avg),
            "min" => Ok(Agg::Min),
            "max" => Ok(Agg::Max),
            "count" => Ok(Agg::Count),
            other => Err(ApiError::bad_request(format!(
                "unknown agg '{other}' (expected sum, avg, min, max or count)"
            ))),
        }
    }

    /// The metric, checked against the stored columns.
    pub fn metric(&self) -> Result<&str, ApiError> {
        let m = self.metric.as_str();
        if row::column(m).is_some() || m == EFFICIENCY {
            Ok(m)
        } else {
            Err(ApiError::bad_request(format!(
                "unknown metric '{m}' (expected {EFFICIENCY} or one of {})",
                row::COLUMNS.join(", ")
            )))
        }
    }
}

/// `1h`, `90m`, `24h`, `7d` → milliseconds.
pub fn parse_range(s: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::bad_request(format!("range '{s}' is not a duration like 1h, 24h or 7d"));
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "m" => 60_000,
        "h" => HOUR,
        "d" => 24 * HOUR,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(ms).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(range: Option<&str>) -> HistoryQuery {
        HistoryQuery {
            metric: "hashrate_ths".into(),
            agg: None,
            group: None,
            range: range.map(str::to_owned),
            from: None,
            to: None,
        }
    }

    #[test]
    fn ranges_pick_resolutions() {
        let now = 1_000 * 24 * HOUR;
        let w = q(Some("1h")).window(now, false).unwrap();
        assert_eq!((w.to_ms - w.from_ms, w.resolution), (HOUR, Resolution::Raw));
        assert_eq!(
            q(Some("1h")).window(now, true).unwrap().resolution,
            Resolution::Min1
        );
        assert_eq!(
            q(Some("24h")).window(now, true).unwrap().resolution,
            Resolution::Min1
        );
        assert_eq!(
            q(Some("7d")).window(now, true).unwrap().resolution,
            Resolution::Min5
        );
        assert_eq!(
            q(Some("30d")).window(now, true).unwrap().resolution,
            Resolution::Hour1
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let now = 1_000 * 24 * HOUR;
        for r in ["", "h", "1y", "-1h", "0h", "99999999999999999d"] {
            assert!(q(Some(r)).window(now, true).is_err(), "{r}");
        }
        let mut x = q(None);
        x.metric = "hashrate".into();
        assert!(x.metric().is_err());
        x.agg = Some("median".into());
        assert!(x.agg().is_err());
    }
}
