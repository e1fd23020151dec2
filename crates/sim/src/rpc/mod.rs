//! The cgminer RPC server logic (TCP 4028) shared by every family: request forms, STATUS
//! codes, multi-command joins, access control, and dispatch to the family's own commands.
//!
//! One request per connection: the request is read with one `recv` of at most 4,095 bytes, the
//! reply is the text plus one NUL byte, then the connection closes (done in [`crate::device`]).

pub mod antminer;
pub mod avalon;
pub mod braiins;
pub mod cgminer;
pub mod luxos;

use crate::device::DeviceConfig;
use crate::family::Family;
use crate::faults::FaultSet;
use crate::model::{DeviceState, Reading};
use crate::nameplate::Nameplate;
use crate::reply::{self, Reply, Stamp, Status};
use std::time::Duration;

/// The largest request cgminer reads: one `recv` into half of an 8 KiB buffer.
pub const MAX_REQUEST_BYTES: usize = 4095;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Command, possibly `a+b+c`.
    pub command: String,
    /// Raw parameter string.
    pub parameter: Option<String>,
    /// The request was JSON, so the reply is too.
    pub json: bool,
    /// Antminer `"new_api":true`.
    pub new_api: bool,
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The request started with `{` but was not a JSON object (Code 23).
    InvalidJson,
    /// A JSON request without a `command` string (Code 24).
    MissingCommand,
}

/// Reads a request in either form: JSON when the first byte is `{`, else `command|parameter`.
pub fn parse_request(raw: &[u8]) -> Result<Request, RequestError> {
    let end = raw
        .iter()
        .rposition(|b| *b != 0 && !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let raw = &raw[..end];
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let raw = &raw[start..];
    if raw.first() == Some(&b'{') {
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|_| RequestError::InvalidJson)?;
        let obj = value.as_object().ok_or(RequestError::InvalidJson)?;
        let command = obj
            .get("command")
            .and_then(|c| c.as_str())
            .ok_or(RequestError::MissingCommand)?;
        let parameter = match obj.get("parameter") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        let new_api = obj
            .get("new_api")
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
        return Ok(Request {
            command: command.trim().to_string(),
            parameter,
            json: true,
            new_api,
        });
    }
    let text = String::from_utf8_lossy(raw);
    let (command, parameter) = match text.split_once('|') {
        Some((c, p)) => (c, Some(p.to_string())),
        None => (text.as_ref(), None),
    };
    Ok(Request {
        command: command.trim().to_string(),
        parameter,
        json: false,
        new_api: false,
    })
}

/// Splits a parameter on commas, honouring cgminer's `\,` and `\\` escapes.
pub fn split_params(p: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), out.last_mut()) {
                    last.push(n);
                }
            }
            ',' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

/// What a command asks of the server besides its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Stop answering for this long (reboot, restart of mining), then come back fresh.
    Down(Duration),
}

/// Everything a command handler may read or change.
pub struct Ctx<'a> {
    /// The device's configuration.
    pub cfg: &'a DeviceConfig,
    /// Its nameplate.
    pub np: &'static Nameplate,
    /// Its mutable state, already advanced to now.
    pub state: &'a mut DeviceState,
    /// What it reports now.
    pub reading: Reading,
    /// Its current faults.
    pub faults: FaultSet,
    /// Now, unix milliseconds.
    pub now_ms: u64,
    /// The request asked for the `new_api` layout.
    pub new_api: bool,
    /// Set by commands that take the device down.
    pub effect: Effect,
}

impl Ctx<'_> {
    /// The family the device speaks.
    pub fn family(&self) -> Family {
        self.cfg.family
    }

    /// Now, unix seconds.
    pub fn now_s(&self) -> u64 {
        self.now_ms / 1000
    }
}

/// Commands cgminer only runs for callers with write access.
const PRIVILEGED: &[&str] = &[
    "switchpool",
    "enablepool",
    "disablepool",
    "removepool",
    "addpool",
    "poolpriority",
    "poolquota",
    "save",
    "quit",
    "restart",
    "privileged",
    "ascenable",
    "ascdisable",
    "ascidentify",
    "ascset",
    "zero",
    "debug",
    "lockstats",
    "setconfig",
    "pause",
    "resume",
];

/// Report commands that may be joined with `+`.
const JOINABLE: &[&str] = &[
    "version",
    "config",
    "summary",
    "pools",
    "devs",
    "edevs",
    "devdetails",
    "stats",
    "estats",
    "coin",
    "asccount",
    "notify",
    "lcd",
    "usbstats",
    "fans",
    "temps",
    "tempctrl",
    "tunerstatus",
    "power",
    "profiles",
    "atm",
];

fn privileged(family: Family, command: &str) -> bool {
    // LuxOS guards its writes with sessions instead (see `luxos`).
    family != Family::LuxOs && PRIVILEGED.contains(&command)
}

