//! The cgminer-style reply writer of the simulators: a small value tree rendered either as
//! JSON or as cgminer's text form (`STATUS=S,...|SUMMARY,...|`). Written here, independently of
//! the drivers' parser, so the two sides cannot share a bug.
//!
//! Key order is kept as built (real firmwares emit a fixed order, and some clients depend on
//! it), and numbers are printed with a fixed number of decimals as cgminer does.

use std::borrow::Cow;
use std::fmt::Write;

/// A value in a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// A string.
    Str(Cow<'static, str>),
    /// A signed integer.
    Int(i64),
    /// A float printed with this many decimals.
    Float(f64, u8),
    /// `true` / `false`.
    Bool(bool),
    /// JSON `null`.
    Null,
    /// A list.
    Arr(Vec<V>),
    /// An object with keys in order.
    Obj(Rec),
    /// Pre-rendered JSON emitted as is (firmware quirks such as bare `inf`).
    Raw(String),
}

impl From<&'static str> for V {
    fn from(s: &'static str) -> Self {
        V::Str(Cow::Borrowed(s))
    }
}
impl From<String> for V {
    fn from(s: String) -> Self {
        V::Str(Cow::Owned(s))
    }
}
impl From<i64> for V {
    fn from(v: i64) -> Self {
        V::Int(v)
    }
}
impl From<u64> for V {
    fn from(v: u64) -> Self {
        V::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for V {
    fn from(v: u32) -> Self {
        V::Int(i64::from(v))
    }
}
impl From<i32> for V {
    fn from(v: i32) -> Self {
        V::Int(i64::from(v))
    }
}
impl From<bool> for V {
    fn from(v: bool) -> Self {
        V::Bool(v)
    }
}
impl From<Rec> for V {
    fn from(r: Rec) -> Self {
        V::Obj(r)
    }
}

/// One record (a JSON object): keys in insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rec(pub Vec<(Cow<'static, str>, V)>);

impl Rec {
    /// An empty record.
    pub fn new() -> Self {
        Rec(Vec::with_capacity(16))
    }

    /// Adds `key: value`.
    pub fn v(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<V>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Adds `key: value` printed with `decimals` decimals.
    pub fn f(mut self, key: impl Into<Cow<'static, str>>, value: f64, decimals: u8) -> Self {
        self.0.push((key.into(), V::Float(value, decimals)));
        self
    }

    /// Adds `key: value` in place.
    pub fn push(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<V>) {
        self.0.push((key.into(), value.into()));
    }
}

/// STATUS severity letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `S` success.
    Success,
    /// `I` informational.
    Info,
    /// `W` warning.
    Warning,
    /// `E` error.
    Error,
}

impl Severity {
    fn letter(self) -> &'static str {
        match self {
            Severity::Success => "S",
            Severity::Info => "I",
            Severity::Warning => "W",
            Severity::Error => "E",
        }
    }
}

/// The STATUS object every cgminer reply starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Severity.
    pub severity: Severity,
    /// Message code (`api.c` table).
    pub code: u32,
    /// Message text.
    pub msg: String,
}

impl Status {
    /// A success status.
    pub fn ok(code: u32, msg: impl Into<String>) -> Self {
        Status {
            severity: Severity::Success,
            code,
            msg: msg.into(),
        }
    }

    /// An error status.
    pub fn err(code: u32, msg: impl Into<String>) -> Self {
        Status {
            severity: Severity::Error,
            code,
            msg: msg.into(),
        }
    }

    /// An informational status.
    pub fn info(code: u32, msg: impl Into<String>) -> Self {
        Status {
            severity: Severity::Info,
            code,
            msg: msg.into(),
        }
    }
}

/// A list of records under one name (`SUMMARY`, `POOLS`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// JSON key and text-form record prefix.
    pub name: &'static str,
    /// In the text form, records start with `NAME,` (SUMMARY, VERSION) instead of an index
    /// field (`POOL=0,…`).
    pub text_prefix: bool,
    /// The records.
    pub records: Vec<Rec>,
}

/// One reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The usual shape: a STATUS list, sections, `"id":1`.
    Standard {
        /// The STATUS object.
        status: Status,
        /// Report sections in order.
        sections: Vec<Section>,
    },
    /// A reply with its own shape (Antminer `new_api`, `restart`), JSON and text given apart.
    Custom {
        /// The JSON form.
        json: V,
        /// The text form.
        text: String,
    },
}

