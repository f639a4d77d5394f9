//! The exported state: version 2 (buckets) is written; versions 1 (the monotonic deques
//! of earlier releases) and 2 are read.

use std::collections::BTreeMap;

use wasmeter_sdk::series;
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::window::{BucketSpec, BucketWindow};

use crate::{Extremes, Series};

const SCHEMA: &str = "rolling-minmax";

/// The version written: the bucket width, then per series its name, labels and buckets.
const VERSION: u32 = 2;

/// Encodes every series' buckets, `all` in key order.
pub(crate) fn export(spec: &BucketSpec, all: &[(&str, &Series)]) -> Vec<u8> {
    let mut w = StateWriter::new(SCHEMA, VERSION);
    w.i64(spec.width_ms()).count(all.len());
    for (_, s) in all {
        w.str(&s.name).labels(&s.labels);
        s.window.write(&mut w, |w, e| {
            w.f64(e.min).f64(e.max);
        });
    }
    w.finish()
}

/// Decodes a state of version 1 or 2 into windows of `spec`.
pub(crate) fn import(spec: &BucketSpec, bytes: &[u8]) -> Result<BTreeMap<String, Series>, String> {
    let mut r = StateReader::new(bytes, SCHEMA)?;
    let version = r.version();
    let width_ms = match version {
        1 => None,
        2 => Some(r.i64()?),
        v => {
            return Err(format!(
                "state: `{SCHEMA}` version {v} is not readable by this plugin (versions 1 and {VERSION})"
            ));
        }
    };
    let mut all = BTreeMap::new();
    for _ in 0..r.count()? {
        let (name, labels) = (r.str()?, r.labels()?);
        let window = match width_ms {
            Some(width_ms) => BucketWindow::read(&mut r, spec, width_ms, |r| {
                Ok(Extremes {
                    min: r.f64()?,
                    max: r.f64()?,
                })
            })?,
            None => read_deques(&mut r, spec)?,
        };
        if !window.is_empty() {
            let key = series::key(&name, &labels);
            all.insert(key, Series::new(&name, &labels, window));
        }
    }
    r.finish()?;
    Ok(all)
}

/// Version 1: the newest timestamp, then the deques of minimum and maximum candidates,
/// each `(ts, value)` oldest first. Every entry is a sample of the window, and a sample in
/// neither deque can never be the minimum or maximum of a later window, so putting the
/// entries into buckets, in time order, gives the same extremes.
fn read_deques(
    r: &mut StateReader<'_>,
    spec: &BucketSpec,
) -> Result<BucketWindow<Extremes>, String> {
    let newest = r.i64()?;
    let mut entries = Vec::new();
    for _ in 0..2 {
        for _ in 0..r.count()? {
            entries.push((r.i64()?, r.f64()?));
        }
    }
    entries.sort_by_key(|&(ts, _)| ts);
    let mut window = BucketWindow::new();
    for (ts, value) in entries {
        window.add(spec, ts, Extremes::of(value));
    }
    window.expire(spec, newest);
    Ok(window)
}
