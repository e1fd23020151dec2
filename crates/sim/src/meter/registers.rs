//! The register images the simulated meters serve, written from each vendor's map document
//! independently of the driver's tables: a value is quantised and encoded here exactly as the
//! meter would, so a wrong address, scale or word order in the driver shows up as a wrong value.

use hashmesh_core::MeterSnapshot;
use std::collections::BTreeMap;

/// Registers by wire address. Addresses absent from the image answer "illegal data address".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    registers: BTreeMap<u16, u16>,
}

impl Image {
    /// The register at `address`, if the meter maps it.
    pub fn get(&self, address: u16) -> Option<u16> {
        self.registers.get(&address).copied()
    }

    /// Maps every address in `start..=end` to zero (reserved registers that still answer).
    fn zeros(&mut self, start: u16, end: u16) {
        for a in start..=end {
            self.registers.insert(a, 0);
        }
    }

    fn words(&mut self, start: u16, words: &[u16]) {
        for (i, w) in words.iter().enumerate() {
            self.registers.insert(start.wrapping_add(i as u16), *w);
        }
    }

    fn u16(&mut self, at: u16, v: u16) {
        self.words(at, &[v]);
    }

    /// 32 bits, most significant word first.
    fn u32_hi(&mut self, at: u16, v: u32) {
        self.words(at, &[(v >> 16) as u16, v as u16]);
    }

    /// 32 bits, least significant word first.
    fn u32_lo(&mut self, at: u16, v: u32) {
        self.words(at, &[v as u16, (v >> 16) as u16]);
    }

    /// 64 bits, most significant word first.
    fn u64_hi(&mut self, at: u16, v: u64) {
        self.words(
            at,
            &[
                (v >> 48) as u16,
                (v >> 32) as u16,
                (v >> 16) as u16,
                v as u16,
            ],
        );
    }

    fn f32_hi(&mut self, at: u16, v: f32) {
        self.u32_hi(at, v.to_bits());
    }

    /// ASCII, two characters per register, NUL-padded to `regs` registers.
    fn ascii(&mut self, at: u16, text: &str, regs: u16) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(usize::from(regs) * 2, 0);
        let words: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        self.words(at, &words);
    }
}

fn val(v: Option<f64>) -> f64 {
    v.unwrap_or(0.0)
}

/// `v / resolution` rounded, as the meter's integer register holds it.
fn counts(v: Option<f64>, resolution: f64) -> i64 {
    (val(v) / resolution).round() as i64
}

/// ABB B23/B24: documented hex addresses on the wire as they are, high word first.
pub fn abb_b2x(r: &MeterSnapshot, serial: u32, img: &mut Image) {
    // Energy accumulators 0x5000–0x501F (import, export, then net/reactive/apparent).
    img.zeros(0x5000, 0x501F);
    img.u64_hi(0x5000, counts(r.energy_import_kwh, 0.01).max(0) as u64);
    img.u64_hi(0x5004, counts(r.energy_export_kwh, 0.01).max(0) as u64);
    // Instantaneous values 0x5B00–0x5B3D; the gap 0x5B2D–0x5B39 is reserved (reads as zero).
    img.zeros(0x5B00, 0x5B3D);
    for i in 0..3u16 {
        let k = usize::from(i);
        img.u32_hi(0x5B00 + 2 * i, counts(r.voltage_ln_v[k], 0.1) as u32);
        img.u32_hi(0x5B0C + 2 * i, counts(r.current_phase_a[k], 0.01) as u32);
        img.u32_hi(
            0x5B16 + 2 * i,
            counts(r.active_power_phase_w[k], 0.01) as i32 as u32,
        );
        img.u32_hi(
            0x5B1E + 2 * i,
            counts(r.reactive_power_phase_var[k], 0.01) as i32 as u32,
        );
        img.u32_hi(
            0x5B26 + 2 * i,
            counts(r.apparent_power_phase_va[k], 0.01) as i32 as u32,
        );
        img.u16(
            0x5B3B + i,
            counts(r.power_factor_phase[k], 0.001) as i16 as u16,
        );
    }
    // ABB order of line-to-line voltages: L1-L2, L3-L2, L1-L3.
    img.u32_hi(0x5B06, counts(r.voltage_ll_v[0], 0.1) as u32);
    img.u32_hi(0x5B08, counts(r.voltage_ll_v[1], 0.1) as u32);
    img.u32_hi(0x5B0A, counts(r.voltage_ll_v[2], 0.1) as u32);
    img.u32_hi(0x5B12, counts(r.current_neutral_a, 0.01) as u32);
    img.u32_hi(0x5B14, counts(r.active_power_total_w, 0.01) as i32 as u32);
    img.u32_hi(
        0x5B1C,
        counts(r.reactive_power_total_var, 0.01) as i32 as u32,
    );
    img.u32_hi(
        0x5B24,
        counts(r.apparent_power_total_va, 0.01) as i32 as u32,
    );
    img.u16(0x5B2C, counts(r.frequency_hz, 0.01) as u16);
    img.u16(0x5B3A, counts(r.power_factor_total, 0.001) as i16 as u16);
    // Identification: serial 0x8900, firmware 0x8908 (8 regs), mapping version 0x8910.
    img.zeros(0x8900, 0x8910);
    img.u32_hi(0x8900, serial);
    img.ascii(0x8908, "1.2.3", 8);
    img.u16(0x8910, 0x0102);
}

