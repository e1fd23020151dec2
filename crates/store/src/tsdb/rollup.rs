//! Rollups computed at ingest: per device, the running sum and count of each column in the
//! current 1-minute, 5-minute and 1-hour bucket; when a device moves on to a later bucket (or
//! the bucket is closed by `tick`), its bucket mean is folded into every group it belongs to.
//!
//! A group's bucket keeps, per column, the sum, minimum and maximum of its devices' means and
//! how many devices had a value, which is what [`Agg`](super::Agg) needs. NaN values are
//! skipped. A closed bucket becomes one rollup row per group (`sum, count, min, max` for each
//! column, with sums and extremes rounded to 24 significant bits, f32 precision, which keeps
//! rollups small); rows then go to the rollup tables at the next seal.
//!
//! A row whose bucket has already been closed at a level (or that is older than the device's
//! current bucket there) is left out of that level's rollups and counted as late.

use std::collections::BTreeMap;

use super::registry::Registry;

/// Bucket widths of the three rollup levels, in milliseconds.
pub const LEVEL_MS: [i64; 3] = [60_000, 300_000, 3_600_000];
/// Values per column in a rollup row.
pub const STATS: usize = 4;
/// Position of each statistic within a column's four values.
pub const SUM: usize = 0;
/// See [`SUM`].
pub const COUNT: usize = 1;
/// See [`SUM`].
pub const MIN: usize = 2;
/// See [`SUM`].
pub const MAX: usize = 3;

const NONE: i64 = i64::MIN;

/// Rounds to 24 significant bits (f32 precision) while keeping f64 range.
pub fn quantize(v: f64) -> f64 {
    round_mantissa(v, 23)
}

/// Rounds to the nearest value with `keep` mantissa bits (1 to 52; the relative error is at
/// most 2^-(keep+1)); non-finite values and `keep` ≥ 52 pass unchanged.
pub fn round_mantissa(v: f64, keep: u32) -> f64 {
    if !v.is_finite() || keep >= 52 {
        return v;
    }
    let drop = 52 - keep.max(1);
    let bits = v.to_bits();
    // A carry out of the mantissa correctly bumps the exponent.
    let rounded = (bits + (1u64 << (drop - 1))) & !((1u64 << drop) - 1);
    f64::from_bits(rounded)
}

/// A group's running statistics for one column in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Sum of device means.
    pub sum: f64,
    /// Smallest device mean.
    pub min: f64,
    /// Largest device mean.
    pub max: f64,
    /// Devices with a value.
    pub count: u32,
}

impl Cell {
    /// A cell with no devices.
    pub const EMPTY: Cell = Cell {
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        count: 0,
    };

    fn add(&mut self, mean: f64) {
        self.sum += mean;
        self.min = self.min.min(mean);
        self.max = self.max.max(mean);
        self.count += 1;
    }

    /// Combines two disjoint sets of devices.
    pub fn merge(&mut self, o: &Cell) {
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.count += o.count;
    }
}

/// A closed bucket of one group: `STATS` values per column.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The group.
    pub group: u32,
    /// Bucket start (ms).
    pub bucket: i64,
    /// `sum, count, min, max` for each column.
    pub values: Vec<f64>,
}

/// One rollup level (1 min, 5 min or 1 h).
#[derive(Debug)]
pub struct Level {
    /// Bucket width (ms).
    pub res: i64,
    /// Start of the first bucket not yet closed; rows before it are late.
    pub watermark: i64,
    ncols: usize,
    dev_bucket: Vec<i64>,
    /// Sum per device and column in its bucket, kept to f32 precision: three levels of f64
    /// sums held 50 MB for 100,000 devices, f32 ones 25 MB. A sum of n values is then within
    /// n × 2^-24 of exact (2 × 10^-5 for an hour of polls every 10 s), finer than the node
    /// keeps raw hashrates (12 mantissa bits, 1.2 × 10^-4) and than rollups are stored (f32).
    dev_sum: Vec<f32>,
    /// Values per device and column in its bucket. u16 keeps three levels of accumulators
    /// for 100,000 devices 13 MB smaller; a device that sends more than 65,535 rows in one
    /// bucket (18 a second for an hour) gets the mean of its first 65,535 there.
    dev_count: Vec<u16>,
    dev_in_bucket: BTreeMap<i64, u32>,
    open: BTreeMap<i64, Vec<Cell>>,
}

impl Level {
    /// A level with nothing open.
    pub fn new(res: i64, ncols: usize, watermark: i64) -> Self {
        Level {
            res,
            watermark,
            ncols,
            dev_bucket: Vec::new(),
            dev_sum: Vec::new(),
            dev_count: Vec::new(),
            dev_in_bucket: BTreeMap::new(),
            open: BTreeMap::new(),
        }
    }

