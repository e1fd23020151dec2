//! What can go wrong with a device: at the socket (no listener, slow, hang, reset, garbage,
//! truncated, oversized replies) or in the hardware (dead board, failed fan, overheating, a
//! miner hashing on the wrong pool). A fault affects only its own device.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// No listener: connections are refused.
    Offline,
    /// The reply comes after a delay (`Timing::slow_reply_*`, 2–4 s by default).
    Slow,
    /// The connection is accepted and the request read, but no reply ever comes.
    Hang,
    /// Part of the reply is sent, then the connection is reset (RST).
    Reset,
    /// Random bytes instead of a reply.
    Garbage,
    /// The JSON reply is cut mid-way and the connection closed.
    Truncated,
    /// A reply of many megabytes.
    Oversized,
    /// One hash board lost all its chips: 0 chips, 0 hashrate.
    DeadBoard,
    /// One fan stopped (0 RPM); the chips run hotter.
    FanFail,
    /// Poor airflow and hot inlet air: temperatures above the model's limits.
    Overheat,
    /// The miner hashes on its second pool although the first is alive.
    WrongPool,
}

impl Fault {
    /// Every fault, in a stable order.
    pub const ALL: [Fault; 11] = [
        Fault::Offline,
        Fault::Slow,
        Fault::Hang,
        Fault::Reset,
        Fault::Garbage,
        Fault::Truncated,
        Fault::Oversized,
        Fault::DeadBoard,
        Fault::FanFail,
        Fault::Overheat,
        Fault::WrongPool,
    ];

    /// Kebab-case name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Offline => "offline",
            Fault::Slow => "slow",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Garbage => "garbage",
            Fault::Truncated => "truncated",
            Fault::Oversized => "oversized",
            Fault::DeadBoard => "dead-board",
            Fault::FanFail => "fan-fail",
            Fault::Overheat => "overheat",
            Fault::WrongPool => "wrong-pool",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown fault '{s}' (expected one of {})", names.join(", "))
            })
    }
}

/// A set of faults packed into one word (kept per device, so it must be small).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FaultSet(u16);

impl FaultSet {
    /// The set holding `faults`.
    pub fn from_faults(faults: &[Fault]) -> Self {
        FaultSet(faults.iter().fold(0, |acc, f| acc | f.bit()))
    }

    /// Whether `fault` is in the set.
    pub fn has(self, fault: Fault) -> bool {
        self.0 & fault.bit() != 0
    }

    /// The faults in the set, in [`Fault::ALL`] order.
    pub fn to_vec(self) -> Vec<Fault> {
        Fault::ALL.into_iter().filter(|f| self.has(*f)).collect()
    }

    /// The raw bits (for an atomic store).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// A set from raw bits.
    pub fn from_bits(bits: u16) -> Self {
        FaultSet(bits)
    }
}

/// Which devices of a fleet get which faults: shares of the fleet and named addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Each fault with the share of devices (0.0..=1.0) that get it.
    pub shares: Vec<(Fault, f64)>,
    /// Faults pinned to one address.
    pub pinned: Vec<(Ipv4Addr, Fault)>,
}

impl FaultPlan {
    /// Parses `offline=1%,hang=0.5%,127.20.0.7=fan-fail` (a share may also be a fraction: `0.01`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut plan = FaultPlan::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (left, right) = item
                .split_once('=')
                .ok_or_else(|| format!("fault entry '{item}' is not name=share or ip=fault"))?;
            if let Ok(ip) = left.trim().parse::<Ipv4Addr>() {
                plan.pinned.push((ip, right.parse()?));
                continue;
            }
            let fault: Fault = left.parse()?;
            let share = parse_share(right)
                .ok_or_else(|| format!("bad share '{right}' for fault {fault}"))?;
            plan.shares.push((fault, share));
        }
        Ok(plan)
    }

    /// Whether the plan has no faults at all.
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty() && self.pinned.is_empty()
    }
}

fn parse_share(s: &str) -> Option<f64> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.as_str().parse::<Fault>(), Ok(f));
        }
        assert_eq!("dead_board".parse::<Fault>(), Ok(Fault::DeadBoard));
        assert!("meltdown".parse::<Fault>().is_err());
    }

    #[test]
    fn sets_pack_faults() {
        let s = FaultSet::from_faults(&[Fault::Hang, Fault::WrongPool]);
        assert!(s.has(Fault::Hang) && s.has(Fault::WrongPool) && !s.has(Fault::Slow));
        assert_eq!(s.to_vec(), vec![Fault::Hang, Fault::WrongPool]);
        assert_eq!(FaultSet::from_bits(s.bits()), s);
    }

    #[test]
    fn plans_parse() {
        let p = FaultPlan::parse("offline=1%, hang=0.005,127.20.0.9=fan-fail").unwrap_or_default();
        assert_eq!(p.shares, vec![(Fault::Offline, 0.01), (Fault::Hang, 0.005)]);
        assert_eq!(
            p.pinned,
            vec![(Ipv4Addr::new(127, 20, 0, 9), Fault::FanFail)]
        );
        for bad in [
            "offline",
            "offline=150%",
            "nope=1%",
            "127.0.0.1=nope",
            "hang=x",
        ] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad}");
        }
    }
}