/// One command, alone: access check, then the family's handler, then the common ones.
fn run_one(ctx: &mut Ctx<'_>, command: &str, parameter: Option<&str>) -> Reply {
    if privileged(ctx.family(), command) && !ctx.cfg.rpc_write_access {
        return Reply::status(Status::err(
            45,
            format!("Access denied to '{command}' command"),
        ));
    }
    let params = parameter.map(split_params).unwrap_or_default();
    let family_reply = match ctx.family() {
        Family::Antminer => antminer::command(ctx, command, &params),
        Family::Avalon => avalon::command(ctx, command, &params),
        Family::Braiins => braiins::command(ctx, command, &params),
        Family::LuxOs => luxos::command(ctx, command, &params),
        Family::Cgminer | Family::Bfgminer => None,
    };
    family_reply
        .or_else(|| cgminer::command(ctx, command, &params))
        .unwrap_or_else(|| Reply::status(Status::err(14, "Invalid command")))
}

/// Handles one raw request against a device and returns the reply bytes (with the trailing
/// NUL) and what the server must do afterwards.
pub fn respond(
    cfg: &DeviceConfig,
    np: &'static Nameplate,
    state: &mut DeviceState,
    faults: FaultSet,
    now_ms: u64,
    raw: &[u8],
) -> (Vec<u8>, Effect) {
    let stamp = Stamp {
        when_s: now_ms / 1000,
        description: cfg.family.description(),
    };
    let mut out = String::with_capacity(4096);
    let request = match parse_request(raw) {
        Ok(r) => r,
        Err(e) => {
            let status = match e {
                RequestError::InvalidJson => Status::err(23, "Invalid JSON"),
                RequestError::MissingCommand => Status::err(24, "Missing JSON 'command'"),
            };
            reply::to_json(&Reply::status(status), stamp, &mut out);
            return (finish(out), Effect::None);
        }
    };
    let reading = state.read(np, cfg.family, cfg.seed, faults);
    let mut ctx = Ctx {
        cfg,
        np,
        state,
        reading,
        faults,
        now_ms,
        new_api: request.new_api,
        effect: Effect::None,
    };
    if request.command.contains('+') {
        let mut seen: Vec<&str> = Vec::new();
        for name in request
            .command
            .split('+')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        let parts: Vec<(String, Reply)> = seen
            .into_iter()
            .map(|name| {
                let reply = if JOINABLE.contains(&name) {
                    run_one(&mut ctx, name, None)
                } else if known(&mut ctx, name) {
                    Reply::status(Status::err(
                        45,
                        format!("Access denied to '{name}' command"),
                    ))
                } else {
                    Reply::status(Status::err(14, "Invalid command"))
                };
                (name.to_string(), reply)
            })
            .collect();
        if request.json {
            reply::multi_to_json(&parts, stamp, &mut out);
        } else {
            reply::multi_to_text(&parts, stamp, &mut out);
        }
    } else {
        let reply = run_one(&mut ctx, &request.command, request.parameter.as_deref());
        if request.json {
            reply::to_json(&reply, stamp, &mut out);
        } else {
            reply::to_text(&reply, stamp, &mut out);
        }
    }
    (finish(out), ctx.effect)
}

/// Whether `name` is a command of this family at all (used to tell "not joinable" from
/// "unknown" in a multi-command). Runs it on a scratch copy of the state.
fn known(ctx: &mut Ctx<'_>, name: &str) -> bool {
    let mut scratch = ctx.state.clone();
    let mut probe = Ctx {
        cfg: ctx.cfg,
        np: ctx.np,
        state: &mut scratch,
        reading: ctx.reading.clone(),
        faults: ctx.faults,
        now_ms: ctx.now_ms,
        new_api: false,
        effect: Effect::None,
    };
    match run_one(&mut probe, name, None) {
        Reply::Standard { status, .. } => status.code != 14,
        Reply::Custom { .. } => true,
    }
}

fn finish(out: String) -> Vec<u8> {
    let mut bytes = out.into_bytes();
    bytes.push(0);
    bytes
}

/// Text of the cgminer pool status.
pub fn pool_status(pool: &crate::model::Pool) -> &'static str {
    if !pool.enabled {
        "Disabled"
    } else if pool.alive() {
        "Alive"
    } else {
        "Dead"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_forms() {
        let r = parse_request(b"{\"command\":\"summary\"}\0").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (r.command.as_str(), r.json, r.parameter),
            ("summary", true, None)
        );
        let r = parse_request(br#"{"command":"switchpool","parameter":1}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.parameter.as_deref(), Some("1"));
        let r = parse_request(br#"{"command":"stats","new_api":true}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(r.new_api);
        let r = parse_request(b"ascset|0,led,1-1\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (r.command.as_str(), r.json, r.parameter.as_deref()),
            ("ascset", false, Some("0,led,1-1"))
        );
        assert_eq!(
            parse_request(b"{\"command\":"),
            Err(RequestError::InvalidJson)
        );
        assert_eq!(
            parse_request(b"{\"cmd\":\"summary\"}"),
            Err(RequestError::MissingCommand)
        );
        assert_eq!(
            parse_request(b"[1,2]"),
            Ok(Request {
                command: "[1,2]".into(),
                parameter: None,
                json: false,
                new_api: false
            })
        );
    }

    #[test]
    fn params_honour_escapes() {
        assert_eq!(
            split_params(r"stratum+tcp://p:1,u\,1,x\\"),
            vec!["stratum+tcp://p:1", "u,1", "x\\"]
        );
        assert_eq!(split_params(""), vec![""]);
    }
}
