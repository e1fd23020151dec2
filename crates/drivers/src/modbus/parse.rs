//! Register blocks → [`MeterSnapshot`] and [`MeterIdentity`]: pure functions driven by a
//! [`RegisterMap`], `pub` so tests and fuzz targets call them on register dumps.
//!
//! Missing values (NaN floats, ABB's invalid patterns) become `None`, never a number; a map
//! entry whose registers are not in the blocks read is a malformed reply, never a panic.

use super::map::{Quantity, RegisterMap, Scaling, Sentinel, ValueType, WordOrder};
use crate::error::DriverError;
use hashmesh_core::{MeterIdentity, MeterSnapshot};

/// Registers read in one request: `registers[i]` is the register at wire address `start + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBlock {
    /// Wire address of the first register.
    pub start: u16,
    /// The registers as received.
    pub registers: Vec<u16>,
}

impl RegisterBlock {
    /// The `count` registers from wire address `address`, when this block holds all of them.
    pub fn slice(&self, address: u16, count: u16) -> Option<&[u16]> {
        let offset = usize::from(address.checked_sub(self.start)?);
        self.registers.get(offset..offset + usize::from(count))
    }
}

/// Finds `count` registers at `address` in any of `blocks`.
pub fn find_registers(blocks: &[RegisterBlock], address: u16, count: u16) -> Option<&[u16]> {
    blocks.iter().find_map(|b| b.slice(address, count))
}

/// Joins up to four 16-bit words into one integer in the given word order.
fn join_words(words: &[u16], order: WordOrder) -> u64 {
    let fold = |acc: u64, w: &u16| (acc << 16) | u64::from(*w);
    match order {
        WordOrder::HighFirst => words.iter().fold(0, fold),
        WordOrder::LowFirst => words.iter().rev().fold(0, fold),
    }
}

/// The raw value of `words` as `value_type`, or `None` when it is a "not available" marker.
pub fn raw_value(
    words: &[u16],
    value_type: ValueType,
    order: WordOrder,
    sentinel: Sentinel,
) -> Option<f64> {
    if words.len() != usize::from(value_type.register_count()) {
        return None;
    }
    let bits = join_words(words, order);
    let abb = sentinel == Sentinel::AbbInvalid;
    let value = match value_type {
        ValueType::U16 if abb && bits == 0xFFFF => return None,
        ValueType::S16 if abb && bits == 0x7FFF => return None,
        ValueType::U32 if abb && bits == 0xFFFF_FFFF => return None,
        ValueType::S32 if abb && bits == 0x7FFF_FFFF => return None,
        ValueType::U64 if abb && bits == u64::MAX => return None,
        ValueType::S64 if abb && bits == 0x7FFF_FFFF_FFFF_FFFF => return None,
        ValueType::U16 | ValueType::U32 | ValueType::U64 => bits as f64,
        ValueType::S16 => f64::from(bits as u16 as i16),
        ValueType::S32 => f64::from(bits as u32 as i32),
        ValueType::S64 => bits as i64 as f64,
        ValueType::F32 => f64::from(f32::from_bits(bits as u32)),
    };
    value.is_finite().then_some(value)
}

/// Applies an entry's scaling to a raw value.
pub fn scale(raw: f64, scaling: Scaling) -> f64 {
    match scaling {
        Scaling::Factor(factor) => raw * factor,
        Scaling::Range { lo, hi, raw_max } => raw * (hi - lo) / raw_max + lo,
        Scaling::FourQuadrantPf => decode_four_quadrant_pf(raw),
    }
}

/// Schneider's 4-quadrant power-factor register → signed PF, per the PM5xxx user manual
/// ("Power factor register format"): above 1 → 2 − v, below −1 → −2 − v, else v.
pub fn decode_four_quadrant_pf(v: f64) -> f64 {
    if v > 1.0 {
        2.0 - v
    } else if v < -1.0 {
        -2.0 - v
    } else {
        v
    }
}

/// Stores `value` into the snapshot field `quantity` names.
fn store(snap: &mut MeterSnapshot, quantity: Quantity, value: Option<f64>) {
    let phase = |arr: &mut [Option<f64>; 3], i: u8| {
        if let Some(slot) = arr.get_mut(usize::from(i)) {
            *slot = value;
        }
    };
    match quantity {
        Quantity::ActivePowerTotalW => snap.active_power_total_w = value,
        Quantity::ActivePowerPhaseW(i) => phase(&mut snap.active_power_phase_w, i),
        Quantity::ReactivePowerTotalVar => snap.reactive_power_total_var = value,
        Quantity::ReactivePowerPhaseVar(i) => phase(&mut snap.reactive_power_phase_var, i),
        Quantity::ApparentPowerTotalVa => snap.apparent_power_total_va = value,
        Quantity::ApparentPowerPhaseVa(i) => phase(&mut snap.apparent_power_phase_va, i),
        Quantity::EnergyImportKwh => snap.energy_import_kwh = value,
        Quantity::EnergyExportKwh => snap.energy_export_kwh = value,
        Quantity::ReactiveEnergyImportKvarh => snap.reactive_energy_import_kvarh = value,
        Quantity::VoltageLnV(i) => phase(&mut snap.voltage_ln_v, i),
        Quantity::VoltageLlV(i) => phase(&mut snap.voltage_ll_v, i),
        Quantity::CurrentPhaseA(i) => phase(&mut snap.current_phase_a, i),
        Quantity::CurrentNeutralA => snap.current_neutral_a = value,
        Quantity::PowerFactorTotal => snap.power_factor_total = value,
        Quantity::PowerFactorPhase(i) => phase(&mut snap.power_factor_phase, i),
        Quantity::FrequencyHz => snap.frequency_hz = value,
    }
}

