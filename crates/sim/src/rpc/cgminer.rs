//! Commands every cgminer fork answers the same way (give or take units): `version`, `summary`,
//! `pools`, `devs`, `devdetails`, `stats`, `config`, `check`, the pool writes and `restart`.
//! Plain cgminer and BFGMiner devices use only these.

use super::{Ctx, Effect, Reply, pool_status};
use crate::family::Family;
use crate::model::{POOL_DIFFICULTY, Pool};
use crate::reply::{Rec, Status, V};

/// Runs a common command, or `None` if it is not one.
pub fn command(ctx: &mut Ctx<'_>, name: &str, params: &[String]) -> Option<Reply> {
    Some(match name {
        "version" => version(ctx),
        "summary" => summary(ctx),
        "pools" => pools(ctx),
        "devs" | "edevs" => devs(ctx),
        "devdetails" => devdetails(ctx),
        "stats" | "estats" => stats(ctx),
        "config" => Reply::one(
            Status::ok(33, "CGMiner config"),
            "CONFIG",
            true,
            vec![config_rec(ctx)],
        ),
        "coin" => coin(),
        "asccount" => {
            let n = u32::from(ctx.np.boards);
            Reply::one(
                Status::ok(104, "ASC count"),
                "ASCS",
                true,
                vec![Rec::new().v("Count", n)],
            )
        }
        "notify" => Reply::one(Status::ok(60, "Notify"), "NOTIFY", false, Vec::new()),
        "privileged" => Reply::status(Status::ok(46, "Privileged access OK")),
        "check" => check(ctx, params),
        "switchpool" => switchpool(ctx, params),
        "enablepool" => enable_pool(ctx, params, true),
        "disablepool" => enable_pool(ctx, params, false),
        "addpool" => addpool(ctx, params),
        "removepool" => removepool(ctx, params),
        "poolpriority" => poolpriority(ctx, params),
        "restart" => {
            ctx.effect = Effect::Down(ctx.cfg.timing.restart);
            Reply::Custom {
                json: V::Obj(Rec::new().v("STATUS", "RESTART")),
                text: "RESTART".into(),
            }
        }
        "quit" => {
            // A supervisor starts the miner again after it quits, as on every firmware.
            ctx.effect = Effect::Down(ctx.cfg.timing.restart);
            Reply::Custom {
                json: V::Obj(Rec::new().v("STATUS", "BYE")),
                text: "BYE".into(),
            }
        }
        _ => return None,
    })
}

fn version(ctx: &Ctx<'_>) -> Reply {
    let rec = match ctx.family() {
        Family::Bfgminer => Rec::new().v("BFGMiner", "5.5.0").v("API", "3.1"),
        _ => Rec::new().v("CGMiner", "4.12.1").v("API", "3.7"),
    };
    let msg = if ctx.family() == Family::Bfgminer {
        "BFGMiner versions"
    } else {
        "CGMiner versions"
    };
    Reply::one(Status::ok(22, msg), "VERSION", true, vec![rec])
}

/// Hashrate window keys in MH/s: BFGMiner reports a 20 s window where cgminer has 5 s.
fn mhs_keys(family: Family) -> &'static str {
    if family == Family::Bfgminer {
        "MHS 20s"
    } else {
        "MHS 5s"
    }
}

/// The cgminer SUMMARY record with hashrates in MH/s (plain cgminer, BFGMiner, Braiins).
pub fn summary_rec(ctx: &Ctx<'_>) -> Rec {
    let r = &ctx.reading;
    let family = ctx.family();
    let mut rec = Rec::new()
        .v("Elapsed", r.elapsed_s)
        .f("MHS av", r.rate_avg_ghs * 1000.0, 2)
        .f(mhs_keys(family), r.rate_5s_ghs * 1000.0, 2);
    if family != Family::Bfgminer {
        rec = rec
            .f("MHS 1m", r.rate_5s_ghs * 1000.0, 2)
            .f("MHS 5m", r.rate_30m_ghs * 1000.0, 2)
            .f("MHS 15m", r.rate_30m_ghs * 1000.0, 2);
    }
    if family == Family::Braiins {
        rec = rec.f("MHS 24h", r.rate_avg_ghs * 1000.0, 2);
    }
    share_fields(rec, ctx)
}

