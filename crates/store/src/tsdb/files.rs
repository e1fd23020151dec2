//! Time partitions on disk: which file (day, month or year, UTC) holds a time, the file's name,
//! and a cache of open redb files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::Database;

use super::error::StoreError;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// How much time one file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSpan {
    /// One UTC day: `YYYY-MM-DD.redb`.
    Day,
    /// One UTC calendar month: `YYYY-MM.redb`.
    Month,
    /// One UTC calendar year: `YYYY.redb`.
    Year,
}

/// Civil date (year, month 1-12, day 1-31) of a day number counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (from 1970-01-01) of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl FileSpan {
    /// Start (ms) of the file that holds time `t`.
    pub fn start(self, t: i64) -> i64 {
        let days = t.div_euclid(DAY_MS);
        match self {
            FileSpan::Day => days * DAY_MS,
            FileSpan::Month => {
                let (y, m, _) = civil_from_days(days);
                days_from_civil(y, m, 1) * DAY_MS
            }
            FileSpan::Year => {
                let (y, _, _) = civil_from_days(days);
                days_from_civil(y, 1, 1) * DAY_MS
            }
        }
    }

    /// End (ms, exclusive) of the file that starts at `start`.
    pub fn end(self, start: i64) -> i64 {
        let days = start.div_euclid(DAY_MS);
        match self {
            FileSpan::Day => start + DAY_MS,
            FileSpan::Month => {
                let (y, m, _) = civil_from_days(days);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1) * DAY_MS
            }
            FileSpan::Year => {
                let (y, _, _) = civil_from_days(days);
                days_from_civil(y + 1, 1, 1) * DAY_MS
            }
        }
    }

    /// File name (without folder) of the file that starts at `start`.
    pub fn name(self, start: i64) -> String {
        let (y, m, d) = civil_from_days(start.div_euclid(DAY_MS));
        match self {
            FileSpan::Day => format!("{y:04}-{m:02}-{d:02}.redb"),
            FileSpan::Month => format!("{y:04}-{m:02}.redb"),
            FileSpan::Year => format!("{y:04}.redb"),
        }
    }

    /// Start of the file a name denotes, if it is one of this span's names.
    pub fn parse(self, name: &str) -> Option<i64> {
        let stem = name.strip_suffix(".redb")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let num = |s: &str| s.parse::<u32>().ok();
        let days = match (self, parts.as_slice()) {
            (FileSpan::Day, [y, m, d]) => days_from_civil(i64::from(num(y)?), num(m)?, num(d)?),
            (FileSpan::Month, [y, m]) => days_from_civil(i64::from(num(y)?), num(m)?, 1),
            (FileSpan::Year, [y]) => days_from_civil(i64::from(num(y)?), 1, 1),
            _ => return None,
        };
        let start = days * DAY_MS;
        (self.name(start) == name).then_some(start)
    }
}

/// Open redb files, shared by queries and maintenance; files are opened on first use.
pub struct FileCache {
    open: Mutex<HashMap<PathBuf, Arc<Database>>>,
    cache_bytes: usize,
}

impl FileCache {
    /// An empty cache; each file opened gets a redb page cache of `cache_bytes`.
    pub fn new(cache_bytes: usize) -> Self {
        FileCache {
            open: Mutex::new(HashMap::new()),
            cache_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Arc<Database>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file at `path` if it exists (opened now if needed).
    pub fn get(&self, path: &Path) -> Result<Option<Arc<Database>>, StoreError> {
        if let Some(db) = self.lock().get(path) {
            return Ok(Some(db.clone()));
        }
        if !path.exists() {
            return Ok(None);
        }
        self.open(path, false).map(Some)
    }

    /// The file at `path`, created if missing.
    pub fn get_or_create(&self, path: &Path) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.lock().get(path) {
            return Ok(db.clone());
        }
        self.open(path, true)
    }

    fn open(&self, path: &Path, create: bool) -> Result<Arc<Database>, StoreError> {
        let mut open = self.lock();
        if let Some(db) = open.get(path) {
            return Ok(db.clone());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
        }
        let mut builder = Database::builder();
        builder.set_cache_size(self.cache_bytes);
        let db = if create || path.exists() {
            builder.create(path).map_err(StoreError::db(path))?
        } else {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        };
        let db = Arc::new(db);
        open.insert(path.to_path_buf(), db.clone());
        Ok(db)
    }

    /// Closes and deletes a file (retention).
    pub fn remove(&self, path: &Path) -> Result<(), StoreError> {
        self.lock().remove(path);
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Closes the file at `path` unless a query is using it; true if it is closed now.
    pub fn close_if_unused(&self, path: &Path) -> bool {
        let mut open = self.lock();
        match open.get(path) {
            Some(db) if Arc::strong_count(db) > 1 => false,
            _ => {
                open.remove(path);
                true
            }
        }
    }

    /// Closes files of finished periods that nobody is using, keeping at most `keep` open.
    pub fn trim(&self, keep: usize) {
        let mut open = self.lock();
        if open.len() <= keep {
            return;
        }
        let mut paths: Vec<PathBuf> = open
            .iter()
            .filter(|(_, db)| Arc::strong_count(db) == 1)
            .map(|(p, _)| p.clone())
            .collect();
        paths.sort();
        let excess = open.len() - keep;
        for p in paths.into_iter().take(excess) {
            open.remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2023, 3, 1) - days_from_civil(2023, 2, 28),
            1
        );
        for d in -1000..30_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn spans_name_and_bound_files() {
        // 2025-10-09T13:00:00Z
        let t = 1_760_014_800_000;
        let day = FileSpan::Day.start(t);
        assert_eq!(FileSpan::Day.name(day), "2025-10-09.redb");
        assert_eq!(FileSpan::Day.end(day) - day, DAY_MS);
        let month = FileSpan::Month.start(t);
        assert_eq!(FileSpan::Month.name(month), "2025-10.redb");
        assert_eq!((FileSpan::Month.end(month) - month) / DAY_MS, 31);
        let year = FileSpan::Year.start(t);
        assert_eq!(FileSpan::Year.name(year), "2025.redb");
        assert_eq!((FileSpan::Year.end(year) - year) / DAY_MS, 365);
        assert_eq!(FileSpan::Month.parse("2025-10.redb"), Some(month));
        assert_eq!(FileSpan::Day.parse("2025-10-09.redb"), Some(day));
        assert_eq!(FileSpan::Day.parse("2025-13-09.redb"), None);
        assert_eq!(FileSpan::Day.parse("notes.txt"), None);
    }
}
