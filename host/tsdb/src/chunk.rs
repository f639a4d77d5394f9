//! Column codec of the chunks written to partition files and checkpoints.
//!
//! A chunk is encoded once, when it is cut, from all its samples at hand, so
//! each column can pick the cheapest of a few encodings:
//!
//! * Integer columns (timestamps, bucket indices, counts, decimal mantissas):
//!   the first value (relative to a base the caller passes again to decode:
//!   partition files pass the chunk's first timestamp, which the frame header
//!   already holds), then, whichever is smallest for this chunk, the deltas
//!   minus their median, the delta-of-deltas, the offsets above a line
//!   `v0 + step * i` (timestamps jittered around a regular grid; with step 0,
//!   small values such as counts), or the deltas above their minimum. The
//!   residuals are coded as nothing (all zero), `k` bits each (all fit), or
//!   `0` + `k` bits / `1` + 6-bit width + bits, with `k` chosen per column
//!   from the histogram of residual widths.
//! * Float columns: Gorilla XOR, or *decimal* mode when the values are short
//!   decimals (prices in ticks, integer counters): `v = m / 10^e` with the
//!   integer `m` stored as an integer column and a per-value correction of the
//!   IEEE bit pattern (almost always zero), so decoding is bit-exact for every
//!   finite value whatever the mode. The smaller of the two encodings wins.
//! * Bucket chunks: index, count (one bit when all are 1) and last columns;
//!   a bucket of one sample stores nothing more, one of two samples its first
//!   value (min, max and sum follow exactly), others min, max and sum. A
//!   bucket is given a short form only if it rebuilds it bit for bit.
//!
//! Layout: `kind: u8`, `count: uvarint`, then one bit stream holding the
//! columns. Kinds 3 and 4 are written; kinds 1 and 2 (the first layout:
//! absolute first values, two integer modes, min/max/sum for every bucket of
//! more than one sample) are still decoded.

use crate::bits::{
    BitReader, BitWriter, BitsError, ByteReader, bit_width, put_uvarint, unzigzag, zigzag,
};
use crate::gorilla::XorState;
use crate::tier::Bucket;

/// Chunk kind byte: raw samples, first layout (still decoded, no longer written).
pub(crate) const KIND_SAMPLES_V1: u8 = 1;
/// Chunk kind byte: buckets of a downsampled tier, first layout (still decoded).
pub(crate) const KIND_BUCKETS_V1: u8 = 2;
/// Chunk kind byte: raw samples (integer columns with four delta modes).
pub(crate) const KIND_SAMPLES: u8 = 3;
/// Chunk kind byte: buckets (four delta modes; two-sample buckets stored as
/// their first value).
pub(crate) const KIND_BUCKETS: u8 = 4;

/// The layout a chunk was written with (its kind byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Kinds 1 and 2: integer columns are centred deltas or delta-of-deltas;
    /// buckets of more than one sample store min, max and sum.
    V1,
    /// Kinds 3 and 4: integer columns may also be offsets from a line or
    /// deltas above their minimum; a two-sample bucket stores its first value.
    V2,
}

/// Most samples or buckets in one chunk (a sanity bound for decoding).
pub(crate) const MAX_CHUNK_ITEMS: u64 = 1 << 20;

const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];
/// Largest magnitude of `v * 10^e` kept in decimal mode (mantissas stay exact in f64).
const DECIMAL_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Encodes raw samples (`ts` strictly increasing, same length as `vs`). The
/// first timestamp is stored relative to `base`, which the decoder is given
/// again: partition files pass the chunk's first timestamp, already in the
/// frame header (so it costs a few bits, not six bytes); checkpoints pass 0.
pub(crate) fn encode_samples(ts: &[i64], vs: &[f64], base: i64) -> Vec<u8> {
    debug_assert_eq!(ts.len(), vs.len());
    let mut out = Vec::with_capacity(16 + ts.len() * 2);
    out.push(KIND_SAMPLES);
    put_uvarint(&mut out, ts.len() as u64);
    let mut w = BitWriter::with_capacity(ts.len() * 2);
    write_int_seq(&mut w, ts, base);
    write_values(&mut w, vs);
    out.extend_from_slice(w.bytes());
    out
}

