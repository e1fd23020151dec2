//! The string-aware JSON repair pass for replies real cgminer forks send (PROTOCOLS.md §1.10).
//!
//! Firmwares emit trailing commas, missing commas, `}{` between objects, bare `inf`/`nan`,
//! raw control characters inside strings, leading garbage and buffers cut short. A blind text
//! replacement would also rewrite pool passwords and worker names, so this pass walks the text
//! as JSON tokens and only ever changes what lies *between* strings; string contents are copied
//! unchanged (a raw control character is escaped, which decodes back to the same character).
//!
//! Guarantees, each covered by tests: valid JSON comes back unchanged; the output is always valid
//! JSON or empty; the pass never panics, whatever the bytes.
//!
//! Run it only after a direct parse failed ([`crate::cgminer::reply::decode`] does this): it
//! costs an extra pass and an allocation the healthy path should not pay.

use std::borrow::Cow;

/// The repaired reply text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// JSON text: valid JSON, or empty when the reply held no JSON object or array at all.
    pub text: String,
    /// The reply was cut short (or ended inside a value); the text keeps every complete value
    /// and closes the open brackets, so some records or fields are missing.
    pub truncated: bool,
}

/// Repairs a raw cgminer-family reply into parseable JSON (see the module doc for what it fixes).
pub fn repair(raw: &[u8]) -> Repaired {
    // NUL bytes are the reply terminator and never legal JSON; strip every one before decoding so
    // that a NUL in the middle of a multi-part reply cannot split the text.
    let without_nul: Cow<'_, [u8]> = if raw.contains(&0) {
        Cow::Owned(raw.iter().copied().filter(|&b| b != 0).collect())
    } else {
        Cow::Borrowed(raw)
    };
    // Decode the whole buffer at once: a multi-byte character split across read chunks stays
    // whole, and only truly invalid bytes become U+FFFD.
    let text = String::from_utf8_lossy(&without_nul);
    // A full parse, not `IgnoredAny`: skipping does not check escapes such as lone surrogates.
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        return Repaired {
            text: text.into_owned(),
            truncated: false,
        };
    }
    Repairer::new(&text).run()
}

/// Runs the token-level pass even on text that is already valid (for tests of identity).
#[doc(hidden)]
pub fn repair_text_always(text: &str) -> Repaired {
    Repairer::new(text).run()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
}

/// Where the parser is inside one open container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Just after `{`: a key or `}`.
    KeyOrEnd,
    /// After a comma in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After `:` in an object, or after `[` or a comma in an array: a value.
    Value,
    /// After a complete value: `,` or the closer.
    Next,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    expect: Expect,
    /// Output offset of the opening bracket (rewritten when an array turns out to be an object).
    open_at: usize,
    /// Number of complete members (values in an array, key/value pairs in an object).
    members: usize,
    /// Output offset of the last comma written, so a trailing comma can be taken back.
    comma_at: Option<usize>,
    /// The last complete member was a single string (an array of `"k":v` pairs starts so).
    last_was_string: bool,
}

/// The container that closed last, while nothing but whitespace has followed it; lets
/// `{...}{...}` be merged into one object.
#[derive(Debug, Clone, Copy)]
struct Closed {
    kind: Kind,
    open_at: usize,
    close_at: usize,
    members: usize,
}

struct Repairer<'a> {
    src: &'a str,
    pos: usize,
    out: String,
    stack: Vec<Frame>,
    /// The top-level value has been completed at least once.
    done_top: bool,
    last_closed: Option<Closed>,
    /// Output length and stack depth at the last point where the output could be closed into
    /// valid JSON by appending closers.
    safe_len: usize,
    safe_depth: usize,
    truncated: bool,
}

impl<'a> Repairer<'a> {
    fn new(src: &'a str) -> Self {
        Repairer {
            src,
            pos: 0,
            out: String::with_capacity(src.len() + 16),
            stack: Vec::new(),
            done_top: false,
            last_closed: None,
            safe_len: 0,
            safe_depth: 0,
            truncated: false,
        }
    }