    fn bucket(&self, t: i64) -> i64 {
        t.div_euclid(self.res) * self.res
    }

    fn ensure(&mut self, series: usize) {
        if self.dev_bucket.len() <= series {
            // Grow by an eighth, in whole 1,024s: doubling left up to half of three levels'
            // accumulators unused (31 % of them at 100,000 devices).
            let n = (series + 1)
                .max(self.dev_bucket.len() + self.dev_bucket.len() / 8)
                .next_multiple_of(1024);
            // `resize` alone would double the capacity again.
            self.dev_bucket.reserve_exact(n - self.dev_bucket.len());
            self.dev_bucket.resize(n, NONE);
            self.dev_sum
                .reserve_exact(n * self.ncols - self.dev_sum.len());
            self.dev_sum.resize(n * self.ncols, 0.0);
            self.dev_count
                .reserve_exact(n * self.ncols - self.dev_count.len());
            self.dev_count.resize(n * self.ncols, 0);
        }
    }

    /// Adds one row; false if it is late for this level.
    pub fn add_row(&mut self, series: u32, t: i64, values: &[f64], reg: &Registry) -> bool {
        let b = self.bucket(t);
        if b < self.watermark {
            return false;
        }
        let s = series as usize;
        self.ensure(s);
        let cur = self.dev_bucket[s];
        if cur != b {
            if cur != NONE {
                if cur > b {
                    return false;
                }
                self.fold(s, reg);
            }
            self.dev_bucket[s] = b;
            *self.dev_in_bucket.entry(b).or_insert(0) += 1;
        }
        let base = s * self.ncols;
        let sums = &mut self.dev_sum[base..base + self.ncols];
        let counts = &mut self.dev_count[base..base + self.ncols];
        for ((v, sum), count) in values.iter().zip(sums.iter_mut()).zip(counts.iter_mut()) {
            if !v.is_nan() && *count < u16::MAX {
                // Added in f64 and rounded once per row. A sum beyond f32's range (3.4 × 10^38,
                // no real reading) becomes infinite in the rollup; the raw row keeps the value.
                *sum = (f64::from(*sum) + v) as f32;
                *count += 1;
            }
        }
        true
    }

    /// Folds a device's bucket mean into its groups and empties its accumulator.
    fn fold(&mut self, s: usize, reg: &Registry) {
        let b = self.dev_bucket[s];
        if b == NONE {
            return;
        }
        let ncols = self.ncols;
        let ngroups = reg.group_count();
        let cells = self.open.entry(b).or_default();
        if cells.len() < ngroups * ncols {
            cells.resize(ngroups * ncols, Cell::EMPTY);
        }
        let base = s * ncols;
        for &g in reg.groups_of(s as u32) {
            let row = &mut cells[g as usize * ncols..(g as usize + 1) * ncols];
            for (c, cell) in row.iter_mut().enumerate() {
                let n = self.dev_count[base + c];
                if n > 0 {
                    cell.add(f64::from(self.dev_sum[base + c]) / f64::from(n));
                }
            }
        }
        self.dev_sum[base..base + ncols].fill(0.0);
        self.dev_count[base..base + ncols].fill(0);
        self.dev_bucket[s] = NONE;
        if let Some(n) = self.dev_in_bucket.get_mut(&b) {
            *n -= 1;
            if *n == 0 {
                self.dev_in_bucket.remove(&b);
            }
        }
    }

    /// Closes every bucket that ended at or before `cutoff`, returning one row per group.
    pub fn close_until(&mut self, cutoff: i64, reg: &Registry) -> Vec<RollupRow> {
        let limit = self.bucket(cutoff);
        if limit <= self.watermark {
            return Vec::new();
        }
        if self.dev_in_bucket.range(..limit).next().is_some() {
            for s in 0..self.dev_bucket.len() {
                let b = self.dev_bucket[s];
                if b != NONE && b < limit {
                    self.fold(s, reg);
                }
            }
        }
        let mut rows = Vec::new();
        let keep = self.open.split_off(&limit);
        let closed = std::mem::replace(&mut self.open, keep);
        for (bucket, cells) in closed {
            for (g, row) in cells.chunks(self.ncols).enumerate() {
                if row.iter().all(|c| c.count == 0) {
                    continue;
                }
                let mut values = Vec::with_capacity(self.ncols * STATS);
                for c in row {
                    if c.count == 0 {
                        values.extend_from_slice(&[0.0, 0.0, f64::NAN, f64::NAN]);
                    } else {
                        values.extend_from_slice(&[
                            quantize(c.sum),
                            f64::from(c.count),
                            quantize(c.min),
                            quantize(c.max),
                        ]);
                    }
                }
                rows.push(RollupRow {
                    group: g as u32,
                    bucket,
                    values,
                });
            }
        }
        self.watermark = limit;
        rows
    }