/// Decodes a chunk written by [`encode_samples`] with the same `base`.
pub(crate) fn decode_samples(bytes: &[u8], base: i64) -> Result<(Vec<i64>, Vec<f64>), BitsError> {
    let mut br = ByteReader::new(bytes);
    let layout = match br.u8()? {
        KIND_SAMPLES => Layout::V2,
        KIND_SAMPLES_V1 => Layout::V1,
        _ => return Err(BitsError),
    };
    let n = br.uvarint()?;
    if n > MAX_CHUNK_ITEMS {
        return Err(BitsError);
    }
    let n = n as usize;
    let mut r = BitReader::new(br.remaining());
    let ts = read_int_seq(&mut r, n, layout, base)?;
    let vs = read_values(&mut r, n, layout)?;
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BitsError);
    }
    Ok((ts, vs))
}

/// Encodes buckets of a tier of width `width` (starts strictly increasing);
/// the first bucket's start is stored relative to `base` (see
/// [`encode_samples`]).
pub(crate) fn encode_buckets(bs: &[Bucket], width: i64, base: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + bs.len() * 4);
    out.push(KIND_BUCKETS);
    put_uvarint(&mut out, bs.len() as u64);
    let mut w = BitWriter::with_capacity(bs.len() * 4);
    let idx: Vec<i64> = bs.iter().map(|b| b.start_ms.div_euclid(width)).collect();
    write_int_seq(&mut w, &idx, base.div_euclid(width));
    // Counts: one bit when every bucket holds one sample (a series sampled
    // no faster than the tier's width), the column otherwise.
    let all_single = bs.iter().all(|b| b.count == 1);
    w.write_bit(all_single);
    if !all_single {
        let counts: Vec<i64> = bs.iter().map(|b| b.count as i64).collect();
        write_int_seq(&mut w, &counts, 0);
    }
    let lasts: Vec<f64> = bs.iter().map(|b| b.last).collect();
    write_values(&mut w, &lasts);
    // Buckets of one or two samples are, almost always, wholly determined by
    // their samples: one stores nothing more, two store the first value.
    let short: Vec<Option<Option<f64>>> =
        bs.iter().filter(|b| b.count <= 2).map(short_form).collect();
    if short.iter().all(Option::is_some) {
        w.write_bit(false);
    } else {
        w.write_bit(true);
        for s in &short {
            w.write_bit(s.is_some());
        }
    }
    let firsts: Vec<f64> = short.iter().filter_map(|s| s.flatten()).collect();
    write_values(&mut w, &firsts);
    let mut short = short.iter();
    let general: Vec<&Bucket> = bs
        .iter()
        .filter(|b| b.count > 2 || short.next().is_some_and(Option::is_none))
        .collect();
    for field in [|b: &Bucket| b.min, |b: &Bucket| b.max, |b: &Bucket| b.sum] {
        let col: Vec<f64> = general.iter().map(|b| field(b)).collect();
        write_values(&mut w, &col);
    }
    out.extend_from_slice(w.bytes());
    out
}

/// The short form of a bucket of one or two samples, if it has one:
/// `Some(None)` for one sample (min, max and sum are its value),
/// `Some(Some(first))` for two (min, max and sum follow from the two values
/// exactly as [`Bucket::add`] computes them). Checked bit for bit, so decoding
/// is exact whatever the bucket holds; signed zeros that compare equal but
/// differ in sign are left to the general form (`min`/`max` may pick either).
pub(crate) fn short_form(b: &Bucket) -> Option<Option<f64>> {
    let same = |x: f64, y: f64| x.to_bits() == y.to_bits();
    match b.count {
        1 => (same(b.min, b.last) && same(b.max, b.last) && same(b.sum, b.last)).then_some(None),
        2 => {
            let l = b.last;
            let first = if same(b.min, l) { b.max } else { b.min };
            if first == l && !same(first, l) {
                return None;
            }
            let mut rebuilt = Bucket::new(b.start_ms, first);
            rebuilt.add(l);
            (same(rebuilt.min, b.min) && same(rebuilt.max, b.max) && same(rebuilt.sum, b.sum))
                .then_some(Some(first))
        }
        _ => None,
    }
}

