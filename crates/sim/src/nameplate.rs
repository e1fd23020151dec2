//! Hardware figures of the models we simulate: one shared static table, so a device holds a
//! `&'static Nameplate` instead of its own copy (100,000 devices must stay cheap).

use crate::family::Family;
use hashmesh_core::Vendor;

/// How the firmware numbers its hash chains in the legacy Antminer `stats` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainNumbering {
    /// S9-era firmware: chains 6, 7, 8 among slots 1..16.
    S9,
    /// X17 and later: chains 1..3 plus an empty 4th slot.
    X19,
}

/// The factory figures of one miner model.
#[derive(Debug, Clone, PartialEq)]
pub struct Nameplate {
    /// Model name as the vendor writes it, e.g. `Antminer S19 Pro`.
    pub name: &'static str,
    /// Hardware maker.
    pub vendor: Vendor,
    /// Hash boards.
    pub boards: u8,
    /// Chips on each board.
    pub chips_per_board: u16,
    /// Chip type, as firmwares report it.
    pub chip: &'static str,
    /// Nominal chip frequency.
    pub frequency_mhz: f64,
    /// Nominal board (chain) voltage.
    pub voltage_v: f64,
    /// Nominal hashrate of the whole unit.
    pub hashrate_ths: f64,
    /// Nominal wall power at the nominal hashrate.
    pub power_w: f64,
    /// Power with every board idle (controller, PSU losses, fans at minimum).
    pub idle_power_w: f64,
    /// Fans.
    pub fans: u8,
    /// Fan speed at 100 % duty.
    pub fan_max_rpm: u32,
    /// Chip temperature the fan controller aims at.
    pub chip_target_c: f64,
    /// Chip temperature above which the unit counts as overheating.
    pub chip_limit_c: f64,
    /// Antminer chain numbering (only used by bmminer-style `stats`).
    pub chains: ChainNumbering,
}

impl Nameplate {
    /// Chips on the whole unit.
    pub fn total_chips(&self) -> u32 {
        u32::from(self.boards) * u32::from(self.chips_per_board)
    }

    /// Hashrate of one chip per MHz of clock, in TH/s: the constant behind `chips × frequency`.
    pub fn ths_per_chip_mhz(&self) -> f64 {
        self.hashrate_ths / (f64::from(self.total_chips()) * self.frequency_mhz)
    }

    /// Power of one chip per MHz per V², in W: chosen so the nominal point draws `power_w`.
    pub fn w_per_chip_mhz_v2(&self) -> f64 {
        (self.power_w - self.idle_power_w)
            / (f64::from(self.total_chips()) * self.frequency_mhz * self.voltage_v * self.voltage_v)
    }

    /// Whether a device of `family` can run on this hardware.
    pub fn fits(&self, family: Family) -> bool {
        match family {
            Family::Antminer | Family::Braiins | Family::LuxOs => self.vendor == Vendor::Bitmain,
            Family::Avalon => self.vendor == Vendor::Canaan,
            Family::Cgminer | Family::Bfgminer => true,
        }
    }

    /// The short model without the vendor prefix (`S19 Pro`, `A1346`).
    pub fn short_name(&self) -> &'static str {
        self.name
            .strip_prefix("Antminer ")
            .or_else(|| self.name.strip_prefix("Avalon "))
            .or_else(|| self.name.strip_prefix("Whatsminer "))
            .unwrap_or(self.name)
    }
}

const fn antminer(
    name: &'static str,
    chips_per_board: u16,
    chip: &'static str,
    frequency_mhz: f64,
    voltage_v: f64,
    hashrate_ths: f64,
    power_w: f64,
) -> Nameplate {
    Nameplate {
        name,
        vendor: Vendor::Bitmain,
        boards: 3,
        chips_per_board,
        chip,
        frequency_mhz,
        voltage_v,
        hashrate_ths,
        power_w,
        idle_power_w: 90.0,
        fans: 4,
        fan_max_rpm: 6000,
        chip_target_c: 75.0,
        chip_limit_c: 95.0,
        chains: ChainNumbering::X19,
    }
}

