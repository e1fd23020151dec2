//! LuxOS (LUXminer) on 4028: GH/s keys, `power`, `fans`, `temps`, `config`, `profiles`, and
//! writes guarded by a session: `logon` opens the one session the miner allows (a second gets
//! Code 402), and session commands take its id as their first parameter. Pool commands and all
//! reads need no session.

use super::{Ctx, Effect, Reply};
use crate::model::{Session, mix};
use crate::reply::{Rec, Status, V};

/// LUXminer build string.
pub const VERSION: &str = "2025.4.8.220305-57b389c7";

/// Profile steps the firmware offers: `-4` … `-1`, `default`, `+1`, `+2` (±5 % clock a step).
pub const PROFILE_STEPS: std::ops::RangeInclusive<i8> = -4..=2;

/// Commands that need a session id as their first parameter.
const SESSION_COMMANDS: &[&str] = &[
    "atmset",
    "curtail",
    "fanset",
    "ledset",
    "logoff",
    "profileset",
    "reboot",
    "rebootdevice",
    "resetminer",
];

/// The name of a profile step.
pub fn profile_name(step: i8) -> String {
    match step {
        0 => "default".to_string(),
        s if s > 0 => format!("+{s}"),
        s => s.to_string(),
    }
}

fn profile_step(name: &str) -> Option<i8> {
    let name = name.trim();
    let step = if name.eq_ignore_ascii_case("default") {
        0
    } else {
        name.trim_start_matches('+').parse::<i8>().ok()?
    };
    PROFILE_STEPS.contains(&step).then_some(step)
}

/// The `RedLed` value `config` reports.
pub fn red_led(on: bool) -> &'static str {
    if on { "blink" } else { "off" }
}

/// Runs a LuxOS-specific command, or `None` to fall back to the common ones.
pub fn command(ctx: &mut Ctx<'_>, name: &str, params: &[String]) -> Option<Reply> {
    if SESSION_COMMANDS.contains(&name)
        && let Err(reply) = check_session(ctx, params.first())
    {
        return Some(reply);
    }
    let rest = params.get(1..).unwrap_or(&[]);
    Some(match name {
        "version" => {
            let rec = Rec::new()
                .v("LUXminer", VERSION)
                .v("API", "3.7")
                .v("Miner", VERSION)
                .v("Type", ctx.np.name);
            Reply::one(
                Status::ok(22, "LUXminer versions"),
                "VERSION",
                true,
                vec![rec],
            )
        }
        "summary" => {
            let r = &ctx.reading;
            let rec = Rec::new()
                .v("Elapsed", r.elapsed_s)
                .f("GHS 5s", r.rate_5s_ghs, 2)
                .f("GHS av", r.rate_avg_ghs, 2)
                .f("GHS 30m", r.rate_30m_ghs, 2);
            let rec = super::cgminer::share_fields(rec, ctx);
            Reply::one(Status::ok(11, "Summary"), "SUMMARY", true, vec![rec])
        }
        "stats" => {
            let info = Rec::new()
                .v("LUXminer", VERSION)
                .v("Miner", VERSION)
                .v("Type", ctx.np.name);
            super::antminer::legacy_stats(ctx, info)
        }
        "power" => {
            let rec = Rec::new().v("PSU", false).v("Watts", ctx.reading.power_w);
            Reply::one(Status::ok(320, "Power"), "POWER", false, vec![rec])
        }
        "fans" => {
            let r = &ctx.reading;
            let recs = r
                .fans_rpm
                .iter()
                .enumerate()
                .map(|(i, rpm)| {
                    Rec::new()
                        .v("ID", i as u64)
                        .v("RPM", *rpm)
                        .v("Speed", r.fan_duty_pct)
                })
                .collect();
            Reply::one(Status::ok(202, "Fans"), "FANS", false, recs)
        }
        "temps" => {
            let recs = ctx
                .reading
                .boards
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    Rec::new()
                        .v("ID", i as u64)
                        .v("Board", b.pcb_max_c())
                        .v("Chip", b.chip_max_c())
                        .v("TopLeft", b.pcb_c[0])
                        .v("TopRight", b.pcb_c[1])
                        .v("BottomLeft", b.pcb_c[2])
                        .v("BottomRight", b.pcb_c[3])
                })
                .collect();
            Reply::one(Status::ok(201, "Temperatures"), "TEMPS", false, recs)
        }
        "config" => {
            let rec = super::cgminer::config_rec(ctx)
                .v("MACAddr", ctx.cfg.mac.to_ascii_lowercase())
                .v("SerialNumber", ctx.cfg.serial.clone())
                .v("Model", ctx.np.short_name())
                .v("RedLed", red_led(ctx.state.led))
                .v("GreenLed", if ctx.reading.sleeping { "off" } else { "on" })
                .v("Profile", profile_name(ctx.state.profile_step))
                .v(
                    "CurtailMode",
                    if ctx.state.sleeping { "Sleep" } else { "None" },
                )
                .v("IsAtmEnabled", true)
                .v("IsTuning", false);
            Reply::one(Status::ok(33, "CGMiner config"), "CONFIG", true, vec![rec])
        }
        "profiles" => profiles(ctx),
        "atm" => {
            let rec = Rec::new()
                .v("Enabled", true)
                .v("MaxProfile", profile_name(*PROFILE_STEPS.end()))
                .v("MinProfile", profile_name(*PROFILE_STEPS.start()))
                .v("PostRampMinutes", 15u32)
                .v("StartupMinutes", 15u32)
                .v("TempWindow", 5u32);
            Reply::one(
                Status::ok(339, "ATM configuration values"),
                "ATM",
                false,
                vec![rec],
            )
        }
        "logon" => logon(ctx),
        "session" => {
            let id = live_session(ctx)
                .map(|s| session_id(ctx, s.id))
                .unwrap_or_default();
            Reply::one(
                Status::ok(306, "Session"),
                "SESSION",
                false,
                vec![Rec::new().v("SessionID", id)],
            )
        }
        "logoff" => {
            ctx.state.session = None;
            Reply::status(Status::ok(307, "Session closed"))
        }
        "profileset" => {
            let Some(step) = rest.first().and_then(|n| profile_step(n)) else {
                let got = rest.first().cloned().unwrap_or_default();
                return Some(Reply::status(Status::err(
                    352,
                    format!("Invalid profile '{got}'"),
                )));
            };
            ctx.state.profile_step = step;
            let rec = Rec::new()
                .v("Profile", profile_name(step))
                .v("Result", "success");
            Reply::one(
                Status::ok(351, "Profile applied"),
                "PROFILE",
                false,
                vec![rec],
            )
        }
        "curtail" => match rest
            .first()
            .map(|a| a.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("sleep") => {
                ctx.state.sleeping = true;
                Reply::one(
                    Status::ok(330, "Curtail"),
                    "CURTAIL",
                    false,
                    vec![Rec::new().v("Mode", "sleep")],
                )
            }
            Some("wakeup") => {
                ctx.state.sleeping = false;
                Reply::one(
                    Status::ok(330, "Curtail"),
                    "CURTAIL",
                    false,
                    vec![Rec::new().v("Mode", "wakeup")],
                )
            }
            _ => Reply::status(Status::err(
                331,
                "Invalid curtail mode (expected sleep or wakeup)",
            )),
        },
        "ledset" => {
            let color = rest.first().map(|c| c.trim().to_ascii_lowercase());
            let state = rest.get(1).map(|s| s.trim().to_ascii_lowercase());
            match (color.as_deref(), state.as_deref()) {
                (Some("red"), Some(s @ ("blink" | "on" | "off"))) => {
                    ctx.state.led = s != "off";
                    Reply::status(Status::ok(340, format!("LED red {s}")))
                }
                _ => Reply::status(Status::err(
                    341,
                    "Invalid LED parameters (expected red,blink|on|off)",
                )),
            }
        }
        "reboot" | "rebootdevice" => {
            ctx.effect = Effect::Down(ctx.cfg.timing.reboot);
            ctx.state.session = None;
            Reply::status(Status::ok(350, "Rebooting device"))
        }
        "resetminer" => {
            ctx.effect = Effect::Down(ctx.cfg.timing.restart);
            Reply::status(Status::ok(353, "Resetting miner"))
        }
        "fanset" | "atmset" => Reply::status(Status::ok(354, format!("{name} applied"))),
        _ => return None,
    })
}