/// The share and error counters every SUMMARY carries.
pub fn share_fields(rec: Rec, ctx: &Ctx<'_>) -> Rec {
    let r = &ctx.reading;
    let minutes = (r.elapsed_s as f64 / 60.0).max(1.0 / 60.0);
    let diff_acc = r.accepted as f64 * POOL_DIFFICULTY;
    let diff_rej = r.rejected as f64 * POOL_DIFFICULTY;
    let diff_stale = r.stale as f64 * POOL_DIFFICULTY;
    let pct = |part: f64| {
        if r.diff1_total > 0.0 {
            part / r.diff1_total * 100.0
        } else {
            0.0
        }
    };
    let all = diff_acc + diff_rej + diff_stale;
    let of_all = |part: f64| if all > 0.0 { part / all * 100.0 } else { 0.0 };
    rec.v("Found Blocks", 0u32)
        .v("Getworks", r.elapsed_s / 30)
        .v("Accepted", r.accepted)
        .v("Rejected", r.rejected)
        .v("Hardware Errors", r.hw_errors)
        .f("Utility", r.accepted as f64 / minutes, 2)
        .v("Discarded", r.elapsed_s / 2)
        .v("Stale", r.stale)
        .v("Get Failures", 0u32)
        .v("Local Work", (r.diff1_total / 4.0) as u64)
        .v("Remote Failures", 0u32)
        .v("Network Blocks", r.elapsed_s / 600)
        .f("Total MH", r.diff1_total * 4294.967296, 4)
        .f("Work Utility", r.diff1_total / minutes, 2)
        .f("Difficulty Accepted", diff_acc, 8)
        .f("Difficulty Rejected", diff_rej, 8)
        .f("Difficulty Stale", diff_stale, 8)
        .v("Best Share", r.best_share)
        .f("Device Hardware%", pct(r.hw_errors as f64), 4)
        .f("Device Rejected%", pct(diff_rej), 4)
        .f("Pool Rejected%", of_all(diff_rej), 4)
        .f("Pool Stale%", of_all(diff_stale), 4)
        .v("Last getwork", r.now_s)
}

fn summary(ctx: &Ctx<'_>) -> Reply {
    Reply::one(
        Status::ok(11, "Summary"),
        "SUMMARY",
        true,
        vec![summary_rec(ctx)],
    )
}

/// The POOLS report, as every fork prints it.
pub fn pools(ctx: &Ctx<'_>) -> Reply {
    let st = &*ctx.state;
    if st.pools.is_empty() {
        return Reply::status(Status::err(8, "No pools"));
    }
    let recs = st
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (acc, rej, stale) = p.shares(POOL_DIFFICULTY);
            let active = ctx.reading.active_pool == Some(i);
            let host = p.url.split("://").nth(1).unwrap_or(&p.url).to_string();
            Rec::new()
                .v("POOL", i as u64)
                .v("URL", p.url.clone())
                .v("Status", pool_status(p))
                .v("Priority", p.priority)
                .v("Quota", 1u32)
                .v("Long Poll", "N")
                .v("Getworks", ctx.reading.elapsed_s / 30)
                .v("Accepted", acc)
                .v("Rejected", rej)
                .v("Works", (p.diff1_work / 4.0) as u64)
                .v("Discarded", 0u32)
                .v("Stale", stale)
                .v("Get Failures", 0u32)
                .v("Remote Failures", 0u32)
                .v("User", p.user.clone())
                .v("Last Share Time", p.last_share_s)
                .f("Diff1 Shares", p.diff1_work.floor(), 0)
                .v("Proxy Type", "")
                .v("Proxy", "")
                .f("Difficulty Accepted", acc as f64 * POOL_DIFFICULTY, 8)
                .f("Difficulty Rejected", rej as f64 * POOL_DIFFICULTY, 8)
                .f("Difficulty Stale", stale as f64 * POOL_DIFFICULTY, 8)
                .f(
                    "Last Share Difficulty",
                    if acc > 0 { POOL_DIFFICULTY } else { 0.0 },
                    8,
                )
                .f(
                    "Work Difficulty",
                    if active { POOL_DIFFICULTY } else { 0.0 },
                    8,
                )
                .v("Has Stratum", true)
                .v("Stratum Active", active)
                .v("Stratum URL", if active { host } else { String::new() })
                .f(
                    "Stratum Difficulty",
                    if active { POOL_DIFFICULTY } else { 0.0 },
                    8,
                )
                .v("Has Vmask", true)
                .v("Has GBT", false)
                .v(
                    "Best Share",
                    if acc > 0 {
                        (POOL_DIFFICULTY * 40.0) as u64
                    } else {
                        0
                    },
                )
                .f(
                    "Pool Rejected%",
                    if acc + rej > 0 {
                        rej as f64 * 100.0 / (acc + rej) as f64
                    } else {
                        0.0
                    },
                    4,
                )
                .f(
                    "Pool Stale%",
                    if acc + stale > 0 {
                        stale as f64 * 100.0 / (acc + stale) as f64
                    } else {
                        0.0
                    },
                    4,
                )
                .v("Bad Work", 0u32)
                .v(
                    "Current Block Height",
                    900_000 + ctx.reading.now_s / 600 % 100_000,
                )
                .v("Current Block Version", 536_870_912u32)
        })
        .collect();
    Reply::one(
        Status::ok(7, format!("{} Pool(s)", st.pools.len())),
        "POOLS",
        false,
        recs,
    )
}