const fn avalon(
    name: &'static str,
    chips_per_board: u16,
    chip: &'static str,
    hashrate_ths: f64,
    power_w: f64,
) -> Nameplate {
    Nameplate {
        name,
        vendor: Vendor::Canaan,
        boards: 3,
        chips_per_board,
        chip,
        frequency_mhz: 500.0,
        voltage_v: 12.8,
        hashrate_ths,
        power_w,
        idle_power_w: 80.0,
        fans: 4,
        fan_max_rpm: 6800,
        chip_target_c: 80.0,
        chip_limit_c: 100.0,
        chains: ChainNumbering::X19,
    }
}

/// A Bitaxe-class single-board miner (ESP-Miner / AxeOS): one board of `chips` ASICs, one fan.
const fn bitaxe(
    name: &'static str,
    chips: u16,
    chip: &'static str,
    frequency_mhz: f64,
    voltage_v: f64,
    hashrate_ths: f64,
    power_w: f64,
) -> Nameplate {
    Nameplate {
        name,
        vendor: Vendor::Bitaxe,
        boards: 1,
        chips_per_board: chips,
        chip,
        frequency_mhz,
        voltage_v,
        hashrate_ths,
        power_w,
        idle_power_w: 2.0,
        fans: 1,
        fan_max_rpm: 7000,
        chip_target_c: 60.0,
        chip_limit_c: 75.0,
        chains: ChainNumbering::X19,
    }
}

const fn generic(name: &'static str) -> Nameplate {
    Nameplate {
        name,
        vendor: Vendor::Unknown,
        boards: 4,
        chips_per_board: 24,
        chip: "BM1397",
        frequency_mhz: 600.0,
        voltage_v: 8.4,
        hashrate_ths: 12.0,
        power_w: 980.0,
        idle_power_w: 40.0,
        fans: 2,
        fan_max_rpm: 5000,
        chip_target_c: 70.0,
        chip_limit_c: 90.0,
        chains: ChainNumbering::X19,
    }
}

/// A MicroBT Whatsminer: three boards, one intake and one exhaust fan.
const fn whatsminer(
    name: &'static str,
    chips_per_board: u16,
    frequency_mhz: f64,
    voltage_v: f64,
    hashrate_ths: f64,
    power_w: f64,
) -> Nameplate {
    Nameplate {
        name,
        vendor: Vendor::MicroBt,
        boards: 3,
        chips_per_board,
        chip: "K210",
        frequency_mhz,
        voltage_v,
        hashrate_ths,
        power_w,
        idle_power_w: 70.0,
        fans: 2,
        fan_max_rpm: 7000,
        chip_target_c: 78.0,
        chip_limit_c: 100.0,
        chains: ChainNumbering::X19,
    }
}

/// Every model the simulator knows.
pub static NAMEPLATES: &[Nameplate] = &[
    Nameplate {
        fans: 2,
        idle_power_w: 60.0,
        chip_target_c: 80.0,
        chip_limit_c: 100.0,
        chains: ChainNumbering::S9,
        ..antminer("Antminer S9", 63, "BM1387", 650.0, 9.1, 13.5, 1323.0)
    },
    antminer(
        "Antminer S19 Pro",
        114,
        "BM1398",
        675.0,
        13.6,
        110.0,
        3250.0,
    ),
    antminer(
        "Antminer S19j Pro",
        126,
        "BM1362",
        525.0,
        13.5,
        100.0,
        3050.0,
    ),
    antminer("Antminer S19 XP", 110, "BM1366", 500.0, 14.2, 140.0, 3010.0),
    antminer(
        "Antminer S19k Pro",
        77,
        "BM1366",
        550.0,
        13.9,
        120.0,
        2760.0,
    ),
    antminer("Antminer S21", 108, "BM1368", 490.0, 13.0, 200.0, 3500.0),
    antminer("Antminer S21 Pro", 65, "BM1370", 540.0, 12.6, 234.0, 3510.0),
    whatsminer("Whatsminer M30S++", 111, 587.0, 13.4, 112.0, 3472.0),
    whatsminer("Whatsminer M50S", 123, 520.0, 13.0, 126.0, 3276.0),
    whatsminer("Whatsminer M60S", 111, 560.0, 12.8, 172.0, 3422.0),
    whatsminer("Whatsminer M63S", 160, 520.0, 12.4, 390.0, 7215.0),
    avalon("Avalon A1346", 120, "A3206", 110.0, 3300.0),
    avalon("Avalon A1366", 120, "A3207", 130.0, 3250.0),
    avalon("Avalon A1566", 160, "A3208", 185.0, 3420.0),
    bitaxe("Bitaxe Ultra", 1, "BM1366", 485.0, 1.2, 0.5, 12.0),
    bitaxe("Bitaxe Supra", 1, "BM1368", 490.0, 1.166, 0.7, 13.0),
    bitaxe("Bitaxe Gamma", 1, "BM1370", 525.0, 1.15, 1.2, 17.0),
    bitaxe("NerdQAxe++", 4, "BM1370", 600.0, 1.15, 4.8, 76.0),
    generic("cgminer"),
    generic("bfgminer"),
];

