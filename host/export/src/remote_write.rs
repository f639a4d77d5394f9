//! Prometheus remote_write v1: a protobuf `WriteRequest`, snappy block-compressed.
//!
//! Encoded by hand: the request is four messages and six fields, and the host only
//! writes them (never reads), so a code generator and its runtime would be more
//! than the encoder. The wire format (proto3, `prometheus/prompb/remote.proto`
//! and `types.proto`):
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms
//! ```
//!
//! Each series' labels are sorted by name with `__name__` among them; a series'
//! samples keep their order (the pipeline produces them in time order).

use std::collections::HashMap;

use wasmeter_core::sample::Sample;

use crate::series::SeriesLabels;

/// The headers every remote_write request carries (the spec requires them).
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// Encodes `samples` (with `extra` labels where a sample lacks them) as a
/// snappy-compressed `WriteRequest`.
pub fn encode(samples: &[&Sample], extra: &[(String, String)]) -> Vec<u8> {
    let raw = encode_uncompressed(samples, extra);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy accepts any input below 4 GiB")
}

/// The protobuf bytes before compression.
pub fn encode_uncompressed(samples: &[&Sample], extra: &[(String, String)]) -> Vec<u8> {
    // Group by series, in order of first appearance.
    let mut index: HashMap<SeriesLabels, usize> = HashMap::new();
    let mut series: Vec<(SeriesLabels, Vec<(f64, i64)>)> = Vec::new();
    for s in samples {
        let labels = SeriesLabels::of(s, extra);
        let at = *index.entry(labels.clone()).or_insert_with(|| {
            series.push((labels, Vec::new()));
            series.len() - 1
        });
        series[at].1.push((s.value, s.timestamp_ms));
    }
    let mut out = Vec::with_capacity(samples.len() * 48);
    for (labels, points) in &series {
        let body = time_series_len(labels, points);
        tag(&mut out, 1, LEN);
        varint(&mut out, body as u64);
        for (name, value) in labels.pairs() {
            tag(&mut out, 1, LEN);
            varint(&mut out, label_len(name, value) as u64);
            string(&mut out, 1, name);
            string(&mut out, 2, value);
        }
        for &(value, ts) in points {
            tag(&mut out, 2, LEN);
            varint(&mut out, sample_len(ts) as u64);
            tag(&mut out, 1, FIXED64);
            out.extend_from_slice(&value.to_bits().to_le_bytes());
            tag(&mut out, 2, VARINT);
            varint(&mut out, ts as u64);
        }
    }
    out
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    tag(out, field, LEN);
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn string_len(s: &str) -> usize {
    1 + varint_len(s.len() as u64) + s.len()
}

fn label_len(name: &str, value: &str) -> usize {
    string_len(name) + string_len(value)
}

fn sample_len(ts: i64) -> usize {
    1 + 8 + 1 + varint_len(ts as u64)
}

fn time_series_len(labels: &SeriesLabels, points: &[(f64, i64)]) -> usize {
    let labels: usize = labels
        .pairs()
        .map(|(n, v)| {
            let l = label_len(n, v);
            1 + varint_len(l as u64) + l
        })
        .sum();
    let samples: usize = points
        .iter()
        .map(|&(_, ts)| {
            let l = sample_len(ts);
            1 + varint_len(l as u64) + l
        })
        .sum();
    labels + samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::{Label, MetricKind};

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, ts: i64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: ts,
        }
    }

    #[test]
    fn one_sample_is_the_bytes_the_spec_describes() {
        let s = sample("up", &[("job", "a")], 1.0, 1000);
        let got = encode_uncompressed(&[&s], &[]);
        let mut want = vec![0x0a, 40]; // timeseries, 40 bytes
        want.extend([0x0a, 14, 0x0a, 8]); // label { name: "__name__"
        want.extend(b"__name__");
        want.extend([0x12, 2]);
        want.extend(b"up");
        want.extend([0x0a, 8, 0x0a, 3]); // label { name: "job", value: "a" }
        want.extend(b"job");
        want.extend([0x12, 1]);
        want.extend(b"a");
        want.extend([0x12, 12, 0x09]); // sample { value: 1.0 (fixed64)
        want.extend(1.0f64.to_le_bytes());
        want.extend([0x10, 0xe8, 0x07]); // timestamp: 1000 }
        assert_eq!(got, want);
    }

    #[test]
    fn a_series_samples_share_one_time_series_and_labels_are_sorted() {
        let a1 = sample("m", &[("z", "1"), ("a", "2")], 1.5, 1);
        let b = sample("m", &[("a", "3")], 2.5, 2);
        let a2 = sample("m", &[("z", "1"), ("a", "2")], -3.0, 300_000_000_000);
        let decoded = decode(&encode_uncompressed(&[&a1, &b, &a2], &[]));
        assert_eq!(
            decoded,
            vec![
                (
                    vec![("__name__", "m"), ("a", "2"), ("z", "1")],
                    vec![(1.5, 1), (-3.0, 300_000_000_000)]
                ),
                (vec![("__name__", "m"), ("a", "3")], vec![(2.5, 2)]),
            ]
            .into_iter()
            .map(|(l, p)| (
                l.into_iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
                p
            ))
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn extra_labels_fill_in_but_never_override() {
        let s = sample("m", &[("host", "mine")], 1.0, 1);
        let extra = vec![
            ("host".to_string(), "other".to_string()),
            ("env".to_string(), "prod".to_string()),
        ];
        let decoded = decode(&encode_uncompressed(&[&s], &extra));
        let labels: Vec<(String, String)> = decoded[0].0.clone();
        assert_eq!(
            labels,
            [("__name__", "m"), ("env", "prod"), ("host", "mine")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn the_body_is_snappy_block_compressed() {
        let s = sample("m", &[], 1.0, 1);
        let body = encode(&[&s], &[]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(raw, encode_uncompressed(&[&s], &[]));
    }

    type Decoded = Vec<(Vec<(String, String)>, Vec<(f64, i64)>)>;

    /// A minimal reader of the same wire format, field by field.
    fn decode(mut b: &[u8]) -> Decoded {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (field, ts) = read_len(&mut b);
            assert_eq!(field, 1);
            let (mut ts, mut labels, mut points) = (ts, Vec::new(), Vec::new());
            while !ts.is_empty() {
                let (field, mut m) = read_len(&mut ts);
                if field == 1 {
                    let (_, n) = read_len(&mut m);
                    let (_, v) = read_len(&mut m);
                    labels.push((
                        String::from_utf8(n.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap(),
                    ));
                } else {
                    assert_eq!(m[0], 0x09);
                    let v = f64::from_le_bytes(m[1..9].try_into().unwrap());
                    assert_eq!(m[9], 0x10);
                    let mut rest = &m[10..];
                    points.push((v, read_varint(&mut rest) as i64));
                }
            }
            out.push((labels, points));
        }
        out
    }

    fn read_varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn read_len<'a>(b: &mut &'a [u8]) -> (u64, &'a [u8]) {
        let tag = read_varint(b);
        assert_eq!(tag & 7, 2);
        let len = read_varint(b) as usize;
        let (m, rest) = b.split_at(len);
        *b = rest;
        (tag >> 3, m)
    }
}
