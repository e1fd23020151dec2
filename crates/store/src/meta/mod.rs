//! Relational state of a node in SQLite: the device inventory.
//!
//! One row per device, keyed by its stable [`DeviceId`] (MAC, else serial, else address), so a
//! miner that moves to another IP keeps its identity, its location and its history; every
//! address a device has had is kept in `ip_history`. Devices discovery no longer finds are marked
//! missing, never deleted. Locations can be imported from CSV ([`Inventory::import_locations_csv`]).
//!
//! The database is opened in WAL mode so a second process (`hashmesh device import-locations`)
//! can write while a node reads; [`Inventory::data_version`] tells the node when to reload.

mod csv_import;

pub use csv_import::{ImportReport, ImportRowError};

use hashmesh_core::{DeviceId, DeviceKind, Location};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

/// Why an inventory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// SQLite refused or failed.
    #[error("inventory database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back (a hand-edited or damaged database).
    #[error("inventory row {id}: bad {field}: {value:?}")]
    BadValue {
        /// Device id of the row.
        id: String,
        /// Column name.
        field: &'static str,
        /// What was stored.
        value: String,
    },
    /// No device with that id.
    #[error("no device {0} in the inventory")]
    NotFound(String),
    /// The CSV file could not be read at all.
    #[error("{0}")]
    Csv(String),
}

/// What discovery learned about a device at an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    /// The device's stable id.
    pub id: DeviceId,
    /// The address it answered at.
    pub ip: IpAddr,
    /// Kind of equipment.
    pub kind: DeviceKind,
    /// Driver family (`antminer`, `whatsminer`, …) or meter register map (`abb_b2x`, …).
    pub family: String,
    /// Hardware maker, as the operator knows it (`Bitmain`).
    pub vendor: String,
    /// Hardware model (`Antminer S19 Pro`).
    pub model: String,
    /// Firmware and build, as displayed (`Braiins OS 2025.4`).
    pub firmware: String,
    /// MAC address, when the device tells it.
    pub mac: Option<String>,
    /// Serial number, when the device tells it.
    pub serial: Option<String>,
    /// Host name, when the device tells it.
    pub hostname: Option<String>,
    /// Modbus unit id, for meters.
    pub unit_id: Option<u8>,
}

/// One device of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Stable id.
    pub id: DeviceId,
    /// Current address.
    pub ip: IpAddr,
    /// Kind of equipment.
    pub kind: DeviceKind,
    /// Driver family or meter register map.
    pub family: String,
    /// Hardware maker.
    pub vendor: String,
    /// Hardware model.
    pub model: String,
    /// Firmware and build.
    pub firmware: String,
    /// MAC address.
    pub mac: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Modbus unit id, for meters.
    pub unit_id: Option<u8>,
    /// Where it stands.
    pub location: Location,
    /// Name of the credential group to log in with, when not the device's own entry.
    pub credentials_ref: Option<String>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Operator's notes.
    pub notes: String,
    /// First discovery, unix ms.
    pub first_seen_unix_ms: i64,
    /// Last time discovery found it, unix ms.
    pub last_seen_unix_ms: i64,
    /// Since when discovery no longer finds it, unix ms.
    pub missing_since_unix_ms: Option<i64>,
}

/// What [`Inventory::record_discovery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// A device never seen before.
    New,
    /// A known device at a new address.
    Moved {
        /// Its previous address.
        from: IpAddr,
    },
    /// A known device at its known address (identity details may have been refreshed).
    Seen,
}

/// One address a device has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpSpan {
    /// The address.
    pub ip: IpAddr,
    /// First time seen there, unix ms.
    pub first_seen_unix_ms: i64,
    /// Last time seen there, unix ms.
    pub last_seen_unix_ms: i64,
}

/// The device inventory of a node, in one SQLite file.
pub struct Inventory {
    conn: Mutex<Connection>,
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    ip TEXT NOT NULL,
    kind TEXT NOT NULL,
    family TEXT NOT NULL,
    vendor TEXT NOT NULL,
    model TEXT NOT NULL,
    firmware TEXT NOT NULL,
    mac TEXT,
    serial TEXT,
    hostname TEXT,
    unit_id INTEGER,
    site TEXT,
    container TEXT,
    rack TEXT,
    shelf INTEGER,
    slot INTEGER,
    credentials_ref TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '',
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    missing_since_ms INTEGER
);
CREATE INDEX IF NOT EXISTS devices_ip ON devices(ip);
CREATE INDEX IF NOT EXISTS devices_mac ON devices(mac);
CREATE INDEX IF NOT EXISTS devices_serial ON devices(serial);
CREATE TABLE IF NOT EXISTS ip_history (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, ip)
);
";