/// The nameplate called `name`, case-insensitive; the vendor prefix may be left out
/// (`S19 Pro`, `A1346`) and Canaan's `AvalonMiner 1346` spelling is accepted.
pub fn find(name: &str) -> Option<&'static Nameplate> {
    let want = name.trim().to_ascii_lowercase();
    let want = want
        .strip_prefix("avalonminer ")
        .map(|m| format!("a{m}"))
        .unwrap_or(want);
    NAMEPLATES
        .iter()
        .find(|n| n.name.eq_ignore_ascii_case(&want) || n.short_name().eq_ignore_ascii_case(&want))
}

/// The models a fleet draws from for `family`, with relative weights.
pub fn fleet_models(family: Family) -> &'static [(&'static str, u32)] {
    match family {
        Family::Antminer => &[
            ("Antminer S19 Pro", 30),
            ("Antminer S19j Pro", 20),
            ("Antminer S19 XP", 10),
            ("Antminer S19k Pro", 10),
            ("Antminer S21", 15),
            ("Antminer S21 Pro", 5),
            ("Antminer S9", 10),
        ],
        Family::Braiins | Family::LuxOs => &[
            ("Antminer S19 Pro", 35),
            ("Antminer S19j Pro", 35),
            ("Antminer S19 XP", 15),
            ("Antminer S21", 15),
        ],
        Family::Avalon => &[
            ("Avalon A1346", 40),
            ("Avalon A1366", 40),
            ("Avalon A1566", 20),
        ],
        Family::Cgminer => &[("cgminer", 1)],
        Family::Bfgminer => &[("bfgminer", 1)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_forms() {
        assert_eq!(
            find("Antminer S19 Pro").map(|n| n.name),
            Some("Antminer S19 Pro")
        );
        assert_eq!(find("s19 pro").map(|n| n.name), Some("Antminer S19 Pro"));
        assert_eq!(
            find("AvalonMiner 1366").map(|n| n.name),
            Some("Avalon A1366")
        );
        assert_eq!(find("A1566").map(|n| n.name), Some("Avalon A1566"));
        assert_eq!(find("Antminer S99"), None);
    }

    #[test]
    fn nominal_point_is_consistent() {
        for n in NAMEPLATES {
            let chips = f64::from(n.total_chips());
            let ths = chips * n.frequency_mhz * n.ths_per_chip_mhz();
            let w = n.idle_power_w
                + chips * n.frequency_mhz * n.voltage_v.powi(2) * n.w_per_chip_mhz_v2();
            assert!((ths - n.hashrate_ths).abs() < 1e-9, "{}", n.name);
            assert!((w - n.power_w).abs() < 1e-6, "{}", n.name);
        }
    }

    #[test]
    fn every_fleet_model_exists_and_fits() {
        for f in Family::ALL {
            for (m, _) in fleet_models(f) {
                let n = find(m).unwrap_or_else(|| panic!("{m} missing"));
                assert!(n.fits(f), "{m} does not fit {f}");
            }
        }
    }
}