/// Decodes a chunk written by [`encode_buckets`] with the same `base`.
pub(crate) fn decode_buckets(
    bytes: &[u8],
    width: i64,
    base: i64,
) -> Result<Vec<Bucket>, BitsError> {
    let mut br = ByteReader::new(bytes);
    let layout = match br.u8()? {
        KIND_BUCKETS => Layout::V2,
        KIND_BUCKETS_V1 => Layout::V1,
        _ => return Err(BitsError),
    };
    let n = br.uvarint()?;
    if n > MAX_CHUNK_ITEMS {
        return Err(BitsError);
    }
    let n = n as usize;
    let mut r = BitReader::new(br.remaining());
    let idx = read_int_seq(&mut r, n, layout, base.div_euclid(width))?;
    let counts = if layout == Layout::V2 && r.read_bit()? {
        vec![1; n]
    } else {
        read_int_seq(&mut r, n, layout, 0)?
    };
    let lasts = read_values(&mut r, n, layout)?;
    if idx.windows(2).any(|w| w[0] >= w[1]) || counts.iter().any(|&c| c < 1) {
        return Err(BitsError);
    }
    // Per bucket: its first value if stored in short form with two samples.
    let mut short = vec![false; n];
    let mut firsts = Vec::new();
    if layout == Layout::V2 {
        let flagged = r.read_bit()?;
        let mut pairs = 0;
        for (i, &c) in counts.iter().enumerate() {
            if c <= 2 {
                short[i] = !flagged || r.read_bit()?;
                pairs += usize::from(short[i] && c == 2);
            }
        }
        firsts = read_values(&mut r, pairs, layout)?;
    } else {
        for (i, &c) in counts.iter().enumerate() {
            short[i] = c == 1;
        }
    }
    let general = short.iter().filter(|&&s| !s).count();
    let mins = read_values(&mut r, general, layout)?;
    let maxs = read_values(&mut r, general, layout)?;
    let sums = read_values(&mut r, general, layout)?;
    let mut out = Vec::with_capacity(n);
    let (mut f, mut g) = (0, 0);
    for i in 0..n {
        let start = idx[i].checked_mul(width).ok_or(BitsError)?;
        let b = if !short[i] {
            let mut b = Bucket::new(start, lasts[i]);
            b.count = counts[i] as u64;
            b.min = mins[g];
            b.max = maxs[g];
            b.sum = sums[g];
            g += 1;
            b
        } else if counts[i] == 2 {
            let mut b = Bucket::new(start, firsts[f]);
            b.add(lasts[i]);
            f += 1;
            b
        } else {
            Bucket::new(start, lasts[i])
        };
        out.push(b);
    }
    Ok(out)
}

fn write_uvar(w: &mut BitWriter, u: u64) {
    let n = bit_width(u);
    w.write_bits(u64::from(n), 7);
    w.write_bits(u, n);
}

fn read_uvar(r: &mut BitReader<'_>) -> Result<u64, BitsError> {
    let n = r.read_bits(7)? as u32;
    if n > 64 {
        return Err(BitsError);
    }
    r.read_bits(n)
}

/// How a column of residuals is coded, chosen per column from the histogram
/// of their bit widths.
#[derive(Debug, Clone, Copy)]
enum ResidualCode {
    /// Every residual is zero: nothing per value.
    Zero,
    /// Every residual fits in `k` bits: exactly `k` bits each.
    Fixed(u32),
    /// `0` + `k` bits, or `1` + 6-bit width + that many bits.
    Escape(u32),
}

/// The cheapest code for residuals with these bit widths, and its cost.
fn best_code(hist: &[u64; 65]) -> (ResidualCode, u64) {
    let n: u64 = hist.iter().sum();
    let max_width = hist.iter().rposition(|&h| h > 0).unwrap_or(0) as u32;
    if max_width == 0 {
        return (ResidualCode::Zero, 2);
    }
    let mut best = (ResidualCode::Fixed(max_width), 8 + n * u64::from(max_width));
    // Escape(k) costs 1 + k bits for residuals of width <= k, 7 + width for
    // the others: walk k up, moving one width from the second sum to the first.
    let mut fitting = 0u64;
    let mut escaped: u64 = hist
        .iter()
        .enumerate()
        .map(|(width, &h)| h * (7 + width as u64))
        .sum();
    for k in 0..max_width.min(64) {
        let h = hist[k as usize];
        fitting += h;
        escaped -= h * (7 + u64::from(k));
        let bits = 8 + fitting * (1 + u64::from(k)) + escaped;
        if bits < best.1 {
            best = (ResidualCode::Escape(k), bits);
        }
    }
    best
}

