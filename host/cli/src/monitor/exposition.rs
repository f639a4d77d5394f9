//! The Prometheus text format 0.0.4 and OpenMetrics 1.0 writers: one family at a
//! time, `# HELP` and `# TYPE` first, counters' samples with `_total`, escaped
//! label values, and `# EOF` at the end of OpenMetrics.

use std::fmt::Write;

use super::names::{Kind, MetricDef};

/// The content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header asks for it, else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Writes families of samples.
#[derive(Debug)]
pub struct Writer {
    format: Format,
    out: String,
    /// The current family: its sample name and kind.
    sample_name: String,
}

impl Writer {
    /// An empty exposition.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            out: String::with_capacity(16 << 10),
            sample_name: String::new(),
        }
    }

    /// Starts a family of a self-metric.
    pub fn family(&mut self, def: &MetricDef) {
        self.family_named(def.name, def.kind, def.help);
    }

    /// Starts a family: `name` may end with `_total` for a counter (it is removed
    /// from the family name and put on every sample).
    pub fn family_named(&mut self, name: &str, kind: Kind, help: &str) {
        let base = match kind {
            Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
            Kind::Gauge => name,
        };
        self.sample_name.clear();
        self.sample_name.push_str(base);
        if kind == Kind::Counter {
            self.sample_name.push_str("_total");
        }
        let (family, kind) = match (self.format, kind) {
            (Format::Text, Kind::Counter) => (self.sample_name.as_str(), "counter"),
            (Format::OpenMetrics, Kind::Counter) => (base, "counter"),
            (_, Kind::Gauge) => (base, "gauge"),
        };
        if !help.is_empty() {
            let _ = writeln!(self.out, "# HELP {family} {}", escape_help(help));
        }
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(&self.sample_name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The exposition (OpenMetrics: with its `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `name` as a valid metric or label name: invalid characters become `_`.
pub fn sanitize_name(name: &str, allow_colon: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_openmetrics_ends_with_eof() {
        let def = MetricDef {
            name: "x_bytes",
            kind: Kind::Counter,
            help: "a\nb",
        };
        let mut w = Writer::new(Format::OpenMetrics);
        w.family(&def);
        w.sample(&[("l", "a\"b\\c\nd")], 2.0);
        assert_eq!(
            w.finish(),
            "# HELP x_bytes a\\nb\n# TYPE x_bytes counter\nx_bytes_total{l=\"a\\\"b\\\\c\\nd\"} 2\n# EOF\n"
        );
        let mut w = Writer::new(Format::Text);
        w.family_named("y_total", Kind::Counter, "");
        w.sample(&[], f64::INFINITY);
        assert_eq!(w.finish(), "# TYPE y_total counter\ny_total +Inf\n");
    }

    #[test]
    fn negotiation_and_names() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(sanitize_name("1a-b:c", false), "_1a_b_c");
        assert_eq!(sanitize_name("a:b", true), "a:b");
    }
}