/// Decodes the blocks of one poll into a snapshot. Every map entry must be covered by a block.
pub fn decode(
    map: &RegisterMap,
    blocks: &[RegisterBlock],
    time_unix_ms: i64,
) -> Result<MeterSnapshot, DriverError> {
    let mut snap = MeterSnapshot {
        time_unix_ms,
        ..MeterSnapshot::default()
    };
    for entry in &map.registers {
        let address = entry.wire_address();
        let words = find_registers(blocks, address, entry.register_count()).ok_or_else(|| {
            DriverError::Malformed(format!(
                "{}: registers {}..{} missing from the reply",
                map.name,
                address,
                u32::from(address) + u32::from(entry.register_count())
            ))
        })?;
        let value = raw_value(words, entry.value_type, entry.word_order, entry.sentinel)
            .map(|raw| scale(raw, entry.scaling));
        store(&mut snap, entry.quantity, value);
    }
    Ok(snap)
}

/// ASCII packed two characters per register (high byte first), trimmed of NULs and spaces.
pub fn decode_ascii(words: &[u16]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let text: String = bytes
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    text.trim().to_string()
}

/// Wire address of the ABB identification block (serial at 0x8900, firmware at 0x8908).
pub const ABB_IDENT_START: u16 = 0x8900;
/// Registers of the ABB identification block.
pub const ABB_IDENT_COUNT: u16 = 16;

/// ABB identity from the block read at [`ABB_IDENT_START`].
pub fn decode_abb_identity(block: &[u16]) -> Result<MeterIdentity, DriverError> {
    let short = || DriverError::Malformed(format!("ABB identification: {} registers", block.len()));
    let serial_words = block.get(0..2).ok_or_else(short)?;
    let serial = raw_value(
        serial_words,
        ValueType::U32,
        WordOrder::HighFirst,
        Sentinel::AbbInvalid,
    )
    .ok_or_else(|| DriverError::Malformed("ABB identification: no serial number".into()))?;
    let firmware = block.get(8..16).map(decode_ascii).filter(|s| !s.is_empty());
    Ok(MeterIdentity {
        manufacturer: "ABB".into(),
        model: "B2x".into(),
        serial: Some(format!("{serial:.0}")),
        firmware,
    })
}

/// Wire address of the Schneider identification block (product name, register 30).
pub const SCHNEIDER_IDENT_START: u16 = 29;
/// Registers from product name (30) to serial number (130–131).
pub const SCHNEIDER_IDENT_COUNT: u16 = 102;
/// Wire address of the Schneider firmware version (register 1638, three registers).
pub const SCHNEIDER_FIRMWARE_START: u16 = 1637;

/// Schneider identity from the block at [`SCHNEIDER_IDENT_START`] and, when read, the firmware
/// registers at [`SCHNEIDER_FIRMWARE_START`].
pub fn decode_schneider_identity(
    block: &[u16],
    firmware: Option<&[u16]>,
) -> Result<MeterIdentity, DriverError> {
    let short = || {
        DriverError::Malformed(format!(
            "Schneider identification: {} registers",
            block.len()
        ))
    };
    let model = decode_ascii(block.get(0..20).ok_or_else(short)?);
    let manufacturer = decode_ascii(block.get(40..60).ok_or_else(short)?);
    if model.is_empty() {
        return Err(DriverError::Malformed(
            "Schneider identification: empty product name".into(),
        ));
    }
    let serial = block
        .get(100..102)
        .and_then(|w| raw_value(w, ValueType::U32, WordOrder::HighFirst, Sentinel::NanOnly))
        .map(|s| format!("{s:.0}"));
    let firmware = firmware.and_then(|w| match w {
        [a, b, c, ..] => Some(format!("{a}.{b}.{c}")),
        _ => None,
    });
    Ok(MeterIdentity {
        manufacturer: if manufacturer.is_empty() {
            "Schneider Electric".into()
        } else {
            manufacturer
        },
        model,
        serial,
        firmware,
    })
}
