//! Canaan Avalon (cgminer 4.11.1 fork): `version` with PROD/MODEL/HWTYPE/MAC/DNA, `estats`
//! with one long `MM ID0` string of `KEY[value]` tokens, a single `devs` entry in MH/s, and the
//! `ascset` controls with Canaan's informational (I/118) replies.

use super::{Ctx, Effect, Reply};
use crate::model::{Scheduled, mix};
use crate::reply::{Rec, Status, V};
use hashmesh_core::PowerMode;
use std::fmt::Write;

/// Options `ascset|0,help` lists.
const HELP: &str = "voltage, fan-spd, lcd, workmode, worklevel, work_mode_lvl, reboot, softon, softoff, \
                    filter-clean, facopts, frequency, password, time, led";

/// The highest work level: each level takes 5 % off the clock.
pub const MAX_WORK_LEVEL: u8 = 6;

/// Canaan's work-mode number for a power mode: 0 normal, 1 high, 2 low.
pub fn workmode(mode: PowerMode) -> u32 {
    match mode {
        PowerMode::Normal => 0,
        PowerMode::High => 1,
        PowerMode::Low => 2,
    }
}

/// The model number Canaan prints in PROD and MODEL (`1346` for `Avalon A1346`).
fn model_number(ctx: &Ctx<'_>) -> &'static str {
    ctx.np.short_name().trim_start_matches('A')
}

/// The power limit the firmware reports (`MPO`): the operating point's power, rounded up to 10 W.
pub fn mpo_w(ctx: &Ctx<'_>) -> u32 {
    ctx.reading.nominal_power_w.div_ceil(10) * 10
}

/// The chip DNA (serial) the firmware reports.
pub fn dna(ctx: &Ctx<'_>) -> String {
    format!("0201{:012x}", mix(ctx.cfg.seed, 30, 0) & 0xffff_ffff_ffff)
}

/// Runs an Avalon-specific command, or `None` to fall back to the common ones.
pub fn command(ctx: &mut Ctx<'_>, name: &str, params: &[String]) -> Option<Reply> {
    Some(match name {
        "version" => version(ctx),
        "stats" | "estats" => estats(ctx),
        "devs" | "edevs" => devs(ctx),
        "ascset" => ascset(ctx, params),
        _ => return None,
    })
}

fn version(ctx: &Ctx<'_>) -> Reply {
    let model = model_number(ctx);
    let mac: String = ctx
        .cfg
        .mac
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase();
    let rec = Rec::new()
        .v("CGMiner", "4.11.1")
        .v("API", "3.7")
        .v("STM8", "20.08.01")
        .v("PROD", format!("AvalonMiner {model}"))
        .v("MODEL", model.to_string())
        .v("HWTYPE", "MM4v2_X3")
        .v("SWTYPE", "MM314")
        .v("VERSION", "23071201_1a4c0b8")
        .v("LOADER", "d0d779de.00")
        .v("DNA", dna(ctx))
        .v("MAC", mac)
        .v("UPAPI", "2");
    Reply::one(
        Status::ok(22, "CGMiner versions"),
        "VERSION",
        true,
        vec![rec],
    )
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut s = String::new();
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x}");
    }
    s
}

