//! The Avalon `MM ID` string (PROTOCOLS.md §3.2): one long value per module under `MM ID0`
//! (older models) or `MM ID0:Summary` (newer, wrapped as `'STATS':{…}`), made of space-separated
//! `KEY[value]` tokens, plus the `HBinfo` string of per-board `'HBn':{…}` sections.
//!
//! Canaan packs everything into these strings instead of JSON fields, so this module turns them
//! into a typed [`ModuleStats`]. It allocates nothing per token: keys and values are borrowed.

/// Whether `b` may appear in a token key (`\w` in the reference regex `(\w+)\[([^\]]*)\]`).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Iterator over the `KEY[value]` tokens of an `MM ID` string, in order.
///
/// Free text such as `SYSTEMSTATU[Work: In Work, Hash Board: 3 ]` is one value: only the
/// brackets delimit, never commas or spaces. A `[` with no key in front of it is skipped, and an
/// unclosed final token (a truncated reply) ends the iteration.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    rest: &'a str,
}

/// The `KEY[value]` tokens of `s`.
pub fn tokens(s: &str) -> Tokens<'_> {
    Tokens { rest: s }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let open = self.rest.find('[')?;
            let before = &self.rest[..open];
            // Key bytes are ASCII, so the byte after the last non-word byte is a char boundary.
            let key_start = before
                .bytes()
                .rposition(|b| !is_word(b))
                .map_or(0, |i| i + 1);
            let key = &before[key_start..];
            let after = &self.rest[open + 1..];
            if key.is_empty() {
                // Like the regex, look for a token starting after this bare bracket.
                self.rest = after;
                continue;
            }
            let Some(close) = after.find(']') else {
                self.rest = "";
                return None;
            };
            let value = &after[..close];
            self.rest = &after[close + 1..];
            return Some((key, value));
        }
    }
}

/// The `'NAME':{body}` sections of an `HBinfo` (or `MM ID0:Summary`) string, in order.
///
/// A string without any section yields nothing; an unclosed last section yields what is there.
pub fn sections(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(q) = rest.find('\'') {
        let after_quote = &rest[q + 1..];
        let Some(end_name) = after_quote.find('\'') else {
            break;
        };
        let name = &after_quote[..end_name];
        let tail = after_quote[end_name + 1..].trim_start();
        let Some(body_start) = tail
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|t| t.strip_prefix('{'))
        else {
            rest = &after_quote[end_name + 1..];
            continue;
        };
        match body_start.find('}') {
            Some(close) => {
                out.push((name, &body_start[..close]));
                rest = &body_start[close + 1..];
            }
            None => {
                out.push((name, body_start));
                break;
            }
        }
    }
    out
}

