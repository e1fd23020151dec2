//! Importing device locations (and tags, notes) from a CSV site map.
//!
//! The first row names the columns. At least one key column says which device a row is about
//! (`id`, `mac`, `serial` or `ip`, tried in that order); the others set fields: `site`,
//! `container`, `rack`, `shelf`, `slot`, `tags` (separated by `;`), `notes`, `credentials`.
//! A column present in the header sets that field on every matched row, an empty cell clears it.
//! The whole file is checked before anything is written: one bad row means nothing changes, and
//! every bad row is reported with its line number.

use super::{DeviceKey, Inventory, MetaError, find_in};
use hashmesh_core::{DeviceId, Location};
use rusqlite::params;
use serde::Serialize;
use std::io::Read;

/// A row of the CSV that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRowError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Rows applied to a device.
    pub updated: usize,
    /// Rows whose key matched no device (line, key as written); nothing was written for them.
    pub unmatched: Vec<(u64, String)>,
    /// Rows that could not be used; when any, nothing at all was written.
    pub errors: Vec<ImportRowError>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Id,
    Mac,
    Serial,
    Ip,
    Site,
    Container,
    Rack,
    Shelf,
    Slot,
    Tags,
    Notes,
    Credentials,
}

fn column(name: &str) -> Option<Col> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "id" | "device_id" => Col::Id,
        "mac" => Col::Mac,
        "serial" => Col::Serial,
        "ip" => Col::Ip,
        "site" => Col::Site,
        "container" | "room" => Col::Container,
        "rack" => Col::Rack,
        "shelf" => Col::Shelf,
        "slot" => Col::Slot,
        "tags" => Col::Tags,
        "notes" => Col::Notes,
        "credentials" => Col::Credentials,
        _ => return None,
    })
}

/// One validated row, ready to write.
struct Planned {
    id: DeviceId,
    location: Location,
    tags: Option<Vec<String>>,
    notes: Option<String>,
    credentials: Option<Option<String>>,
}

impl Inventory {
    /// Applies a CSV site map (see the module docs for its columns).
    pub fn import_locations_csv(&self, input: impl Read) -> Result<ImportReport, MetaError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| MetaError::Csv(format!("reading the CSV header: {e}")))?
            .clone();
        let mut cols = Vec::with_capacity(headers.len());
        for h in headers.iter() {
            match column(h) {
                Some(c) if cols.contains(&c) => {
                    return Err(MetaError::Csv(format!(
                        "line 1: column '{h}' appears twice"
                    )));
                }
                Some(c) => cols.push(c),
                None => {
                    return Err(MetaError::Csv(format!(
                        "line 1: unknown column '{h}' (expected id, mac, serial or ip, and site, \
                         container, rack, shelf, slot, tags, notes, credentials)"
                    )));
                }
            }
        }
        if !cols
            .iter()
            .any(|c| matches!(c, Col::Id | Col::Mac | Col::Serial | Col::Ip))
        {
            return Err(MetaError::Csv(
                "line 1: no key column: add one of id, mac, serial or ip".into(),
            ));
        }

        let mut report = ImportReport::default();
        let mut plan = Vec::new();
        let mut conn = self.conn();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    report.errors.push(ImportRowError {
                        line,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            match plan_row(&conn, &cols, &record) {
                Ok(RowPlan::Apply(p)) => plan.push(*p),
                Ok(RowPlan::Unmatched(key)) => report.unmatched.push((line, key)),
                Err(message) => report.errors.push(ImportRowError { line, message }),
            }
        }
        if !report.errors.is_empty() {
            return Ok(report);
        }

        let has = |c: Col| cols.contains(&c);
        let tx = conn.transaction()?;
        for p in &plan {
            let old =
                super::get_in(&tx, &p.id.0)?.ok_or_else(|| MetaError::NotFound(p.id.0.clone()))?;
            let loc = Location {
                site: if has(Col::Site) {
                    p.location.site.clone()
                } else {
                    old.location.site
                },
                container: if has(Col::Container) {
                    p.location.container.clone()
                } else {
                    old.location.container
                },
                rack: if has(Col::Rack) {
                    p.location.rack.clone()
                } else {
                    old.location.rack
                },
                shelf: if has(Col::Shelf) {
                    p.location.shelf
                } else {
                    old.location.shelf
                },
                slot: if has(Col::Slot) {
                    p.location.slot
                } else {
                    old.location.slot
                },
            };
            tx.execute(
                "UPDATE devices SET site = ?2, container = ?3, rack = ?4, shelf = ?5, slot = ?6 WHERE id = ?1",
                params![p.id.0, loc.site, loc.container, loc.rack, loc.shelf, loc.slot],
            )?;
            if let Some(tags) = &p.tags {
                let json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "UPDATE devices SET tags = ?2 WHERE id = ?1",
                    params![p.id.0, json],
                )?;
            }
            if let Some(notes) = &p.notes {
                tx.execute(
                    "UPDATE devices SET notes = ?2 WHERE id = ?1",
                    params![p.id.0, notes],
                )?;
            }
            if let Some(c) = &p.credentials {
                tx.execute(
                    "UPDATE devices SET credentials_ref = ?2 WHERE id = ?1",
                    params![p.id.0, c],
                )?;
            }
            report.updated += 1;
        }
        tx.commit()?;
        Ok(report)
    }
}