fn session_id(ctx: &Ctx<'_>, n: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = mix(ctx.cfg.seed, 40, u64::from(n));
    (0..8)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The open session, unless it has been idle longer than the firmware allows.
fn live_session(ctx: &Ctx<'_>) -> Option<Session> {
    let idle = ctx.cfg.timing.session_idle.as_millis() as u64;
    ctx.state
        .session
        .filter(|s| ctx.now_ms.saturating_sub(s.last_used_ms) <= idle)
}

fn check_session(ctx: &mut Ctx<'_>, given: Option<&String>) -> Result<(), Reply> {
    let given = given.map(|g| g.trim()).filter(|g| !g.is_empty());
    let Some(given) = given else {
        return Err(Reply::status(Status::err(401, "Session ID required")));
    };
    match live_session(ctx) {
        Some(s) if session_id(ctx, s.id) == given => {
            ctx.state.session = Some(Session {
                id: s.id,
                last_used_ms: ctx.now_ms,
            });
            Ok(())
        }
        _ => Err(Reply::status(Status::err(
            401,
            format!("Invalid session id '{given}'"),
        ))),
    }
}

fn logon(ctx: &mut Ctx<'_>) -> Reply {
    if live_session(ctx).is_some() {
        return Reply::status(Status::err(402, "Another session is active"));
    }
    ctx.state.sessions_issued = ctx.state.sessions_issued.wrapping_add(1);
    let n = ctx.state.sessions_issued;
    ctx.state.session = Some(Session {
        id: n,
        last_used_ms: ctx.now_ms,
    });
    let rec = Rec::new().v("SessionID", session_id(ctx, n));
    Reply::one(Status::ok(305, "Logon"), "SESSION", false, vec![rec])
}

fn profiles(ctx: &Ctx<'_>) -> Reply {
    let np = ctx.np;
    let recs = PROFILE_STEPS
        .map(|step| {
            let s = 1.0 + 0.05 * f64::from(step);
            let v = 1.0 + 0.3 * (s - 1.0);
            let watts = np.idle_power_w + (np.power_w - np.idle_power_w) * s * v * v;
            Rec::new()
                .v("Profile Name", profile_name(step))
                .f("Frequency", np.frequency_mhz * s, 0)
                .f("Hashrate", np.hashrate_ths * s, 2)
                .v("IsDynamic", false)
                .v("IsTuned", false)
                .v("Step", step.to_string())
                .f("Voltage", np.voltage_v * v, 2)
                .v("Watts", V::Int(watts.round() as i64))
        })
        .collect();
    Reply::one(Status::ok(348, "Profiles"), "PROFILES", false, recs)
}
