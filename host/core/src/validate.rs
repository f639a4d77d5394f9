//! The rules plugin output must follow before the host accepts it.
//!
//! Plugins are untrusted: every sample, topic update and delta they return is checked
//! here (bounded counts and sizes, valid names, finite numbers) before anything
//! downstream sees it. A violation fails the call with a message naming the item.

use thiserror::Error;

use crate::delta::Delta;
use crate::field::{Field, FieldValue};
use crate::sample::{Sample, series_topic_len};
use crate::update::{CollectOutput, TopicUpdate};

/// Bounds on what one plugin call may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLimits {
    /// Samples per call.
    pub max_samples: usize,
    /// Topic updates per call, and (apart) stream events per call.
    pub max_updates: usize,
    /// Fields per topic update or delta.
    pub max_fields: usize,
    /// Labels per sample.
    pub max_labels: usize,
    /// Bytes in a metric, label or field name.
    pub max_name_bytes: usize,
    /// Bytes in a topic name.
    pub max_topic_bytes: usize,
    /// Bytes in a label value or a text field value.
    pub max_value_bytes: usize,
    /// Record errors per call (the rest are counted, not kept).
    pub max_record_errors: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self {
            max_samples: 100_000,
            max_updates: 100_000,
            max_fields: 256,
            max_labels: 16,
            max_name_bytes: 200,
            max_topic_bytes: 256,
            max_value_bytes: 4096,
            max_record_errors: 10_000,
        }
    }
}

/// Why plugin output was refused; the message names the offending item.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{item}: {problem}")]
pub struct OutputError {
    /// Which item, e.g. "sample #3 `trade_price`".
    pub item: String,
    /// What is wrong with it.
    pub problem: String,
}

fn fail(item: impl Into<String>, problem: impl Into<String>) -> OutputError {
    OutputError {
        item: item.into(),
        problem: problem.into(),
    }
}

/// Shortens untrusted text for an error message.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// True for a Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// True for a label or field name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True for a topic name: non-empty `/`-separated segments of `[A-Za-z0-9_.:-]`.
pub fn is_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        })
}

/// The topic namespace only the host writes (plugin notices, error summaries).
pub const HOST_PREFIX: &str = "_wasmeter";

