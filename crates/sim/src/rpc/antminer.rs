//! Antminer stock firmware (bmminer) on 4028: GH/s keys with numbers as strings in places, the
//! legacy `stats` layout (STATS[0] version info, STATS[1] data with per-chain keys numbered
//! 1..3 plus an empty 4th, or 6..8 on S9) and the `new_api` layout. Stock 4028 is read-mostly:
//! sleep, modes and the LED live on the web interface, so only `restart` and the cgminer pool
//! commands write here, and only when the API allows writes.

use super::{Ctx, Reply};
use crate::model::BoardReading;
use crate::nameplate::{ChainNumbering, Nameplate};
use crate::reply::{Rec, Status, V};
use hashmesh_core::PowerMode;

/// Firmware build strings of a model: (`Miner`, `CompileTime`, `BMMiner`).
pub fn firmware(np: &Nameplate) -> (&'static str, &'static str, &'static str) {
    match np.chains {
        ChainNumbering::S9 => ("16.8.1.3", "Fri Nov 17 17:37:49 CST 2017", "2.0.0"),
        ChainNumbering::X19 if np.name.starts_with("Antminer S21") => {
            ("1.0.1.3", "Mon Jan  8 15:21:42 CST 2024", "1.0.0")
        }
        ChainNumbering::X19 => ("49.0.1.3", "Tue Dec  6 16:12:30 CST 2022", "1.0.0"),
    }
}

/// The `miner-mode` code stock firmware reports: 0 normal, 1 sleep, 3 low power.
pub fn miner_mode(ctx: &Ctx<'_>) -> u32 {
    if ctx.state.sleeping {
        1
    } else if ctx.state.mode == PowerMode::Low {
        3
    } else {
        0
    }
}

/// Runs an Antminer-specific command, or `None` to fall back to the common ones.
pub fn command(ctx: &mut Ctx<'_>, name: &str, _params: &[String]) -> Option<Reply> {
    Some(match name {
        "version" => {
            let (miner, compile, bmminer) = firmware(ctx.np);
            let rec = Rec::new()
                .v("BMMiner", bmminer)
                .v("API", "3.1")
                .v("Miner", miner)
                .v("CompileTime", compile)
                .v("Type", ctx.np.name);
            Reply::one(
                Status::ok(22, "BMMiner versions"),
                "VERSION",
                true,
                vec![rec],
            )
        }
        "summary" if ctx.new_api => new_api_summary(ctx),
        "summary" => summary(ctx),
        "stats" if ctx.new_api => new_api_stats(ctx),
        "stats" => {
            let (miner, compile, bmminer) = firmware(ctx.np);
            let info = Rec::new()
                .v("BMMiner", bmminer)
                .v("Miner", miner)
                .v("CompileTime", compile)
                .v("Type", ctx.np.name);
            legacy_stats(ctx, info)
        }
        _ => return None,
    })
}

fn summary(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    // bmminer prints the 5 s rate as a string and the average as a number.
    let rec = Rec::new()
        .v("Elapsed", r.elapsed_s)
        .v("GHS 5s", format!("{:.2}", r.rate_5s_ghs))
        .f("GHS av", r.rate_avg_ghs, 2)
        .f("GHS 30m", r.rate_30m_ghs, 2);
    let rec = super::cgminer::share_fields(rec, ctx);
    Reply::one(Status::ok(11, "Summary"), "SUMMARY", true, vec![rec])
}

/// The chain slots a model's legacy `stats` prints, and which board (if any) sits in each.
fn slots(np: &Nameplate) -> Vec<(u32, Option<usize>)> {
    let boards = usize::from(np.boards);
    match np.chains {
        ChainNumbering::S9 => (1..=16u32)
            .map(|s| {
                (
                    s,
                    (6..6 + boards as u32)
                        .contains(&s)
                        .then(|| (s - 6) as usize),
                )
            })
            .collect(),
        ChainNumbering::X19 => (1..=boards as u32 + 1)
            .map(|s| (s, (s as usize <= boards).then(|| s as usize - 1)))
            .collect(),
    }
}

fn dashes(t: &[i32; 4]) -> String {
    format!("{}-{}-{}-{}", t[0], t[1], t[2], t[3])
}

/// The per-chip status string: `o` per working chip in groups of eight.
fn acs(b: &BoardReading) -> String {
    let mut s = String::with_capacity(b.chips_working as usize * 9 / 8 + 2);
    for i in 0..b.chips_working {
        if i % 8 == 0 {
            s.push(' ');
        }
        s.push('o');
    }
    s
}

