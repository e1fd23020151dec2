//! Shared pieces for every cgminer-family reply parser: lenient number and text fields, the
//! one-or-list wrapper of multi-command sections, the STATUS object and its check, the
//! parse-then-repair decoder, and a parser for the text reply form (PROTOCOLS.md §1.2–§1.4).
//!
//! Firmwares disagree on types for the same key (`"GHS 5s":140258.58` or `"140258.58"`, an absent
//! board as `""`), so parse structs use [`Num`] and [`Text`] fields: a value of an unexpected
//! type becomes "missing" instead of failing the whole reply.

use crate::cgminer::repair::repair;
use crate::error::DriverError;
use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use std::borrow::Cow;
use std::fmt;

/// A number that may arrive as a JSON number, a numeric string (`"140258.58"`, `" 12 "`), `""`,
/// `null` or anything else; everything that is not a finite number is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Num(pub Option<f64>);

impl Num {
    /// The value, if it was a finite number.
    pub fn get(self) -> Option<f64> {
        self.0
    }

    /// The value as a non-negative integer (rounded), if it is one.
    pub fn as_u64(self) -> Option<u64> {
        self.0
            .filter(|v| *v >= 0.0 && *v < 1.8e19)
            .map(|v| v.round() as u64)
    }

    /// The value as a non-negative 32-bit integer (rounded), if it fits.
    pub fn as_u32(self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// The value as a signed integer (rounded), if it is one.
    pub fn as_i64(self) -> Option<i64> {
        self.0
            .filter(|v| v.abs() < 9.2e18)
            .map(|v| v.round() as i64)
    }
}

/// Parses a number out of a string the way firmwares write them: surrounding spaces allowed,
/// `inf`/`nan` and empty strings rejected.
pub fn parse_num(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

struct NumVisitor;

impl<'de> Visitor<'de> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a numeric string")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num(Some(v).filter(|v| v.is_finite())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
        Ok(Num(parse_num(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Num, D::Error> {
        d.deserialize_any(NumVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Num(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Num(None))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

/// A text field that may arrive as a string, a number or a bool (written as text); `null`,
/// lists and objects give an empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    /// The text, trimmed of surrounding whitespace.
    pub fn trimmed(&self) -> &str {
        self.0.trim()
    }

    /// The text, or `None` when it is empty or only whitespace.
    pub fn non_empty(&self) -> Option<&str> {
        Some(self.0.trim()).filter(|s| !s.is_empty())
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::default())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// [`Text`] borrowed from the reply where it can be (a string without escapes), for values
/// read and dropped within one parse, such as sensor strings, so they cost no copy. Numbers,
/// bools, `null`, lists and objects read as they do in [`Text`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRef<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for TextRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TextRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextRef(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextRef(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextRef(Cow::Owned(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                TextVisitor.visit_f64(v).map(|t| TextRef(Cow::Owned(t.0)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                TextVisitor.visit_i64(v).map(|t| TextRef(Cow::Owned(t.0)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                TextVisitor.visit_u64(v).map(|t| TextRef(Cow::Owned(t.0)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                TextVisitor.visit_bool(v).map(|t| TextRef(Cow::Owned(t.0)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TextRef::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TextRef::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TextRef::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TextRef::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Reads one JSON object as the `(key, value as text)` pairs of the keys `keep` selects, in
/// reply order, skipping every other value unparsed: vendor `STATS` records carry hundreds of
/// keys of which a parser wants a few. A list, scalar or `null` instead of an object gives no
/// pairs rather than failing the whole reply.
pub fn deserialize_kept_text<'de, D: Deserializer<'de>>(
    d: D,
    keep: fn(&str) -> bool,
) -> Result<Vec<(String, String)>, D::Error> {
    struct V(fn(&str) -> bool);
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            // Keys are borrowed from the reply: only the kept ones are copied.
            while let Some(TextRef(key)) = map.next_key::<TextRef<'de>>()? {
                if (self.0)(&key) {
                    let value: Text = map.next_value()?;
                    out.push((key.into_owned(), value.0));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V(keep))
}

/// A boolean that may arrive as `true`, `"true"`, `"Y"`, `1`; anything unrecognised is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(Some(v != 0)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(Some(v != 0)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Flag, E> {
                Ok(Flag(Some(v != 0.0)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                Ok(Flag(match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "y" | "yes" | "1" | "on" => Some(true),
                    "false" | "n" | "no" | "0" | "off" => Some(false),
                    _ => None,
                }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flag, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A section that is either a list (the first element is kept) or a bare value: multi-command
/// replies wrap each command's reply in a one-element list (PROTOCOLS.md §1.4), and `new_api`
/// replies make `STATUS` an object instead of a list. `null` and `[]` give `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrFirst<T>(pub Option<T>);

impl<T> Default for OneOrFirst<T> {
    fn default() -> Self {
        OneOrFirst(None)
    }
}

impl<T> OneOrFirst<T> {
    /// The value, if there was one.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// Takes the value out.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrFirst<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrFirst<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OneOrFirst(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|v| OneOrFirst(Some(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OneOrFirst(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OneOrFirst(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|v| OneOrFirst(Some(v)))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A list that may also arrive as a single object, `null` or an empty string (some forks write
/// an absent list as `""`); a value of any other type gives an empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T> std::ops::Deref for List<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(v) = seq.next_element::<T>()? {
                    out.push(v);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|v| List(vec![v]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(List::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One STATUS object (PROTOCOLS.md §1.3); lists and the `new_api` object form both parse
/// through `OneOrFirst<StatusEntry>`. A bare string (`"STATUS":"RESTART"` from `restart`,
/// `"BYE"` from `quit`, Whatsminer's flat `"STATUS":"S"`) becomes the severity and message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusEntry {
    /// Severity letter: S success, I informational, W warning, E error, F fatal.
    pub severity: Text,
    /// When the reply was made, unix seconds.
    pub when_unix_s: Num,
    /// The message code, unique per message (45 = access denied).
    pub code: Num,
    /// The message text (`Summary`, `Access denied to 'addpool' command`).
    pub msg: Text,
    /// The miner's description (cgminer version or `--api-description`).
    pub description: Text,
}

/// The fields of a STATUS object, as the firmware names them.
#[derive(Deserialize)]
struct StatusFields {
    #[serde(rename = "STATUS", default)]
    severity: Text,
    #[serde(rename = "When", alias = "when", default)]
    when_unix_s: Num,
    #[serde(rename = "Code", alias = "code", default)]
    code: Num,
    #[serde(rename = "Msg", alias = "msg", default)]
    msg: Text,
    #[serde(rename = "Description", alias = "description", default)]
    description: Text,
}

impl<'de> Deserialize<'de> for StatusEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a STATUS object or word")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusEntry, E> {
                Ok(StatusEntry {
                    severity: Text(v.to_owned()),
                    msg: Text(v.to_owned()),
                    ..Default::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StatusEntry, A::Error> {
                let f = StatusFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StatusEntry {
                    severity: f.severity,
                    when_unix_s: f.when_unix_s,
                    code: f.code,
                    msg: f.msg,
                    description: f.description,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The cgminer code for "access denied to a privileged command".
pub const CODE_ACCESS_DENIED: i64 = 45;
/// The cgminer code for "invalid command".
pub const CODE_INVALID_COMMAND: i64 = 14;

impl StatusEntry {
    /// The severity letter, upper-cased (`S`, `I`, `W`, `E`, `F`), or `?` when absent.
    pub fn letter(&self) -> char {
        self.severity
            .0
            .trim()
            .chars()
            .next()
            .map_or('?', |c| c.to_ascii_uppercase())
    }

    /// Whether the severity is an error (E or F).
    pub fn is_error(&self) -> bool {
        matches!(self.letter(), 'E' | 'F')
    }

    /// The numeric code, if any.
    pub fn code(&self) -> Option<i64> {
        self.code.as_i64()
    }
}

/// Turns a STATUS into a result: S, I and W pass; Code 45 is an authentication error; any other
/// E or F is the device refusing, with its own message. `None` (a reply without STATUS) passes:
/// whether the data the caller needs is there is the caller's check.
pub fn check_status(status: Option<&StatusEntry>) -> Result<(), DriverError> {
    let Some(s) = status else { return Ok(()) };
    let msg = s.msg.trimmed();
    if s.code() == Some(CODE_ACCESS_DENIED) {
        let msg = if msg.is_empty() { "access denied" } else { msg };
        return Err(DriverError::Auth(msg.to_owned()));
    }
    if s.is_error() {
        let msg = if msg.is_empty() {
            format!(
                "STATUS {} code {}",
                s.letter(),
                s.code().map_or_else(|| "?".to_owned(), |c| c.to_string())
            )
        } else {
            msg.to_owned()
        };
        return Err(DriverError::Rejected(msg));
    }
    Ok(())
}

/// A decoded reply and how it had to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The parsed reply.
    pub value: T,
    /// The direct parse failed and the repair pass was needed.
    pub repaired: bool,
    /// The reply was truncated: some records or fields are missing (set `partial`).
    pub truncated: bool,
}

/// Parses a reply into `T`: first directly (the fast path for healthy devices), else through
/// [`repair`], and finally through a `serde_json::Value` so duplicate keys resolve to the last
/// value instead of failing. Unreadable replies are [`DriverError::Malformed`].
pub fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<Decoded<T>, DriverError> {
    // Validating UTF-8 once for the whole buffer and parsing from `&str` spares serde_json a
    // validation pass per string, which on number-as-string replies is a third of the parse.
    let direct_result = match std::str::from_utf8(raw) {
        Ok(text) => serde_json::from_str::<T>(text),
        Err(_) => serde_json::from_slice::<T>(raw),
    };
    let direct = match direct_result {
        Ok(value) => {
            return Ok(Decoded {
                value,
                repaired: false,
                truncated: false,
            });
        }
        Err(e) => e,
    };
    let fixed = repair(raw);
    if fixed.text.is_empty() {
        return Err(DriverError::Malformed(format!(
            "no JSON in reply ({direct}): {}",
            excerpt(raw)
        )));
    }
    let typed = match serde_json::from_str::<T>(&fixed.text) {
        Ok(value) => {
            return Ok(Decoded {
                value,
                repaired: true,
                truncated: fixed.truncated,
            });
        }
        Err(e) => e,
    };
    // Derived structs reject a key that appears twice; a Value keeps the last one.
    if let Ok(value) =
        serde_json::from_str::<serde_json::Value>(&fixed.text).and_then(T::deserialize)
    {
        return Ok(Decoded {
            value,
            repaired: true,
            truncated: fixed.truncated,
        });
    }
    Err(DriverError::Malformed(format!(
        "unexpected reply shape ({typed}): {}",
        excerpt(raw)
    )))
}

/// The first bytes of a reply, printable, for error messages.
pub fn excerpt(raw: &[u8]) -> String {
    const MAX: usize = 120;
    let head = raw.get(..raw.len().min(MAX)).unwrap_or_default();
    let mut s: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if raw.len() > MAX {
        s.push('…');
    }
    s
}

/// One `|`-separated section of a text reply: `SUMMARY,Elapsed=5400,MHS av=9.5`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextSection {
    /// The section's name: its first token, or the key of the first field (`STATUS`, `POOL`).
    pub name: String,
    /// The `name=value` fields in order (a first token with `=` is also a field).
    pub fields: Vec<(String, String)>,
}

impl TextSection {
    /// The value of field `key` (last one if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of field `key` as a number.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(parse_num)
    }

    /// This section read as a STATUS entry.
    pub fn to_status(&self) -> StatusEntry {
        StatusEntry {
            severity: Text(self.get("STATUS").unwrap_or_default().to_owned()),
            when_unix_s: Num(self.num("When")),
            code: Num(self.num("Code")),
            msg: Text(self.get("Msg").unwrap_or_default().to_owned()),
            description: Text(self.get("Description").unwrap_or_default().to_owned()),
        }
    }
}

/// A text-form reply (PROTOCOLS.md §1.2): `STATUS=S,…|SUMMARY,…|`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextReply {
    /// Sections in reply order; the first is normally STATUS (or CMD for a multi-command reply).
    pub sections: Vec<TextSection>,
}

impl TextReply {
    /// The first STATUS section as a status entry.
    pub fn status(&self) -> Option<StatusEntry> {
        self.section("STATUS").map(TextSection::to_status)
    }

    /// The first section called `name`.
    pub fn section(&self, name: &str) -> Option<&TextSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Every section called `name` (e.g. each `POOL`).
    pub fn sections_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a TextSection> + 'a {
        self.sections.iter().filter(move |s| s.name == name)
    }
}

/// Parses a text-form reply. Backslash escapes (`\,` `\|` `\=` `\\`) are honoured. A reply that
/// does not start with `STATUS=` or `CMD=` is [`DriverError::Malformed`].
pub fn parse_text(raw: &[u8]) -> Result<TextReply, DriverError> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if !(text.starts_with("STATUS=") || text.starts_with("CMD=")) {
        return Err(DriverError::Malformed(format!(
            "not a cgminer text reply: {}",
            excerpt(raw)
        )));
    }
    let mut reply = TextReply::default();
    let mut section = TextSection::default();
    let mut token = String::new();
    let mut key: Option<String> = None;
    let mut first = true;
    let mut chars = text.chars();
    // Ends the current token: a `key=value` field, or a bare word naming the section.
    let end_token = |section: &mut TextSection,
                     token: &mut String,
                     key: &mut Option<String>,
                     first: &mut bool| {
        let value = std::mem::take(token);
        match key.take() {
            Some(k) => {
                if *first {
                    section.name = k.clone();
                }
                section.fields.push((k, value));
            }
            None if *first => section.name = value,
            None if value.is_empty() => {}
            None => section.fields.push((value, String::new())),
        }
        *first = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    token.push(n);
                }
            }
            '=' if key.is_none() => key = Some(std::mem::take(&mut token)),
            ',' => end_token(&mut section, &mut token, &mut key, &mut first),
            '|' => {
                end_token(&mut section, &mut token, &mut key, &mut first);
                reply.sections.push(std::mem::take(&mut section));
                first = true;
            }
            c => token.push(c),
        }
    }
    if !token.is_empty() || key.is_some() {
        end_token(&mut section, &mut token, &mut key, &mut first);
    }
    if !section.name.is_empty() || !section.fields.is_empty() {
        reply.sections.push(section);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Nums {
        #[serde(default)]
        a: Num,
        #[serde(default)]
        b: Num,
        #[serde(default)]
        c: Num,
        #[serde(default)]
        d: Num,
        #[serde(default)]
        e: Num,
        #[serde(default)]
        f: Num,
        #[serde(default)]
        g: Num,
        #[serde(default)]
        h: Num,
    }

    #[test]
    fn numbers_in_every_shape() {
        let n: Nums = serde_json::from_str(
            r#"{"a":140258.58,"b":"140258.58","c":" 12 ","d":"","e":null,"f":"inf","g":[1],"h":{"x":1}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.a.get(), Some(140258.58));
        assert_eq!(n.b.get(), Some(140258.58));
        assert_eq!(n.c.as_u32(), Some(12));
        for missing in [n.d, n.e, n.f, n.g, n.h] {
            assert_eq!(missing.get(), None);
        }
        let n: Nums = serde_json::from_str(r#"{"a":"nan","b":-5,"c":"-0.5"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.a.get(), None);
        assert_eq!(n.b.as_u64(), None);
        assert_eq!(n.b.as_i64(), Some(-5));
        assert_eq!(n.c.get(), Some(-0.5));
    }

    #[test]
    fn borrowed_text_borrows_plain_strings_and_reads_the_rest_like_text() {
        #[derive(Deserialize)]
        struct T<'a> {
            #[serde(borrow)]
            v: Vec<TextRef<'a>>,
        }
        let json = r#"{"v":["41-38","a\"b",12.5,-3,7,true,null,[1],{"x":1}]}"#;
        let t: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(t.v[0].0, Cow::Borrowed("41-38")));
        assert!(matches!(t.v[1].0, Cow::Owned(ref s) if s == "a\"b"));
        let text: Vec<&str> = t.v.iter().map(|t| t.0.as_ref()).collect();
        assert_eq!(
            text,
            ["41-38", "a\"b", "12.5", "-3", "7", "true", "", "", ""]
        );
    }

    #[derive(Deserialize)]
    struct Wrapped {
        #[serde(rename = "STATUS", default)]
        status: OneOrFirst<StatusEntry>,
    }

    #[test]
    fn status_as_list_object_or_missing() {
        let list: Wrapped =
            serde_json::from_str(r#"{"STATUS":[{"STATUS":"S","When":1718000000,"Code":11,"Msg":"Summary","Description":"cgminer 4.11.1"},{"STATUS":"E"}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let s = list.status.get().cloned().unwrap_or_default();
        assert_eq!(s.letter(), 'S');
        assert_eq!(s.code(), Some(11));
        assert_eq!(s.when_unix_s.as_i64(), Some(1718000000));
        assert_eq!(s.description.0, "cgminer 4.11.1");
        let obj: Wrapped = serde_json::from_str(
            r#"{"STATUS":{"STATUS":"S","when":1718000000,"Msg":"stats","api_version":"1.0.0"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(obj.status.get().map(|s| s.msg.0.as_str()), Some("stats"));
        let none: Wrapped =
            serde_json::from_str(r#"{"STATUS":[]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.status.get().is_none());
        let absent: Wrapped = serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
        assert!(absent.status.get().is_none());
    }

    #[test]
    fn status_check_table() {
        let entry = |sev: &str, code: f64, msg: &str| StatusEntry {
            severity: Text(sev.into()),
            code: Num(Some(code)),
            msg: Text(msg.into()),
            ..Default::default()
        };
        assert!(check_status(Some(&entry("S", 11.0, "Summary"))).is_ok());
        assert!(check_status(Some(&entry("I", 118.0, "ASC 0 set info"))).is_ok());
        assert!(check_status(Some(&entry("W", 8.0, "warn"))).is_ok());
        assert!(check_status(None).is_ok());
        match check_status(Some(&entry(
            "E",
            45.0,
            "Access denied to 'addpool' command",
        ))) {
            Err(DriverError::Auth(m)) => assert_eq!(m, "Access denied to 'addpool' command"),
            other => panic!("{other:?}"),
        }
        match check_status(Some(&entry("E", 14.0, "Invalid command"))) {
            Err(DriverError::Rejected(m)) => assert_eq!(m, "Invalid command"),
            other => panic!("{other:?}"),
        }
        match check_status(Some(&entry("F", 99.0, ""))) {
            Err(DriverError::Rejected(m)) => assert_eq!(m, "STATUS F code 99"),
            other => panic!("{other:?}"),
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Summary {
        #[serde(rename = "Elapsed", default)]
        elapsed: Num,
        #[serde(rename = "MHS av", default)]
        mhs_av: Num,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct SummaryReply {
        #[serde(rename = "SUMMARY", default)]
        summary: OneOrFirst<Summary>,
    }

    #[test]
    fn decode_direct_repaired_truncated_and_duplicates() {
        let d = decode::<SummaryReply>(br#"{"SUMMARY":[{"Elapsed":5400,"MHS av":"9.5"}],"id":1}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!d.repaired && !d.truncated);
        assert_eq!(
            d.value.summary.get().and_then(|s| s.mhs_av.get()),
            Some(9.5)
        );

        let d = decode::<SummaryReply>(b"{\"SUMMARY\":[{\"Elapsed\":5400,\"MHS av\":9.5,}],}\0")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(d.repaired && !d.truncated);
        assert_eq!(
            d.value.summary.get().and_then(|s| s.elapsed.as_u64()),
            Some(5400)
        );

        let d = decode::<SummaryReply>(br#"{"SUMMARY":[{"Elapsed":5400,"MHS av":9"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(d.repaired && d.truncated);
        assert_eq!(
            d.value
                .summary
                .get()
                .map(|s| (s.elapsed.as_u64(), s.mhs_av.get())),
            Some((Some(5400), None))
        );

        let d = decode::<SummaryReply>(br#"{"SUMMARY":[{"Elapsed":1,"Elapsed":2}]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d.value.summary.get().and_then(|s| s.elapsed.as_u64()),
            Some(2)
        );

        assert!(matches!(
            decode::<SummaryReply>(b"\xff\xfegarbage"),
            Err(DriverError::Malformed(_))
        ));
        assert!(matches!(
            decode::<SummaryReply>(b"[1,2]"),
            Err(DriverError::Malformed(_))
        ));
    }

    #[test]
    fn text_replies() {
        let r = parse_text(
            b"STATUS=S,When=1718000000,Code=11,Msg=Summary,Description=cgminer 4.11.1|SUMMARY,Elapsed=5400,MHS av=95012345.67,Accepted=812,Rejected=3|\0",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.sections.len(), 2);
        let st = r.status().unwrap_or_default();
        assert_eq!(
            (st.letter(), st.code(), st.msg.0.as_str()),
            ('S', Some(11), "Summary")
        );
        let s = r.section("SUMMARY").cloned().unwrap_or_default();
        assert_eq!(s.num("MHS av"), Some(95012345.67));
        assert_eq!(s.num("Accepted"), Some(812.0));

        let r = parse_text(
            b"STATUS=S,Code=7,Msg=2 Pool(s)|POOL=0,URL=stratum+tcp://a:1,User=w\\,1|POOL=1,URL=b|",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let pools: Vec<_> = r.sections_named("POOL").collect();
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].get("User"), Some("w,1"));
        assert_eq!(pools[1].num("POOL"), Some(1.0));

        assert!(matches!(
            parse_text(b"{\"STATUS\":[]}"),
            Err(DriverError::Malformed(_))
        ));
        assert!(matches!(parse_text(b""), Err(DriverError::Malformed(_))));
    }
}
