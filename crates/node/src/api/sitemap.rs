//! The site map: sites ▸ containers ▸ racks ▸ shelf × slot, each placed device with what a heat
//! map colours by (status, hottest chip, hashrate against nominal).

use super::devices::Row;
use super::{AppState, blocking};
use crate::auth::RequireViewer;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::collections::BTreeMap;

/// One placed device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cell {
    id: String,
    ip: String,
    #[schema(value_type = String)]
    model: std::sync::Arc<str>,
    shelf: u16,
    slot: u16,
    status: &'static str,
    chip_temp_max_c: Option<f64>,
    hashrate_ths: Option<f64>,
    expected_hashrate_ths: Option<f64>,
}

/// A rack and its devices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RackMap {
    rack: String,
    /// Shelves (the highest shelf number seen).
    shelves: u16,
    /// Slots per shelf (the highest slot number seen).
    slots: u16,
    devices: Vec<Cell>,
}

/// A container and its racks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContainerMap {
    container: String,
    racks: Vec<RackMap>,
}

/// A site and its containers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SiteMap {
    site: String,
    containers: Vec<ContainerMap>,
}

/// `GET /api/v1/sitemap`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Map {
    sites: Vec<SiteMap>,
    /// Miners without a full location (site, container, rack, shelf, slot).
    unplaced: usize,
}

/// Builds the map from the device table (pure).
pub fn build(rows: &[Row]) -> Map {
    type Racks = BTreeMap<String, Vec<Cell>>;
    let mut tree: BTreeMap<String, BTreeMap<String, Racks>> = BTreeMap::new();
    let mut unplaced = 0;
    for r in rows {
        let i = r.info();
        if i.kind != hashmesh_core::DeviceKind::Miner {
            continue;
        }
        let l = &i.location;
        let (Some(site), Some(container), Some(rack), Some(shelf), Some(slot)) =
            (&l.site, &l.container, &l.rack, l.shelf, l.slot)
        else {
            unplaced += 1;
            continue;
        };
        tree.entry(site.clone())
            .or_default()
            .entry(container.clone())
            .or_default()
            .entry(rack.clone())
            .or_default()
            .push(Cell {
                id: i.id.0.clone(),
                ip: i.ip.to_string(),
                model: i.model.clone(),
                shelf,
                slot,
                status: r.status().as_str(),
                chip_temp_max_c: r.chip_temp_max_c(),
                hashrate_ths: r.hashrate_ths(),
                expected_hashrate_ths: r.expected_hashrate_ths(),
            });
    }
    let sites = tree
        .into_iter()
        .map(|(site, containers)| SiteMap {
            site,
            containers: containers
                .into_iter()
                .map(|(container, racks)| ContainerMap {
                    container,
                    racks: racks
                        .into_iter()
                        .map(|(rack, mut devices)| {
                            devices.sort_by_key(|c| (c.shelf, c.slot));
                            RackMap {
                                rack,
                                shelves: devices.iter().map(|c| c.shelf).max().unwrap_or(0),
                                slots: devices.iter().map(|c| c.slot).max().unwrap_or(0),
                                devices,
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Map { sites, unplaced }
}

/// `GET /api/v1/sitemap`.
#[utoipa::path(get, path = "/api/v1/sitemap", tag = "fleet",
    responses((status = 200, description = "Sites, containers, racks and the devices in their slots", body = Map)))]
pub async fn sitemap(
    _who: RequireViewer,
    State(s): State<AppState>,
) -> Result<Json<Map>, ApiError> {
    let (cache, live) = (s.rows.clone(), s.node.live.clone());
    blocking(move || Ok(Json(build(&cache.get(&live))))).await
}