fn write_residuals(w: &mut BitWriter, us: &[u64]) {
    let (code, _) = best_code(&histogram(us.iter().copied()));
    match code {
        ResidualCode::Zero => w.write_bits(0, 2),
        ResidualCode::Fixed(k) => {
            w.write_bits(1, 2);
            w.write_bits(u64::from(k - 1), 6);
            for &u in us {
                w.write_bits(u, k);
            }
        }
        ResidualCode::Escape(k) => {
            w.write_bits(2, 2);
            w.write_bits(u64::from(k), 6);
            for &u in us {
                let width = bit_width(u);
                if width <= k {
                    w.write_bit(false);
                    w.write_bits(u, k);
                } else {
                    w.write_bit(true);
                    w.write_bits(u64::from(width - 1), 6);
                    w.write_bits(u, width);
                }
            }
        }
    }
}

fn read_residuals(
    r: &mut BitReader<'_>,
    n: usize,
    mut f: impl FnMut(u64),
) -> Result<(), BitsError> {
    match r.read_bits(2)? {
        0 => (0..n).for_each(|_| f(0)),
        1 => {
            let k = r.read_bits(6)? as u32 + 1;
            for _ in 0..n {
                f(r.read_bits(k)?);
            }
        }
        2 => {
            let k = r.read_bits(6)? as u32;
            for _ in 0..n {
                let u = if r.read_bit()? {
                    let width = r.read_bits(6)? as u32 + 1;
                    r.read_bits(width)?
                } else {
                    r.read_bits(k)?
                };
                f(u);
            }
        }
        _ => return Err(BitsError),
    }
    Ok(())
}

fn histogram(us: impl Iterator<Item = u64>) -> [u64; 65] {
    let mut h = [0u64; 65];
    for u in us {
        h[bit_width(u) as usize] += 1;
    }
    h
}