/// The `MM ID0` string: space-separated `KEY[value]` tokens, arrays space-separated inside.
pub fn mm_string(ctx: &Ctx<'_>) -> String {
    let r = &ctx.reading;
    let st = &*ctx.state;
    let model = model_number(ctx);
    let boards_present = r.boards.len();
    let hot = r.boards.iter().map(|b| b.chip_max_c()).max().unwrap_or(0);
    let avg_chip = |b: &crate::model::BoardReading| {
        if b.failed {
            0
        } else {
            (b.chip_c.iter().sum::<i32>() as f64 / 4.0 - 4.0).round() as i32
        }
    };
    let t_avg = if r.boards.iter().any(|b| !b.failed) {
        let live: Vec<i32> = r
            .boards
            .iter()
            .filter(|b| !b.failed)
            .map(avg_chip)
            .collect();
        live.iter().sum::<i32>() / live.len() as i32
    } else {
        0
    };
    let work = if r.sleeping { "In Idle" } else { "In Work" };
    let psu_w = (f64::from(r.power_w) * 0.96).round() as u32;
    let vout = r.boards.first().map_or(0.0, |b| b.voltage_v);
    let iout = if vout > 0.0 {
        f64::from(psu_w) / vout
    } else {
        0.0
    };
    let echu = r.boards.iter().map(|b| if b.failed { 512 } else { 0 });
    let mut s = String::with_capacity(1400);
    let _ = write!(
        s,
        "Ver[{model}-N-23071201_1a4c0b8_3ab0bc2] LVer[23071201_1a4c0b8] BVer[23071201_1a4c0b8] \
         HashMcu0Ver[Hash-23.05.11-1] FanMcuVer[Fan-22.08.15] CPU[K230] FW[Release] DNA[{dna}] STATE[0] \
         MEMFREE[1269304.0] NETFAIL[0 0 0 0 0 0 0 0] SSID[] RSSI[0] NetDevType[1] \
         SYSTEMSTATU[Work: {work}, Hash Board: {boards_present} ] Elapsed[{elapsed}] BOOTBY[0x04.00000000] \
         LW[{lw}] MH[{mh}] DHW[0] HW[{hw}] DH[1.032%] ITemp[{itemp}] HBITemp[{hbi}] HBOTemp[{hbo}] \
         TMax[{hot}] TAvg[{t_avg}] TarT[{tart}] ",
        dna = dna(ctx),
        elapsed = r.elapsed_s,
        lw = (r.diff1_total / 16.0) as u64,
        mh = join(r.boards.iter().map(|_| 0)),
        hw = r.hw_errors,
        itemp = r.ambient_c + 12,
        hbi = r.boards.iter().map(|b| b.pcb_c[0]).min().unwrap_or(0),
        hbo = r.boards.iter().map(|b| b.pcb_max_c()).max().unwrap_or(0),
        tart = ctx.np.chip_target_c as i32,
    );
    for (i, rpm) in r.fans_rpm.iter().enumerate() {
        let _ = write!(s, "Fan{}[{rpm}] ", i + 1);
    }
    let freq = r.boards.first().map_or(0.0, |b| b.frequency_mhz);
    let _ = write!(
        s,
        "FanR[{duty}%] SoftOffTime[{soft_off_at}] SoftOnTime[{soft_on_at}] Filter[0] FanErr[0] \
         SoftOFF[{soft_off}] ECHU[{echu}] ECMM[0] SF0[{f:.0} {f1:.0} {f2:.0} {f3:.0}] PINGFAIL[0] \
         GHSspd[{spd:.2}] DHspd[0.000%] GHSmm[{mm:.2}] GHSavg[{avg:.2}] WU[{wu:.2}] Freq[{f:.2}] \
         Led[{led}] MGHS[{mghs}] MTmax[{mtmax}] MTavg[{mtavg}] TA[{ta}] Core[{core}] PING[0] \
         POWS[0] HASHS[{hashs}] POOLS[0] \
         PS[0 1208 {vout100} {iout:.0} {psu_w} 1241 {wall}] WALLPOWER[{wall}] WORKMODE[{workmode}] \
         WORKLEVEL[{level}] MPO[{mpo}] CALIALL[7] ADJ[1]",
        duty = r.fan_duty_pct,
        soft_off_at = st
            .scheduled
            .filter(|p| p.sleep)
            .map_or(0, |p| p.at_ms / 1000),
        soft_on_at = st
            .scheduled
            .filter(|p| !p.sleep)
            .map_or(0, |p| p.at_ms / 1000),
        soft_off = u32::from(r.sleeping),
        echu = join(echu),
        f = freq,
        f1 = freq - 12.5,
        f2 = freq - 25.0,
        f3 = freq - 37.5,
        spd = r.rate_5s_ghs,
        mm = r.rate_ideal_ghs,
        avg = r.rate_avg_ghs,
        wu = r.diff1_total / (r.elapsed_s as f64 / 60.0).max(1.0),
        led = u32::from(st.led),
        mghs = join(r.boards.iter().map(|b| format!("{:.2}", b.rate_ghs))),
        mtmax = join(r.boards.iter().map(|b| b.chip_max_c())),
        mtavg = join(r.boards.iter().map(avg_chip)),
        ta = r.boards.iter().map(|b| b.chips_working).sum::<u32>(),
        core = ctx.np.chip,
        hashs = join(r.boards.iter().map(|_| 0)),
        vout100 = (vout * 100.0).round() as u32,
        wall = r.power_w,
        workmode = workmode(st.mode),
        level = st.work_level,
        mpo = mpo_w(ctx),
    );
    // Inlet air, after the rest like the firmware prints it.
    let _ = write!(s, " Temp[{}]", r.ambient_c);
    s
}

