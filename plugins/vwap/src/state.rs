//! The exported state: version 2 (buckets) is written; versions 1 (the per-trade window
//! of earlier releases) and 2 are read.

use std::collections::HashMap;

use wasmeter_sdk::series;
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::window::{BucketSpec, BucketWindow};

use crate::{Series, Sums};

const SCHEMA: &str = "vwap";

/// The version written: the bucket width, then per series its labels and buckets.
const VERSION: u32 = 2;

/// Encodes every series' buckets, `all` in key order (so that the same series
/// give the same state).
pub(crate) fn export(spec: &BucketSpec, all: &[(&str, &Series)]) -> Vec<u8> {
    let mut w = StateWriter::new(SCHEMA, VERSION);
    w.i64(spec.width_ms()).count(all.len());
    for (_, s) in all {
        w.labels(&s.labels);
        s.window.write(&mut w, |w, sums| {
            w.f64(sums.notional).f64(sums.volume);
        });
    }
    w.finish()
}

/// Decodes a state of version 1 or 2 into windows of `spec`.
pub(crate) fn import(spec: &BucketSpec, bytes: &[u8]) -> Result<HashMap<String, Series>, String> {
    let mut r = StateReader::new(bytes, SCHEMA)?;
    let mut all = HashMap::new();
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
    for _ in 0..r.count()? {
        let labels = r.labels()?;
        let window = match width_ms {
            Some(width_ms) => BucketWindow::read(&mut r, spec, width_ms, |r| {
                Ok(Sums {
                    notional: r.f64()?,
                    volume: r.f64()?,
                })
            })?,
            None => read_trades(&mut r, spec)?,
        };
        if !window.is_empty() {
            all.insert(series::key("", &labels), Series { labels, window });
        }
    }
    r.finish()?;
    Ok(all)
}

/// Version 1: the trades of the window, oldest first, each `(ts, price * volume, volume)`;
/// they go into the buckets of their timestamps.
fn read_trades(r: &mut StateReader<'_>, spec: &BucketSpec) -> Result<BucketWindow<Sums>, String> {
    let mut window = BucketWindow::new();
    for _ in 0..r.count()? {
        let ts = r.i64()?;
        let sums = Sums {
            notional: r.f64()?,
            volume: r.f64()?,
        };
        window.add(spec, ts, sums);
    }
    Ok(window)
}
