//! Names and ids: device keys to series ids, group names to group ids, and which groups each
//! series rolls up into (with the reverse index, members of each group, kept sorted).

use std::collections::HashMap;

/// The in-memory registry; persisted to the state file at each seal and logged in the WAL.
#[derive(Debug, Default)]
pub struct Registry {
    /// Series ids are dense (0, 1, 2, ...), so this map also counts them.
    by_key: HashMap<String, u32>,
    groups: Vec<String>,
    by_group: HashMap<String, u32>,
    /// Groups of each series.
    membership: Vec<Vec<u32>>,
    /// Series of each group, ascending.
    members: Vec<Vec<u32>>,
    /// Registrations and membership changes not yet in the state file.
    pub dirty: Dirty,
}

/// What changed since the last seal.
#[derive(Debug, Default, Clone)]
pub struct Dirty {
    /// New series ids (with their keys).
    pub series: Vec<(u32, String)>,
    /// New group ids (with their names).
    pub groups: Vec<(u32, String)>,
    /// Series whose groups changed.
    pub members: Vec<u32>,
}

impl Registry {
    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.by_key.len()
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Id of a key, if registered.
    pub fn series_id(&self, key: &str) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// Id of a group name, if registered.
    pub fn group_id(&self, name: &str) -> Option<u32> {
        self.by_group.get(name).copied()
    }

    /// Registers a series under a given id (replay and load); false if it contradicts.
    pub fn add_series(&mut self, id: u32, key: &str) -> bool {
        if let Some(&have) = self.by_key.get(key) {
            return have == id;
        }
        if id as usize != self.by_key.len() {
            return false;
        }
        self.by_key.insert(key.to_string(), id);
        self.membership.push(Vec::new());
        true
    }

    /// Hands out the next series id for a new key.
    pub fn new_series(&mut self, key: &str) -> u32 {
        let id = self.by_key.len() as u32;
        self.add_series(id, key);
        self.dirty.series.push((id, key.to_string()));
        id
    }

    /// Registers a group under a given id (replay and load); false if it contradicts.
    pub fn add_group(&mut self, id: u32, name: &str) -> bool {
        if let Some(&have) = self.by_group.get(name) {
            return have == id;
        }
        if id as usize != self.groups.len() {
            return false;
        }
        self.groups.push(name.to_string());
        self.by_group.insert(name.to_string(), id);
        self.members.push(Vec::new());
        true
    }

    /// Hands out the next group id for a new name.
    pub fn new_group(&mut self, name: &str) -> u32 {
        let id = self.groups.len() as u32;
        self.add_group(id, name);
        self.dirty.groups.push((id, name.to_string()));
        id
    }

    /// Groups of a series.
    pub fn groups_of(&self, series: u32) -> &[u32] {
        self.membership
            .get(series as usize)
            .map_or(&[], |g| g.as_slice())
    }

    /// Series of a group, ascending.
    pub fn members_of(&self, group: u32) -> &[u32] {
        self.members
            .get(group as usize)
            .map_or(&[], |m| m.as_slice())
    }

    /// Replaces a series' groups; false if nothing changed or an id is unknown.
    pub fn set_members(&mut self, series: u32, groups: &[u32]) -> bool {
        let s = series as usize;
        if s >= self.membership.len() || groups.iter().any(|&g| g as usize >= self.groups.len()) {
            return false;
        }
        let mut new: Vec<u32> = groups.to_vec();
        new.sort_unstable();
        new.dedup();
        if self.membership[s] == new {
            return false;
        }
        for &g in &self.membership[s] {
            let m = &mut self.members[g as usize];
            if let Ok(i) = m.binary_search(&series) {
                m.remove(i);
            }
        }
        for &g in &new {
            let m = &mut self.members[g as usize];
            if m.last().is_none_or(|&l| l < series) {
                m.push(series);
            } else if let Err(i) = m.binary_search(&series) {
                m.insert(i, series);
            }
        }
        self.membership[s] = new;
        self.dirty.members.push(series);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_moves_between_groups() {
        let mut r = Registry::default();
        let a = r.new_series("a");
        let b = r.new_series("b");
        let all = r.new_group("all");
        let r1 = r.new_group("rack=1");
        let r2 = r.new_group("rack=2");
        assert!(r.set_members(b, &[all, r1]));
        assert!(r.set_members(a, &[all, r1]));
        assert_eq!(r.members_of(r1), &[a, b]);
        assert!(!r.set_members(a, &[r1, all]));
        assert!(r.set_members(a, &[all, r2]));
        assert_eq!(r.members_of(r1), &[b]);
        assert_eq!(r.members_of(r2), &[a]);
        assert_eq!(r.members_of(all), &[a, b]);
        assert!(!r.set_members(9, &[all]));
        assert!(!r.add_series(5, "c"));
    }
}
