//! Rollup maths against a brute-force computation over the same rows, for random fleets,
//! groups, NaNs and times, with and without a reopen in the middle of ingest.

mod tsdb_common;

use std::collections::BTreeMap;

use hashmesh_store::tsdb::{Agg, Resolution, SeriesId, Store};
use proptest::prelude::*;
use tsdb_common::*;

#[derive(Debug, Clone)]
struct Case {
    groups: Vec<Vec<usize>>,
    rows: Vec<(usize, i64, [Option<f64>; 2])>,
    reopen_at: Option<usize>,
}

const GROUPS: [&str; 4] = ["all", "g1", "g2", "g3"];

fn case() -> impl Strategy<Value = Case> {
    (1usize..6).prop_flat_map(|n_dev| {
        let groups = prop::collection::vec(prop::collection::vec(1usize..4, 0..3), n_dev);
        let value = prop_oneof![1 => Just(None), 6 => (-50i32..5000).prop_map(|v| Some(f64::from(v) / 4.0))];
        let row = (0..n_dev, 0i64..3 * 3_600_000, [value.clone(), value]);
        let rows = prop::collection::vec(row, 1..150);
        (groups, rows, prop::option::of(0usize..150)).prop_map(|(groups, mut rows, reopen_at)| {
            rows.sort_by_key(|r| r.1);
            Case {
                groups: groups
                    .into_iter()
                    .map(|mut g| {
                        g.push(0);
                        g.sort_unstable();
                        g.dedup();
                        g
                    })
                    .collect(),
                rows: rows.into_iter().map(|(d, t, v)| (d, T0 + t, v)).collect(),
                reopen_at,
            }
        })
    })
}

/// (group, bucket) -> per column: device means.
fn brute(c: &Case, res: i64) -> BTreeMap<(usize, i64), [Vec<f64>; 2]> {
    let mut per_dev: BTreeMap<(usize, i64), [(f64, u32); 2]> = BTreeMap::new();
    for (d, t, v) in &c.rows {
        let b = t.div_euclid(res) * res;
        let e = per_dev.entry((*d, b)).or_insert([(0.0, 0); 2]);
        for col in 0..2 {
            if let Some(x) = v[col] {
                e[col].0 += x;
                e[col].1 += 1;
            }
        }
    }
    let mut out: BTreeMap<(usize, i64), [Vec<f64>; 2]> = BTreeMap::new();
    for ((d, b), acc) in per_dev {
        for &g in &c.groups[d] {
            let e = out.entry((g, b)).or_default();
            for col in 0..2 {
                if acc[col].1 > 0 {
                    e[col].push(acc[col].0 / f64::from(acc[col].1));
                }
            }
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) + 1e-9
}

fn run(c: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let cols = ["hashrate_ths", "power_w"];
    let mut store = open(dir.path(), &cols);
    let ids: Vec<SeriesId> = (0..c.groups.len())
        .map(|d| store.series(&format!("dev{d}")).unwrap())
        .collect();
    for (d, g) in c.groups.iter().enumerate() {
        let names: Vec<String> = g.iter().map(|&i| GROUPS[i].to_string()).collect();
        store.set_groups(ids[d], &names).unwrap();
    }
    for (i, (d, t, v)) in c.rows.iter().enumerate() {
        if c.reopen_at == Some(i) {
            drop(store);
            store = open(dir.path(), &cols);
        }
        let vals = [v[0].unwrap_or(f64::NAN), v[1].unwrap_or(f64::NAN)];
        store.append(ids[*d], *t, &vals).unwrap();
        if i % 7 == 0 {
            store.tick(*t).unwrap();
        }
        if i % 23 == 0 {
            store.seal().unwrap();
        }
    }
    store.tick(T0 + 5 * HOUR).unwrap();
    store.seal().unwrap();
    store.compact_all(T0 + 5 * HOUR).unwrap();
    prop_assert_eq!(store.stats().late_rows, 0);
    for (res, resolution) in [
        (60_000, Resolution::Min1),
        (300_000, Resolution::Min5),
        (HOUR, Resolution::Hour1),
    ] {
        let want = brute(c, res);
        for (g, gname) in GROUPS.iter().enumerate() {
            if !c.groups.iter().any(|gs| gs.contains(&g)) {
                continue;
            }
            for (col, cname) in cols.iter().enumerate() {
                for agg in [Agg::Sum, Agg::Avg, Agg::Min, Agg::Max, Agg::Count] {
                    let got = store
                        .query_group(gname, cname, agg, T0, T0 + 4 * HOUR, resolution)
                        .unwrap();
                    let expected: Vec<(i64, f64)> = want
                        .iter()
                        .filter(|((wg, _), m)| *wg == g && !m[col].is_empty())
                        .map(|((_, b), m)| {
                            let means = &m[col];
                            let sum: f64 = means.iter().sum();
                            let v = match agg {
                                Agg::Sum => sum,
                                Agg::Avg => sum / means.len() as f64,
                                Agg::Min => means.iter().copied().fold(f64::INFINITY, f64::min),
                                Agg::Max => means.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                                Agg::Count => means.len() as f64,
                            };
                            (*b, v)
                        })
                        .collect();
                    prop_assert_eq!(
                        got.len(),
                        expected.len(),
                        "{} {} {:?} {:?}",
                        gname,
                        cname,
                        agg,
                        resolution
                    );
                    for (p, (b, v)) in got.iter().zip(&expected) {
                        prop_assert_eq!(p.time_unix_ms, *b);
                        prop_assert!(
                            close(p.value, *v),
                            "{} {} {:?} {:?} at {}: {} vs {}",
                            gname,
                            cname,
                            agg,
                            resolution,
                            b,
                            p.value,
                            v
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn rollups_match_brute_force(c in case()) {
        run(&c)?;
    }
}

/// Open buckets answer with their partial value, computed the same way.
#[test]
fn open_bucket_gives_partial_value() {
    let dir = tempfile::tempdir().unwrap();
    let store: Store = open(dir.path(), &["hashrate_ths", "power_w"]);
    let a = store.series("a").unwrap();
    let b = store.series("b").unwrap();
    store.set_groups(a, &columns(&["all"])).unwrap();
    store.set_groups(b, &columns(&["all"])).unwrap();
    store.append(a, T0 + 1000, &[10.0, 1.0]).unwrap();
    store.append(a, T0 + 2000, &[20.0, 1.0]).unwrap();
    store.append(b, T0 + 3000, &[5.0, 1.0]).unwrap();
    let p = store
        .query_group(
            "all",
            "hashrate_ths",
            Agg::Sum,
            T0,
            T0 + HOUR,
            Resolution::Hour1,
        )
        .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].value, 20.0);
}
