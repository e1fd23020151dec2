//! Which firmware a simulated device runs: the cgminer-API dialects hashmesh drives.

use std::fmt;
use std::str::FromStr;

/// A firmware family with a cgminer-style RPC on TCP 4028.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Plain cgminer 4.x (MH/s keys, an ASC list).
    Cgminer,
    /// BFGMiner 5.x (MH/s keys, a PGA list, a 20 s window).
    Bfgminer,
    /// Antminer stock firmware (bmminer: GH/s keys, legacy and `new_api` stats).
    Antminer,
    /// Canaan Avalon (cgminer 4.11.1 fork: `MM ID` strings, `ascset` controls).
    Avalon,
    /// Braiins OS (BOSer cgminer API: MH/s keys, `fans`, `temps`, `tunerstatus`).
    Braiins,
    /// LuxOS (LUXminer: GH/s keys, sessions, profiles, curtail).
    LuxOs,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: [Family; 6] = [
        Family::Cgminer,
        Family::Bfgminer,
        Family::Antminer,
        Family::Avalon,
        Family::Braiins,
        Family::LuxOs,
    ];

    /// Lower-case name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Cgminer => "cgminer",
            Family::Bfgminer => "bfgminer",
            Family::Antminer => "antminer",
            Family::Avalon => "avalon",
            Family::Braiins => "braiins",
            Family::LuxOs => "luxos",
        }
    }

    /// The nameplate model a device of this family gets when none is given.
    pub fn default_model(self) -> &'static str {
        match self {
            Family::Cgminer => "cgminer",
            Family::Bfgminer => "bfgminer",
            Family::Antminer | Family::Braiins | Family::LuxOs => "Antminer S19 Pro",
            Family::Avalon => "Avalon A1346",
        }
    }

    /// The STATUS `Description` the firmware puts in every reply.
    pub fn description(self) -> &'static str {
        match self {
            Family::Cgminer => "cgminer 4.12.1",
            Family::Bfgminer => "bfgminer 5.5.0",
            // bmminer reports a cgminer version here, not its own.
            Family::Antminer => "cgminer 1.0.0",
            Family::Avalon => "cgminer 4.11.1",
            Family::Braiins => "BOSer boser-buildroot 0.1.0-0ce150e9",
            Family::LuxOs => "LUXminer 2025.4.8.220305-57b389c7",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Family::ALL.into_iter().find(|f| f.as_str() == lower).ok_or_else(|| {
            format!("unknown family '{s}' (expected cgminer, bfgminer, antminer, avalon, braiins or luxos)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Family::ALL {
            assert_eq!(f.to_string().parse::<Family>(), Ok(f));
        }
        assert_eq!("LuxOS".parse::<Family>(), Ok(Family::LuxOs));
        assert!("whatsminer".parse::<Family>().is_err());
    }
}