    /// The partial statistics of open buckets of a group for one column in `[from, to)`.
    pub fn partial(
        &self,
        group: u32,
        col: usize,
        from: i64,
        to: i64,
        reg: &Registry,
    ) -> Vec<(i64, Cell)> {
        let mut buckets: Vec<i64> = self
            .open
            .range(from..to)
            .map(|(b, _)| *b)
            .chain(self.dev_in_bucket.range(from..to).map(|(b, _)| *b))
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        let mut out = Vec::with_capacity(buckets.len());
        for b in buckets {
            let mut cell = self
                .open
                .get(&b)
                .and_then(|cells| cells.get(group as usize * self.ncols + col))
                .copied()
                .unwrap_or(Cell::EMPTY);
            if self.dev_in_bucket.contains_key(&b) {
                for &s in reg.members_of(group) {
                    let s = s as usize;
                    if self.dev_bucket.get(s) == Some(&b) {
                        let n = self.dev_count[s * self.ncols + col];
                        if n > 0 {
                            cell.add(f64::from(self.dev_sum[s * self.ncols + col]) / f64::from(n));
                        }
                    }
                }
            }
            if cell.count > 0 {
                out.push((b, cell));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_is_over_device_means() {
        let mut reg = Registry::default();
        let a = reg.new_series("a");
        let b = reg.new_series("b");
        let all = reg.new_group("all");
        reg.set_members(a, &[all]);
        reg.set_members(b, &[all]);
        let mut l = Level::new(60_000, 1, NONE);
        // a reports 100 and 110 in minute 0, b reports 50 once, and NaN once.
        assert!(l.add_row(a, 1_000, &[100.0], &reg));
        assert!(l.add_row(b, 2_000, &[50.0], &reg));
        assert!(l.add_row(a, 11_000, &[110.0], &reg));
        assert!(l.add_row(b, 12_000, &[f64::NAN], &reg));
        let part = l.partial(all, 0, 0, 60_000, &reg);
        assert_eq!(part.len(), 1);
        assert_eq!((part[0].1.sum, part[0].1.count), (155.0, 2));
        // a moves on to minute 1: its minute 0 is folded, b's is still open.
        assert!(l.add_row(a, 61_000, &[1.0], &reg));
        let part = l.partial(all, 0, 0, 60_000, &reg);
        assert_eq!(
            (part[0].1.sum, part[0].1.min, part[0].1.max),
            (155.0, 50.0, 105.0)
        );
        let rows = l.close_until(60_000, &reg);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].values, vec![155.0, 2.0, 50.0, 105.0]);
        assert_eq!(l.watermark, 60_000);
        // Late row for the closed minute.
        assert!(!l.add_row(b, 59_000, &[1.0], &reg));
    }

    #[test]
    fn an_hour_of_device_values_keeps_its_mean_within_the_f32_bound() {
        let mut reg = Registry::default();
        let a = reg.new_series("a");
        let all = reg.new_group("all");
        reg.set_members(a, &[all]);
        let mut l = Level::new(3_600_000, 2, NONE);
        // 360 polls, 10 s apart, of values no f32 holds exactly, one column much larger.
        let (mut exact0, mut exact1) = (0.0, 0.0);
        for i in 0..360 {
            let v0 = 101.37 + f64::from(i % 7) * 0.013;
            let v1 = 3_261_847.3 + f64::from(i);
            exact0 += v0;
            exact1 += v1;
            assert!(l.add_row(a, i64::from(i) * 10_000, &[v0, v1], &reg));
        }
        let rows = l.close_until(3_600_000, &reg);
        let bound = 360.0 * 2f64.powi(-24);
        for (got, exact) in [
            (rows[0].values[SUM], exact0),
            (rows[0].values[STATS + SUM], exact1),
        ] {
            let want = exact / 360.0;
            assert!(((got - want) / want).abs() <= bound, "{got} vs {want}");
        }
    }

    #[test]
    fn quantize_keeps_24_bits() {
        assert_eq!(quantize(1.0), 1.0);
        assert_eq!(quantize(123.0), 123.0);
        let x = 1.0 + 1e-9;
        assert_eq!(quantize(x), 1.0);
        assert!(((quantize(1e7 + 0.3) - (1e7 + 0.3)) / 1e7).abs() < 1e-7);
        assert!(quantize(f64::NAN).is_nan());
    }
}
