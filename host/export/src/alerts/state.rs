//! Alert state over time, from the samples that say whether a condition holds.
//!
//! - An alert is a label set (`alertname` and the series' labels). A sample
//!   with a non-zero value says its condition holds ("active"), zero that it
//!   does not.
//! - Active for `for` without a break: it fires. Its `startsAt` is when it fired
//!   (as Prometheus sends it). Inactive before that: it is forgotten (pending
//!   only).
//! - While firing it is sent every `resend` with `endsAt = now + 4 × resend`, so
//!   Alertmanager resolves it on its own if the host goes away.
//! - Inactive for `keep_firing_for` while firing (active again in between resets
//!   that): it resolves, sent once more with `endsAt` = the resolve time.
//! - No sample for `stale`: treated as inactive from then on.
//!
//! Times are the host's wall clock when it saw the samples, in Unix ms.

use std::collections::{BTreeMap, HashMap};

/// Labels of an alert, sorted.
pub type LabelSet = BTreeMap<String, String>;

/// The timing of one alert rule and what it adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    /// Active this long before it fires, ms.
    pub for_ms: u64,
    /// Inactive this long before it resolves, ms.
    pub keep_firing_for_ms: u64,
    /// Labels set on the alert (over the series' own).
    pub labels: LabelSet,
    /// Annotations; `{{ $value }}` and `{{ $labels.NAME }}` are filled in.
    pub annotations: LabelSet,
}

/// One alert to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The alert's own labels (its identity, before the rule's labels).
    pub key: LabelSet,
    /// Its labels.
    pub labels: LabelSet,
    /// Its annotations.
    pub annotations: LabelSet,
    /// When it fired, ms.
    pub starts_at: i64,
    /// When it ends: the resolve time, or a time ahead while it fires.
    pub ends_at: i64,
    /// Firing (else resolved).
    pub firing: bool,
}

#[derive(Debug)]
struct Alert {
    rule: Rule,
    value: f64,
    active_since: i64,
    firing_since: Option<i64>,
    inactive_since: Option<i64>,
    last_seen: i64,
    last_sent: Option<i64>,
}

/// Every alert's state.
#[derive(Debug)]
pub struct Tracker {
    alerts: HashMap<LabelSet, Alert>,
    resend_ms: i64,
    stale_ms: i64,
    max_alerts: usize,
    /// Alerts not tracked because `max_alerts` were.
    pub refused: u64,
}

impl Tracker {
    /// A tracker re-sending every `resend_ms`, treating alerts unseen for
    /// `stale_ms` as inactive, holding at most `max_alerts`.
    pub fn new(resend_ms: u64, stale_ms: u64, max_alerts: usize) -> Self {
        Self {
            alerts: HashMap::new(),
            resend_ms: resend_ms as i64,
            stale_ms: stale_ms as i64,
            max_alerts,
            refused: 0,
        }
    }

    /// Alerts pending or firing.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Alerts firing.
    pub fn firing(&self) -> usize {
        self.alerts
            .values()
            .filter(|a| a.firing_since.is_some())
            .count()
    }

    /// A sample of alert `labels` at `now`: `value` non-zero is active.
    pub fn observe(&mut self, labels: LabelSet, value: f64, now: i64, rule: &Rule) {
        let active = value != 0.0;
        if let Some(a) = self.alerts.get_mut(&labels) {
            a.last_seen = now;
            a.value = value;
            match (active, a.firing_since.is_some()) {
                (true, _) => a.inactive_since = None,
                (false, true) => {
                    a.inactive_since.get_or_insert(now);
                }
                (false, false) => {
                    self.alerts.remove(&labels);
                }
            }
            return;
        }
        if !active {
            return;
        }
        if self.alerts.len() >= self.max_alerts {
            self.refused += 1;
            return;
        }
        self.alerts.insert(
            labels,
            Alert {
                rule: rule.clone(),
                value,
                active_since: now,
                firing_since: None,
                inactive_since: None,
                last_seen: now,
                last_sent: None,
            },
        );
    }

    /// Advances to `now`: what fires, re-sends and resolves.
    pub fn tick(&mut self, now: i64) -> Vec<Notice> {
        let mut out = Vec::new();
        let (resend, stale) = (self.resend_ms, self.stale_ms);
        self.alerts.retain(|labels, a| {
            if now - a.last_seen > stale {
                if a.firing_since.is_none() {
                    return false;
                }
                a.inactive_since.get_or_insert(now);
            }
            let Some(since) = a.firing_since else {
                if now - a.active_since >= a.rule.for_ms as i64 {
                    a.firing_since = Some(now);
                    a.last_sent = Some(now);
                    out.push(notice(labels, a, now, now + 4 * resend, true));
                }
                return true;
            };
            if let Some(off) = a.inactive_since
                && now - off >= a.rule.keep_firing_for_ms as i64
            {
                out.push(notice(labels, a, since, now, false));
                return false;
            }
            if a.last_sent.is_none_or(|t| now - t >= resend) {
                a.last_sent = Some(now);
                out.push(notice(labels, a, since, now + 4 * resend, true));
            }
            true
        });
        out
    }

    /// Delivery of `notices` failed: firing ones go again at the next tick.
    pub fn unsent(&mut self, notices: &[Notice]) {
        for n in notices.iter().filter(|n| n.firing) {
            if let Some(a) = self.alerts.get_mut(&n.key) {
                a.last_sent = None;
            }
        }
    }
}

fn notice(labels: &LabelSet, a: &Alert, starts_at: i64, ends_at: i64, firing: bool) -> Notice {
    let mut all = labels.clone();
    all.extend(a.rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let annotations = a
        .rule
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, &all, a.value)))
        .collect();
    Notice {
        key: labels.clone(),
        labels: all,
        annotations,
        starts_at,
        ends_at,
        firing,
    }
}

/// `{{ $value }}` and `{{ $labels.NAME }}` in an annotation.
fn fill(template: &str, labels: &LabelSet, value: f64) -> String {
    let mut out = template.replace("{{ $value }}", &value.to_string());
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests;