enum RowPlan {
    Apply(Box<Planned>),
    Unmatched(String),
}

fn plan_row(
    conn: &rusqlite::Connection,
    cols: &[Col],
    record: &csv::StringRecord,
) -> Result<RowPlan, String> {
    let cell = |c: Col| -> Option<&str> {
        cols.iter()
            .position(|x| *x == c)
            .and_then(|i| record.get(i))
            .filter(|s| !s.is_empty())
    };
    // The first key column with a value decides the device.
    let mut key = None;
    for c in [Col::Id, Col::Mac, Col::Serial, Col::Ip] {
        if let Some(v) = cell(c) {
            key = Some(match c {
                Col::Id => DeviceKey::Id(DeviceId(v.to_owned())),
                Col::Mac => {
                    if DeviceId::from_mac(v).is_none() {
                        return Err(format!("mac '{v}' is not a MAC address"));
                    }
                    DeviceKey::Mac(v.to_owned())
                }
                Col::Serial => DeviceKey::Serial(v.to_owned()),
                _ => DeviceKey::Ip(
                    v.parse()
                        .map_err(|_| format!("ip '{v}' is not an IP address"))?,
                ),
            });
            break;
        }
    }
    let Some(key) = key else {
        return Err("no key: every row needs an id, mac, serial or ip".into());
    };
    let number = |c: Col, name: &str| -> Result<Option<u16>, String> {
        cell(c)
            .map(|v| {
                v.parse::<u16>()
                    .map_err(|_| format!("{name} '{v}' is not a whole number from 0 to 65535"))
            })
            .transpose()
    };
    let location = Location {
        site: cell(Col::Site).map(str::to_owned),
        container: cell(Col::Container).map(str::to_owned),
        rack: cell(Col::Rack).map(str::to_owned),
        shelf: number(Col::Shelf, "shelf")?,
        slot: number(Col::Slot, "slot")?,
    };
    let record = match find_in(conn, &key) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let shown = match &key {
                DeviceKey::Id(id) => id.0.clone(),
                DeviceKey::Mac(m) | DeviceKey::Serial(m) => m.clone(),
                DeviceKey::Ip(ip) => ip.to_string(),
            };
            return Ok(RowPlan::Unmatched(shown));
        }
        Err(e) => return Err(e.to_string()),
    };
    let tags = cols.contains(&Col::Tags).then(|| {
        cell(Col::Tags)
            .map(|t| {
                t.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    });
    let notes = cols
        .contains(&Col::Notes)
        .then(|| cell(Col::Notes).unwrap_or("").to_owned());
    let credentials = cols
        .contains(&Col::Credentials)
        .then(|| cell(Col::Credentials).map(str::to_owned));
    Ok(RowPlan::Apply(Box::new(Planned {
        id: record.id,
        location,
        tags,
        notes,
        credentials,
    })))
}

#[cfg(test)]
mod tests {
    use super::super::tests::discovered;
    use super::*;

    fn inventory() -> Inventory {
        let inv = Inventory::in_memory().unwrap();
        let mut a = discovered("mac:aa:bb:cc:00:00:01", "10.0.0.1");
        a.mac = Some("aa:bb:cc:00:00:01".into());
        inv.record_discovery(&a, 1).unwrap();
        let mut b = discovered("sn:SN2", "10.0.0.2");
        b.serial = Some("SN2".into());
        inv.record_discovery(&b, 1).unwrap();
        inv
    }

    #[test]
    fn imports_by_mac_serial_and_ip() {
        let inv = inventory();
        let csv = "mac,serial,site,container,rack,shelf,slot,tags\n\
                   AA:BB:CC:00:00:01,,A,C01,R03,2,5,hydro;batch-7\n\
                   ,SN2,A,C01,R04,1,1,\n\
                   11:22:33:44:55:66,,A,C02,R01,1,1,\n";
        let report = inv.import_locations_csv(csv.as_bytes()).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.updated, 2);
        assert_eq!(report.unmatched, vec![(4, "11:22:33:44:55:66".to_string())]);
        let a = inv
            .get(&DeviceId("mac:aa:bb:cc:00:00:01".into()))
            .unwrap()
            .unwrap();
        assert_eq!(a.location.rack.as_deref(), Some("R03"));
        assert_eq!(a.location.shelf, Some(2));
        assert_eq!(a.location.slot, Some(5));
        assert_eq!(a.tags, vec!["hydro".to_string(), "batch-7".to_string()]);
        let b = inv.get(&DeviceId("sn:SN2".into())).unwrap().unwrap();
        assert_eq!(b.location.rack.as_deref(), Some("R04"));
        assert!(b.tags.is_empty());
    }

    #[test]
    fn columns_not_in_the_file_are_left_alone() {
        let inv = inventory();
        inv.import_locations_csv("ip,site,rack\n10.0.0.1,A,R1\n".as_bytes())
            .unwrap();
        inv.import_locations_csv("ip,slot\n10.0.0.1,7\n".as_bytes())
            .unwrap();
        let a = inv
            .get(&DeviceId("mac:aa:bb:cc:00:00:01".into()))
            .unwrap()
            .unwrap();
        assert_eq!(a.location.site.as_deref(), Some("A"));
        assert_eq!(a.location.rack.as_deref(), Some("R1"));
        assert_eq!(a.location.slot, Some(7));
    }

    #[test]
    fn one_bad_row_changes_nothing_and_names_its_line() {
        let inv = inventory();
        let csv = "ip,site,shelf\n10.0.0.1,A,1\n10.0.0.2,A,top\n";
        let report = inv.import_locations_csv(csv.as_bytes()).unwrap();
        assert_eq!(report.updated, 0);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].line, 3);
        assert!(report.errors[0].message.contains("shelf 'top'"));
        let a = inv
            .get(&DeviceId("mac:aa:bb:cc:00:00:01".into()))
            .unwrap()
            .unwrap();
        assert_eq!(a.location.site, None);
    }

    #[test]
    fn bad_headers_are_refused() {
        let inv = inventory();
        let e = inv
            .import_locations_csv("ip,sitee\n10.0.0.1,A\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown column 'sitee'"), "{e}");
        let e = inv
            .import_locations_csv("site,rack\nA,R1\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no key column"), "{e}");
        let report = inv
            .import_locations_csv("ip,site\n10.0.0.1,A,extra\n".as_bytes())
            .unwrap();
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.updated, 0);
    }
}