/// The legacy bmminer `stats` reply (also what LuxOS answers), with `info` as STATS[0].
pub fn legacy_stats(ctx: &Ctx<'_>, info: Rec) -> Reply {
    let r = &ctx.reading;
    let np = ctx.np;
    let s9 = np.chains == ChainNumbering::S9;
    let slots = slots(np);
    let mut d = Rec::new()
        .v("STATS", 0u32)
        .v("ID", if s9 { "BC50" } else { "BTM_SOC0" })
        .v("Elapsed", r.elapsed_s)
        .v("Calls", 0u32)
        .f("Wait", 0.0, 6)
        .f("Max", 0.0, 6)
        .f("Min", 99_999_999.0, 6)
        .v("GHS 5s", format!("{:.2}", r.rate_5s_ghs))
        .f("GHS av", r.rate_avg_ghs, 2)
        .f("rate_30m", r.rate_30m_ghs, 2)
        .v("Mode", miner_mode(ctx))
        .v("miner_count", u32::from(np.boards));
    let freq = r.boards.first().map_or(0.0, |b| b.frequency_mhz);
    if s9 {
        // S9 firmware prints the clock as a string and has eight fan slots, using 3 and 6.
        d.push("frequency", format!("{}", freq.round()));
        d.push("fan_num", r.fans_rpm.len() as u64);
        for slot in 1..=8u32 {
            let rpm = match slot {
                3 => r.fans_rpm.first().copied().unwrap_or(0),
                6 => r.fans_rpm.get(1).copied().unwrap_or(0),
                _ => 0,
            };
            d.push(format!("fan{slot}"), rpm);
        }
    } else {
        d.push("frequency", freq.round() as u64);
        d.push("fan_num", r.fans_rpm.len() as u64);
        for (i, rpm) in r.fans_rpm.iter().enumerate() {
            d.push(format!("fan{}", i + 1), *rpm);
        }
    }
    d.push("temp_num", u32::from(np.boards));
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        d.push(format!("temp{slot}"), b.map_or(0, BoardReading::pcb_max_c));
    }
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        d.push(
            format!("temp2_{slot}"),
            b.map_or(0, BoardReading::chip_max_c),
        );
    }
    if !s9 {
        for &(slot, board) in &slots {
            let b = board.and_then(|i| r.boards.get(i));
            d.push(
                format!("temp_pcb{slot}"),
                b.map_or_else(|| "0-0-0-0".to_string(), |b| dashes(&b.pcb_c)),
            );
            d.push(
                format!("temp_chip{slot}"),
                b.map_or_else(|| "0-0-0-0".to_string(), |b| dashes(&b.chip_c)),
            );
            let pic = b.map_or([0; 4], |b| b.pcb_c.map(|t| if t == 0 { 0 } else { t - 3 }));
            d.push(format!("temp_pic{slot}"), dashes(&pic));
        }
    }
    let total_acn: u32 = r.boards.iter().map(|b| b.chips_working).sum();
    let temp_max = r
        .boards
        .iter()
        .map(BoardReading::pcb_max_c)
        .max()
        .unwrap_or(0);
    d = d
        .f("total_rateideal", r.rate_ideal_ghs, 2)
        .v("rate_unit", "GH")
        .f("total_freqavg", freq, 2)
        .v("total_acn", total_acn)
        .f("total rate", r.rate_5s_ghs, 2)
        .v("temp_max", temp_max)
        .v("no_matching_work", 0u32);
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        d.push(format!("chain_acn{slot}"), b.map_or(0, |b| b.chips_working));
    }
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        d.push(format!("chain_acs{slot}"), b.map_or_else(String::new, acs));
    }
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        d.push(format!("chain_hw{slot}"), b.map_or(0, |b| b.hw_errors));
    }
    for &(slot, board) in &slots {
        let b = board.and_then(|i| r.boards.get(i));
        // Empty slots print an empty string; a present board a string number.
        d.push(
            format!("chain_rate{slot}"),
            b.map_or_else(String::new, |b| format!("{:.2}", b.rate_ghs)),
        );
    }
    if !s9 {
        for &(slot, board) in &slots {
            let b = board.and_then(|i| r.boards.get(i));
            d.push(
                format!("chain_rateideal{slot}"),
                V::Float(b.map_or(0.0, |b| b.ideal_ghs), 2),
            );
        }
    }
    for &(slot, board) in &slots {
        if let Some(b) = board.and_then(|i| r.boards.get(i)) {
            d.push(format!("freq_avg{slot}"), V::Float(b.frequency_mhz, 2));
        }
    }
    d.push("miner_version", firmware(np).0);
    d.push("miner_id", format!("{:016x}", ctx.cfg.seed));
    Reply::one(
        Status::ok(70, "CGMiner stats"),
        "STATS",
        false,
        vec![info, d],
    )
}

