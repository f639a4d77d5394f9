//! Retention: which partition files to delete, by age and by total size.
//!
//! Age is measured against the store's clock, the newest sample timestamp
//! written (as Prometheus does), so simulated or replayed history ages
//! consistently and a store that receives nothing keeps what it has. Only
//! closed partitions are deleted, always whole files.

use std::collections::BTreeMap;

use crate::options::Options;
use crate::partition::Partition;
use crate::tier::Tier;

/// Closed partitions of each tier that ended at least the tier's retention
/// before `now`.
pub(crate) fn expired(
    parts: &[BTreeMap<i64, Partition>; 4],
    opts: &Options,
    now: i64,
) -> Vec<(Tier, i64)> {
    let mut out = Vec::new();
    for tier in Tier::ALL {
        let keep_from = now.saturating_sub(opts.tier(tier).retention_ms);
        for p in parts[tier.index()].values() {
            if p.closed && p.end <= keep_from {
                out.push((tier, p.start));
            }
        }
    }
    out
}

/// Closed partitions to delete, oldest data first (earliest end; the finer
/// tier first on ties), until `total` bytes fit in `Options::max_disk_bytes`.
pub(crate) fn over_size(
    parts: &[BTreeMap<i64, Partition>; 4],
    opts: &Options,
    total: u64,
) -> Vec<(Tier, i64)> {
    if total <= opts.max_disk_bytes {
        return Vec::new();
    }
    let mut candidates: Vec<(i64, Tier, i64, u64)> = Vec::new();
    for tier in Tier::ALL {
        for p in parts[tier.index()].values().filter(|p| p.closed) {
            candidates.push((p.end, tier, p.start, p.size_bytes()));
        }
    }
    candidates.sort();
    let mut excess = total - opts.max_disk_bytes;
    let mut out = Vec::new();
    for (_, tier, start, size) in candidates {
        if excess == 0 {
            break;
        }
        out.push((tier, start));
        excess = excess.saturating_sub(size);
    }
    out
}