/// Writes an integer column (its length is stored elsewhere): the first
/// value (relative to `base`), a 2-bit mode, and the residuals of whichever mode codes smallest:
///
/// * 0: deltas minus their median (zig-zagged);
/// * 1: delta-of-deltas (zig-zagged);
/// * 2: offsets above the line `v0 + step * i` (minus the smallest offset):
///   timestamps jittered around a regular grid, or, with `step` 0, small
///   values such as bucket counts;
/// * 3: deltas minus the smallest delta: gaps of at least some size.
fn write_int_seq(w: &mut BitWriter, vals: &[i64], base: i64) {
    let n = vals.len();
    if n == 0 {
        return;
    }
    write_uvar(w, zigzag(vals[0].wrapping_sub(base)));
    if n == 1 {
        return;
    }
    let deltas: Vec<i64> = vals.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
    let mut sorted = deltas.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let min_delta = sorted[0];
    let header = |v: i64| 7 + u64::from(bit_width(zigzag(v)));
    let cost = |us: &mut dyn Iterator<Item = u64>| best_code(&histogram(us)).1;
    // Offsets above the line `v0 + step * i`, for i >= 1.
    let offsets = |step: i64| {
        vals[1..]
            .iter()
            .zip(1i64..)
            .map(move |(v, i)| v.wrapping_sub(vals[0]).wrapping_sub(step.wrapping_mul(i)))
    };
    let lowest = |step: i64| offsets(step).min().unwrap_or(0);
    let band = |step: i64| {
        let (lo, hi) =
            offsets(step).fold((i64::MAX, i64::MIN), |(lo, hi), o| (lo.min(o), hi.max(o)));
        hi.wrapping_sub(lo) as u64
    };

    // (mode, cost, parameter, lowest offset), cheapest first.
    let mut best = (
        0u8,
        cost(&mut deltas.iter().map(|d| zigzag(d.wrapping_sub(median)))) + header(median),
        median,
        0i64,
    );
    let mut consider = |mode: u8, c: u64, param: i64, lo: i64| {
        if c < best.1 {
            best = (mode, c, param, lo);
        }
    };
    consider(
        1,
        cost(&mut deltas.windows(2).map(|p| zigzag(p[1].wrapping_sub(p[0])))) + header(deltas[0]),
        deltas[0],
        0,
    );
    consider(
        3,
        cost(&mut deltas.iter().map(|d| d.wrapping_sub(min_delta) as u64)) + header(min_delta),
        min_delta,
        0,
    );
    // The line: step 0 (the values themselves) and, of the median delta and
    // the steps around the least-squares slope, the one that leaves the
    // narrowest band of offsets.
    let slope = least_squares_slope(vals);
    let mut step = median;
    let mut narrowest = band(median);
    for s in [-1i64, 0, 1].map(|k| slope.wrapping_add(k)) {
        let b = band(s);
        if b < narrowest {
            (step, narrowest) = (s, b);
        }
    }
    for step in [0, step] {
        let lo = lowest(step);
        let c = cost(&mut offsets(step).map(|o| o.wrapping_sub(lo) as u64));
        consider(2, c + header(step) + header(lo), step, lo);
    }
    let (mode, _, param, lo) = best;
    let residuals: Vec<u64> = match mode {
        0 => deltas
            .iter()
            .map(|d| zigzag(d.wrapping_sub(median)))
            .collect(),
        1 => deltas
            .windows(2)
            .map(|p| zigzag(p[1].wrapping_sub(p[0])))
            .collect(),
        2 => offsets(param).map(|o| o.wrapping_sub(lo) as u64).collect(),
        _ => deltas
            .iter()
            .map(|d| d.wrapping_sub(min_delta) as u64)
            .collect(),
    };
    w.write_bits(u64::from(mode), 2);
    write_uvar(w, zigzag(param));
    if mode == 2 {
        write_uvar(w, zigzag(lo));
    }
    write_residuals(w, &residuals);
}

/// The slope of the least-squares line through `(i, vals[i])`, rounded (an
/// estimate only: it picks a candidate step, it does not decide correctness).
fn least_squares_slope(vals: &[i64]) -> i64 {
    let n = vals.len() as f64;
    let mean_i = (n - 1.0) / 2.0;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, v) in vals.iter().enumerate() {
        let di = i as f64 - mean_i;
        num += di * v.wrapping_sub(vals[0]) as f64;
        den += di * di;
    }
    let s = (num / den).round();
    if s.is_finite() && s.abs() < 9e18 {
        s as i64
    } else {
        0
    }
}

/// Reads an integer column; `base` is ignored for the first layout, where the
/// first value is absolute.
fn read_int_seq(
    r: &mut BitReader<'_>,
    n: usize,
    layout: Layout,
    base: i64,
) -> Result<Vec<i64>, BitsError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let first = match layout {
        Layout::V1 => unzigzag(read_uvar(r)?),
        Layout::V2 => base.wrapping_add(unzigzag(read_uvar(r)?)),
    };
    let mut v = first;
    out.push(v);
    if n == 1 {
        return Ok(out);
    }
    let mode = match layout {
        Layout::V1 => r.read_bits(1)?,
        Layout::V2 => r.read_bits(2)?,
    };
    let param = unzigzag(read_uvar(r)?);
    match mode {
        0 => read_residuals(r, n - 1, |u| {
            v = v.wrapping_add(param.wrapping_add(unzigzag(u)));
            out.push(v);
        })?,
        1 => {
            let mut d = param;
            v = v.wrapping_add(d);
            out.push(v);
            read_residuals(r, n - 2, |u| {
                d = d.wrapping_add(unzigzag(u));
                v = v.wrapping_add(d);
                out.push(v);
            })?;
        }
        2 => {
            let lo = unzigzag(read_uvar(r)?);
            let mut i = 0i64;
            read_residuals(r, n - 1, |u| {
                i += 1;
                let offset = lo.wrapping_add(u as i64);
                out.push(
                    first
                        .wrapping_add(param.wrapping_mul(i))
                        .wrapping_add(offset),
                );
            })?;
        }
        _ => read_residuals(r, n - 1, |u| {
            v = v.wrapping_add(param.wrapping_add(u as i64));
            out.push(v);
        })?,
    }
    Ok(out)
}

