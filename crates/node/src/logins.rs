//! The logins the poller and commands use: the credential store in the data directory
//! (`hashmesh creds`), looked up per device by its MAC, address, credential group, rack,
//! container, site, tags and family, then the vendors' factory logins. The store is re-read
//! when `hashmesh creds` changes it while the node runs.

use crate::live::DeviceInfo;
use crate::poller::CredentialSource;
use crate::rollup::group_keys;
use hashmesh_drivers::Target;
use hashmesh_drivers::credentials::{CredentialStore, DeviceRef, Keyring};
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

/// Logins from the node's credential store.
#[derive(Debug)]
pub struct StoredLogins {
    store: CredentialStore,
    keyring: RwLock<Option<Keyring>>,
    seen: Mutex<Option<SystemTime>>,
}

impl StoredLogins {
    /// Reads the store in `data_dir` (none yet is fine: factory logins only).
    pub fn open(data_dir: &Path) -> StoredLogins {
        let s = StoredLogins {
            store: CredentialStore::new(data_dir),
            keyring: RwLock::new(None),
            seen: Mutex::new(None),
        };
        s.reload_if_changed();
        s
    }

    /// Re-reads the store when its file changed since the last read.
    pub fn reload_if_changed(&self) {
        let stamp = std::fs::metadata(self.store.file_path())
            .and_then(|m| m.modified())
            .ok();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == stamp {
            return;
        }
        *seen = stamp;
        let keyring = if stamp.is_none() {
            None
        } else {
            match self.store.unlock() {
                Ok(k) => {
                    for problem in k.problems() {
                        tracing::warn!("credential store: {problem}");
                    }
                    tracing::info!(entries = k.len(), "credential store loaded");
                    Some(k)
                }
                Err(e) => {
                    // Factory logins still work; the operator sees why theirs do not.
                    tracing::error!("credential store: {e}; using factory logins only");
                    None
                }
            }
        };
        *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = keyring;
    }
}

/// The groups whose logins apply to a device, closest first: its credential group, then its
/// rack, container and site, its tags, model and vendor.
pub fn login_groups(info: &DeviceInfo) -> Vec<String> {
    let mut groups: Vec<String> = info.credentials_ref.iter().cloned().collect();
    let mut location: Vec<String> = group_keys(info)
        .iter()
        .filter(|g| matches!(g.level, "rack" | "container" | "site"))
        .map(|g| g.store_name())
        .collect();
    location.reverse();
    groups.extend(location);
    groups.extend(info.tags.iter().map(|t| format!("tag={t}")));
    groups.push(format!("model={}", info.model));
    groups.push(format!("vendor={}", info.vendor));
    groups
}

impl CredentialSource for StoredLogins {
    fn fill(&self, info: &DeviceInfo, target: &mut Target) {
        let keyring = self.keyring.read().unwrap_or_else(|e| e.into_inner());
        let Some(k) = keyring.as_ref() else { return };
        let groups = login_groups(info);
        target.credentials = k.lookup_lenient(&DeviceRef {
            ip: info.ip,
            mac: info.mac.as_deref(),
            groups: &groups,
            family: &info.family,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_core::{DeviceId, DeviceKind, Location};
    use hashmesh_drivers::Credentials;
    use hashmesh_drivers::credentials::Scope;

    fn info() -> DeviceInfo {
        DeviceInfo {
            id: DeviceId("mac:02:00:00:00:00:07".into()),
            ip: "127.0.0.7".parse().unwrap(),
            kind: DeviceKind::Miner,
            family: "antminer".into(),
            vendor: "Bitmain".into(),
            model: "Antminer S19 Pro".into(),
            firmware: "".into(),
            mac: Some("02:00:00:00:00:07".into()),
            serial: None,
            unit_id: None,
            location: Location {
                site: Some("A".into()),
                container: Some("C01".into()),
                rack: Some("R03".into()),
                shelf: None,
                slot: None,
            },
            tags: vec!["hydro".into()],
            credentials_ref: Some("batch-7".into()),
            missing_since_unix_ms: None,
        }
    }

    fn login(u: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: format!("{u}-pass"),
        }
    }

    #[test]
    fn groups_go_from_closest_to_widest() {
        assert_eq!(
            login_groups(&info()),
            vec![
                "batch-7",
                "rack=A/C01/R03",
                "container=A/C01",
                "site=A",
                "tag=hydro",
                "model=Antminer S19 Pro",
                "vendor=Bitmain"
            ]
        );
    }

    #[test]
    fn stored_logins_reach_the_target_and_follow_changes() {
        let dir = tempfile::tempdir().unwrap();
        let logins = StoredLogins::open(dir.path());
        let mut t = Target::new(info().ip);
        logins.fill(&info(), &mut t);
        assert_eq!(
            t.credentials,
            Default::default(),
            "no store: factory logins only"
        );

        let store = CredentialStore::new(dir.path());
        store
            .set(&Scope::group("site=A").unwrap(), &login("site"))
            .unwrap();
        store
            .set(&Scope::group("rack=A/C01/R03").unwrap(), &login("rack"))
            .unwrap();
        store
            .set(
                &Scope::device("02:00:00:00:00:07").unwrap(),
                &login("device"),
            )
            .unwrap();
        // File times have a coarse granularity on some file systems; force a re-read.
        *logins.seen.lock().unwrap() = None;
        logins.reload_if_changed();
        let mut t = Target::new(info().ip);
        logins.fill(&info(), &mut t);
        let users: Vec<String> = t
            .credentials
            .configured()
            .iter()
            .map(|c| c.username.clone())
            .collect();
        assert_eq!(users, ["device", "rack", "site"]);
    }
}
