//! Braiins OS (BOSer) cgminer-compatible API: MH/s keys, `devdetails` with the Bitmain model,
//! `fans`, `temps`, `tempctrl`, `tunerstatus` (power and power limit), privileged
//! `pause`/`resume`. Power targets are set over gRPC/REST, not here; the tuner follows
//! [`crate::model::DeviceState::power_target_w`].

use super::{Ctx, Reply};
use crate::reply::{Rec, Status, V};

/// Runs a Braiins-specific command, or `None` to fall back to the common ones.
pub fn command(ctx: &mut Ctx<'_>, name: &str, _params: &[String]) -> Option<Reply> {
    let r = &ctx.reading;
    Some(match name {
        "version" => {
            let rec = Rec::new()
                .v("BOSer", "boser-buildroot 0.1.0-0ce150e9")
                .v("API", "3.7");
            Reply::one(Status::ok(22, "BOSer versions"), "VERSION", true, vec![rec])
        }
        "devdetails" => {
            let recs = r
                .boards
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    Rec::new()
                        .v("DEVDETAILS", i as u64)
                        .v("Name", "")
                        .v("ID", i as u64)
                        .v("Driver", "")
                        .v("Kernel", "")
                        .v("Model", format!("Bitmain {}", ctx.np.name))
                        .v("Chips", b.chips_working)
                        .f("Frequency", b.frequency_mhz, 2)
                        .f("Voltage", b.voltage_v, 2)
                })
                .collect();
            Reply::one(Status::ok(69, "Device Details"), "DEVDETAILS", false, recs)
        }
        "fans" => {
            let recs = r
                .fans_rpm
                .iter()
                .enumerate()
                .map(|(i, rpm)| {
                    Rec::new()
                        .v("FANS", i as u64)
                        .v("ID", i as u64)
                        .v("RPM", *rpm)
                        .v("Speed", r.fan_duty_pct)
                })
                .collect();
            Reply::one(
                Status::ok(202, format!("{} Fan(s)", r.fans_rpm.len())),
                "FANS",
                false,
                recs,
            )
        }
        "temps" => {
            let recs = r
                .boards
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    Rec::new()
                        .v("TEMPS", i as u64)
                        .v("ID", i as u64)
                        .f("Board", f64::from(b.pcb_max_c()), 1)
                        .f("Chip", f64::from(b.chip_max_c()), 1)
                })
                .collect();
            Reply::one(
                Status::ok(201, format!("{} Temp(s)", r.boards.len())),
                "TEMPS",
                false,
                recs,
            )
        }
        "tempctrl" => {
            let rec = Rec::new()
                .v("Mode", "Automatic")
                .f("Target", ctx.np.chip_target_c, 1)
                .f("Hot", ctx.np.chip_limit_c - 10.0, 1)
                .f("Dangerous", ctx.np.chip_limit_c, 1);
            Reply::one(
                Status::ok(200, "Temperature control"),
                "TEMPCTRL",
                false,
                vec![rec],
            )
        }
        "tunerstatus" => tunerstatus(ctx),
        "pause" => {
            if ctx.state.sleeping {
                return Some(Reply::status(Status::err(303, "Mining is already paused")));
            }
            ctx.state.sleeping = true;
            Reply::one(
                Status::ok(300, "Pause mining"),
                "PAUSE",
                true,
                vec![Rec::new().v("Paused", true)],
            )
        }
        "resume" => {
            if !ctx.state.sleeping {
                return Some(Reply::status(Status::err(304, "Mining is not paused")));
            }
            ctx.state.sleeping = false;
            Reply::one(
                Status::ok(301, "Resume mining"),
                "RESUME",
                true,
                vec![Rec::new().v("Resumed", true)],
            )
        }
        _ => return None,
    })
}

/// The power limit the tuner aims at: the set target, else the model's nominal power.
pub fn power_limit_w(ctx: &Ctx<'_>) -> u32 {
    ctx.state.power_target_w.unwrap_or(ctx.np.power_w as u32)
}

fn tunerstatus(ctx: &Ctx<'_>) -> Reply {
    let r = &ctx.reading;
    let limit = power_limit_w(ctx);
    let chain_w: f64 = r.boards.iter().map(|b| b.power_w).sum();
    let chains: Vec<V> = r
        .boards
        .iter()
        .enumerate()
        .map(|(i, b)| {
            V::Obj(
                Rec::new()
                    .v("HashchainIndex", i as u64)
                    .v("Iteration", 0u32)
                    .v("LoadedProfile", true)
                    .v(
                        "ProfileTarget",
                        V::Obj(Rec::new().v("Watt", limit / u32::from(ctx.np.boards))),
                    )
                    .v("PowerLimitWatt", limit / u32::from(ctx.np.boards))
                    .v("ApproximatePowerConsumptionWatt", b.power_w.round() as u64)
                    .v("Status", if b.failed { "Failed" } else { "Stable" })
                    .v("StageElapsed", r.elapsed_s),
            )
        })
        .collect();
    let rec = Rec::new()
        .v("PowerLimit", limit)
        .v("DynamicPowerScaling", "Disabled")
        .v("ApproximateChainPowerConsumption", chain_w.round() as u64)
        .v("ApproximateMinerPowerConsumption", r.power_w)
        .v("TunerRunning", !r.sleeping)
        .v("TunerChainStatus", V::Arr(chains));
    Reply::one(
        Status::ok(203, "Tuner Status"),
        "TUNERSTATUS",
        false,
        vec![rec],
    )
}