fn estats(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let module = Rec::new()
        .v("STATS", 0u32)
        .v("ID", "AVA100")
        .v("Elapsed", r.elapsed_s)
        .v("Calls", 0u32)
        .f("Wait", 0.0, 6)
        .f("Max", 0.0, 6)
        .f("Min", 99_999_999.0, 6)
        .v("MM ID0", mm_string(ctx))
        .v("MM Count", 1u32)
        .v("Smart Speed", 1u32)
        .v("Connector", "AUC")
        .v("Version", "4.11.1")
        .v("Nonce Mask", 25u32)
        .v("USB Pipe", "0")
        .v("USB Delay", "r0 0.000000 w0 0.000000")
        .v("USB tmo", "0 0");
    let pool = Rec::new()
        .v("STATS", 1u32)
        .v("ID", "POOL0")
        .v("Elapsed", r.elapsed_s)
        .v("Calls", 0u32)
        .f("Wait", 0.0, 6)
        .f("Max", 0.0, 6)
        .f("Min", 99_999_999.0, 6)
        .v("Pool Calls", 0u32)
        .v("Pool Attempts", 0u32);
    Reply::one(
        Status::ok(70, "CGMiner stats"),
        "STATS",
        false,
        vec![module, pool],
    )
}

fn devs(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let rec = Rec::new()
        .v("ASC", 0u32)
        .v("Name", "AVA10")
        .v("ID", 0u32)
        .v("Enabled", "Y")
        .v("Status", "Alive")
        // The module reports no temperature here: the -273 sentinel.
        .f("Temperature", -273.0, 2)
        .f("MHS av", r.rate_avg_ghs * 1000.0, 2)
        .f("MHS 30s", r.rate_5s_ghs * 1000.0, 2)
        .f("MHS 1m", r.rate_5s_ghs * 1000.0, 2)
        .f("MHS 5m", r.rate_30m_ghs * 1000.0, 2)
        .f("MHS 15m", r.rate_30m_ghs * 1000.0, 2)
        .v("Accepted", r.accepted)
        .v("Rejected", r.rejected)
        .v("Hardware Errors", r.hw_errors)
        .f(
            "Utility",
            r.accepted as f64 / (r.elapsed_s as f64 / 60.0).max(1.0),
            2,
        )
        .v("Last Share Pool", r.active_pool.map_or(-1, |p| p as i64))
        .v("Last Share Time", r.now_s)
        .f("Total MH", r.diff1_total * 4294.967296, 4);
    // Canaan's build prints ratios it divides by zero as bare nan/inf, which is not JSON.
    let rec = if ctx.cfg.firmware_quirks {
        rec.v("Device Hardware%", V::Raw("nan".into()))
            .v("Device Rejected%", V::Raw("-nan".into()))
            .v("Last Share Difficulty", V::Raw("inf".into()))
    } else {
        rec.f("Device Hardware%", 0.0002, 4)
            .f("Device Rejected%", 0.15, 4)
            .f("Last Share Difficulty", 65536.0, 8)
    };
    let rec = rec.v("Device Elapsed", r.elapsed_s);
    Reply::one(Status::ok(9, "1 ASC(s)"), "DEVS", false, vec![rec])
}

