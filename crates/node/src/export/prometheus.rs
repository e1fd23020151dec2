//! The Prometheus text exposition format 0.0.4, as served at `/metrics`.
//!
//! [`TextEncoder`] writes families of samples. Names are **sanitised, not rejected**: a
//! character outside the Prometheus rules becomes `_` and a leading digit gets a `_` in front
//! (see [`super::names`]), so a device-derived name can never break the whole page. Label values
//! are escaped (`\\`, `\"`, `\n`); values are spelt the way Prometheus spells them (`NaN`, `+Inf`,
//! `-Inf`).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::names::{sanitize_label_name, sanitize_metric_name};

/// The Content-Type of a page written by [`TextEncoder`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down (temperatures, hashrate).
    Gauge,
    /// A value that only goes up, reset on restart (shares accepted, bytes sent).
    Counter,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// Writes a page of the Prometheus text exposition format 0.0.4.
///
/// Samples belong to the family most recently started with [`TextEncoder::family`]. Starting a
/// family whose name was already used continues that family (its samples stay together and its
/// `# HELP`/`# TYPE` lines are written once, from the first call), because Prometheus rejects a
/// page where one family appears twice. A sample written before any family starts an untyped
/// family of its own name, without `# HELP` or `# TYPE`.
#[derive(Debug, Default)]
pub struct TextEncoder {
    /// Text of each family, in the order the families were first started.
    families: Vec<String>,
    /// Family name -> index in `families`.
    index: HashMap<String, usize>,
    current: Option<usize>,
}

impl TextEncoder {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a metric family: writes `# HELP` and `# TYPE` once (kind: gauge|counter).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) {
        let name = sanitize_metric_name(name);
        if let Some(&i) = self.index.get(name.as_ref()) {
            self.current = Some(i);
            return;
        }
        let mut text = String::with_capacity(64 + name.len() * 2 + help.len());
        text.push_str("# HELP ");
        text.push_str(&name);
        text.push(' ');
        escape_help(&mut text, help);
        text.push_str("\n# TYPE ");
        text.push_str(&name);
        text.push(' ');
        text.push_str(kind.as_str());
        text.push('\n');
        self.open(name.into_owned(), text);
    }

    /// One sample line of the current family, with label values escaped (\\, \", \n).
    ///
    /// A label name repeated within one sample is written once, with its first value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let name = sanitize_metric_name(name);
        let i = match self.current {
            Some(i) => i,
            None => self.open(name.to_string(), String::new()),
        };
        let out = &mut self.families[i];
        out.push_str(&name);
        if !labels.is_empty() {
            out.push('{');
            let mut written = 0;
            for (k, (label, label_value)) in labels.iter().enumerate() {
                let label = sanitize_label_name(label);
                let repeated = labels[..k]
                    .iter()
                    .any(|(earlier, _)| sanitize_label_name(earlier) == label);
                if repeated {
                    continue;
                }
                if written > 0 {
                    out.push(',');
                }
                out.push_str(&label);
                out.push_str("=\"");
                escape_label_value(out, label_value);
                out.push('"');
                written += 1;
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }

    /// The page, families in the order they were first started.
    pub fn finish(self) -> String {
        let len = self.families.iter().map(String::len).sum();
        let mut page = String::with_capacity(len);
        for family in &self.families {
            page.push_str(family);
        }
        page
    }

    fn open(&mut self, name: String, text: String) -> usize {
        let i = self.families.len();
        self.families.push(text);
        self.index.insert(name, i);
        self.current = Some(i);
        i
    }
}

/// Escapes a `# HELP` text: backslash and newline.
fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `value` as Prometheus does: `NaN`, `+Inf`, `-Inf`, integers without a fraction, and
/// the shortest text that reads back to the same float otherwise.
pub(crate) fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Exact: every integer below 2^53 is representable, and 1e15 < 2^53.
        let _ = write!(out, "{}", value as i64);
    } else if value.abs() >= 1e-5 && value.abs() < 1e15 {
        let _ = write!(out, "{value}");
    } else {
        // Very large or small: exponent form keeps the line short ("1e300", not 301 digits).
        let _ = write!(out, "{value:e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn a_page_has_help_type_and_samples_in_order() {
        let mut enc = TextEncoder::new();
        enc.family("hashmesh_up", "Whether the node is up.", MetricKind::Gauge);
        enc.sample("hashmesh_up", &[], 1.0);
        enc.family(
            "hashmesh_shares_accepted_total",
            "Shares accepted.",
            MetricKind::Counter,
        );
        enc.sample(
            "hashmesh_shares_accepted_total",
            &[("site", "a"), ("rack", "r1")],
            1234.0,
        );
        assert_eq!(
            enc.finish(),
            "# HELP hashmesh_up Whether the node is up.\n\
             # TYPE hashmesh_up gauge\n\
             hashmesh_up 1\n\
             # HELP hashmesh_shares_accepted_total Shares accepted.\n\
             # TYPE hashmesh_shares_accepted_total counter\n\
             hashmesh_shares_accepted_total{site=\"a\",rack=\"r1\"} 1234\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut enc = TextEncoder::new();
        enc.family("m", "line one\nback\\slash \"quoted\"", MetricKind::Gauge);
        enc.sample("m", &[("v", "a\\b\"c\nd")], 2.5);
        assert_eq!(
            enc.finish(),
            "# HELP m line one\\nback\\\\slash \"quoted\"\n\
             # TYPE m gauge\n\
             m{v=\"a\\\\b\\\"c\\nd\"} 2.5\n"
        );
    }

    #[test]
    fn special_values_are_spelt_as_prometheus_does() {
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(0.0), "0");
        assert_eq!(value(-3.0), "-3");
        assert_eq!(value(0.1), "0.1");
        assert_eq!(value(123.456), "123.456");
        assert_eq!(value(1e300), "1e300");
        assert_eq!(value(1.5e-7), "1.5e-7");
        assert_eq!(value(123456789012345680.0), "1.2345678901234568e17");
        for v in [0.1, 1e300, 1.5e-7, 123.456, -7.25e20, f64::MIN_POSITIVE] {
            assert_eq!(value(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn bad_names_are_sanitised_and_repeated_labels_dropped() {
        let mut enc = TextEncoder::new();
        enc.family("miner.temp-c", "Temperature.", MetricKind::Gauge);
        enc.sample(
            "miner.temp-c",
            &[("board-id", "1"), ("9x", "2"), ("board_id", "3")],
            70.0,
        );
        assert_eq!(
            enc.finish(),
            "# HELP miner_temp_c Temperature.\n\
             # TYPE miner_temp_c gauge\n\
             miner_temp_c{board_id=\"1\",_9x=\"2\"} 70\n"
        );
    }

    #[test]
    fn a_family_started_twice_stays_together() {
        let mut enc = TextEncoder::new();
        enc.family("a", "A.", MetricKind::Gauge);
        enc.sample("a", &[("i", "1")], 1.0);
        enc.family("b", "B.", MetricKind::Gauge);
        enc.sample("b", &[], 2.0);
        enc.family("a", "A again.", MetricKind::Counter);
        enc.sample("a", &[("i", "2")], 3.0);
        assert_eq!(
            enc.finish(),
            "# HELP a A.\n# TYPE a gauge\na{i=\"1\"} 1\na{i=\"2\"} 3\n\
             # HELP b B.\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn a_sample_without_a_family_is_untyped() {
        let mut enc = TextEncoder::new();
        enc.sample("loose", &[], 4.0);
        assert_eq!(enc.finish(), "loose 4\n");
    }
}