    fn run(mut self) -> Repaired {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() {
            let c = bytes[self.pos];
            if self.stack.is_empty() {
                if !self.top_level(c) {
                    break;
                }
                continue;
            }
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    self.out.push(c as char);
                    self.pos += 1;
                }
                b',' => {
                    self.pos += 1;
                    self.comma();
                }
                b':' => {
                    self.pos += 1;
                    self.colon();
                }
                b'}' | b']' => {
                    self.pos += 1;
                    self.close();
                }
                b'{' | b'[' => {
                    if self.before_value(c) {
                        self.open(c);
                    }
                    self.pos += 1;
                }
                b'"' => {
                    let key = self.before_token();
                    self.string(key);
                }
                c if is_word_byte(c) => self.word(),
                _ => {
                    // Any other byte outside a string (control characters, stray punctuation,
                    // non-ASCII text) has no JSON meaning: drop it, one whole character.
                    self.pos += utf8_len(c);
                }
            }
        }
        self.finish()
    }

    /// Handles one step at the top level (no container open). Returns false to stop reading.
    fn top_level(&mut self, c: u8) -> bool {
        match c {
            b' ' | b'\t' | b'\n' | b'\r' if self.done_top => {
                self.out.push(c as char);
                self.pos += 1;
                true
            }
            b'{' | b'[' if self.done_top => {
                let kind = if c == b'{' { Kind::Object } else { Kind::Array };
                match self.last_closed {
                    // `{...}{...}` (VolcMiner, bmminer): merge the second object into the first.
                    Some(closed) if closed.kind == kind => {
                        self.reopen(closed);
                        self.pos += 1;
                        true
                    }
                    _ => false,
                }
            }
            // A comma between two top-level objects: skip it and see what follows.
            b',' if self.done_top => {
                self.pos += 1;
                true
            }
            _ if self.done_top => false,
            b'{' | b'[' => {
                self.open(c);
                self.pos += 1;
                true
            }
            _ => {
                // Leading garbage (Avalon's `,"id":1}` fragment): skip to the first bracket.
                self.pos += utf8_len(c);
                true
            }
        }
    }

    fn mark_safe(&mut self) {
        self.safe_len = self.out.len();
        self.safe_depth = self.stack.len();
    }

    fn open(&mut self, c: u8) {
        let kind = if c == b'{' { Kind::Object } else { Kind::Array };
        let open_at = self.out.len();
        self.out.push(c as char);
        let expect = if kind == Kind::Object {
            Expect::KeyOrEnd
        } else {
            Expect::Value
        };
        self.stack.push(Frame {
            kind,
            expect,
            open_at,
            members: 0,
            comma_at: None,
            last_was_string: false,
        });
        self.last_closed = None;
        self.mark_safe();
    }

    /// Reopens the container that just closed, so what follows is merged into it.
    fn reopen(&mut self, closed: Closed) {
        self.out.truncate(closed.close_at);
        let open_at = closed.open_at;
        let (expect, members) = if closed.members == 0 {
            (
                if closed.kind == Kind::Object {
                    Expect::KeyOrEnd
                } else {
                    Expect::Value
                },
                0,
            )
        } else {
            (Expect::Next, closed.members)
        };
        self.stack.push(Frame {
            kind: closed.kind,
            expect,
            open_at,
            members,
            comma_at: None,
            last_was_string: false,
        });
        self.last_closed = None;
        self.done_top = false;
        self.mark_safe();
    }

    /// A complete value was written in the current container (or at the top level).
    fn value_done(&mut self, is_string: bool, safe: bool) {
        match self.stack.last_mut() {
            None => self.done_top = true,
            Some(f) => {
                f.members += 1;
                f.expect = Expect::Next;
                f.comma_at = None;
                f.last_was_string = is_string && f.kind == Kind::Array;
            }
        }
        if safe {
            self.mark_safe();
        }
    }

    fn comma(&mut self) {
        let len = self.out.len();
        let Some(f) = self.stack.last_mut() else {
            return;
        };
        match (f.kind, f.expect) {
            (_, Expect::Next) => {
                f.comma_at = Some(len);
                f.expect = if f.kind == Kind::Object {
                    Expect::Key
                } else {
                    Expect::Value
                };
                self.out.push(',');
            }
            // `"a":,` or `"a",`: the key lost its value; give it null so the members around it
            // survive.
            (Kind::Object, Expect::Colon) => {
                self.out.push_str(":null");
                self.value_done(false, true);
                self.comma();
            }
            (Kind::Object, Expect::Value) => {
                self.out.push_str("null");
                self.value_done(false, true);
                self.comma();
            }
            // `[,{`, `,,`, `{,`: a comma with nothing before it is dropped.
            _ => {}
        }
        self.last_closed = None;
    }

    fn colon(&mut self) {
        let Some(f) = self.stack.last_mut() else {
            return;
        };
        match (f.kind, f.expect) {
            (Kind::Object, Expect::Colon) => {
                f.expect = Expect::Value;
                self.out.push(':');
            }
            // `["110":"2021-…","111":"…"]` (Whatsminer API 2.0.4 `error_code`): an object written
            // with array brackets. The first member was a string, so it becomes the first key.
            (Kind::Array, Expect::Next) if f.members == 1 && f.last_was_string => {
                f.kind = Kind::Object;
                f.expect = Expect::Value;
                f.members = 0;
                let open_at = f.open_at;
                self.out.replace_range(open_at..open_at + 1, "{");
                self.out.push(':');
                // Closing here must not leave a dangling key; the last safe point is the brace.
                self.safe_len = open_at + 1;
                self.safe_depth = self.stack.len();
            }
            _ => {}
        }
        self.last_closed = None;
    }

    fn close(&mut self) {
        let Some(f) = self.stack.last().copied() else {
            return;
        };
        match f.expect {
            Expect::Key => {
                // A trailing comma (`,}` / `,]`): take it back.
                if let Some(at) = f.comma_at {
                    self.out.remove(at);
                }
            }
            Expect::Value if f.kind == Kind::Array && f.members > 0 => {
                if let Some(at) = f.comma_at {
                    self.out.remove(at);
                }
            }
            Expect::Colon => self.out.push_str(":null"),
            Expect::Value if f.kind == Kind::Object => self.out.push_str("null"),
            _ => {}
        }
        let members = if matches!(f.expect, Expect::Colon)
            || (f.kind == Kind::Object && f.expect == Expect::Value)
        {
            f.members + 1
        } else {
            f.members
        };
        // Whatever closer arrived, write the one that matches the open bracket.
        let close_at = self.out.len();
        self.out
            .push(if f.kind == Kind::Object { '}' } else { ']' });
        self.stack.pop();
        self.value_done(false, true);
        self.last_closed = Some(Closed {
            kind: f.kind,
            open_at: f.open_at,
            close_at,
            members,
        });
    }

    /// Prepares for a value starting with `{` or `[` in the current container. Returns false if
    /// the bracket was consumed by a merge instead.
    fn before_value(&mut self, c: u8) -> bool {
        let Some(f) = self.stack.last().copied() else {
            return true;
        };
        match (f.kind, f.expect) {
            (_, Expect::Value) => {}
            (Kind::Array, Expect::Next) => {
                // `}{` between array elements (bmminer): insert the missing comma.
                self.out.push(',');
                self.set_expect(Expect::Value);
            }
            (Kind::Object, Expect::Next) => {
                let kind = if c == b'{' { Kind::Object } else { Kind::Array };
                if let Some(closed) = self.last_closed.filter(|cl| cl.kind == kind) {
                    // `"a":{...}{...}` inside an object: merge the two objects.
                    self.reopen_nested(closed);
                    return false;
                }
                self.out.push_str(",\"\":");
                self.set_expect(Expect::Value);
            }
            (Kind::Object, Expect::Colon) => {
                self.out.push(':');
                self.set_expect(Expect::Value);
            }
            (Kind::Object, _) => {
                // A value where a key belongs: give it an empty key so the text stays JSON.
                self.out.push_str("\"\":");
                self.set_expect(Expect::Value);
            }
            (Kind::Array, _) => {}
        }
        true
    }

    fn reopen_nested(&mut self, closed: Closed) {
        // The parent counted the closed value as a member; it is being continued, not added.
        if let Some(parent) = self.stack.last_mut() {
            parent.members = parent.members.saturating_sub(1);
        }
        self.out.truncate(closed.close_at);
        let (expect, members) = if closed.members == 0 {
            (
                if closed.kind == Kind::Object {
                    Expect::KeyOrEnd
                } else {
                    Expect::Value
                },
                0,
            )
        } else {
            (Expect::Next, closed.members)
        };
        self.stack.push(Frame {
            kind: closed.kind,
            expect,
            open_at: closed.open_at,
            members,
            comma_at: None,
            last_was_string: false,
        });
        self.last_closed = None;
        self.mark_safe();
    }

    fn set_expect(&mut self, e: Expect) {
        if let Some(f) = self.stack.last_mut() {
            f.expect = e;
        }
    }

    /// Prepares for a string or bare word, inserting a missing comma or colon; returns true if
    /// it stands where an object key belongs.
    fn before_token(&mut self) -> bool {
        let Some(f) = self.stack.last().copied() else {
            return false;
        };
        match (f.kind, f.expect) {
            (Kind::Object, Expect::KeyOrEnd | Expect::Key) => true,
            (Kind::Object, Expect::Next) => {
                // `"a":1"b":2` (btminer 2023-01-06): insert the missing comma.
                self.out.push(',');
                true
            }
            (Kind::Object, Expect::Colon) => {
                // `"a" "b"`: a key whose colon is missing; the string is its value.
                self.out.push(':');
                false
            }
            (Kind::Object, Expect::Value) => false,
            (Kind::Array, Expect::Next) => {
                self.out.push(',');
                false
            }
            (Kind::Array, _) => false,
        }
    }

    fn key_done(&mut self) {
        self.set_expect(Expect::Colon);
        self.last_closed = None;
    }

    /// Copies a string starting at the opening quote, repairing only what JSON forbids.
    fn string(&mut self, is_key: bool) {
        let start_len = self.out.len();
        let bytes = self.src.as_bytes();
        self.out.push('"');
        let mut i = self.pos + 1;
        let mut run_start = i;
        let mut closed = false;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'"' => {
                    self.out.push_str(&self.src[run_start..i]);
                    self.out.push('"');
                    i += 1;
                    closed = true;
                    break;
                }
                b'\\' => {
                    self.out.push_str(&self.src[run_start..i]);
                    i = self.escape(i);
                    run_start = i;
                }
                b if b < 0x20 => {
                    // A raw newline or control character (btminer): escape it, which keeps the
                    // character itself in the decoded string.
                    self.out.push_str(&self.src[run_start..i]);
                    push_control_escape(&mut self.out, b);
                    i += 1;
                    run_start = i;
                }
                _ => i += 1,
            }
        }
        self.pos = i;
        if !closed {
            // The buffer ended inside the string: it is not a complete value.
            self.out.truncate(start_len);
            self.truncated = true;
            return;
        }
        self.last_closed = None;
        if is_key {
            self.key_done();
        } else {
            self.value_done(true, true);
        }
    }

    /// Copies one escape sequence at `i` (a backslash); returns the index after it.
    fn escape(&mut self, i: usize) -> usize {
        let bytes = self.src.as_bytes();
        match bytes.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.out.push_str(&self.src[i..i + 2]);
                i + 2
            }
            Some(b'u') => match hex4(bytes, i + 2) {
                Some(unit) if (0xD800..0xDC00).contains(&unit) => {
                    // A high surrogate must be followed by a low one, or the parser rejects it.
                    let low = (bytes.get(i + 6) == Some(&b'\\') && bytes.get(i + 7) == Some(&b'u'))
                        .then(|| hex4(bytes, i + 8))
                        .flatten()
                        .filter(|l| (0xDC00..0xE000).contains(l));
                    if low.is_some() {
                        self.out.push_str(&self.src[i..i + 12]);
                        i + 12
                    } else {
                        self.out.push_str("\\ufffd");
                        i + 6
                    }
                }
                Some(unit) if (0xDC00..0xE000).contains(&unit) => {
                    self.out.push_str("\\ufffd");
                    i + 6
                }
                Some(_) => {
                    self.out.push_str(&self.src[i..i + 6]);
                    i + 6
                }
                None => {
                    // `\u` without four hex digits: keep the backslash as a literal character.
                    self.out.push_str("\\\\");
                    i + 1
                }
            },
            // An unknown escape such as `\x` or a backslash at the very end: the backslash was
            // meant literally.
            _ => {
                self.out.push_str("\\\\");
                i + 1
            }
        }
    }

    /// A bare word outside strings: a number, a literal, `inf`/`nan`, or garbage.
    fn word(&mut self) {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        let mut end = start;
        while end < bytes.len() && is_word_byte(bytes[end]) {
            end += 1;
        }
        self.pos = end;
        // At the end of the buffer a word may have been cut (`54` of `5400`): not complete.
        let complete = end < bytes.len();
        let word = &self.src[start..end];
        let is_key = self.before_token();
        let start_len = self.out.len();
        if is_key {
            // An unquoted key (`{id:1}`): quote it.
            self.out.push('"');
            self.out.push_str(word);
            self.out.push('"');
            if !complete {
                self.out.truncate(start_len);
                self.truncated = true;
                return;
            }
            self.key_done();
            return;
        }
        push_word_value(&mut self.out, word);
        self.last_closed = None;
        if complete {
            self.value_done(false, true);
        } else {
            self.out.truncate(start_len);
            self.truncated = true;
        }
    }

    fn finish(mut self) -> Repaired {
        if self.stack.is_empty() {
            if !self.done_top {
                return Repaired {
                    text: String::new(),
                    truncated: self.truncated,
                };
            }
            // Drop whitespace that trailed the value before any garbage we stopped at.
            let keep = self.out.trim_end().len();
            self.out.truncate(keep);
            return Repaired {
                text: self.out,
                truncated: self.truncated,
            };
        }
        // The buffer ended inside a container: keep what was complete and close the rest.
        self.out.truncate(self.safe_len);
        let depth = self.safe_depth.min(self.stack.len());
        for f in self.stack[..depth].iter().rev() {
            self.out
                .push(if f.kind == Kind::Object { '}' } else { ']' });
        }
        Repaired {
            text: self.out,
            truncated: true,
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_')
}

/// Length of the UTF-8 character whose first byte is `b` (1 for a stray continuation byte).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

fn push_control_escape(out: &mut String, b: u8) {
    match b {
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "\\u{:04x}", b);
        }
    }
}