/// The smallest `e` such that `v == round(v * 10^e) / 10^e` exactly.
fn decimal_exponent(v: f64) -> Option<usize> {
    for (e, p) in POW10.iter().enumerate() {
        let s = v * p;
        if s.abs() >= DECIMAL_LIMIT {
            return None;
        }
        if (s.round() / p).to_bits() == v.to_bits() {
            return Some(e);
        }
    }
    None
}

/// Decimal form of a column: exponent, mantissas, bit-pattern corrections.
fn to_decimal(vs: &[f64]) -> Option<(usize, Vec<i64>, Vec<u64>)> {
    let mut e = None::<usize>;
    for (i, &v) in vs.iter().enumerate() {
        match decimal_exponent(v) {
            Some(x) => e = Some(e.map_or(x, |c| c.max(x))),
            // Not decimal-looking at the start: Gorilla XOR will win anyway.
            None if i < 8 && e.is_none() => return None,
            None => {}
        }
    }
    let e = e?;
    let p = POW10[e];
    let mut ms = Vec::with_capacity(vs.len());
    let mut res = Vec::with_capacity(vs.len());
    for &v in vs {
        let s = (v * p).round();
        if s.is_nan() || s.abs() >= 4.6e18 {
            return None;
        }
        let m = s as i64;
        let back = (m as f64 / p).to_bits();
        ms.push(m);
        res.push(zigzag(v.to_bits().wrapping_sub(back) as i64));
    }
    Some((e, ms, res))
}

/// Writes a float column (its length is stored elsewhere).
fn write_values(w: &mut BitWriter, vs: &[f64]) {
    if vs.is_empty() {
        return;
    }
    let mut xor = BitWriter::with_capacity(vs.len() * 2);
    let mut st = XorState::default();
    for &v in vs {
        st.write(&mut xor, v);
    }
    if let Some((e, ms, res)) = to_decimal(vs) {
        let mut dec = BitWriter::with_capacity(vs.len());
        dec.write_bits(e as u64, 5);
        write_int_seq(&mut dec, &ms, 0);
        write_residuals(&mut dec, &res);
        if dec.bit_len() < xor.bit_len() {
            w.write_bit(true);
            w.append(&dec);
            return;
        }
    }
    w.write_bit(false);
    w.append(&xor);
}