/// A number in a token value: trimmed, an optional trailing `%` dropped; `inf`/`nan` are `None`.
pub fn num(value: &str) -> Option<f64> {
    let v = value.trim();
    let v = v.strip_suffix('%').unwrap_or(v).trim();
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The numbers of an array value (`MGHS[26907.01 26025.06 26724.56]`), `None` where unreadable.
pub fn nums(value: &str) -> Vec<Option<f64>> {
    value.split_whitespace().map(num).collect()
}

/// A temperature: `-273` (no sensor), `0` and anything below absolute zero are `None` (§0).
pub fn temp_c(value: Option<f64>) -> Option<f64> {
    value.filter(|t| *t > -273.0 && *t != 0.0)
}

/// A non-negative integer value (counts, codes, seconds); fractions are truncated.
fn count(value: &str) -> Option<u64> {
    num(value).filter(|x| *x >= 0.0).map(|x| x as u64)
}

/// The mean of the readable values of an array, if any.
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .flatten()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Per-chip data of one board (`PVT_Tn`, `PVT_Vn`, `MWn`), from `MM ID` or `HBinfo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChipArrays {
    /// Chip temperatures, °C (`PVT_Tn`).
    pub temps_c: Vec<Option<f64>>,
    /// Chip voltages, mV (`PVT_Vn`).
    pub voltages_mv: Vec<Option<f64>>,
    /// Work (nonce) counts per chip (`MWn`); a chip with 0 is not working.
    pub works: Vec<Option<f64>>,
}

impl ChipArrays {
    /// Chips whose work count is above zero, when the firmware reports work counts.
    pub fn working(&self) -> Option<u32> {
        if self.works.is_empty() {
            return None;
        }
        Some(
            self.works
                .iter()
                .filter(|w| w.is_some_and(|w| w > 0.0))
                .count() as u32,
        )
    }

    /// The hottest chip with a real reading.
    pub fn max_temp_c(&self) -> Option<f64> {
        self.temps_c
            .iter()
            .filter_map(|t| temp_c(*t))
            .reduce(f64::max)
    }
}

/// Everything one module's `MM ID` string tells, in the units the firmware uses (GH/s, °C, W,
/// RPM, MHz); conversion to the snapshot's units happens in `parse`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleStats {
    /// `Ver`: model and build, e.g. `1246-83-21072802_4ec6bb0_211fc46`.
    pub ver: Option<String>,
    /// `DNA`: the module's chip id, used as serial.
    pub dna: Option<String>,
    /// `Elapsed`: seconds since the mining process started.
    pub elapsed_s: Option<u64>,
    /// `SYSTEMSTATU`: free text, e.g. `Work: In Work, Hash Board: 3`.
    pub system_status: Option<String>,
    /// `Temp`: ambient / inlet air, °C.
    pub ambient_temp_c: Option<f64>,
    /// `ITemp`: controller temperature, °C.
    pub controller_temp_c: Option<f64>,
    /// `HBITemp`: board inlet temperatures, °C (one value applies to every board).
    pub board_inlet_temp_c: Vec<Option<f64>>,
    /// `HBOTemp`: board outlet temperatures, °C (one value applies to every board).
    pub board_outlet_temp_c: Vec<Option<f64>>,
    /// `TMax`: hottest chip, °C.
    pub chip_temp_max_c: Option<f64>,
    /// `TAvg`: average chip, °C.
    pub chip_temp_avg_c: Option<f64>,
    /// `MTmax`: hottest chip per board, °C.
    pub board_chip_temp_max_c: Vec<Option<f64>>,
    /// `MTavg`: average chip per board, °C.
    pub board_chip_temp_avg_c: Vec<Option<f64>>,
    /// `Fan1..Fan4` in key order: (fan number, RPM).
    pub fans_rpm: Vec<(u32, u32)>,
    /// `FanR`: fan duty, percent.
    pub fan_duty_pct: Option<f64>,
    /// `PS`: the PSU array (status, voltages, currents, power; layout varies by model).
    pub ps: Vec<Option<f64>>,
    /// `MPO`: power limit / target, W.
    pub mpo_w: Option<f64>,
    /// `WALLPOWER`: measured wall power, W.
    pub wall_power_w: Option<f64>,
    /// `GHSspd`: current hashrate, GH/s.
    pub ghs_now: Option<f64>,
    /// `GHSmm`: nominal hashrate of the module, GH/s.
    pub ghs_nominal: Option<f64>,
    /// `GHSavg`: average hashrate, GH/s.
    pub ghs_avg: Option<f64>,
    /// `MGHS`: hashrate per board, GH/s.
    pub board_ghs: Vec<Option<f64>>,
    /// `TA`: total chips.
    pub total_chips: Option<u32>,
    /// `Led`: locate LED on.
    pub led_on: Option<bool>,
    /// `SoftOFF`: non-zero when soft-off is active or scheduled.
    pub soft_off: Option<u64>,
    /// `WORKMODE`: selected work mode.
    pub work_mode: Option<i64>,
    /// `WORKLEVEL`: selected power level.
    pub work_level: Option<i64>,
    /// `ECHU`: error code per board (0 = none).
    pub board_error_codes: Vec<u64>,
    /// `ECMM`: module error code (0 = none).
    pub module_error_code: Option<u64>,
    /// `HW`: hardware errors.
    pub hw_errors: Option<u64>,
    /// `Freq`: average chip frequency of the module, MHz.
    pub freq_mhz: Option<f64>,
    /// `SFn`: per-board frequency arrays, MHz, indexed by board.
    pub board_freqs_mhz: Vec<Vec<Option<f64>>>,
    /// `PVT_Tn` / `PVT_Vn` / `MWn` per board, indexed by board.
    pub chips: Vec<ChipArrays>,
}

/// The board number in an indexed key such as `PVT_T2` or `SF0` (`prefix` + digits).
fn board_suffix(key: &str, prefix: &str) -> Option<usize> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes `v[i]` exist (boards are few; indexes above 31 are ignored as garbage by callers).
fn slot<T: Default>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

/// Highest board index an indexed key may carry; anything above is treated as noise.
const MAX_BOARDS: usize = 32;

impl ModuleStats {
    /// Reads every token of one `MM ID` string (or the body of `MM ID0:Summary`).
    pub fn parse(s: &str) -> Self {
        let mut m = ModuleStats::default();
        m.apply_str(s);
        m
    }

    /// Adds the tokens of another string of the same module; later values win.
    pub fn apply_str(&mut self, s: &str) {
        for (key, value) in tokens(s) {
            self.apply(key, value);
        }
    }

    /// Adds the per-chip arrays of an `HBinfo` string (`'HB0':{PVT_T0[…] PVT_V0[…] MW0[…]} …`).
    /// Each section's keys may carry its own board number or always 0, so the section name wins.
    pub fn apply_hbinfo(&mut self, s: &str) {
        for (name, body) in sections(s) {
            let Some(board) = board_suffix(name, "HB").filter(|b| *b < MAX_BOARDS) else {
                continue;
            };
            for (key, value) in tokens(body) {
                let chips = slot(&mut self.chips, board);
                if key.starts_with("PVT_T") {
                    chips.temps_c = nums(value);
                } else if key.starts_with("PVT_V") {
                    chips.voltages_mv = nums(value);
                } else if key.starts_with("MW") && board_suffix(key, "MW").is_some() {
                    chips.works = nums(value);
                }
            }
        }
    }

    fn apply(&mut self, key: &str, value: &str) {
        let text = || Some(value.trim().to_string()).filter(|s| !s.is_empty());
        match key {
            "Ver" => self.ver = text(),
            "DNA" => self.dna = text(),
            "Elapsed" => self.elapsed_s = count(value),
            "SYSTEMSTATU" => self.system_status = text(),
            "Temp" => self.ambient_temp_c = temp_c(num(value)),
            "ITemp" => self.controller_temp_c = temp_c(num(value)),
            "HBITemp" => self.board_inlet_temp_c = nums(value).into_iter().map(temp_c).collect(),
            "HBOTemp" => self.board_outlet_temp_c = nums(value).into_iter().map(temp_c).collect(),
            "TMax" => self.chip_temp_max_c = temp_c(num(value)),
            "TAvg" => self.chip_temp_avg_c = temp_c(num(value)),
            "MTmax" => self.board_chip_temp_max_c = nums(value).into_iter().map(temp_c).collect(),
            "MTavg" => self.board_chip_temp_avg_c = nums(value).into_iter().map(temp_c).collect(),
            "FanR" => self.fan_duty_pct = num(value),
            "PS" => self.ps = nums(value),
            "MPO" => self.mpo_w = num(value).filter(|w| *w > 0.0),
            "WALLPOWER" => self.wall_power_w = num(value).filter(|w| *w > 0.0),
            "GHSspd" => self.ghs_now = num(value),
            "GHSmm" => self.ghs_nominal = num(value),
            "GHSavg" => self.ghs_avg = num(value),
            "MGHS" => self.board_ghs = nums(value),
            "TA" => self.total_chips = count(value).and_then(|n| u32::try_from(n).ok()),
            "Led" => self.led_on = count(value).map(|v| v != 0),
            "SoftOFF" => self.soft_off = count(value),
            "WORKMODE" => self.work_mode = num(value).map(|v| v as i64),
            "WORKLEVEL" => self.work_level = num(value).map(|v| v as i64),
            "ECHU" => self.board_error_codes = value.split_whitespace().filter_map(count).collect(),
            "ECMM" => self.module_error_code = count(value),
            "HW" => self.hw_errors = count(value),
            "Freq" => self.freq_mhz = num(value).filter(|f| *f > 0.0),
            _ => self.apply_indexed(key, value),
        }
    }

    fn apply_indexed(&mut self, key: &str, value: &str) {
        if let Some(n) = board_suffix(key, "Fan").filter(|n| (1..=8).contains(n)) {
            if let Some(rpm) = count(value).and_then(|r| u32::try_from(r).ok()) {
                self.fans_rpm.push((n as u32, rpm));
            }
        } else if let Some(b) = board_suffix(key, "PVT_T").filter(|b| *b < MAX_BOARDS) {
            slot(&mut self.chips, b).temps_c = nums(value);
        } else if let Some(b) = board_suffix(key, "PVT_V").filter(|b| *b < MAX_BOARDS) {
            slot(&mut self.chips, b).voltages_mv = nums(value);
        } else if let Some(b) = board_suffix(key, "MW").filter(|b| *b < MAX_BOARDS) {
            slot(&mut self.chips, b).works = nums(value);
        } else if let Some(b) = board_suffix(key, "SF").filter(|b| *b < MAX_BOARDS) {
            *slot(&mut self.board_freqs_mhz, b) = nums(value);
        }
    }

    /// Average chip frequency of board `i`, MHz: its `SFn` array, else the module's `Freq`.
    pub fn board_freq_mhz(&self, i: usize) -> Option<f64> {
        self.board_freqs_mhz
            .get(i)
            .and_then(|f| mean(f))
            .filter(|f| *f > 0.0)
            .or(self.freq_mhz)
    }

    /// Soft-off is in force: `SoftOFF` non-zero or `SYSTEMSTATU` says `In Idle`.
    pub fn is_soft_off(&self) -> bool {
        self.soft_off.is_some_and(|v| v != 0)
            || self
                .system_status
                .as_deref()
                .is_some_and(|s| s.contains("In Idle"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_free_text_whole() {
        let s =
            "Ver[1246-83] SYSTEMSTATU[Work: In Work, Hash Board: 3 ] MGHS[1.5 2 3] x[ Fan1[5344]";
        let t: Vec<_> = tokens(s).collect();
        assert_eq!(
            t,
            vec![
                ("Ver", "1246-83"),
                ("SYSTEMSTATU", "Work: In Work, Hash Board: 3 "),
                ("MGHS", "1.5 2 3"),
                // `x[ Fan1[5344]` has no `]` before `Fan1[`, so like the regex the value runs on.
                ("x", " Fan1[5344"),
            ]
        );
        assert_eq!(tokens("[a] [b]c[d]").collect::<Vec<_>>(), vec![("c", "d")]);
        assert_eq!(tokens("A[1] B[2").collect::<Vec<_>>(), vec![("A", "1")]);
        assert_eq!(
            tokens("é[1] ü_x2[3]").collect::<Vec<_>>(),
            vec![("_x2", "3")]
        );
    }

    #[test]
    fn sections_split_hbinfo() {
        let s = "'HB0':{PVT_T0[58 59] MW0[1 0]} 'HB1':{PVT_T0[61]} 'HB2':{}";
        assert_eq!(
            sections(s),
            vec![
                ("HB0", "PVT_T0[58 59] MW0[1 0]"),
                ("HB1", "PVT_T0[61]"),
                ("HB2", "")
            ]
        );
        assert_eq!(
            sections("'STATS':{Elapsed[5]"),
            vec![("STATS", "Elapsed[5]")]
        );
        assert!(sections("Elapsed[5]").is_empty());
    }

    #[test]
    fn numbers_and_sentinels() {
        assert_eq!(num(" 72% "), Some(72.0));
        assert_eq!(num("inf"), None);
        assert_eq!(num("-nan"), None);
        assert_eq!(temp_c(num("-273")), None);
        assert_eq!(temp_c(num("0")), None);
        assert_eq!(temp_c(num("31.5")), Some(31.5));
        assert_eq!(nums("1 x 3"), vec![Some(1.0), None, Some(3.0)]);
    }

    #[test]
    fn module_reads_keys() {
        let m = ModuleStats::parse(
            "Ver[1246-83-21072802_4ec6bb0] Elapsed[24684] SYSTEMSTATU[Work: In Idle, Hash Board: 3 ] Temp[-273] \
             Fan1[5344] Fan2[0] FanR[72%] GHSspd[inf] MGHS[1 2 3] ECHU[0 64 0] ECMM[0] SoftOFF[1] PVT_T1[50 -273] MW1[3 0] SF0[500 520]",
        );
        assert_eq!(m.elapsed_s, Some(24684));
        assert_eq!(m.ambient_temp_c, None);
        assert_eq!(m.fans_rpm, vec![(1, 5344), (2, 0)]);
        assert_eq!(m.fan_duty_pct, Some(72.0));
        assert_eq!(m.ghs_now, None);
        assert_eq!(m.board_error_codes, vec![0, 64, 0]);
        assert!(m.is_soft_off());
        assert_eq!(m.chips.len(), 2);
        assert_eq!(m.chips[1].working(), Some(1));
        assert_eq!(m.chips[1].max_temp_c(), Some(50.0));
        assert_eq!(m.board_freq_mhz(0), Some(510.0));
        assert_eq!(m.board_freq_mhz(1), None);
    }
}
