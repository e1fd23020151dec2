//! Groups and live rollups: which groups a device belongs to (the node, its site, container
//! and rack, its model and vendor), and the current totals of each group computed from live
//! state, for `/metrics`, remote-write and the API. Historical rollups are the store's job; the
//! group names it uses come from [`GroupKey::store_name`].

use crate::live::{DeviceInfo, DeviceStatus, LiveState, Reading};
use hashmesh_core::DeviceKind;
use serde::Serialize;
use std::collections::BTreeMap;

/// A group of devices: a level and the labels that pick it out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Power meters roll up apart from miners (their power would be counted twice).
    pub meters: bool,
    /// `node`, `site`, `container`, `rack`, `model` or `vendor`.
    pub level: &'static str,
    /// Label names and values, e.g. `[("site","A"),("container","C01")]`.
    pub labels: Vec<(&'static str, String)>,
}

impl GroupKey {
    /// The name the time-series store knows this group by (`all`, `site=A`,
    /// `container=A/C01`, `rack=A/C01/R03`, `model=…`, `vendor=…`; meters prefixed `meters:`).
    pub fn store_name(&self) -> String {
        let body = if self.level == "node" {
            return if self.meters { "meters" } else { "all" }.to_owned();
        } else {
            let values: Vec<&str> = self.labels.iter().map(|(_, v)| v.as_str()).collect();
            format!("{}={}", self.level, values.join("/"))
        };
        if self.meters {
            format!("meters:{body}")
        } else {
            body
        }
    }
}

/// Every group a device belongs to.
pub fn group_keys(info: &DeviceInfo) -> Vec<GroupKey> {
    let meters = info.kind == DeviceKind::PowerMeter;
    let key = |level, labels| GroupKey {
        meters,
        level,
        labels,
    };
    let l = &info.location;
    let mut g = vec![key("node", vec![])];
    if let Some(site) = &l.site {
        g.push(key("site", vec![("site", site.clone())]));
        if let Some(c) = &l.container {
            g.push(key(
                "container",
                vec![("site", site.clone()), ("container", c.clone())],
            ));
            if let Some(r) = &l.rack {
                g.push(key(
                    "rack",
                    vec![
                        ("site", site.clone()),
                        ("container", c.clone()),
                        ("rack", r.clone()),
                    ],
                ));
            }
        }
    }
    if !meters {
        g.push(key("model", vec![("model", info.model.to_string())]));
        g.push(key("vendor", vec![("vendor", info.vendor.to_string())]));
    }
    g
}

/// Current totals of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupTotals {
    /// Devices in the group.
    pub devices: u64,
    /// Devices by status (`mining`, `offline`, …).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Sum of current hashrates.
    pub hashrate_ths: f64,
    /// Sum of nominal hashrates.
    pub expected_hashrate_ths: f64,
    /// Sum of power draws (miners), or of active power (meters).
    pub power_w: f64,
    /// Power over hashrate of the devices that report both.
    pub efficiency_j_per_th: Option<f64>,
    /// Hottest chip in the group.
    pub chip_temp_max_c: Option<f64>,
    /// Sum of imported energy (meters).
    pub energy_import_kwh: f64,
    #[serde(skip)]
    power_with_hash_w: f64,
    #[serde(skip)]
    hash_with_power_ths: f64,
}

impl GroupTotals {
    fn add(&mut self, status: DeviceStatus, reading: Option<&Reading>) {
        self.devices += 1;
        *self.by_status.entry(status.as_str()).or_default() += 1;
        // A device that is not answering contributes no hashrate or power, even though its last
        // reading is kept for the detail page.
        if !status.is_online() {
            return;
        }
        match reading {
            Some(Reading::Miner(s)) => {
                let h = s.hashrate_ths.unwrap_or(0.0);
                self.hashrate_ths += h;
                self.expected_hashrate_ths += s.expected_hashrate_ths.unwrap_or(0.0);
                if let Some(p) = s.power_w {
                    self.power_w += p;
                    if h > 0.0 {
                        self.power_with_hash_w += p;
                        self.hash_with_power_ths += h;
                    }
                }
                if let Some(t) = s.max_chip_temp_c() {
                    self.chip_temp_max_c = Some(self.chip_temp_max_c.map_or(t, |m| m.max(t)));
                }
            }
            Some(Reading::Meter(m)) => {
                self.power_w += m.active_power_total_w.unwrap_or(0.0);
                self.energy_import_kwh += m.energy_import_kwh.unwrap_or(0.0);
            }
            None => {}
        }
    }

