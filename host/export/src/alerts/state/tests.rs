use super::*;

fn labels(name: &str) -> LabelSet {
    [("alertname".to_string(), name.to_string())].into()
}

fn rule(for_ms: u64, keep: u64) -> Rule {
    Rule {
        for_ms,
        keep_firing_for_ms: keep,
        labels: [("severity".to_string(), "page".to_string())].into(),
        annotations: [(
            "summary".to_string(),
            "{{ $labels.alertname }} at {{ $value }}".to_string(),
        )]
        .into(),
    }
}

#[test]
fn fires_after_for_resends_and_resolves_with_ends_at() {
    let r = rule(1000, 0);
    let mut t = Tracker::new(500, 60_000, 10);
    t.observe(labels("hot"), 1.0, 0, &r);
    assert!(t.tick(999).is_empty(), "pending until `for` has passed");
    let fired = t.tick(1000);
    assert_eq!(fired.len(), 1);
    let n = &fired[0];
    assert!(n.firing);
    assert_eq!((n.starts_at, n.ends_at), (1000, 3000));
    assert_eq!(n.labels["severity"], "page");
    assert_eq!(n.annotations["summary"], "hot at 1");
    assert!(t.tick(1400).is_empty());
    let again = t.tick(1500);
    assert_eq!(again.len(), 1, "re-sent after `resend`");
    assert_eq!((again[0].starts_at, again[0].ends_at), (1000, 3500));
    t.observe(labels("hot"), 0.0, 1600, &r);
    let resolved = t.tick(1600);
    assert_eq!(resolved.len(), 1);
    assert!(!resolved[0].firing);
    assert_eq!((resolved[0].starts_at, resolved[0].ends_at), (1000, 1600));
    assert!(t.is_empty());
}

#[test]
fn a_blip_shorter_than_for_never_fires() {
    let r = rule(1000, 0);
    let mut t = Tracker::new(500, 60_000, 10);
    t.observe(labels("hot"), 1.0, 0, &r);
    t.observe(labels("hot"), 0.0, 500, &r);
    assert!(t.tick(5000).is_empty());
    assert!(t.is_empty());
}

#[test]
fn keep_firing_for_holds_through_a_short_break() {
    let r = rule(0, 1000);
    let mut t = Tracker::new(10_000, 60_000, 10);
    t.observe(labels("hot"), 1.0, 0, &r);
    assert_eq!(t.tick(0).len(), 1);
    t.observe(labels("hot"), 0.0, 100, &r);
    assert!(t.tick(900).is_empty());
    t.observe(labels("hot"), 1.0, 950, &r); // back before keep_firing_for ends
    assert!(t.tick(2000).is_empty());
    t.observe(labels("hot"), 0.0, 2100, &r);
    assert!(t.tick(3000).is_empty());
    let resolved = t.tick(3100);
    assert_eq!(resolved.len(), 1);
    assert!(!resolved[0].firing);
}

#[test]
fn a_firing_alert_that_stops_reporting_resolves() {
    let r = rule(0, 0);
    let mut t = Tracker::new(1000, 5000, 10);
    t.observe(labels("hot"), 1.0, 0, &r);
    assert_eq!(t.tick(0).len(), 1);
    let later = t.tick(5001);
    assert_eq!(later.len(), 1);
    assert!(!later[0].firing);
}

#[test]
fn failed_delivery_is_retried_at_the_next_tick_and_the_count_is_bounded() {
    let r = rule(0, 0);
    let mut t = Tracker::new(60_000, 600_000, 1);
    t.observe(labels("a"), 1.0, 0, &r);
    t.observe(labels("b"), 1.0, 0, &r);
    assert_eq!(t.refused, 1);
    let sent = t.tick(0);
    t.unsent(&sent);
    assert_eq!(t.tick(10).len(), 1);
    assert!(t.tick(20).is_empty());
}