fn read_values(r: &mut BitReader<'_>, n: usize, layout: Layout) -> Result<Vec<f64>, BitsError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    if r.read_bit()? {
        let e = r.read_bits(5)? as usize;
        let p = *POW10.get(e).ok_or(BitsError)?;
        let ms = read_int_seq(r, n, layout, 0)?;
        let mut i = 0;
        read_residuals(r, n, |u| {
            let base = (ms[i] as f64 / p).to_bits();
            out.push(f64::from_bits(base.wrapping_add(unzigzag(u) as u64)));
            i += 1;
        })?;
    } else {
        let mut st = XorState::default();
        for _ in 0..n {
            out.push(st.read(r)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(ts: &[i64], vs: &[f64]) -> usize {
        let enc = encode_samples(ts, vs, ts[0]);
        let (t2, v2) = decode_samples(&enc, ts[0]).unwrap();
        assert_eq!(t2, ts);
        assert_eq!(
            v2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            vs.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        enc.len()
    }

    #[test]
    fn edge_values() {
        let vs = [
            0.0,
            -0.0,
            1e308,
            -1e-308,
            5e-324,
            0.1,
            0.30000000000000004,
            123.45,
            f64::MAX,
            f64::MIN,
        ];
        let ts: Vec<i64> = (0..vs.len() as i64)
            .map(|i| i * 1000 + (i * i) % 7)
            .collect();
        rt(&ts, &vs);
    }

    #[test]
    fn prices_compress_well() {
        let ts: Vec<i64> = (0..120)
            .map(|i| 1_700_000_000_000 + i * 1000 + (i * 37) % 200)
            .collect();
        let vs: Vec<f64> = (0..120)
            .map(|i| 100.0 + f64::from((i * 7) % 5) * 0.01)
            .collect();
        let n = rt(&ts, &vs);
        assert!(n < 120 * 2, "{n} bytes");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn bucket_bits(b: &Bucket) -> (i64, u64, [u64; 4]) {
        (
            b.start_ms,
            b.count,
            [b.min, b.max, b.sum, b.last].map(f64::to_bits),
        )
    }

    fn rt_buckets(bs: &[Bucket], width: i64, base: i64) -> usize {
        let enc = encode_buckets(bs, width, base);
        let back = decode_buckets(&enc, width, base).unwrap();
        assert_eq!(
            back.iter().map(bucket_bits).collect::<Vec<_>>(),
            bs.iter().map(bucket_bits).collect::<Vec<_>>()
        );
        enc.len()
    }

    /// Chunks of the first layout (kinds 1 and 2), as the first version of
    /// this codec wrote them, still decode, whatever base is given.
    #[test]
    fn first_layout_chunks_still_decode() {
        let ts: Vec<i64> = (0..10)
            .map(|i| 1_700_000_000_000 + i * 1000 + (i * 37) % 11)
            .collect();
        let vs: Vec<f64> = (0..10)
            .map(|i| 64_000.0 + i as f64 * 0.01 - (i % 3) as f64 * 0.02)
            .collect();
        let v1 = hex("010a558bcfe5680045fd844056c0ad81588c61a80040d0c32c32c310492000");
        for base in [0, 12_345, ts[0]] {
            let (t2, v2) = decode_samples(&v1, base).unwrap();
            assert_eq!(t2, ts);
            assert_eq!(
                v2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                vs.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        let mut bs = Vec::new();
        for i in 0..6i64 {
            let mut b = Bucket::new((1_700_000_000 + i * 2) * 1000, 10.0 + i as f64);
            for k in 0..(i % 3) {
                b.add(10.5 + (i * k) as f64 * 0.25);
            }
            bs.push(b);
        }
        let v1 = hex(
            "020641954fc40007005414842e110bfa10f9124004b383bb8609d00944016d0520c910d866464b026419e1fc00",
        );
        for base in [0, bs[0].start_ms] {
            let back = decode_buckets(&v1, 1000, base).unwrap();
            assert_eq!(
                back.iter().map(bucket_bits).collect::<Vec<_>>(),
                bs.iter().map(bucket_bits).collect::<Vec<_>>()
            );
        }
        // The current layout of the same data, for comparison.
        assert!(encode_samples(&ts, &vs, ts[0]).len() < v1.len());
    }

    /// Buckets of one and two samples take their short forms; any bucket that
    /// its short form would not rebuild bit for bit keeps the general form.
    #[test]
    fn short_bucket_forms_are_exact() {
        let w = 1000;
        let pair = |s: i64, a: f64, b: f64| {
            let mut x = Bucket::new(s * w, a);
            x.add(b);
            x
        };
        let canonical: Vec<Bucket> = (0..120)
            .map(|i| {
                let v = 100.0 + f64::from(i % 7) * 0.01;
                match i % 3 {
                    0 => Bucket::new(i64::from(i) * w, v),
                    1 => pair(i64::from(i), v, v - 0.02),
                    _ => pair(i64::from(i), v - 0.03, v),
                }
            })
            .collect();
        let short = rt_buckets(&canonical, w, 0);
        // The same buckets with one that has no short form: flags per bucket.
        let mut odd = canonical.clone();
        odd[5].min = -1.0; // a two-sample bucket whose min is neither value
        odd[6].sum = 7.0; // a one-sample bucket whose sum is not its value
        odd[9] = pair(9, 0.0, -0.0); // signed zeros: min/max may pick either
        odd[12] = pair(12, -0.0, 0.0);
        let flagged = rt_buckets(&odd, w, 0);
        assert!(short < flagged, "{short} vs {flagged}");
        // Pairs store one value, not three: well under the general form.
        let mut general = canonical.clone();
        for b in &mut general {
            b.count += 1; // not a short form any more
        }
        let general = rt_buckets(&general, w, 0);
        assert!(short * 3 < general * 2, "{short} vs {general}");
        // Single-sample buckets only: no count column at all.
        let singles: Vec<Bucket> = (0..120).map(|i| Bucket::new(i * w, 1.0)).collect();
        assert!(rt_buckets(&singles, w, 0) < 16);
        // Empty and one-bucket chunks.
        rt_buckets(&[], w, 0);
        rt_buckets(&odd[5..6], w, 0);
        rt_buckets(&odd[6..7], w, 0);
    }

    /// The first timestamp or bucket is stored relative to the base the
    /// caller passes; a base equal to it costs a byte, not six.
    #[test]
    fn first_value_is_relative_to_the_base() {
        let ts: Vec<i64> = (0..120).map(|i| 1_700_000_000_000 + i * 1000).collect();
        let vs = vec![1.0; 120];
        let at = encode_samples(&ts, &vs, ts[0]);
        let abs = encode_samples(&ts, &vs, 0);
        assert!(at.len() + 4 < abs.len(), "{} vs {}", at.len(), abs.len());
        assert_eq!(decode_samples(&at, ts[0]).unwrap().0, ts);
        assert_eq!(decode_samples(&abs, 0).unwrap().0, ts);
        // A different base shifts every timestamp: the frame header's bound
        // is part of the chunk's meaning (and is checksummed with it).
        let shifted = decode_samples(&at, ts[0] + 5).unwrap().0;
        assert_eq!(shifted[0], ts[0] + 5);
        let bs: Vec<Bucket> = (0..50)
            .map(|i| Bucket::new(-3_600_000 + i * 60_000, 2.5))
            .collect();
        rt_buckets(&bs, 60_000, bs[0].start_ms);
        rt_buckets(&bs, 60_000, 0);
        rt_buckets(&bs, 60_000, i64::MIN);
    }

    fn rt_ints(vals: &[i64], base: i64) -> u64 {
        let mut w = BitWriter::with_capacity(64);
        write_int_seq(&mut w, vals, base);
        let mut r = BitReader::new(w.bytes());
        assert_eq!(
            read_int_seq(&mut r, vals.len(), Layout::V2, base).unwrap(),
            vals
        );
        w.bit_len()
    }

    /// Every integer mode round-trips, extremes and wrapping included, and
    /// the line and minimum-delta modes win where they should.
    #[test]
    fn integer_modes_round_trip() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Jittered grid: offsets above the line, ~10 bits each.
        let grid: Vec<i64> = (0..120)
            .map(|i| 1_700_000_000_000 + i * 1000 + (next() % 600) as i64 - 300)
            .collect();
        assert!(rt_ints(&grid, grid[0]) < 120 * 11, "grid");
        // Small values (counts): the line with step 0.
        let counts: Vec<i64> = (0..120).map(|_| 1 + (next() % 2) as i64).collect();
        assert!(rt_ints(&counts, 0) < 120 + 40, "counts");
        // Gaps of at least one: deltas above their minimum.
        let mut v = 0i64;
        let gaps: Vec<i64> = (0..120)
            .map(|_| {
                v += 1 + i64::from(next() % 4 == 0);
                v
            })
            .collect();
        assert!(rt_ints(&gaps, 0) < 120 * 2 + 40, "gaps");
        for case in 0..2000 {
            let n = 1 + (next() % 130) as usize;
            let vals: Vec<i64> = (0..n)
                .map(|_| match next() % 6 {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    2 => 0,
                    3 => (next() % 1000) as i64,
                    _ => next() as i64,
                })
                .collect();
            let mut sorted = vals.clone();
            sorted.sort_unstable();
            for (i, vals) in [vals, sorted].iter().enumerate() {
                let base = if i == 0 { 0 } else { next() as i64 };
                let mut w = BitWriter::with_capacity(64);
                write_int_seq(&mut w, vals, base);
                let mut r = BitReader::new(w.bytes());
                assert_eq!(
                    &read_int_seq(&mut r, n, Layout::V2, base).unwrap(),
                    vals,
                    "case {case}"
                );
            }
        }
    }
}