    fn finish(&mut self) {
        self.efficiency_j_per_th = (self.hash_with_power_ths > 0.01)
            .then(|| self.power_with_hash_w / self.hash_with_power_ths);
    }
}

/// Totals of every group, computed from live state now.
pub fn totals(live: &LiveState) -> BTreeMap<GroupKey, GroupTotals> {
    let mut out: BTreeMap<GroupKey, GroupTotals> = BTreeMap::new();
    for d in live.all() {
        let info = d.info();
        let (status, reading) = d.with_state(|s| (s.status, s.reading.clone()));
        for key in group_keys(&info) {
            out.entry(key).or_default().add(status, reading.as_ref());
        }
    }
    for t in out.values_mut() {
        t.finish();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_core::{DeviceId, Location, MinerSnapshot, MinerStatus};
    use std::sync::Arc;

    fn info(id: &str, rack: &str, kind: DeviceKind) -> DeviceInfo {
        DeviceInfo {
            id: DeviceId(id.into()),
            ip: "127.0.0.1".parse().unwrap(),
            kind,
            family: "antminer".into(),
            vendor: "Bitmain".into(),
            model: "Antminer S19 Pro".into(),
            firmware: "stock".into(),
            mac: None,
            serial: None,
            unit_id: None,
            location: Location {
                site: Some("A".into()),
                container: Some("C01".into()),
                rack: Some(rack.into()),
                shelf: None,
                slot: None,
            },
            tags: vec![],
            credentials_ref: None,
            missing_since_unix_ms: None,
        }
    }

    #[test]
    fn store_names() {
        let keys: Vec<String> = group_keys(&info("a", "R1", DeviceKind::Miner))
            .iter()
            .map(GroupKey::store_name)
            .collect();
        assert_eq!(
            keys,
            vec![
                "all",
                "site=A",
                "container=A/C01",
                "rack=A/C01/R1",
                "model=Antminer S19 Pro",
                "vendor=Bitmain"
            ]
        );
        let keys: Vec<String> = group_keys(&info("m", "R1", DeviceKind::PowerMeter))
            .iter()
            .map(GroupKey::store_name)
            .collect();
        assert_eq!(
            keys,
            vec![
                "meters",
                "meters:site=A",
                "meters:container=A/C01",
                "meters:rack=A/C01/R1"
            ]
        );
    }

    #[test]
    fn totals_add_up_and_skip_offline_readings() {
        let live = LiveState::new();
        for (id, rack, status, h, p) in [
            ("a", "R1", DeviceStatus::Mining, 100.0, 3000.0),
            ("b", "R1", DeviceStatus::Mining, 110.0, 3300.0),
            ("c", "R2", DeviceStatus::Offline, 120.0, 3600.0),
        ] {
            let (d, _) = live.upsert(info(id, rack, DeviceKind::Miner));
            let mut s = MinerSnapshot::empty(0, MinerStatus::Mining);
            s.hashrate_ths = Some(h);
            s.power_w = Some(p);
            d.with_state(|st| {
                st.status = status;
                st.reading = Some(Reading::Miner(Arc::new(s)));
            });
        }
        let t = totals(&live);
        let node = &t[&group_keys(&info("a", "R1", DeviceKind::Miner))[0]];
        assert_eq!(node.devices, 3);
        assert_eq!(node.by_status["mining"], 2);
        assert_eq!(node.by_status["offline"], 1);
        assert_eq!(node.hashrate_ths, 210.0);
        assert_eq!(node.power_w, 6300.0);
        assert_eq!(node.efficiency_j_per_th, Some(30.0));
        let r2 = t
            .iter()
            .find(|(k, _)| k.level == "rack" && k.labels[2].1 == "R2")
            .map(|(_, v)| v)
            .unwrap();
        assert_eq!(r2.hashrate_ths, 0.0);
        assert_eq!(r2.efficiency_j_per_th, None);
    }
}
