//! Remote-write wire format: the protobuf `WriteRequest`, encoded by hand, in a snappy block.
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }
//! ```
//!
//! Because `WriteRequest` has a single repeated field, two encoded requests laid end to end
//! are one valid request holding both sets of series; the sender relies on that to merge
//! small queued batches into one HTTP request.

/// Protobuf wire type 1: 64-bit little-endian.
const WIRE_I64: u8 = 1;
/// Protobuf wire type 2: length-delimited.
const WIRE_LEN: u8 = 2;
/// Protobuf wire type 0: varint.
const WIRE_VARINT: u8 = 0;

const fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

/// Number of bytes of `v` as a protobuf varint.
fn varint_len(v: u64) -> usize {
    // 7 bits per byte; at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn label_len(name: &str, value: &str) -> usize {
    1 + varint_len(name.len() as u64)
        + name.len()
        + 1
        + varint_len(value.len() as u64)
        + value.len()
}

fn sample_len(timestamp_ms: i64) -> usize {
    // Negative int64 values are their two's complement as a 10-byte varint, as protobuf says.
    1 + 8 + 1 + varint_len(timestamp_ms as u64)
}

/// Appends one `TimeSeries` (field 1 of `WriteRequest`) to `out`.
///
/// `labels` must already be sorted by name and valid; every value and timestamp is written,
/// zeros included, so a decoder reads back exactly what was given (`-0.0` and NaN payloads too).
pub(crate) fn encode_series(out: &mut Vec<u8>, labels: &[(&str, &str)], samples: &[(i64, f64)]) {
    let mut series_len = 0;
    for (name, value) in labels {
        let len = label_len(name, value);
        series_len += 1 + varint_len(len as u64) + len;
    }
    for &(timestamp_ms, _) in samples {
        let len = sample_len(timestamp_ms);
        series_len += 1 + varint_len(len as u64) + len;
    }
    out.reserve(1 + varint_len(series_len as u64) + series_len);
    out.push(tag(1, WIRE_LEN));
    put_varint(out, series_len as u64);
    for (name, value) in labels {
        out.push(tag(1, WIRE_LEN));
        put_varint(out, label_len(name, value) as u64);
        out.push(tag(1, WIRE_LEN));
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        out.push(tag(2, WIRE_LEN));
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
    for &(timestamp_ms, value) in samples {
        out.push(tag(2, WIRE_LEN));
        put_varint(out, sample_len(timestamp_ms) as u64);
        out.push(tag(1, WIRE_I64));
        out.extend_from_slice(&value.to_bits().to_le_bytes());
        out.push(tag(2, WIRE_VARINT));
        put_varint(out, timestamp_ms as u64);
    }
}

#[cfg(test)]
pub(crate) mod decode {
    //! A small decoder of `WriteRequest`, only to check the encoder in tests.

    /// One decoded series: labels in wire order and samples as (timestamp_ms, value).
    pub(crate) type Series = (Vec<(String, String)>, Vec<(i64, f64)>);

    fn varint(buf: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
            assert!(shift < 70, "varint too long");
        }
    }

    /// Splits a message into (field, wire type, payload) triples; varints come as their value.
    fn fields(buf: &[u8]) -> Vec<(u64, u64, Vec<u8>, u64)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let key = varint(buf, &mut pos);
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((field, wire, Vec::new(), varint(buf, &mut pos))),
                1 => {
                    out.push((field, wire, buf[pos..pos + 8].to_vec(), 0));
                    pos += 8;
                }
                2 => {
                    let len = varint(buf, &mut pos) as usize;
                    out.push((field, wire, buf[pos..pos + len].to_vec(), 0));
                    pos += len;
                }
                other => panic!("unexpected wire type {other}"),
            }
        }
        out
    }

    /// Decodes a whole `WriteRequest`.
    pub(crate) fn write_request(buf: &[u8]) -> Vec<Series> {
        let mut series = Vec::new();
        for (field, wire, ts, _) in fields(buf) {
            assert_eq!((field, wire), (1, 2), "WriteRequest holds only field 1");
            let mut labels = Vec::new();
            let mut samples = Vec::new();
            for (field, wire, msg, _) in fields(&ts) {
                match (field, wire) {
                    (1, 2) => {
                        let mut name = String::new();
                        let mut value = String::new();
                        for (f, w, bytes, _) in fields(&msg) {
                            assert_eq!(w, 2);
                            let s = String::from_utf8(bytes).unwrap();
                            match f {
                                1 => name = s,
                                2 => value = s,
                                _ => panic!("unexpected label field {f}"),
                            }
                        }
                        labels.push((name, value));
                    }
                    (2, 2) => {
                        let mut value = 0.0;
                        let mut timestamp_ms = 0;
                        for (f, w, bytes, v) in fields(&msg) {
                            match (f, w) {
                                (1, 1) => {
                                    value = f64::from_bits(u64::from_le_bytes(
                                        bytes.try_into().unwrap(),
                                    ))
                                }
                                (2, 0) => timestamp_ms = v as i64,
                                _ => panic!("unexpected sample field {f}/{w}"),
                            }
                        }
                        samples.push((timestamp_ms, value));
                    }
                    _ => panic!("unexpected series field {field}/{wire}"),
                }
            }
            series.push((labels, samples));
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_the_encoding() {
        for v in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
        }
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn one_series_matches_hand_computed_bytes() {
        let mut out = Vec::new();
        encode_series(&mut out, &[("__name__", "up")], &[(1000, 1.0)]);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x0a, 30,                                   // WriteRequest.timeseries, 30 bytes
              0x0a, 14,                                 // TimeSeries.labels, 14 bytes
                0x0a, 8, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_',
                0x12, 2, b'u', b'p',
              0x12, 12,                                 // TimeSeries.samples, 12 bytes
                0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,     // value = 1.0 (fixed64)
                0x10, 0xe8, 0x07,                       // timestamp = 1000 (varint)
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn encoded_series_decode_to_what_went_in() {
        let mut out = Vec::new();
        let labels = [
            ("__name__", "hashrate_ths"),
            ("device", "é\"x\n"),
            ("site", ""),
        ];
        let samples = [
            (1_700_000_000_000, 110.25),
            (-5, -0.0),
            (0, f64::INFINITY),
            (i64::MAX, f64::MIN_POSITIVE),
        ];
        encode_series(&mut out, &labels, &samples);
        encode_series(&mut out, &[("__name__", "b")], &[]);
        let decoded = decode::write_request(&out);
        assert_eq!(decoded.len(), 2);
        let (got_labels, got_samples) = &decoded[0];
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got_labels, &want);
        assert_eq!(got_samples.len(), samples.len());
        for (got, want) in got_samples.iter().zip(samples) {
            assert_eq!(got.0, want.0);
            assert_eq!(got.1.to_bits(), want.1.to_bits());
        }
        assert_eq!(decoded[1].0, vec![("__name__".into(), "b".into())]);
        assert!(decoded[1].1.is_empty());
    }

    #[test]
    fn concatenated_requests_are_one_request() {
        let mut a = Vec::new();
        encode_series(&mut a, &[("__name__", "a")], &[(1, 1.0)]);
        let mut b = Vec::new();
        encode_series(&mut b, &[("__name__", "b")], &[(2, 2.0)]);
        let mut both = a.clone();
        both.extend_from_slice(&b);
        let decoded = decode::write_request(&both);
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[1].1, vec![(2, 2.0)]);
    }

    #[test]
    fn nan_payload_bits_survive() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002); // Prometheus' staleness marker
        let mut out = Vec::new();
        encode_series(&mut out, &[("__name__", "x")], &[(7, stale)]);
        let decoded = decode::write_request(&out);
        assert_eq!(decoded[0].1[0].1.to_bits(), stale.to_bits());
    }
}
