//! Column codec of the chunks written to partition files and checkpoints.
//!
//! A chunk is encoded once, when it is cut, from all its samples at hand, so
//! each column can pick the cheapest of a few encodings:
//!
//! * Integer columns (timestamps, bucket indices, counts, decimal mantissas):
//!   the first value, then the deltas either minus their median or as
//!   delta-of-deltas, whichever is smaller for this chunk. The zig-zagged
//!   residuals are coded as nothing (all zero), `k` bits each (all fit), or
//!   `0` + `k` bits / `1` + 6-bit width + bits, with `k` chosen per column
//!   from the histogram of residual widths.
//! * Float columns: Gorilla XOR, or *decimal* mode when the values are short
//!   decimals (prices in ticks, integer counters): `v = m / 10^e` with the
//!   integer `m` stored as an integer column and a per-value correction of the
//!   IEEE bit pattern (almost always zero), so decoding is bit-exact for every
//!   finite value whatever the mode. The smaller of the two encodings wins.
//!
//! Layout: `kind: u8`, `count: uvarint`, then one bit stream holding the columns.

use crate::bits::{
    BitReader, BitWriter, BitsError, ByteReader, bit_width, put_uvarint, unzigzag, zigzag,
};
use crate::gorilla::XorState;
use crate::tier::Bucket;

/// Chunk kind byte: raw samples.
pub(crate) const KIND_SAMPLES: u8 = 1;
/// Chunk kind byte: buckets of a downsampled tier.
pub(crate) const KIND_BUCKETS: u8 = 2;

/// Most samples or buckets in one chunk (a sanity bound for decoding).
pub(crate) const MAX_CHUNK_ITEMS: u64 = 1 << 20;

const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];
/// Largest magnitude of `v * 10^e` kept in decimal mode (mantissas stay exact in f64).
const DECIMAL_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Encodes raw samples (`ts` strictly increasing, same length as `vs`).
pub(crate) fn encode_samples(ts: &[i64], vs: &[f64]) -> Vec<u8> {
    debug_assert_eq!(ts.len(), vs.len());
    let mut out = Vec::with_capacity(16 + ts.len() * 2);
    out.push(KIND_SAMPLES);
    put_uvarint(&mut out, ts.len() as u64);
    let mut w = BitWriter::with_capacity(ts.len() * 2);
    write_int_seq(&mut w, ts);
    write_values(&mut w, vs);
    out.extend_from_slice(w.bytes());
    out
}

/// Decodes a chunk written by [`encode_samples`].
pub(crate) fn decode_samples(bytes: &[u8]) -> Result<(Vec<i64>, Vec<f64>), BitsError> {
    let mut br = ByteReader::new(bytes);
    if br.u8()? != KIND_SAMPLES {
        return Err(BitsError);
    }
    let n = br.uvarint()?;
    if n > MAX_CHUNK_ITEMS {
        return Err(BitsError);
    }
    let n = n as usize;
    let mut r = BitReader::new(br.remaining());
    let ts = read_int_seq(&mut r, n)?;
    let vs = read_values(&mut r, n)?;
    if ts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BitsError);
    }
    Ok((ts, vs))
}

/// Encodes buckets of a tier of width `width` (starts strictly increasing).
pub(crate) fn encode_buckets(bs: &[Bucket], width: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + bs.len() * 4);
    out.push(KIND_BUCKETS);
    put_uvarint(&mut out, bs.len() as u64);
    let mut w = BitWriter::with_capacity(bs.len() * 4);
    let idx: Vec<i64> = bs.iter().map(|b| b.start_ms.div_euclid(width)).collect();
    write_int_seq(&mut w, &idx);
    let counts: Vec<i64> = bs.iter().map(|b| b.count as i64).collect();
    write_int_seq(&mut w, &counts);
    let lasts: Vec<f64> = bs.iter().map(|b| b.last).collect();
    write_values(&mut w, &lasts);
    let multi: Vec<&Bucket> = bs.iter().filter(|b| b.count > 1).collect();
    for field in [|b: &Bucket| b.min, |b: &Bucket| b.max, |b: &Bucket| b.sum] {
        let col: Vec<f64> = multi.iter().map(|b| field(b)).collect();
        write_values(&mut w, &col);
    }
    out.extend_from_slice(w.bytes());
    out
}