/// Schneider's 4-quadrant PF register from active and reactive power (PM5xxx user manual):
/// Q1 PF, Q2 −2 − PF, Q3 PF, Q4 2 − PF, PF signed like active power.
pub fn schneider_pf_register(pf: f64, p_w: f64, q_var: f64) -> f32 {
    let pf_signed = if p_w < 0.0 { -pf.abs() } else { pf.abs() };
    let encoded = match (p_w >= 0.0, q_var >= 0.0) {
        (true, true) | (false, false) => pf_signed,
        (false, true) => -2.0 - pf_signed,
        (true, false) => 2.0 - pf_signed,
    };
    encoded as f32
}

/// Schneider PM5xxx: documented 1-based register numbers, so the wire address is one less.
pub fn schneider_pm5xxx(r: &MeterSnapshot, serial: u32, img: &mut Image) {
    let wire = |number: u16| number - 1;
    let f = |v: Option<f64>, factor: f64| v.map_or(f32::NAN, |x| (x * factor) as f32);
    img.zeros(wire(3000), wire(3111));
    let avg = |a: &[Option<f64>; 3]| Some(a.iter().map(|v| val(*v)).sum::<f64>() / 3.0);
    for i in 0..3u16 {
        let k = usize::from(i);
        img.f32_hi(wire(3000 + 2 * i), f(r.current_phase_a[k], 1.0));
        img.f32_hi(wire(3020 + 2 * i), f(r.voltage_ll_v[k], 1.0));
        img.f32_hi(wire(3028 + 2 * i), f(r.voltage_ln_v[k], 1.0));
        img.f32_hi(wire(3054 + 2 * i), f(r.active_power_phase_w[k], 0.001));
        img.f32_hi(wire(3062 + 2 * i), f(r.reactive_power_phase_var[k], 0.001));
        img.f32_hi(wire(3070 + 2 * i), f(r.apparent_power_phase_va[k], 0.001));
        let pf = schneider_pf_register(
            val(r.power_factor_phase[k]),
            val(r.active_power_phase_w[k]),
            val(r.reactive_power_phase_var[k]),
        );
        img.f32_hi(wire(3078 + 2 * i), pf);
    }
    img.f32_hi(wire(3006), f(r.current_neutral_a, 1.0));
    img.f32_hi(wire(3010), f(avg(&r.current_phase_a), 1.0));
    img.f32_hi(wire(3026), f(avg(&r.voltage_ll_v), 1.0));
    img.f32_hi(wire(3036), f(avg(&r.voltage_ln_v), 1.0));
    img.f32_hi(wire(3060), f(r.active_power_total_w, 0.001));
    img.f32_hi(wire(3068), f(r.reactive_power_total_var, 0.001));
    img.f32_hi(wire(3076), f(r.apparent_power_total_va, 0.001));
    img.f32_hi(
        wire(3084),
        schneider_pf_register(
            val(r.power_factor_total),
            val(r.active_power_total_w),
            val(r.reactive_power_total_var),
        ),
    );
    img.f32_hi(wire(3110), f(r.frequency_hz, 1.0));
    // Energy block 3204–3223: INT64 Wh / VARh counters.
    img.zeros(wire(3204), wire(3223));
    img.u64_hi(wire(3204), counts(r.energy_import_kwh, 0.001) as u64);
    img.u64_hi(wire(3208), counts(r.energy_export_kwh, 0.001) as u64);
    img.u64_hi(
        wire(3220),
        counts(r.reactive_energy_import_kvarh, 0.001) as u64,
    );
    // Identification: product name 30, (meter name 50), manufacturer 70, serial 130.
    img.zeros(wire(30), wire(131));
    img.ascii(wire(30), "PM5340", 20);
    img.ascii(wire(70), "Schneider Electric", 20);
    img.u32_hi(wire(130), serial);
    img.words(wire(1638), &[2, 1, 4]);
}

