//! The Redis broker in `/metrics`: the follower, the writer, the leases.

use super::exposition::Writer;
use super::names as n;
use crate::broker::BrokerView;

/// Renders the broker's state and counters.
pub fn render(w: &mut Writer, b: &BrokerView) {
    let f = b.follower();
    let s = b.writer();
    for (def, value) in [
        (&n::BROKER_CONNECTED, u64::from(f.connected)),
        (&n::BROKER_APPLIED, f.applied),
        (&n::BROKER_DUPLICATES, f.duplicates),
        (&n::BROKER_GAPS_REPAIRED, f.gaps_repaired),
        (&n::BROKER_GAPS_RESET, f.gaps_reset),
        (&n::BROKER_RECONNECTS, f.reconnects),
        (&n::BROKER_OVERFLOWS, f.overflows),
        (&n::BROKER_PUBLISHED, s.published),
        (&n::BROKER_FAILED, s.failed_round_trips),
        (&n::BROKER_QUEUED, s.queued),
        (&n::BROKER_LEASES, b.leases() as u64),
    ] {
        w.family(def);
        w.sample(&[], value as f64);
    }
    w.family(&n::BROKER_REFUSED);
    w.sample(&[("reason", "fenced")], s.fenced as f64);
    w.sample(&[("reason", "refused")], s.refused as f64);
}