fn new_api_head(ctx: &Ctx<'_>, msg: &'static str) -> Rec {
    let (miner, compile, _) = firmware(ctx.np);
    let status = Rec::new()
        .v("STATUS", "S")
        .v("when", ctx.now_s())
        .v("Msg", msg)
        .v("api_version", "1.0.0");
    let info = Rec::new()
        .v("miner_version", miner)
        .v("CompileTime", compile)
        .v("type", ctx.np.name);
    Rec::new().v("STATUS", status).v("INFO", info)
}

fn custom(rec: Rec) -> Reply {
    let json = V::Obj(rec);
    let mut text = String::new();
    crate::reply::value_json(&json, &mut text);
    Reply::Custom { json, text }
}

fn new_api_stats(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let chains: Vec<V> = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let ints = |t: &[i32; 4]| V::Arr(t.iter().map(|x| V::Int(i64::from(*x))).collect());
            V::Obj(
                Rec::new()
                    .v("index", i as u64)
                    .f("freq_avg", b.frequency_mhz, 2)
                    .f("rate_real", b.rate_ghs, 2)
                    .f("rate_ideal", b.ideal_ghs, 2)
                    .v("asic_num", b.chips_working)
                    .v("asic", acs(b).trim_start().to_string())
                    .v(
                        "temp_pic",
                        ints(&b.pcb_c.map(|t| if t == 0 { 0 } else { t - 3 })),
                    )
                    .v("temp_pcb", ints(&b.pcb_c))
                    .v("temp_chip", ints(&b.chip_c))
                    .v("hw", b.hw_errors)
                    .v("eeprom_loaded", true)
                    .v("sn", format!("{}{:02}", ctx.cfg.serial, i)),
            )
        })
        .collect();
    let fans = V::Arr(r.fans_rpm.iter().map(|f| V::Int(i64::from(*f))).collect());
    let hwp = if r.diff1_total > 0.0 {
        r.hw_errors as f64 / r.diff1_total * 100.0
    } else {
        0.0
    };
    let stats = Rec::new()
        .v("elapsed", r.elapsed_s)
        .f("rate_5s", r.rate_5s_ghs, 2)
        .f("rate_30m", r.rate_30m_ghs, 2)
        .f("rate_avg", r.rate_avg_ghs, 2)
        .f("rate_ideal", r.rate_ideal_ghs, 2)
        .v("rate_unit", "GH/s")
        .v("chain_num", r.boards.len() as u64)
        .v("fan_num", r.fans_rpm.len() as u64)
        .v("fan", fans)
        .f("hwp_total", hwp, 4)
        .v("miner-mode", miner_mode(ctx))
        .v("freq-level", 100u32)
        .v("chain", V::Arr(chains));
    custom(new_api_head(ctx, "stats").v("STATS", V::Arr(vec![V::Obj(stats)])))
}

fn new_api_summary(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let ok = |t: &'static str| {
        V::Obj(
            Rec::new()
                .v("type", t)
                .v("status", "s")
                .v("code", 0u32)
                .v("msg", ""),
        )
    };
    let hot = r
        .boards
        .iter()
        .map(BoardReading::chip_max_c)
        .max()
        .unwrap_or(0);
    let temp = if f64::from(hot) > ctx.np.chip_limit_c {
        V::Obj(
            Rec::new()
                .v("type", "temp")
                .v("status", "e")
                .v("code", 2u32)
                .v("msg", "temperature too high"),
        )
    } else {
        ok("temp")
    };
    let fans = if r.fans_rpm.contains(&0) {
        V::Obj(
            Rec::new()
                .v("type", "fans")
                .v("status", "e")
                .v("code", 1u32)
                .v("msg", "fan speed abnormal"),
        )
    } else {
        ok("fans")
    };
    let summary = Rec::new()
        .v("elapsed", r.elapsed_s)
        .f("rate_5s", r.rate_5s_ghs, 2)
        .f("rate_30m", r.rate_30m_ghs, 2)
        .f("rate_avg", r.rate_avg_ghs, 2)
        .f("rate_ideal", r.rate_ideal_ghs, 2)
        .v("rate_unit", "GH/s")
        .v("hw_all", r.hw_errors)
        .v("bestshare", r.best_share)
        .v(
            "status",
            V::Arr(vec![ok("rate"), ok("network"), fans, temp]),
        );
    custom(new_api_head(ctx, "summary").v("SUMMARY", V::Arr(vec![V::Obj(summary)])))
}