/// Per-board device entries (`ASC` list; `PGA` on BFGMiner) with hashrates in MH/s.
pub fn devs(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let family = ctx.family();
    let (index_key, name, kind) = match family {
        Family::Bfgminer => ("PGA", "BXF", "PGA"),
        Family::Braiins => ("ASC", "", "ASC"),
        Family::LuxOs => ("ASC", "BTM_SOC", "ASC"),
        _ => ("ASC", "BTM", "ASC"),
    };
    let recs: Vec<Rec> = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let share = if r.rate_avg_ghs > 0.0 {
                b.rate_avg_ghs / r.rate_avg_ghs
            } else {
                0.0
            };
            let accepted = (r.accepted as f64 * share) as u64;
            let mut rec = Rec::new()
                .v(index_key, i as u64)
                .v("Name", name)
                .v("ID", i as u64)
                .v("Enabled", "Y")
                .v("Status", if b.failed { "Dead" } else { "Alive" })
                .f("Temperature", f64::from(b.chip_max_c()), 2)
                .f("MHS av", b.rate_avg_ghs * 1000.0, 2)
                .f(mhs_keys(family), b.rate_ghs * 1000.0, 2);
            if family != Family::Bfgminer {
                rec = rec
                    .f("MHS 1m", b.rate_ghs * 1000.0, 2)
                    .f("MHS 5m", b.rate_ghs * 1000.0, 2)
                    .f("MHS 15m", b.rate_ghs * 1000.0, 2);
            }
            if family == Family::Braiins {
                rec = rec.f("Nominal MHS", b.ideal_ghs * 1000.0, 2);
            }
            rec.v("Accepted", accepted)
                .v("Rejected", (r.rejected as f64 * share) as u64)
                .v("Hardware Errors", b.hw_errors)
                .f(
                    "Utility",
                    accepted as f64 / (r.elapsed_s as f64 / 60.0).max(1.0),
                    2,
                )
                .v("Last Share Pool", r.active_pool.map_or(-1, |p| p as i64))
                .v(
                    "Last Share Time",
                    if b.rate_ghs > 0.0 { r.now_s } else { 0 },
                )
                .f("Total MH", r.diff1_total * 4294.967296 * share, 4)
                .f("Diff1 Work", r.diff1_total * share, 0)
                .f("Difficulty Accepted", accepted as f64 * POOL_DIFFICULTY, 8)
                .f(
                    "Difficulty Rejected",
                    (r.rejected as f64 * share).floor() * POOL_DIFFICULTY,
                    8,
                )
                .f("Last Share Difficulty", POOL_DIFFICULTY, 8)
                .v("No Device", false)
                .v("Last Valid Work", r.now_s)
                .f("Device Hardware%", 0.0002, 4)
                .f("Device Rejected%", 0.15, 4)
                .v("Device Elapsed", r.elapsed_s)
        })
        .collect();
    let msg = format!("{} {kind}(s)", recs.len());
    Reply::one(Status::ok(9, msg), "DEVS", false, recs)
}

