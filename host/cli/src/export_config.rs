//! `[outputs.NAME]` and `[alerts]`: where samples and alerts leave the host.
//! Checked once (every problem names its key), then turned into the export
//! crate's configurations. See `docs/CONFIG.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use wasmeter_export::alerts::state::Rule;
use wasmeter_export::series::Selection;
use wasmeter_export::{AlertConfig, Backoff, OutputConfig, Protocol};

/// The wire protocol of an output.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolName {
    /// Prometheus remote_write v1.
    RemoteWrite,
    /// InfluxDB line protocol over HTTP.
    InfluxLine,
}

/// `[outputs.NAME]`: one time-series database samples are written to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// `remote_write` or `influx_line`.
    pub protocol: ProtocolName,
    /// Where requests go (`http://` or `https://`).
    pub url: String,
    /// Series selectors; a sample matching any is written. Empty: every sample.
    #[serde(default)]
    pub series: Vec<String>,
    /// Labels added to series that lack them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Headers on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Samples per request at most.
    #[serde(default = "d_batch")]
    pub batch_samples: usize,
    /// A partial batch is sent after this long.
    #[serde(default = "d_flush")]
    pub flush_ms: u64,
    /// Each request's bound.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// First wait after a failed request; doubles up to `retry_max_ms`.
    #[serde(default = "d_retry_min")]
    pub retry_min_ms: u64,
    /// Longest wait between tries.
    #[serde(default = "d_retry_max")]
    pub retry_max_ms: u64,
    /// Encoded batches held in memory before the disk buffer is used.
    #[serde(default = "d_memory")]
    pub memory_mb: u64,
    /// The disk buffer's bound (`<data_dir>/outputs/NAME`); the oldest go beyond it.
    #[serde(default = "d_buffer")]
    pub buffer_mb: u64,
    /// Batches the pipelines may be ahead of the output's encoder.
    #[serde(default = "d_queue")]
    pub queue_batches: usize,
}

fn d_batch() -> usize {
    5000
}
fn d_flush() -> u64 {
    1000
}
fn d_timeout() -> u64 {
    10_000
}
fn d_retry_min() -> u64 {
    200
}
fn d_retry_max() -> u64 {
    30_000
}
fn d_memory() -> u64 {
    16
}
fn d_buffer() -> u64 {
    512
}
fn d_queue() -> usize {
    64
}

/// `[alerts.rules.NAME]`: one alert's own timing, labels and annotations (unset
/// keys come from `[alerts]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// Active this long before it fires.
    pub for_ms: Option<u64>,
    /// Inactive this long before it resolves.
    pub keep_firing_for_ms: Option<u64>,
    /// Labels (added to `[alerts] labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (added to `[alerts] annotations`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `[alerts]`: alert state delivered to Alertmanager and/or webhooks.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Series that carry alert state (non-zero: the condition holds).
    pub series: Vec<String>,
    /// Alertmanager base URLs.
    pub alertmanagers: Vec<String>,
    /// Webhook URLs (Alertmanager's webhook message).
    pub webhooks: Vec<String>,
    /// Active this long before an alert fires.
    pub for_ms: u64,
    /// Inactive this long before a firing alert resolves.
    pub keep_firing_for_ms: u64,
    /// Firing alerts are re-sent this often.
    pub resend_ms: u64,
    /// An alert unseen this long counts as inactive.
    pub stale_ms: u64,
    /// How often alert state is evaluated.
    pub eval_ms: u64,
    /// Each request's bound.
    pub timeout_ms: u64,
    /// `generatorURL` of every alert.
    pub generator_url: String,
    /// Alerts tracked at most.
    pub max_alerts: usize,
    /// Labels of every alert.
    pub labels: BTreeMap<String, String>,
    /// Annotations of every alert.
    pub annotations: BTreeMap<String, String>,
    /// Per alert name.
    pub rules: BTreeMap<String, RuleSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            series: vec!["alert_state".into()],
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            for_ms: 0,
            keep_firing_for_ms: 0,
            resend_ms: 60_000,
            stale_ms: 300_000,
            eval_ms: 1000,
            timeout_ms: 10_000,
            generator_url: String::new(),
            max_alerts: 10_000,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            rules: BTreeMap::new(),
        }
    }
}

impl AlertsSection {
    /// Whether alerts go anywhere.
    pub fn enabled(&self) -> bool {
        !self.alertmanagers.is_empty() || !self.webhooks.is_empty()
    }
}

type Problem = (String, String);

fn check_url(key: String, url: &str) -> Result<(), Problem> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err((key, format!("`{url}` is not an http:// or https:// URL"))),
    }
}

fn check_labels(key: &str, labels: &BTreeMap<String, String>) -> Result<(), Problem> {
    for name in labels.keys() {
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok || name.starts_with("__") {
            return Err((format!("{key}.{name}"), "not a valid label name".into()));
        }
    }
    Ok(())
}

fn positive(key: String, v: u64) -> Result<(), Problem> {
    match v {
        0 => Err((key, "must be > 0".into())),
        _ => Ok(()),
    }
}

/// Checks the outputs and alerts; the first problem, with its key.
pub fn problem(
    outputs: &BTreeMap<String, OutputSection>,
    alerts: &AlertsSection,
) -> Option<Problem> {
    check(outputs, alerts).err()
}