/// The engineering ranges a simulated Satec's raw 0…9999 registers span (its CT/PT setup).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SatecScales {
    /// Volts at raw 0 and 9999.
    pub volts: (f64, f64),
    /// Amps at raw 0 and 9999.
    pub amps: (f64, f64),
    /// Per-phase kW / kvar / kVA at raw 0 and 9999.
    pub phase_kw: (f64, f64),
    /// Total kW / kvar / kVA at raw 0 and 9999.
    pub total_kw: (f64, f64),
    /// Power factor at raw 0 and 9999.
    pub pf: (f64, f64),
    /// Hertz at raw 0 and 9999.
    pub hz: (f64, f64),
}

impl Default for SatecScales {
    fn default() -> Self {
        SatecScales {
            volts: (0.0, 500.0),
            amps: (0.0, 200.0),
            phase_kw: (-100.0, 100.0),
            total_kw: (-300.0, 300.0),
            pf: (-1.0, 1.0),
            hz: (0.0, 100.0),
        }
    }
}

/// Raw 0…9999 for `v` on the span `lo…hi`, clamped like the meter's A/D full scale.
fn satec_raw(v: Option<f64>, (lo, hi): (f64, f64)) -> u16 {
    if hi == lo {
        return 0;
    }
    ((val(v) - lo) * 9999.0 / (hi - lo))
        .round()
        .clamp(0.0, 9999.0) as u16
}

/// Satec PM180 basic block at wire 256–300; counters low word first, in whole kWh / kvarh.
pub fn satec_pm180(r: &MeterSnapshot, scales: &SatecScales, delta: bool, img: &mut Image) {
    img.zeros(256, 300);
    let kw = |v: Option<f64>| v.map(|w| w / 1000.0);
    for i in 0..3u16 {
        let k = usize::from(i);
        let volts = if delta {
            r.voltage_ll_v[k]
        } else {
            r.voltage_ln_v[k]
        };
        img.u16(256 + i, satec_raw(volts, scales.volts));
        img.u16(259 + i, satec_raw(r.current_phase_a[k], scales.amps));
        img.u16(
            262 + i,
            satec_raw(kw(r.active_power_phase_w[k]), scales.phase_kw),
        );
        img.u16(
            265 + i,
            satec_raw(kw(r.reactive_power_phase_var[k]), scales.phase_kw),
        );
        img.u16(
            268 + i,
            satec_raw(kw(r.apparent_power_phase_va[k]), scales.phase_kw),
        );
        img.u16(271 + i, satec_raw(r.power_factor_phase[k], scales.pf));
    }
    img.u16(274, satec_raw(r.power_factor_total, scales.pf));
    img.u16(275, satec_raw(kw(r.active_power_total_w), scales.total_kw));
    img.u16(
        276,
        satec_raw(kw(r.reactive_power_total_var), scales.total_kw),
    );
    img.u16(
        277,
        satec_raw(kw(r.apparent_power_total_va), scales.total_kw),
    );
    img.u16(278, satec_raw(r.current_neutral_a, scales.amps));
    img.u16(279, satec_raw(r.frequency_hz, scales.hz));
    let whole = |v: Option<f64>| val(v).max(0.0).floor() as u32;
    img.u32_lo(287, whole(r.energy_import_kwh));
    img.u32_lo(289, whole(r.energy_export_kwh));
    img.u32_lo(291, whole(r.reactive_energy_import_kvarh));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abb_example_from_the_protocol_notes() {
        // PROTOCOLS.md §7.1: 3,000 W total is S32 0x000493E0 at 0x5B14.
        let r = MeterSnapshot {
            active_power_total_w: Some(3000.0),
            ..MeterSnapshot::default()
        };
        let mut img = Image::default();
        abb_b2x(&r, 1, &mut img);
        assert_eq!(
            (img.get(0x5B14), img.get(0x5B15)),
            (Some(0x0004), Some(0x93E0))
        );
        assert_eq!(img.get(0x5B3E), None);
    }

    #[test]
    fn schneider_total_power_is_kw_float_at_wire_3059() {
        let r = MeterSnapshot {
            active_power_total_w: Some(1500.0),
            ..MeterSnapshot::default()
        };
        let mut img = Image::default();
        schneider_pm5xxx(&r, 1, &mut img);
        let bits =
            (u32::from(img.get(3059).unwrap_or(0)) << 16) | u32::from(img.get(3060).unwrap_or(0));
        assert_eq!(f32::from_bits(bits), 1.5);
    }

    #[test]
    fn schneider_pf_quadrants() {
        assert_eq!(schneider_pf_register(0.8, 10.0, 5.0), 0.8);
        assert_eq!(schneider_pf_register(0.8, 10.0, -5.0), 1.2);
        assert_eq!(schneider_pf_register(0.8, -10.0, -5.0), -0.8);
        assert_eq!(schneider_pf_register(0.8, -10.0, 5.0), -1.2);
    }
}