impl Reply {
    /// A reply that is only a STATUS.
    pub fn status(status: Status) -> Self {
        Reply::Standard {
            status,
            sections: Vec::new(),
        }
    }

    /// A reply with one section.
    pub fn one(status: Status, name: &'static str, text_prefix: bool, records: Vec<Rec>) -> Self {
        Reply::Standard {
            status,
            sections: vec![Section {
                name,
                text_prefix,
                records,
            }],
        }
    }

    /// Whether the STATUS says error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Standard { status, .. } if status.severity == Severity::Error)
    }
}

/// Context every reply carries: the time and the firmware description.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// `When`, unix seconds.
    pub when_s: u64,
    /// `Description`.
    pub description: &'a str,
}

/// Renders one reply as JSON.
pub fn to_json(reply: &Reply, stamp: Stamp<'_>, out: &mut String) {
    match reply {
        Reply::Standard { status, sections } => {
            out.push_str("{\"STATUS\":[");
            status_json(status, stamp, out);
            out.push(']');
            for s in sections {
                out.push_str(",\"");
                out.push_str(s.name);
                out.push_str("\":[");
                for (i, r) in s.records.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    rec_json(r, out);
                }
                out.push(']');
            }
            out.push_str(",\"id\":1}");
        }
        Reply::Custom { json, .. } => value_json(json, out),
    }
}

/// Renders several replies as one multi-command reply: `{"a":[{..}],"b":[{..}],"id":1}`.
pub fn multi_to_json(parts: &[(String, Reply)], stamp: Stamp<'_>, out: &mut String) {
    out.push('{');
    for (name, reply) in parts {
        json_string(name, out);
        out.push_str(":[");
        to_json(reply, stamp, out);
        out.push_str("],");
    }
    out.push_str("\"id\":1}");
}

/// Renders one reply in cgminer's text form.
pub fn to_text(reply: &Reply, stamp: Stamp<'_>, out: &mut String) {
    match reply {
        Reply::Standard { status, sections } => {
            let _ = write!(
                out,
                "STATUS={},When={},Code={},Msg=",
                status.severity.letter(),
                stamp.when_s,
                status.code
            );
            text_escape(&status.msg, out);
            out.push_str(",Description=");
            text_escape(stamp.description, out);
            out.push('|');
            for s in sections {
                for r in &s.records {
                    if s.text_prefix {
                        out.push_str(s.name);
                        if !r.0.is_empty() {
                            out.push(',');
                        }
                    }
                    for (i, (k, v)) in r.0.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(k);
                        out.push('=');
                        value_text(v, out);
                    }
                    out.push('|');
                }
            }
        }
        Reply::Custom { text, .. } => out.push_str(text),
    }
}

/// Renders several replies in text form: `CMD=summary|STATUS=…|…|CMD=pools|…`.
pub fn multi_to_text(parts: &[(String, Reply)], stamp: Stamp<'_>, out: &mut String) {
    for (name, reply) in parts {
        out.push_str("CMD=");
        text_escape(name, out);
        out.push('|');
        to_text(reply, stamp, out);
    }
}

fn status_json(status: &Status, stamp: Stamp<'_>, out: &mut String) {
    out.push_str("{\"STATUS\":\"");
    out.push_str(status.severity.letter());
    let _ = write!(
        out,
        "\",\"When\":{},\"Code\":{},\"Msg\":",
        stamp.when_s, status.code
    );
    json_string(&status.msg, out);
    out.push_str(",\"Description\":");
    json_string(stamp.description, out);
    out.push('}');
}

fn rec_json(r: &Rec, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in r.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(k, out);
        out.push(':');
        value_json(v, out);
    }
    out.push('}');
}

/// Renders one value as JSON.
pub fn value_json(v: &V, out: &mut String) {
    match v {
        V::Str(s) => json_string(s, out),
        V::Int(i) => {
            let _ = write!(out, "{i}");
        }
        V::Float(x, d) => float(*x, *d, out),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Null => out.push_str("null"),
        V::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value_json(item, out);
            }
            out.push(']');
        }
        V::Obj(r) => rec_json(r, out),
        V::Raw(s) => out.push_str(s),
    }
}

fn value_text(v: &V, out: &mut String) {
    match v {
        V::Str(s) => text_escape(s, out),
        V::Int(_) | V::Float(..) | V::Bool(_) | V::Raw(_) => value_json(v, out),
        V::Null => {}
        V::Arr(_) | V::Obj(_) => {
            let mut inner = String::new();
            value_json(v, &mut inner);
            text_escape(&inner, out);
        }
    }
}