fn check(outputs: &BTreeMap<String, OutputSection>, alerts: &AlertsSection) -> Result<(), Problem> {
    for (name, o) in outputs {
        let key = |k: &str| format!("outputs.{name}.{k}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err((
                format!("outputs.{name}"),
                "names are letters, digits, `_` and `-`".into(),
            ));
        }
        check_url(key("url"), &o.url)?;
        if o.protocol == ProtocolName::InfluxLine
            && o.url.contains("precision=")
            && !o.url.contains("precision=ms")
        {
            return Err((
                key("url"),
                "timestamps are sent in ms: leave `precision` out or set it to `ms`".into(),
            ));
        }
        Selection::parse(&o.series).map_err(|e| (key("series"), e))?;
        check_labels(&key("labels"), &o.labels)?;
        for (h, v) in &o.headers {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                || v.contains(['\r', '\n'])
            {
                return Err((key(&format!("headers.{h}")), "not a valid header".into()));
            }
        }
        if !(1..=1_000_000).contains(&o.batch_samples) {
            return Err((key("batch_samples"), "must be 1 to 1000000".into()));
        }
        positive(key("flush_ms"), o.flush_ms)?;
        positive(key("timeout_ms"), o.timeout_ms)?;
        positive(key("retry_min_ms"), o.retry_min_ms)?;
        if o.retry_max_ms < o.retry_min_ms {
            return Err((key("retry_max_ms"), "must be >= retry_min_ms".into()));
        }
        positive(key("memory_mb"), o.memory_mb)?;
        positive(key("buffer_mb"), o.buffer_mb)?;
        positive(key("queue_batches"), o.queue_batches as u64)?;
    }
    let a = alerts;
    Selection::parse(&a.series).map_err(|e| ("alerts.series".into(), e))?;
    for (i, u) in a.alertmanagers.iter().enumerate() {
        check_url(format!("alerts.alertmanagers[{i}]"), u)?;
    }
    for (i, u) in a.webhooks.iter().enumerate() {
        check_url(format!("alerts.webhooks[{i}]"), u)?;
    }
    positive("alerts.resend_ms".into(), a.resend_ms)?;
    positive("alerts.stale_ms".into(), a.stale_ms)?;
    positive("alerts.eval_ms".into(), a.eval_ms)?;
    positive("alerts.timeout_ms".into(), a.timeout_ms)?;
    positive("alerts.max_alerts".into(), a.max_alerts as u64)?;
    check_labels("alerts.labels", &a.labels)?;
    for (name, r) in &a.rules {
        check_labels(&format!("alerts.rules.{name}.labels"), &r.labels)?;
    }
    Ok(())
}

/// The export crate's configuration of output `name` (checked before).
pub fn output_config(name: &str, o: &OutputSection, data_dir: &Path) -> OutputConfig {
    OutputConfig {
        name: name.to_string(),
        protocol: match o.protocol {
            ProtocolName::RemoteWrite => Protocol::RemoteWrite,
            ProtocolName::InfluxLine => Protocol::InfluxLine,
        },
        url: o.url.clone(),
        selection: Selection::parse(&o.series).expect("checked"),
        extra_labels: o.labels.clone().into_iter().collect(),
        headers: o.headers.clone().into_iter().collect(),
        batch_samples: o.batch_samples,
        flush: Duration::from_millis(o.flush_ms),
        timeout: Duration::from_millis(o.timeout_ms),
        backoff: Backoff {
            min: Duration::from_millis(o.retry_min_ms),
            max: Duration::from_millis(o.retry_max_ms),
        },
        buffer_dir: data_dir.join("outputs").join(name),
        buffer_bytes: o.buffer_mb << 20,
        memory_bytes: (o.memory_mb << 20) as usize,
        queue_batches: o.queue_batches,
    }
}

/// The export crate's configuration of alert delivery (checked before).
pub fn alert_config(a: &AlertsSection) -> AlertConfig {
    let default_rule = Rule {
        for_ms: a.for_ms,
        keep_firing_for_ms: a.keep_firing_for_ms,
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
    };
    let rules = a
        .rules
        .iter()
        .map(|(name, r)| {
            let mut rule = default_rule.clone();
            rule.for_ms = r.for_ms.unwrap_or(rule.for_ms);
            rule.keep_firing_for_ms = r.keep_firing_for_ms.unwrap_or(rule.keep_firing_for_ms);
            rule.labels.extend(r.labels.clone());
            rule.annotations.extend(r.annotations.clone());
            (name.clone(), rule)
        })
        .collect();
    AlertConfig {
        selection: Selection::parse(&a.series).expect("checked"),
        alertmanagers: a.alertmanagers.clone(),
        webhooks: a.webhooks.clone(),
        default_rule,
        rules,
        resend: Duration::from_millis(a.resend_ms),
        stale: Duration::from_millis(a.stale_ms),
        eval: Duration::from_millis(a.eval_ms),
        timeout: Duration::from_millis(a.timeout_ms),
        generator_url: a.generator_url.clone(),
        max_alerts: a.max_alerts,
        queue_batches: 64,
    }
}
