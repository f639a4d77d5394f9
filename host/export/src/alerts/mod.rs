//! Alert delivery: samples that carry alert state (the `threshold-alert`
//! plugin's `alert_state{alert=...,metric=...}`, or any series the config
//! selects) become alerts with `for` / keep-firing semantics ([`state`]), sent
//! to Alertmanager's v2 API and/or webhooks ([`wire`]) from a thread of their
//! own.
//!
//! An alert's name (`alertname`) is the sample's `alert` label, else its
//! `alertname` label, else the metric name; its other labels are the sample's.

pub mod state;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmeter_core::sample::Sample;

use crate::client::{Client, Outcome};
use crate::series::{NAME_LABEL, Selection};
use crate::stop::Stop;
use state::{LabelSet, Notice, Rule, Tracker};

/// How alerts are delivered.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Which samples carry alert state.
    pub selection: Selection,
    /// Alertmanager base URLs (`http://host:9093`); `/api/v2/alerts` is added.
    pub alertmanagers: Vec<String>,
    /// Webhook URLs, posted Alertmanager's webhook message.
    pub webhooks: Vec<String>,
    /// The rule of alerts without one of their own.
    pub default_rule: Rule,
    /// Rules by alert name.
    pub rules: BTreeMap<String, Rule>,
    /// Firing alerts are re-sent this often.
    pub resend: Duration,
    /// Unseen this long: inactive.
    pub stale: Duration,
    /// State is evaluated this often.
    pub eval: Duration,
    /// Each request's bound.
    pub timeout: Duration,
    /// `generatorURL` of the alerts (the host's dashboard, say).
    pub generator_url: String,
    /// Alerts tracked at most.
    pub max_alerts: usize,
    /// Batches the pipelines may be ahead.
    pub queue_batches: usize,
}

/// Alert delivery's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alert notices delivered (per receiver).
    pub sent: AtomicU64,
    /// Requests that failed.
    pub failed: AtomicU64,
    /// Alerts firing now.
    pub firing: AtomicU64,
    /// Alerts not tracked: over `max_alerts`.
    pub refused: AtomicU64,
}

/// Running alert delivery.
pub struct Alerts {
    tx: flume::Sender<Arc<Vec<Sample>>>,
    stats: Arc<AlertStats>,
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

impl Alerts {
    /// Starts the delivery thread.
    pub fn start(config: AlertConfig) -> std::io::Result<Alerts> {
        let (tx, rx) = flume::bounded(config.queue_batches.max(1));
        let stats = Arc::new(AlertStats::default());
        let stop = Arc::new(Stop::default());
        let thread = std::thread::Builder::new().name("alerts".into()).spawn({
            let (stats, stop) = (stats.clone(), stop.clone());
            move || run(config, &rx, &stats, &stop)
        })?;
        Ok(Alerts {
            tx,
            stats,
            stop,
            thread,
        })
    }

    /// A handle for the pipelines.
    pub fn sender(&self) -> crate::output::OutputSender {
        crate::output::OutputSender::new(self.tx.clone())
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<AlertStats> {
        self.stats.clone()
    }

    /// Stops (blocking). Firing alerts are not resolved: the host stopping does
    /// not end a condition; Alertmanager ends them at their `endsAt` unless a
    /// restarted host re-sends them.
    pub fn close(self) {
        self.stop.set();
        let _ = self.thread.join();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Receiver {
    client: Client,
    webhook: bool,
}

fn run(
    config: AlertConfig,
    rx: &flume::Receiver<Arc<Vec<Sample>>>,
    stats: &AlertStats,
    stop: &Stop,
) {
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    let mut receivers: Vec<Receiver> = config
        .alertmanagers
        .iter()
        .map(|u| Receiver {
            client: Client::new(
                &format!("{}/api/v2/alerts", u.trim_end_matches('/')),
                json.clone(),
                config.timeout,
            ),
            webhook: false,
        })
        .collect();
    receivers.extend(config.webhooks.iter().map(|u| Receiver {
        client: Client::new(u, json.clone(), config.timeout),
        webhook: true,
    }));
    let mut tracker = Tracker::new(
        config.resend.as_millis() as u64,
        config.stale.as_millis() as u64,
        config.max_alerts,
    );
    let mut next_eval = std::time::Instant::now();
    while !stop.is_set() {
        let now = std::time::Instant::now();
        if now >= next_eval {
            next_eval = now + config.eval;
            let notices = tracker.tick(now_ms());
            stats.firing.store(tracker.firing() as u64, Relaxed);
            stats.refused.store(tracker.refused, Relaxed);
            if !notices.is_empty()
                && !deliver(&mut receivers, &notices, &config.generator_url, stats)
            {
                tracker.unsent(&notices);
            }
        }
        match rx.recv_timeout(next_eval.saturating_duration_since(std::time::Instant::now())) {
            Ok(batch) => {
                let now = now_ms();
                for s in batch.iter().filter(|s| config.selection.matches(s)) {
                    let (labels, name) = alert_labels(s);
                    let rule = config.rules.get(&name).unwrap_or(&config.default_rule);
                    tracker.observe(labels, s.value, now, rule);
                }
            }
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Sends `notices` to every receiver; false if any failed.
fn deliver(
    receivers: &mut [Receiver],
    notices: &[Notice],
    generator_url: &str,
    stats: &AlertStats,
) -> bool {
    let mut all = true;
    for r in receivers {
        let body = match r.webhook {
            true => wire::webhook(notices, generator_url),
            false => wire::alertmanager(notices, generator_url),
        };
        match r.client.post(body.to_string().as_bytes()) {
            Outcome::Sent => {
                stats.sent.fetch_add(notices.len() as u64, Relaxed);
            }
            Outcome::Retry(why) | Outcome::Refused(why) => {
                stats.failed.fetch_add(1, Relaxed);
                tracing::warn!(%why, alerts = notices.len(), "alert delivery failed; retrying at the next evaluation");
                all = false;
            }
        }
    }
    all
}

/// An alert's labels and name from a sample.
fn alert_labels(s: &Sample) -> (LabelSet, String) {
    let name = s
        .label("alert")
        .or_else(|| s.label("alertname"))
        .unwrap_or(&s.name)
        .to_string();
    let mut labels: LabelSet = s
        .labels
        .iter()
        .filter(|l| {
            !matches!(l.name.as_str(), "alert" | "alertname" | NAME_LABEL) && !l.value.is_empty()
        })
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    labels.insert("alertname".into(), name.clone());
    (labels, name)
}
