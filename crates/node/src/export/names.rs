//! Prometheus naming rules for metric and label names, shared by the text encoder (which
//! sanitises) and remote-write (which rejects).

use std::borrow::Cow;

/// Whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`, the Prometheus metric name rule.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' || first == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`, the Prometheus label name rule.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A valid metric name made from `name`: each disallowed character becomes `_`, a leading
/// digit gets a `_` in front, and an empty name becomes `_`.
pub fn sanitize_metric_name(name: &str) -> Cow<'_, str> {
    if is_valid_metric_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(sanitize(name, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == ':'
    }))
}

/// A valid label name made from `name`, with the same replacements as
/// [`sanitize_metric_name`] (a `:` becomes `_` too).
pub fn sanitize_label_name(name: &str) -> Cow<'_, str> {
    if is_valid_label_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_'))
}

fn sanitize(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if allowed(c) { c } else { '_' }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_prometheus_rule() {
        for ok in ["a", "_", ":", "hashmesh_up", "job:rate5m", "A9_:"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names_follow_the_prometheus_rule() {
        for ok in ["a", "_", "__name__", "site_1"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a:b", "a-b", "ü"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn sanitising_replaces_bad_characters_and_leading_digits() {
        assert_eq!(sanitize_metric_name("hashmesh_up"), "hashmesh_up");
        assert_eq!(sanitize_metric_name("miner.hash-rate"), "miner_hash_rate");
        assert_eq!(sanitize_metric_name("5m:rate"), "_5m:rate");
        assert_eq!(sanitize_metric_name(""), "_");
        assert_eq!(sanitize_metric_name("temp°c"), "temp_c");
        assert_eq!(sanitize_label_name("a:b"), "a_b");
        assert_eq!(sanitize_label_name("1st"), "_1st");
        assert!(is_valid_label_name(&sanitize_label_name("ü-x")));
    }
}