const COLUMNS: &str = "id, ip, kind, family, vendor, model, firmware, mac, serial, hostname, unit_id, \
     site, container, rack, shelf, slot, credentials_ref, tags, notes, first_seen_ms, \
     last_seen_ms, missing_since_ms";

impl Inventory {
    /// Opens (creating if needed) the inventory at `path`.
    pub fn open(path: &Path) -> Result<Inventory, MetaError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An inventory that lives in memory only (tests, one-off tools).
    pub fn in_memory() -> Result<Inventory, MetaError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Inventory, MetaError> {
        // WAL lets the CLI write while a node reads; NORMAL sync is durable across process
        // crashes, which is what an inventory needs (a power cut may lose the last second).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(MetaError::Csv(format!(
                "inventory schema version {version} is newer than this hashmesh ({SCHEMA_VERSION}); upgrade hashmesh"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Inventory {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each call is one
        // statement or one transaction), so the poisoned connection is still good to use.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A number that changes whenever another connection (another process) commits a change.
    pub fn data_version(&self) -> Result<i64, MetaError> {
        Ok(self
            .conn()
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// Every device, ordered by address.
    pub fn list(&self) -> Result<Vec<DeviceRecord>, MetaError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM devices"))?;
        let rows = stmt.query_map([], raw_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?.into_record()?);
        }
        out.sort_by(|a, b| a.ip.cmp(&b.ip).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Number of devices.
    pub fn len(&self) -> Result<usize, MetaError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
        Ok(n.max(0) as usize)
    }

    /// Whether the inventory has no devices.
    pub fn is_empty(&self) -> Result<bool, MetaError> {
        Ok(self.len()? == 0)
    }

    /// One device by id.
    pub fn get(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, MetaError> {
        let conn = self.conn();
        get_in(&conn, &id.0)
    }

    /// Records that discovery found a device: inserts it, or refreshes a known one and follows
    /// it to a new address.
    pub fn record_discovery(
        &self,
        d: &Discovered,
        now_unix_ms: i64,
    ) -> Result<(DeviceRecord, Upsert), MetaError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing = get_in(&tx, &d.id.0)?;
        let ip = d.ip.to_string();
        let upsert = match &existing {
            None => {
                tx.execute(
                    "INSERT INTO devices (id, ip, kind, family, vendor, model, firmware, mac, serial, \
                     hostname, unit_id, first_seen_ms, last_seen_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                    params![
                        d.id.0,
                        ip,
                        kind_str(d.kind),
                        d.family,
                        d.vendor,
                        d.model,
                        d.firmware,
                        d.mac,
                        d.serial,
                        d.hostname,
                        d.unit_id,
                        now_unix_ms
                    ],
                )?;
                Upsert::New
            }
            Some(old) => {
                tx.execute(
                    "UPDATE devices SET ip = ?2, kind = ?3, family = ?4, vendor = ?5, model = ?6, \
                     firmware = ?7, mac = coalesce(?8, mac), serial = coalesce(?9, serial), \
                     hostname = coalesce(?10, hostname), unit_id = ?11, last_seen_ms = ?12, \
                     missing_since_ms = NULL WHERE id = ?1",
                    params![
                        d.id.0,
                        ip,
                        kind_str(d.kind),
                        d.family,
                        d.vendor,
                        d.model,
                        d.firmware,
                        d.mac,
                        d.serial,
                        d.hostname,
                        d.unit_id,
                        now_unix_ms
                    ],
                )?;
                if old.ip != d.ip {
                    Upsert::Moved { from: old.ip }
                } else {
                    Upsert::Seen
                }
            }
        };
        tx.execute(
            "INSERT INTO ip_history (device_id, ip, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (device_id, ip) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
            params![d.id.0, ip, now_unix_ms],
        )?;
        let record = get_in(&tx, &d.id.0)?.ok_or_else(|| MetaError::NotFound(d.id.0.clone()))?;
        tx.commit()?;
        Ok((record, upsert))
    }

    /// Marks devices as no longer found by discovery (kept, shown offline). Devices already
    /// missing keep their original time. Returns how many changed.
    pub fn mark_missing(&self, ids: &[DeviceId], now_unix_ms: i64) -> Result<usize, MetaError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare(
                "UPDATE devices SET missing_since_ms = ?2 WHERE id = ?1 AND missing_since_ms IS NULL",
            )?;
            for id in ids {
                n += stmt.execute(params![id.0, now_unix_ms])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Sets where a device stands.
    pub fn set_location(&self, id: &DeviceId, loc: &Location) -> Result<(), MetaError> {
        let n = self.conn().execute(
            "UPDATE devices SET site = ?2, container = ?3, rack = ?4, shelf = ?5, slot = ?6 WHERE id = ?1",
            params![id.0, loc.site, loc.container, loc.rack, loc.shelf, loc.slot],
        )?;
        found(n, id)
    }

    /// Replaces a device's tags.
    pub fn set_tags(&self, id: &DeviceId, tags: &[String]) -> Result<(), MetaError> {
        let json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
        let n = self.conn().execute(
            "UPDATE devices SET tags = ?2 WHERE id = ?1",
            params![id.0, json],
        )?;
        found(n, id)
    }

    /// Replaces a device's notes.
    pub fn set_notes(&self, id: &DeviceId, notes: &str) -> Result<(), MetaError> {
        let n = self.conn().execute(
            "UPDATE devices SET notes = ?2 WHERE id = ?1",
            params![id.0, notes],
        )?;
        found(n, id)
    }

    /// Sets (or clears) the credential group a device logs in with.
    pub fn set_credentials_ref(&self, id: &DeviceId, group: Option<&str>) -> Result<(), MetaError> {
        let n = self.conn().execute(
            "UPDATE devices SET credentials_ref = ?2 WHERE id = ?1",
            params![id.0, group],
        )?;
        found(n, id)
    }

    /// Every address a device has had, oldest first.
    pub fn ip_history(&self, id: &DeviceId) -> Result<Vec<IpSpan>, MetaError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT ip, first_seen_ms, last_seen_ms FROM ip_history WHERE device_id = ?1 \
             ORDER BY first_seen_ms, ip",
        )?;
        let rows = stmt.query_map(params![id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (ip, first, last) = r?;
            let ip = ip.parse().map_err(|_| MetaError::BadValue {
                id: id.0.clone(),
                field: "ip_history.ip",
                value: ip.clone(),
            })?;
            out.push(IpSpan {
                ip,
                first_seen_unix_ms: first,
                last_seen_unix_ms: last,
            });
        }
        Ok(out)
    }

    /// Finds the device a CSV row or an operator names: by id, MAC, serial or current address.
    pub fn find(&self, key: &DeviceKey) -> Result<Option<DeviceRecord>, MetaError> {
        let conn = self.conn();
        find_in(&conn, key)
    }
}

/// How an operator names a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKey {
    /// The stable id (`mac:…`, `sn:…`, `ip:…`).
    Id(DeviceId),
    /// A MAC address in any common notation.
    Mac(String),
    /// A serial number.
    Serial(String),
    /// The current address.
    Ip(IpAddr),
}

fn find_in(conn: &Connection, key: &DeviceKey) -> Result<Option<DeviceRecord>, MetaError> {
    let (sql, value) = match key {
        DeviceKey::Id(id) => ("id = ?1", id.0.clone()),
        DeviceKey::Mac(mac) => match DeviceId::from_mac(mac) {
            // Ids made from MACs are normalised, so look the id up rather than the raw text.
            Some(id) => ("id = ?1", id.0),
            None => return Ok(None),
        },
        DeviceKey::Serial(s) => ("serial = ?1", s.clone()),
        DeviceKey::Ip(ip) => ("ip = ?1", ip.to_string()),
    };
    // Several records can share an address (a device left and another took its IP): prefer
    // the one discovery saw last.
    let sql =
        format!("SELECT {COLUMNS} FROM devices WHERE {sql} ORDER BY last_seen_ms DESC LIMIT 1");
    let raw = conn.query_row(&sql, params![value], raw_row).optional()?;
    raw.map(RawRow::into_record).transpose()
}

fn get_in(conn: &Connection, id: &str) -> Result<Option<DeviceRecord>, MetaError> {
    let raw = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM devices WHERE id = ?1"),
            params![id],
            raw_row,
        )
        .optional()?;
    raw.map(RawRow::into_record).transpose()
}