fn float(x: f64, decimals: u8, out: &mut String) {
    const POW10: [f64; 9] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    // Fast path: scale to an integer and print its digits; the general formatter is one of the
    // most expensive things a reply does, and replies are built for every poll.
    let d = usize::from(decimals);
    if d < POW10.len() && x.abs() < 9.0e15 / POW10[d] {
        let scaled = (x.abs() * POW10[d]).round() as u64;
        if x < 0.0 && scaled != 0 {
            out.push('-');
        }
        let unit = POW10[d] as u64;
        let _ = write!(out, "{}", scaled / unit);
        if d > 0 {
            let _ = write!(out, ".{:0width$}", scaled % unit, width = d);
        }
        return;
    }
    let _ = write!(out, "{:.*}", d, x);
}

/// Writes `s` as a JSON string literal.
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// cgminer's text form escapes its own separators with a backslash.
fn text_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, ',' | '|' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp<'static> = Stamp {
        when_s: 1_718_000_000,
        description: "cgminer 4.12.1",
    };

    fn summary() -> Reply {
        Reply::one(
            Status::ok(11, "Summary"),
            "SUMMARY",
            true,
            vec![
                Rec::new()
                    .v("Elapsed", 5400u64)
                    .f("MHS av", 95_012_345.674, 2)
                    .v("Note", "a,b|c=d"),
            ],
        )
    }

    #[test]
    fn json_keeps_order_and_decimals() {
        let mut out = String::new();
        to_json(&summary(), STAMP, &mut out);
        assert_eq!(
            out,
            r#"{"STATUS":[{"STATUS":"S","When":1718000000,"Code":11,"Msg":"Summary","Description":"cgminer 4.12.1"}],"SUMMARY":[{"Elapsed":5400,"MHS av":95012345.67,"Note":"a,b|c=d"}],"id":1}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(parsed["SUMMARY"][0]["Elapsed"], 5400);
    }

    #[test]
    fn text_form_escapes_separators() {
        let mut out = String::new();
        to_text(&summary(), STAMP, &mut out);
        assert_eq!(
            out,
            r"STATUS=S,When=1718000000,Code=11,Msg=Summary,Description=cgminer 4.12.1|SUMMARY,Elapsed=5400,MHS av=95012345.67,Note=a\,b\|c\=d|"
        );
        let pools = Reply::one(
            Status::ok(7, "1 Pool(s)"),
            "POOLS",
            false,
            vec![Rec::new().v("POOL", 0u32).v("URL", "stratum+tcp://p:3")],
        );
        out.clear();
        to_text(&pools, STAMP, &mut out);
        assert!(out.ends_with("|POOL=0,URL=stratum+tcp://p:3|"), "{out}");
    }

    #[test]
    fn multi_wraps_each_reply_in_a_list() {
        let mut out = String::new();
        multi_to_json(
            &[("summary".into(), summary()), ("pools".into(), summary())],
            STAMP,
            &mut out,
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(parsed["summary"][0]["STATUS"][0]["Code"], 11);
        assert_eq!(parsed["pools"].as_array().map(Vec::len), Some(1));
        assert_eq!(parsed["id"], 1);
        out.clear();
        multi_to_text(&[("summary".into(), summary())], STAMP, &mut out);
        assert!(out.starts_with("CMD=summary|STATUS=S,"), "{out}");
    }

    #[test]
    fn floats_print_like_printf() {
        for (x, d, want) in [
            (1.005, 2, "1.00"),
            (2.675, 2, "2.68"),
            (-0.004, 2, "0.00"),
            (-3.5, 1, "-3.5"),
            (95_012_345.674, 2, "95012345.67"),
            (0.0, 8, "0.00000000"),
            (1.2e14, 8, "120000000000000.00000000"),
            (675.0, 0, "675"),
            (f64::NAN, 2, "null"),
        ] {
            let mut out = String::new();
            float(x, d, &mut out);
            // Rounds like `model::round2` (scale, then round half away from zero), which can
            // differ from printf in the last digit for values such as 2.675 (2.67499… in binary).
            assert_eq!(out, want, "{x} {d}");
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        json_string("a\"b\\c\nd\u{1}", &mut out);
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
        let back: String = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(back, "a\"b\\c\nd\u{1}");
    }
}