fn devdetails(ctx: &Ctx<'_>) -> Reply {
    let (driver, model) = match ctx.family() {
        Family::Bfgminer => ("bitmain", ctx.np.name),
        Family::Cgminer => ("gekko", ctx.np.name),
        _ => ("bitmain-soc", ctx.np.name),
    };
    let recs = (0..ctx.reading.boards.len())
        .map(|i| {
            Rec::new()
                .v("DEVDETAILS", i as u64)
                .v("Name", "BTM")
                .v("ID", i as u64)
                .v("Driver", driver)
                .v("Kernel", "")
                .v("Model", model)
                .v("Device Path", format!("/dev/ttyUSB{i}"))
        })
        .collect();
    Reply::one(Status::ok(69, "Device Details"), "DEVDETAILS", false, recs)
}

fn stats(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let mut recs: Vec<Rec> = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, _)| {
            Rec::new()
                .v("STATS", i as u64)
                .v("ID", format!("ASC{i}"))
                .v("Elapsed", r.elapsed_s)
                .v("Calls", 0u32)
                .f("Wait", 0.0, 6)
                .f("Max", 0.0, 6)
                .f("Min", 99_999_999.0, 6)
        })
        .collect();
    for (i, _) in ctx.state.pools.iter().enumerate() {
        let n = recs.len() as u64;
        recs.push(
            Rec::new()
                .v("STATS", n)
                .v("ID", format!("POOL{i}"))
                .v("Elapsed", r.elapsed_s)
                .v("Calls", 0u32)
                .f("Wait", 0.0, 6)
                .f("Max", 0.0, 6)
                .f("Min", 99_999_999.0, 6)
                .v("Pool Calls", 0u32)
                .v("Pool Attempts", 0u32),
        );
    }
    Reply::one(Status::ok(70, "CGMiner stats"), "STATS", false, recs)
}

/// The cgminer CONFIG record.
pub fn config_rec(ctx: &Ctx<'_>) -> Rec {
    Rec::new()
        .v("ASC Count", u32::from(ctx.np.boards))
        .v("PGA Count", 0u32)
        .v("Pool Count", ctx.state.pools.len() as u64)
        .v("Strategy", "Failover")
        .v("Log Interval", 5u32)
        .v("Device Code", "ANT ")
        .v("OS", "Linux")
        .v("Hotplug", "None")
}

fn coin() -> Reply {
    let rec = Rec::new()
        .v("Hash Method", "sha256")
        .v("Current Block Time", 0u32)
        .v("Current Block Hash", "")
        .v("LP", true)
        .f("Network Difficulty", 1.2e14, 8);
    Reply::one(Status::ok(78, "CGMiner coin"), "COIN", true, vec![rec])
}

fn check(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    let Some(cmd) = params.first().filter(|c| !c.is_empty()) else {
        return Reply::status(Status::err(71, "Missing check cmd"));
    };
    let exists = super::known(ctx, cmd);
    let access = !super::privileged(ctx.family(), cmd) || ctx.cfg.rpc_write_access;
    let yn = |b: bool| if b { "Y" } else { "N" };
    let rec = Rec::new()
        .v("Exists", yn(exists))
        .v("Access", yn(exists && access));
    Reply::one(Status::ok(72, "Check command"), "CHECK", true, vec![rec])
}

/// Reads a pool number parameter, or the error reply for a missing or bad one.
fn pool_id(ctx: &Ctx<'_>, params: &[String]) -> Result<usize, Reply> {
    let Some(raw) = params.first().filter(|p| !p.trim().is_empty()) else {
        return Err(Reply::status(Status::err(25, "Missing pool id parameter")));
    };
    let n = ctx.state.pools.len();
    match raw.trim().parse::<i64>() {
        Ok(id) if id >= 0 && (id as usize) < n => Ok(id as usize),
        Ok(id) => Err(Reply::status(Status::err(
            26,
            format!("Invalid pool id {id} - range is 0 - {}", n as i64 - 1),
        ))),
        Err(_) => Err(Reply::status(Status::err(
            26,
            format!("Invalid pool id {raw} - range is 0 - {}", n as i64 - 1),
        ))),
    }
}