fn found(n: usize, id: &DeviceId) -> Result<(), MetaError> {
    if n == 0 {
        Err(MetaError::NotFound(id.0.clone()))
    } else {
        Ok(())
    }
}

fn kind_str(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Miner => "miner",
        DeviceKind::PowerMeter => "power_meter",
        DeviceKind::Container => "container",
        DeviceKind::Sensor => "sensor",
    }
}

fn parse_kind(s: &str) -> Option<DeviceKind> {
    Some(match s {
        "miner" => DeviceKind::Miner,
        "power_meter" => DeviceKind::PowerMeter,
        "container" => DeviceKind::Container,
        "sensor" => DeviceKind::Sensor,
        _ => return None,
    })
}

/// A row as SQLite holds it, before its text columns are checked.
struct RawRow {
    id: String,
    ip: String,
    kind: String,
    family: String,
    vendor: String,
    model: String,
    firmware: String,
    mac: Option<String>,
    serial: Option<String>,
    hostname: Option<String>,
    unit_id: Option<i64>,
    site: Option<String>,
    container: Option<String>,
    rack: Option<String>,
    shelf: Option<i64>,
    slot: Option<i64>,
    credentials_ref: Option<String>,
    tags: String,
    notes: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    missing_since_ms: Option<i64>,
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        ip: r.get(1)?,
        kind: r.get(2)?,
        family: r.get(3)?,
        vendor: r.get(4)?,
        model: r.get(5)?,
        firmware: r.get(6)?,
        mac: r.get(7)?,
        serial: r.get(8)?,
        hostname: r.get(9)?,
        unit_id: r.get(10)?,
        site: r.get(11)?,
        container: r.get(12)?,
        rack: r.get(13)?,
        shelf: r.get(14)?,
        slot: r.get(15)?,
        credentials_ref: r.get(16)?,
        tags: r.get(17)?,
        notes: r.get(18)?,
        first_seen_ms: r.get(19)?,
        last_seen_ms: r.get(20)?,
        missing_since_ms: r.get(21)?,
    })
}