/// Writes a bare word as a JSON value: numbers and literals as they are, `inf`/`nan` as null,
/// numbers JSON does not allow (`+1`, `01`, `1.`) normalised, anything else as a string.
fn push_word_value(out: &mut String, word: &str) {
    // A number in JSON's grammar can still overflow f64 (`2e2121`), which the parser rejects.
    let in_range = || word.parse::<f64>().is_ok_and(f64::is_finite);
    if (is_json_number(word) && in_range()) || matches!(word, "true" | "false" | "null") {
        out.push_str(word);
        return;
    }
    let lower = word.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['-', '+']);
    match unsigned {
        "inf" | "infinity" | "nan" => out.push_str("null"),
        _ => match lower.as_str() {
            "true" => out.push_str("true"),
            "false" => out.push_str("false"),
            "null" | "none" => out.push_str("null"),
            _ => match word.parse::<f64>() {
                // Out of f64's range (`2e2121`): as unreadable as `inf`.
                Ok(v) if v.is_infinite() => out.push_str("null"),
                Ok(v) if v.is_finite() => {
                    use std::fmt::Write;
                    let _ = write!(out, "{v}");
                }
                _ => {
                    out.push('"');
                    out.push_str(word);
                    out.push('"');
                }
            },
        },
    }
}

/// Whether `s` is a number in JSON's grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fixed(raw: &str) -> (Value, bool) {
        let r = repair(raw.as_bytes());
        let v: Value = serde_json::from_str(&r.text)
            .unwrap_or_else(|e| panic!("{e}: {:?} -> {:?}", raw, r.text));
        (v, r.truncated)
    }

    #[test]
    fn table_of_repairs() {
        let cases: &[(&str, Value, bool)] = &[
            ("{\"a\":1}\0", json!({"a":1}), false),
            ("{\"a\":1,}", json!({"a":1}), false),
            ("{\"a\":[1,2,],}", json!({"a":[1,2]}), false),
            ("{\"a\":\"x\ny\"}", json!({"a":"x\ny"}), false),
            (
                "{\"a\":\"tab\there\u{1}\"}",
                json!({"a":"tab\there\u{1}"}),
                false,
            ),
            (
                "{\"S\":[{\"a\":1}{\"b\":2}]}",
                json!({"S":[{"a":1},{"b":2}]}),
                false,
            ),
            ("{\"S\":[,{\"a\":1}]}", json!({"S":[{"a":1}]}), false),
            ("{\"a\":1\"temp0\":2}", json!({"a":1,"temp0":2}), false),
            (
                "{\"a\":\"1\"\"temp0\":2}",
                json!({"a":"1","temp0":2}),
                false,
            ),
            (
                "{\"t\":inf,\"u\":-inf,\"v\":nan,\"w\":-nan,\"x\":NaN}",
                json!({"t":null,"u":null,"v":null,"w":null,"x":null}),
                false,
            ),
            (
                ",\"id\":1}{\"STATUS\":[{\"STATUS\":\"S\"}],\"id\":1}",
                json!({"STATUS":[{"STATUS":"S"}],"id":1}),
                false,
            ),
            (
                "{\"Msg\":{\"error_code\":[\"110\":\"2021-06-28 06:30:29\",\"111\":\"x\"]}}",
                json!({"Msg":{"error_code":{"110":"2021-06-28 06:30:29","111":"x"}}}),
                false,
            ),
            (
                "{\"STATUS\":[{\"a\":1}]}{\"STATS\":[{\"b\":2}]}",
                json!({"STATUS":[{"a":1}],"STATS":[{"b":2}]}),
                false,
            ),
            (
                "{\"a\":+5,\"b\":01,\"c\":1.}",
                json!({"a":5,"b":1,"c":1}),
                false,
            ),
            ("[2e2121,1]", json!([null, 1]), false),
            ("{\"a\":1}garbage", json!({"a":1}), false),
            ("{\"a\":,\"b\":2}", json!({"a":null,"b":2}), false),
            ("{\"a\":[1,,2]}", json!({"a":[1,2]}), false),
            ("{\"a\":[1,2}}", json!({"a":[1,2]}), false),
            ("{\"bad\":\"\\x41\"}", json!({"bad":"\\x41"}), false),
            ("{\"s\":\"\\ud800\"}", json!({"s":"\u{fffd}"}), false),
        ];
        for (raw, want, trunc) in cases {
            let (got, t) = fixed(raw);
            assert_eq!(&got, want, "repair of {raw:?}");
            assert_eq!(t, *trunc, "truncated flag for {raw:?}");
        }
    }

    #[test]
    fn truncated_buffers_keep_complete_values() {
        let cases: &[(&str, Value)] = &[
            (
                "{\"SUMMARY\":[{\"Elapsed\":5400,\"MHS av\":9501",
                json!({"SUMMARY":[{"Elapsed":5400}]}),
            ),
            (
                "{\"SUMMARY\":[{\"Elapsed\":5400,\"MHS av\":",
                json!({"SUMMARY":[{"Elapsed":5400}]}),
            ),
            (
                "{\"SUMMARY\":[{\"Elapsed\":5400,\"MH",
                json!({"SUMMARY":[{"Elapsed":5400}]}),
            ),
            (
                "{\"POOLS\":[{\"URL\":\"stratum+tcp://a:1\"},{\"URL\":\"strat",
                json!({"POOLS":[{"URL":"stratum+tcp://a:1"},{}]}),
            ),
            ("{\"a\":[", json!({"a":[]})),
            ("{\"a\":tr", json!({})),
            ("{", json!({})),
            ("{\"e\":[\"110\":\"t\",\"1", json!({"e":{"110":"t"}})),
        ];
        for (raw, want) in cases {
            let (got, t) = fixed(raw);
            assert_eq!(&got, want, "repair of {raw:?}");
            assert!(t, "{raw:?} should be flagged truncated");
        }
    }

    #[test]
    fn strings_are_kept_intact() {
        // Passwords and worker names that look like the broken patterns must survive unchanged.
        let tricky = [
            "a,}b",
            "}{",
            "[,{",
            "inf",
            "-nan",
            "x\"y",
            "back\\slash",
            ",\"id\":1}",
            "päss wörd €",
            "\"temp0",
        ];
        for s in tricky {
            let valid = json!({"POOLS":[{"User":s,"Pass":s}],"x":1}).to_string();
            // Make the reply invalid elsewhere so the token pass really runs.
            let broken = format!("{},}}", &valid[..valid.len() - 1]);
            let r = repair(broken.as_bytes());
            let v: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
            assert_eq!(v["POOLS"][0]["User"], json!(s), "{broken}");
            assert_eq!(v["POOLS"][0]["Pass"], json!(s), "{broken}");
        }
    }

    #[test]
    fn valid_json_is_identity_even_through_the_token_pass() {
        let docs = [
            r#"{"STATUS":[{"STATUS":"S","When":1718000000,"Code":11,"Msg":"Summary","Description":"cgminer 4.11.1"}],"SUMMARY":[{"Elapsed":5400,"MHS av":95012345.67}],"id":1}"#,
            "{ \"a\" : [ 1 , 2.5e-3 , -0 , true , null ] ,\n \"b\" : { } , \"c\" : [ ] , \"d\":\"\\u00e9\\n\\ud83d\\ude00\" }",
            "[{\"x\":[[[]]]}]",
        ];
        for d in docs {
            assert_eq!(repair_text_always(d).text, d);
            assert_eq!(repair(d.as_bytes()).text, d);
        }
    }

    #[test]
    fn invalid_utf8_and_no_json() {
        let r = repair(b"{\"a\":\"\xff\xfe\"}");
        let v: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
        assert_eq!(v["a"], json!("\u{fffd}\u{fffd}"));
        assert_eq!(repair(b"STATUS=S,When=1|").text, "");
        assert_eq!(repair(b"").text, "");
    }
}
