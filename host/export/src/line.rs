//! InfluxDB line protocol: `name,label=value,... value=<float> <timestamp>`, one
//! sample a line, timestamps in milliseconds (the request says `precision=ms`).
//!
//! The measurement is the metric name, the tags are its labels (sorted, empty ones
//! left out as the protocol has no empty tag values) and the single field is
//! `value`. VictoriaMetrics names such a series `<name>_value`, or `<name>` when
//! it runs with `-influxSkipSingleField`.

use std::fmt::Write;

use wasmeter_core::sample::Sample;

use crate::series::{NAME_LABEL, SeriesLabels};

/// The field that carries the value.
pub const FIELD: &str = "value";

/// The request's content type.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Encodes `samples` (with `extra` labels where a sample lacks them) as lines.
pub fn encode(samples: &[&Sample], extra: &[(String, String)]) -> Vec<u8> {
    let mut out = String::with_capacity(samples.len() * 64);
    for s in samples {
        let labels = SeriesLabels::of(s, extra);
        escape(&mut out, &s.name, &[',', ' ']);
        for (name, value) in labels.pairs().filter(|(n, _)| *n != NAME_LABEL) {
            out.push(',');
            escape(&mut out, name, &[',', '=', ' ']);
            out.push('=');
            escape(&mut out, value, &[',', '=', ' ']);
        }
        let _ = writeln!(out, " {FIELD}={:?} {}", s.value, s.timestamp_ms);
    }
    out.into_bytes()
}

/// Writes `text` with a backslash before each of `special` (and before a
/// backslash, so a value ending in one cannot escape the next separator), and
/// line breaks as spaces escaped (the protocol cannot carry them).
fn escape(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push_str("\\ "),
            c if special.contains(&c) || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmeter_core::sample::{Label, MetricKind};

    fn s(name: &str, labels: &[(&str, &str)], value: f64, ts: i64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: ts,
        }
    }

    fn text(samples: &[Sample], extra: &[(String, String)]) -> String {
        let refs: Vec<&Sample> = samples.iter().collect();
        String::from_utf8(encode(&refs, extra)).unwrap()
    }

    #[test]
    fn one_line_per_sample_with_sorted_tags_and_ms_timestamps() {
        let got = text(
            &[
                s(
                    "trade_vwap",
                    &[("symbol", "BTC"), ("feed", "a")],
                    101.25,
                    1_700_000_000_123,
                ),
                s("up", &[], 1.0, 5),
            ],
            &[("env".into(), "prod".into())],
        );
        assert_eq!(
            got,
            "trade_vwap,env=prod,feed=a,symbol=BTC value=101.25 1700000000123\nup,env=prod value=1.0 5\n"
        );
    }

    #[test]
    fn separators_in_names_and_values_are_escaped_and_empty_tags_left_out() {
        let got = text(&[s("m", &[("k", "a b,c=d\\"), ("e", "")], -0.5, 1)], &[]);
        assert_eq!(got, "m,k=a\\ b\\,c\\=d\\\\ value=-0.5 1\n");
    }

    #[test]
    fn large_and_small_values_keep_every_digit() {
        let got = text(&[s("m", &[], 1e300, 1), s("m", &[], 1.0e-7, 2)], &[]);
        assert_eq!(got, "m value=1e300 1\nm value=1e-7 2\n");
    }
}