impl RawRow {
    fn into_record(self) -> Result<DeviceRecord, MetaError> {
        let bad = |field: &'static str, value: String| MetaError::BadValue {
            id: self.id.clone(),
            field,
            value,
        };
        let ip = self.ip.parse().map_err(|_| bad("ip", self.ip.clone()))?;
        let kind = parse_kind(&self.kind).ok_or_else(|| bad("kind", self.kind.clone()))?;
        let tags: Vec<String> =
            serde_json::from_str(&self.tags).map_err(|_| bad("tags", self.tags.clone()))?;
        let small = |field: &'static str, v: Option<i64>| -> Result<Option<u16>, MetaError> {
            v.map(|n| u16::try_from(n).map_err(|_| bad(field, n.to_string())))
                .transpose()
        };
        let shelf = small("shelf", self.shelf)?;
        let slot = small("slot", self.slot)?;
        let unit_id = self
            .unit_id
            .map(|n| u8::try_from(n).map_err(|_| bad("unit_id", n.to_string())))
            .transpose()?;
        Ok(DeviceRecord {
            id: DeviceId(self.id),
            ip,
            kind,
            family: self.family,
            vendor: self.vendor,
            model: self.model,
            firmware: self.firmware,
            mac: self.mac,
            serial: self.serial,
            hostname: self.hostname,
            unit_id,
            location: Location {
                site: self.site,
                container: self.container,
                rack: self.rack,
                shelf,
                slot,
            },
            credentials_ref: self.credentials_ref,
            tags,
            notes: self.notes,
            first_seen_unix_ms: self.first_seen_ms,
            last_seen_unix_ms: self.last_seen_ms,
            missing_since_unix_ms: self.missing_since_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn discovered(id: &str, ip: &str) -> Discovered {
        Discovered {
            id: DeviceId(id.into()),
            ip: ip.parse().unwrap(),
            kind: DeviceKind::Miner,
            family: "antminer".into(),
            vendor: "Bitmain".into(),
            model: "Antminer S19 Pro".into(),
            firmware: "stock 1.0".into(),
            mac: None,
            serial: None,
            hostname: None,
            unit_id: None,
        }
    }

    #[test]
    fn moving_device_keeps_identity_and_history() {
        let inv = Inventory::in_memory().unwrap();
        let d = discovered("mac:aa:bb:cc:00:00:01", "10.0.0.5");
        let (rec, up) = inv.record_discovery(&d, 1_000).unwrap();
        assert_eq!(up, Upsert::New);
        assert_eq!(rec.first_seen_unix_ms, 1_000);
        inv.set_location(
            &rec.id,
            &Location {
                site: Some("A".into()),
                rack: Some("R1".into()),
                ..Default::default()
            },
        )
        .unwrap();

        let mut moved = d.clone();
        moved.ip = "10.0.0.9".parse().unwrap();
        let (rec, up) = inv.record_discovery(&moved, 2_000).unwrap();
        assert_eq!(
            up,
            Upsert::Moved {
                from: "10.0.0.5".parse().unwrap()
            }
        );
        assert_eq!(rec.ip.to_string(), "10.0.0.9");
        assert_eq!(rec.location.site.as_deref(), Some("A"));
        assert_eq!(rec.first_seen_unix_ms, 1_000);
        assert_eq!(inv.len().unwrap(), 1);
        let hist = inv.ip_history(&rec.id).unwrap();
        assert_eq!(hist.len(), 2);
        assert_eq!(hist[0].ip.to_string(), "10.0.0.5");
        assert_eq!(hist[1].ip.to_string(), "10.0.0.9");

        let (_, up) = inv.record_discovery(&moved, 3_000).unwrap();
        assert_eq!(up, Upsert::Seen);
    }

    #[test]
    fn missing_devices_are_kept_and_come_back() {
        let inv = Inventory::in_memory().unwrap();
        let d = discovered("mac:aa:bb:cc:00:00:02", "10.0.0.6");
        inv.record_discovery(&d, 1_000).unwrap();
        assert_eq!(
            inv.mark_missing(std::slice::from_ref(&d.id), 5_000)
                .unwrap(),
            1
        );
        // A second sweep keeps the first time it went missing.
        assert_eq!(
            inv.mark_missing(std::slice::from_ref(&d.id), 9_000)
                .unwrap(),
            0
        );
        let rec = inv.get(&d.id).unwrap().unwrap();
        assert_eq!(rec.missing_since_unix_ms, Some(5_000));
        let (rec, _) = inv.record_discovery(&d, 10_000).unwrap();
        assert_eq!(rec.missing_since_unix_ms, None);
        assert_eq!(rec.last_seen_unix_ms, 10_000);
    }

    #[test]
    fn tags_notes_and_credentials_round_trip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        let d = discovered("sn:ABC123", "10.0.0.7");
        {
            let inv = Inventory::open(&path).unwrap();
            inv.record_discovery(&d, 1).unwrap();
            inv.set_tags(&d.id, &["hydro".into(), "batch-7".into()])
                .unwrap();
            inv.set_notes(&d.id, "fan 2 replaced").unwrap();
            inv.set_credentials_ref(&d.id, Some("site=A")).unwrap();
        }
        let inv = Inventory::open(&path).unwrap();
        let rec = inv.get(&d.id).unwrap().unwrap();
        assert_eq!(rec.tags, vec!["hydro".to_string(), "batch-7".to_string()]);
        assert_eq!(rec.notes, "fan 2 replaced");
        assert_eq!(rec.credentials_ref.as_deref(), Some("site=A"));
        assert!(matches!(
            inv.set_notes(&DeviceId("nope".into()), "x"),
            Err(MetaError::NotFound(_))
        ));
    }

    #[test]
    fn another_connection_bumps_data_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        let a = Inventory::open(&path).unwrap();
        let b = Inventory::open(&path).unwrap();
        let v0 = a.data_version().unwrap();
        b.record_discovery(&discovered("ip:10.0.0.8", "10.0.0.8"), 1)
            .unwrap();
        assert_ne!(a.data_version().unwrap(), v0);
        assert_eq!(a.len().unwrap(), 1);
    }

    #[test]
    fn damaged_rows_are_clear_errors() {
        let inv = Inventory::in_memory().unwrap();
        inv.record_discovery(&discovered("ip:10.0.0.9", "10.0.0.9"), 1)
            .unwrap();
        inv.conn()
            .execute("UPDATE devices SET ip = 'not-an-ip'", [])
            .unwrap();
        let err = inv.list().unwrap_err().to_string();
        assert!(err.contains("bad ip") && err.contains("not-an-ip"), "{err}");
    }

    #[test]
    fn find_by_mac_serial_and_ip() {
        let inv = Inventory::in_memory().unwrap();
        let mut d = discovered("mac:aa:bb:cc:00:00:03", "10.0.0.10");
        d.serial = Some("SN42".into());
        inv.record_discovery(&d, 1).unwrap();
        for key in [
            DeviceKey::Mac("AA-BB-CC-00-00-03".into()),
            DeviceKey::Serial("SN42".into()),
            DeviceKey::Ip("10.0.0.10".parse().unwrap()),
            DeviceKey::Id(d.id.clone()),
        ] {
            assert_eq!(inv.find(&key).unwrap().map(|r| r.id), Some(d.id.clone()));
        }
        assert_eq!(inv.find(&DeviceKey::Serial("none".into())).unwrap(), None);
    }
}
