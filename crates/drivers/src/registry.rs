//! The set of known drivers, looked up by family name.

use crate::driver::Driver;
use std::sync::Arc;

/// Known drivers by family name.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: Vec<Arc<dyn Driver>>,
}

impl Registry {
    /// Every driver hashmesh ships, ready for identification and polling.
    pub fn with_defaults() -> Self {
        let mut r = Registry::new();
        r.register(Arc::new(crate::cgminer::CgminerDriver::default()));
        r.register(Arc::new(crate::antminer::AntminerDriver::default()));
        r.register(Arc::new(crate::avalon::AvalonDriver::default()));
        r.register(Arc::new(crate::braiins::BraiinsDriver::default()));
        r.register(Arc::new(crate::luxos::LuxosDriver::default()));
        r.register(Arc::new(crate::whatsminer::WhatsminerDriver::new()));
        r.register(Arc::new(crate::bitaxe::BitaxeDriver::new()));
        r
    }

    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a driver; a later driver with the same name replaces the earlier one.
    pub fn register(&mut self, driver: Arc<dyn Driver>) {
        self.drivers.retain(|d| d.name() != driver.name());
        self.drivers.push(driver);
    }

    /// The driver for a family name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Driver>> {
        self.drivers.iter().find(|d| d.name() == name).cloned()
    }

    /// Runs every driver's [`Driver::housekeep`].
    pub fn housekeep(&self) {
        for d in &self.drivers {
            d.housekeep();
        }
    }

    /// Names of every registered driver.
    pub fn names(&self) -> Vec<&'static str> {
        self.drivers.iter().map(|d| d.name()).collect()
    }
}