/// Decodes a chunk written by [`encode_buckets`].
pub(crate) fn decode_buckets(bytes: &[u8], width: i64) -> Result<Vec<Bucket>, BitsError> {
    let mut br = ByteReader::new(bytes);
    if br.u8()? != KIND_BUCKETS {
        return Err(BitsError);
    }
    let n = br.uvarint()?;
    if n > MAX_CHUNK_ITEMS {
        return Err(BitsError);
    }
    let n = n as usize;
    let mut r = BitReader::new(br.remaining());
    let idx = read_int_seq(&mut r, n)?;
    let counts = read_int_seq(&mut r, n)?;
    let lasts = read_values(&mut r, n)?;
    if idx.windows(2).any(|w| w[0] >= w[1]) || counts.iter().any(|&c| c < 1) {
        return Err(BitsError);
    }
    let multi = counts.iter().filter(|&&c| c > 1).count();
    let mins = read_values(&mut r, multi)?;
    let maxs = read_values(&mut r, multi)?;
    let sums = read_values(&mut r, multi)?;
    let mut out = Vec::with_capacity(n);
    let mut m = 0;
    for i in 0..n {
        let mut b = Bucket::new(idx[i].checked_mul(width).ok_or(BitsError)?, lasts[i]);
        b.count = counts[i] as u64;
        if b.count > 1 {
            b.min = mins[m];
            b.max = maxs[m];
            b.sum = sums[m];
            m += 1;
        }
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
    for k in 0..max_width.min(64) {
        let mut bits = 8;
        for (width, &h) in hist.iter().enumerate() {
            let width = width as u32;
            bits += h * if width <= k {
                1 + u64::from(k)
            } else {
                7 + u64::from(width)
            };
        }
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

/// Writes an integer column (its length is stored elsewhere): the first value,
/// then the deltas either relative to their median or as delta-of-deltas,
/// whichever codes smaller.
fn write_int_seq(w: &mut BitWriter, vals: &[i64]) {
    let n = vals.len();
    if n == 0 {
        return;
    }
    write_uvar(w, zigzag(vals[0]));
    if n == 1 {
        return;
    }
    let deltas: Vec<i64> = vals.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
    let mut sorted = deltas.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let centred: Vec<u64> = deltas
        .iter()
        .map(|d| zigzag(d.wrapping_sub(median)))
        .collect();
    let dods: Vec<u64> = deltas
        .windows(2)
        .map(|p| zigzag(p[1].wrapping_sub(p[0])))
        .collect();
    let c0 =
        best_code(&histogram(centred.iter().copied())).1 + 7 + u64::from(bit_width(zigzag(median)));
    let c1 =
        best_code(&histogram(dods.iter().copied())).1 + 7 + u64::from(bit_width(zigzag(deltas[0])));
    if c0 <= c1 {
        w.write_bit(false);
        write_uvar(w, zigzag(median));
        write_residuals(w, &centred);
    } else {
        w.write_bit(true);
        write_uvar(w, zigzag(deltas[0]));
        write_residuals(w, &dods);
    }
}

fn read_int_seq(r: &mut BitReader<'_>, n: usize) -> Result<Vec<i64>, BitsError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mut v = unzigzag(read_uvar(r)?);
    out.push(v);
    if n == 1 {
        return Ok(out);
    }
    if r.read_bit()? {
        let mut d = unzigzag(read_uvar(r)?);
        v = v.wrapping_add(d);
        out.push(v);
        read_residuals(r, n - 2, |u| {
            d = d.wrapping_add(unzigzag(u));
            v = v.wrapping_add(d);
            out.push(v);
        })?;
    } else {
        let median = unzigzag(read_uvar(r)?);
        read_residuals(r, n - 1, |u| {
            v = v.wrapping_add(median.wrapping_add(unzigzag(u)));
            out.push(v);
        })?;
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
        write_int_seq(&mut dec, &ms);
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

fn read_values(r: &mut BitReader<'_>, n: usize) -> Result<Vec<f64>, BitsError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    if r.read_bit()? {
        let e = r.read_bits(5)? as usize;
        let p = *POW10.get(e).ok_or(BitsError)?;
        let ms = read_int_seq(r, n)?;
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
        let enc = encode_samples(ts, vs);
        let (t2, v2) = decode_samples(&enc).unwrap();
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
}