/// Gives pool `id` priority 0 and moves the others down, keeping their order.
fn to_front(pools: &mut [Pool], id: usize) {
    let old = pools[id].priority;
    for p in pools.iter_mut() {
        if p.priority < old {
            p.priority += 1;
        }
    }
    pools[id].priority = 0;
}

fn switchpool(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    let id = match pool_id(ctx, params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let pools = &mut ctx.state.pools;
    pools[id].enabled = true;
    to_front(pools, id);
    Reply::status(Status::ok(
        27,
        format!("Switching to pool {id}:'{}'", pools[id].url),
    ))
}

fn enable_pool(ctx: &mut Ctx<'_>, params: &[String], enable: bool) -> Reply {
    let id = match pool_id(ctx, params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let pools = &mut ctx.state.pools;
    let url = pools[id].url.clone();
    if pools[id].enabled == enable {
        let (code, word) = if enable {
            (49, "enabled")
        } else {
            (50, "disabled")
        };
        return Reply::status(Status::info(
            code,
            format!("Pool {id}:'{url}' already {word}"),
        ));
    }
    if !enable && pools.iter().filter(|p| p.enabled).count() <= 1 {
        return Reply::status(Status::err(
            51,
            format!("Cannot disable last active pool {id}:'{url}'"),
        ));
    }
    pools[id].enabled = enable;
    if enable {
        Reply::status(Status::ok(47, format!("Enabling pool {id}:'{url}'")))
    } else {
        Reply::status(Status::ok(48, format!("Disabling pool {id}:'{url}'")))
    }
}

fn addpool(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    let filled = params.iter().filter(|p| !p.is_empty()).count();
    if params.is_empty() || filled == 0 {
        return Reply::status(Status::err(52, "Missing addpool details"));
    }
    if params.len() < 3 || params[0].trim().is_empty() || params[1].trim().is_empty() {
        return Reply::status(Status::err(
            53,
            format!("Invalid addpool details '{}'", params.join(",")),
        ));
    }
    let pools = &mut ctx.state.pools;
    let id = pools.len();
    let priority = pools.iter().map(|p| p.priority + 1).max().unwrap_or(0);
    pools.push(Pool::new(
        params[0].trim(),
        params[1].trim(),
        &params[2],
        priority,
    ));
    Reply::status(Status::ok(
        55,
        format!("Added pool {id}: '{}'", params[0].trim()),
    ))
}

fn removepool(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    let id = match pool_id(ctx, params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let url = ctx.state.pools[id].url.clone();
    if ctx.state.pools.len() == 1 {
        return Reply::status(Status::err(
            66,
            format!("Cannot remove last pool {id}:'{url}'"),
        ));
    }
    if ctx.reading.active_pool == Some(id) {
        return Reply::status(Status::err(
            67,
            format!("Cannot remove active pool {id}:'{url}'"),
        ));
    }
    let pools = &mut ctx.state.pools;
    let gone = pools.remove(id).priority;
    for p in pools.iter_mut() {
        if p.priority > gone {
            p.priority -= 1;
        }
    }
    Reply::status(Status::ok(68, format!("Removed pool {id}:'{url}'")))
}

fn poolpriority(ctx: &mut Ctx<'_>, params: &[String]) -> Reply {
    let n = ctx.state.pools.len();
    let mut order: Vec<usize> = Vec::new();
    for raw in params.iter().filter(|p| !p.trim().is_empty()) {
        let id = match raw.trim().parse::<usize>() {
            Ok(id) if id < n => id,
            _ => {
                return Reply::status(Status::err(
                    26,
                    format!("Invalid pool id {raw} - range is 0 - {}", n as i64 - 1),
                ));
            }
        };
        if order.contains(&id) {
            return Reply::status(Status::err(74, format!("Duplicate pool specified {id}")));
        }
        order.push(id);
    }
    if order.is_empty() {
        return Reply::status(Status::err(25, "Missing pool id parameter"));
    }
    // Listed pools first, in the given order; the rest keep their relative order after them.
    let mut rest: Vec<usize> = (0..n).filter(|i| !order.contains(i)).collect();
    rest.sort_by_key(|&i| ctx.state.pools[i].priority);
    for (prio, id) in order.into_iter().chain(rest).enumerate() {
        ctx.state.pools[id].priority = prio as u32;
    }
    Reply::status(Status::ok(73, "Changed pool priorities"))
}