fn info(msg: String) -> Reply {
    Reply::status(Status::info(118, format!("ASC 0 set info: {msg}")))
}

fn failed(msg: &str) -> Reply {
    Reply::status(Status::err(120, format!("ASC 0 set failed: {msg}")))
}

/// Reads `1:<unix ts>` (the `1:` flag is optional) into the time the control applies, unix ms.
fn when_ms(ctx: &Ctx<'_>, value: Option<&String>) -> Option<u64> {
    let v = value?.trim();
    let ts = v.split_once(':').map_or(v, |(_, t)| t).trim();
    let ts: u64 = ts.parse().ok()?;
    Some((ts * 1000).max(ctx.now_ms))
}

fn ascset(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    match params.first().map(|p| p.trim()) {
        Some("0") => {}
        Some(other) if !other.is_empty() => {
            return Reply::status(Status::err(
                107,
                format!("Invalid ASC id {other} - range is 0 - 0"),
            ));
        }
        _ => return Reply::status(Status::err(15, "Missing device id parameter")),
    }
    let Some(opt) = params.get(1).map(|o| o.trim().to_ascii_lowercase()) else {
        return Reply::status(Status::err(117, "Missing option after ASC number"));
    };
    let value = params.get(2);
    match opt.as_str() {
        "help" => info(HELP.to_string()),
        "softoff" | "softon" => {
            let sleep = opt == "softoff";
            let Some(at_ms) = when_ms(ctx, value) else {
                return failed(&format!("invalid {opt} value"));
            };
            if at_ms <= ctx.now_ms {
                ctx.state.sleeping = sleep;
                ctx.state.scheduled = None;
            } else {
                ctx.state.scheduled = Some(Scheduled { at_ms, sleep });
            }
            info(format!("success {opt}:{}", at_ms / 1000))
        }
        "led" => match value.map(|v| v.trim()) {
            Some("1-1") => {
                ctx.state.led = true;
                info("success led:1".into())
            }
            Some("1-0") => {
                ctx.state.led = false;
                info("success led:0".into())
            }
            _ => failed("invalid led value"),
        },
        "worklevel" => {
            // `set,<n>` sets; anything else reads.
            let level = match (value.map(|v| v.trim()), params.get(3)) {
                (Some("set"), Some(n)) => n.trim().parse::<u8>().ok(),
                (Some("get") | None, _) => {
                    return info(format!("worklevel {}", ctx.state.work_level));
                }
                _ => None,
            };
            match level.filter(|l| *l <= MAX_WORK_LEVEL) {
                Some(l) => {
                    ctx.state.work_level = l;
                    info(format!("success worklevel:{l}"))
                }
                None => failed("invalid worklevel value"),
            }
        }
        "workmode" => {
            let mode = match value.map(|v| v.trim()) {
                Some("255") | None => {
                    return info(format!("workmode {}", workmode(ctx.state.mode)));
                }
                Some("0") => PowerMode::Normal,
                Some("1") => PowerMode::High,
                Some("2") => PowerMode::Low,
                _ => return failed("invalid workmode value"),
            };
            ctx.state.mode = mode;
            info(format!("success workmode:{}", workmode(mode)))
        }
        "fan-spd" => match value.and_then(|v| v.trim().parse::<i32>().ok()) {
            Some(-1) => {
                ctx.state.fan_manual_pct = None;
                Reply::status(Status::ok(119, "ASC 0 set OK"))
            }
            Some(p) if (15..=100).contains(&p) => {
                ctx.state.fan_manual_pct = Some(p as u8);
                Reply::status(Status::ok(119, "ASC 0 set OK"))
            }
            _ => failed("invalid fan-spd value, range is 15 - 100 or -1"),
        },
        "reboot" => {
            ctx.effect = Effect::Down(ctx.cfg.timing.reboot);
            Reply::status(Status::ok(119, "ASC 0 set OK"))
        }
        _ => failed(&format!("unknown option '{opt}'")),
    }
}