/// True for a topic in the host's own namespace.
pub fn is_host_topic(topic: &str) -> bool {
    topic
        .strip_prefix(HOST_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn check_count(what: &str, n: usize, max: usize) -> Result<(), OutputError> {
    if n > max {
        return Err(fail(
            format!("{n} {what}"),
            format!("more than the limit of {max} per call"),
        ));
    }
    Ok(())
}

/// Names the item in an error; only called when there is one (no allocation on
/// the success path, which runs for every sample).
type Item<'a> = &'a dyn Fn() -> String;

fn check_name(
    item: Item<'_>,
    kind: &str,
    name: &str,
    max: usize,
    ok: fn(&str) -> bool,
) -> Result<(), OutputError> {
    if name.len() > max {
        return Err(fail(
            item(),
            format!("{kind} `{}` is longer than {max} bytes", excerpt(name)),
        ));
    }
    if !ok(name) {
        return Err(fail(
            item(),
            format!("{kind} `{}` is not valid", excerpt(name)),
        ));
    }
    Ok(())
}

/// Checks one sample.
pub fn check_sample(index: usize, s: &Sample, limits: &OutputLimits) -> Result<(), OutputError> {
    check_measurement(
        &|| format!("sample #{index} `{}`", excerpt(&s.name)),
        s,
        limits,
    )
}

/// Checks a series a plugin declared (contract 0.3.0 and later), given as a sample of
/// it: its name, labels and series topic by the rules of a sample.
pub fn check_series(number: usize, s: &Sample, limits: &OutputLimits) -> Result<(), OutputError> {
    check_measurement(
        &|| format!("series #{number} `{}`", excerpt(&s.name)),
        s,
        limits,
    )
}

fn check_measurement(item: Item<'_>, s: &Sample, limits: &OutputLimits) -> Result<(), OutputError> {
    check_name(
        item,
        "metric name",
        &s.name,
        limits.max_name_bytes,
        is_metric_name,
    )?;
    if !s.value.is_finite() {
        return Err(fail(
            item(),
            format!("value {} is not a finite number", s.value),
        ));
    }
    if s.labels.len() > limits.max_labels {
        return Err(fail(
            item(),
            format!(
                "{} labels, more than the limit of {}",
                s.labels.len(),
                limits.max_labels
            ),
        ));
    }
    for label in &s.labels {
        check_name(
            item,
            "label name",
            &label.name,
            limits.max_name_bytes,
            is_label_name,
        )?;
        if label.value.len() > limits.max_value_bytes {
            return Err(fail(
                item(),
                format!(
                    "label `{}` value is longer than {} bytes",
                    label.name, limits.max_value_bytes
                ),
            ));
        }
    }
    // The series is published as a topic: its name must fit a topic too.
    let topic_len = series_topic_len(s);
    if topic_len > limits.max_topic_bytes {
        return Err(fail(
            item(),
            format!(
                "its series topic (metrics/<name>/<label values>) would be {topic_len} bytes, \
                 longer than the topic limit of {} bytes",
                limits.max_topic_bytes
            ),
        ));
    }
    Ok(())
}

fn check_fields(
    item: Item<'_>,
    fields: &[Field],
    limits: &OutputLimits,
) -> Result<(), OutputError> {
    if fields.len() > limits.max_fields {
        return Err(fail(
            item(),
            format!(
                "{} fields, more than the limit of {}",
                fields.len(),
                limits.max_fields
            ),
        ));
    }
    for (name, value) in fields {
        check_name(
            item,
            "field name",
            name,
            limits.max_name_bytes,
            is_label_name,
        )?;
        match value {
            FieldValue::Number(n) if !n.is_finite() => {
                return Err(fail(
                    item(),
                    format!("field `{name}` = {n} is not a finite number"),
                ));
            }
            FieldValue::Text(t) if t.len() > limits.max_value_bytes => {
                return Err(fail(
                    item(),
                    format!(
                        "field `{name}` text is longer than {} bytes",
                        limits.max_value_bytes
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks one topic update.
pub fn check_update(
    index: usize,
    u: &TopicUpdate,
    limits: &OutputLimits,
) -> Result<(), OutputError> {
    check_topic_write(
        &|| format!("topic update #{index} `{}`", excerpt(&u.topic)),
        u,
        limits,
    )
}

/// Checks one event of a stream topic (same rules as a topic update).
pub fn check_event(
    index: usize,
    e: &TopicUpdate,
    limits: &OutputLimits,
) -> Result<(), OutputError> {
    check_topic_write(
        &|| format!("stream event #{index} `{}`", excerpt(&e.topic)),
        e,
        limits,
    )
}

fn check_topic_write(
    item: Item<'_>,
    u: &TopicUpdate,
    limits: &OutputLimits,
) -> Result<(), OutputError> {
    check_name(
        &item,
        "topic",
        &u.topic,
        limits.max_topic_bytes,
        is_topic_name,
    )?;
    if is_host_topic(&u.topic) {
        return Err(fail(
            item(),
            format!("topics under `{HOST_PREFIX}/` belong to the host"),
        ));
    }
    check_fields(item, &u.fields, limits)
}

/// Checks a list of samples (a metric plugin's output or part of a collector's).
pub fn check_samples(samples: &[Sample], limits: &OutputLimits) -> Result<(), OutputError> {
    check_count("samples", samples.len(), limits.max_samples)?;
    samples
        .iter()
        .enumerate()
        .try_for_each(|(i, s)| check_sample(i, s, limits))
}

/// Checks a collector's output. Record errors beyond the limit are dropped (their
/// count is kept in the last message) rather than failing the whole chunk.
pub fn check_collect_output(
    out: &mut CollectOutput,
    limits: &OutputLimits,
) -> Result<(), OutputError> {
    check_samples(&out.samples, limits)?;
    check_count("topic updates", out.updates.len(), limits.max_updates)?;
    for (i, u) in out.updates.iter().enumerate() {
        check_update(i, u, limits)?;
    }
    check_count("stream events", out.events.len(), limits.max_updates)?;
    for (i, e) in out.events.iter().enumerate() {
        check_event(i, e, limits)?;
    }
    if out.errors.len() > limits.max_record_errors {
        let dropped = out.errors.len() - limits.max_record_errors;
        out.errors.truncate(limits.max_record_errors);
        if let Some(last) = out.errors.last_mut() {
            last.message = format!("{} (and {dropped} more record errors)", last.message);
        }
    }
    for e in &mut out.errors {
        if e.message.len() > limits.max_value_bytes {
            e.message = excerpt(&e.message);
        }
    }
    Ok(())
}

/// Checks a delta plugin's output.
pub fn check_delta(delta: &Delta, limits: &OutputLimits) -> Result<(), OutputError> {
    let item = || "delta".to_string();
    check_fields(&item, &delta.changed, limits)?;
    if delta.removed.len() > limits.max_fields {
        return Err(fail(
            "delta",
            format!(
                "{} removed fields, more than the limit of {}",
                delta.removed.len(),
                limits.max_fields
            ),
        ));
    }
    for name in &delta.removed {
        check_name(
            &|| "delta".to_string(),
            "removed field name",
            name,
            limits.max_name_bytes,
            is_label_name,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Label, MetricKind};

    fn sample(name: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: vec![Label::new("symbol", "BTC")],
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: 0,
        }
    }

    #[test]
    fn names() {
        assert!(is_metric_name("trade_price"));
        assert!(is_metric_name("ns:rate_5m"));
        assert!(!is_metric_name("9lives"));
        assert!(!is_metric_name("bad name!"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("symbol"));
        assert!(!is_label_name("a:b"));
        assert!(is_topic_name("trades/BTC-USD"));
        assert!(is_topic_name("system/cpu"));
        assert!(!is_topic_name("trades//x"));
        assert!(!is_topic_name("/x"));
        assert!(!is_topic_name("a b"));
    }

    #[test]
    fn sample_errors_name_the_item() {
        let limits = OutputLimits::default();
        let err =
            check_samples(&[sample("ok", 1.0), sample("bad name!", 1.0)], &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sample #1 `bad name!`: metric name `bad name!` is not valid"
        );
        let err = check_samples(&[sample("x", f64::NAN)], &limits).unwrap_err();
        assert!(
            err.to_string().contains("NaN is not a finite number"),
            "{err}"
        );
    }

    #[test]
    fn long_names_are_excerpted() {
        let long = "a".repeat(1 << 20);
        let err = check_samples(&[sample(&long, 1.0)], &OutputLimits::default()).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert!(err.to_string().contains("longer than 200 bytes"));
    }

    #[test]
    fn too_many_samples() {
        let limits = OutputLimits {
            max_samples: 2,
            ..Default::default()
        };
        let err = check_samples(&vec![sample("x", 1.0); 3], &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3 samples: more than the limit of 2 per call"
        );
    }

    #[test]
    fn excess_record_errors_are_truncated_not_fatal() {
        let limits = OutputLimits {
            max_record_errors: 2,
            ..Default::default()
        };
        let mut out = CollectOutput {
            errors: (0..5)
                .map(|i| crate::update::RecordError {
                    line: i,
                    offset: 0,
                    message: "bad".into(),
                })
                .collect(),
            ..Default::default()
        };
        check_collect_output(&mut out, &limits).unwrap();
        assert_eq!(out.errors.len(), 2);
        assert_eq!(out.errors[1].message, "bad (and 3 more record errors)");
    }

    #[test]
    fn a_series_topic_longer_than_the_topic_limit_is_refused() {
        let limits = OutputLimits::default();
        let mut s = sample("x", 1.0);
        // Each label value fits the value limit; together they would build a 65 KB topic.
        s.labels = (0..16)
            .map(|i| Label::new(format!("l{i}"), "v".repeat(4096)))
            .collect();
        let err = check_samples(&[s], &limits).unwrap_err().to_string();
        assert!(
            err.contains("series topic") && err.contains("would be 65561 bytes"),
            "{err}"
        );
        let mut fits = sample("x", 1.0);
        fits.labels = vec![Label::new("a", "v".repeat(200))];
        check_samples(&[fits], &limits).unwrap();
    }

    #[test]
    fn the_host_namespace_is_refused_to_plugins() {
        let limits = OutputLimits::default();
        let update = |topic: &str| TopicUpdate {
            topic: topic.into(),
            fields: vec![],
        };
        let err = check_update(0, &update("_wasmeter/plugins/csv"), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic update #0 `_wasmeter/plugins/csv`: topics under `_wasmeter/` belong to the host"
        );
        assert!(check_update(0, &update("_wasmeter"), &limits).is_err());
        check_update(0, &update("_wasmeterish/x"), &limits).unwrap();
    }
}
