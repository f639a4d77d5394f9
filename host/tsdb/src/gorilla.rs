//! Streaming Gorilla codec for the in-memory head chunks.
//!
//! Head chunks grow one sample (or one bucket) at a time, so they use the
//! streaming scheme of Facebook's Gorilla paper as Prometheus adapted it to
//! milliseconds: the first timestamp in full, then delta-of-delta timestamps
//! in prefix-coded buckets, and each value XORed with the previous one,
//! reusing the previous window of meaningful bits when it fits. When a chunk is
//! cut it is decoded and re-encoded with the denser column codec of
//! [`crate::chunk`].

use crate::bits::{BitReader, BitWriter, BitsError};
use crate::tier::Bucket;

/// XOR state of one float stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XorState {
    prev: u64,
    /// At most 64 each: bytes keep the state at 16 bytes (an open bucket chunk
    /// holds four of these per series and tier).
    leading: u8,
    trailing: u8,
    has_window: bool,
}

impl XorState {
    /// Writes `v` relative to the previous value (0.0 before the first).
    #[inline]
    pub(crate) fn write(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        let xor = bits ^ self.prev;
        self.prev = bits;
        if xor == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let lz = xor.leading_zeros();
        let tz = xor.trailing_zeros();
        let (leading, trailing) = (u32::from(self.leading), u32::from(self.trailing));
        if self.has_window && lz >= leading && tz >= trailing {
            w.write_bit(false);
            let sig = 64 - leading - trailing;
            w.write_bits(xor >> trailing, sig);
        } else {
            w.write_bit(true);
            let sig = 64 - lz - tz;
            w.write_bits(u64::from(lz), 6);
            w.write_bits(u64::from(sig - 1), 6);
            w.write_bits(xor >> tz, sig);
            // Both below 64: `xor` is not zero.
            self.leading = lz as u8;
            self.trailing = tz as u8;
            self.has_window = true;
        }
    }

    /// Reads a value written by [`XorState::write`].
    #[inline]
    pub(crate) fn read(&mut self, r: &mut BitReader<'_>) -> Result<f64, BitsError> {
        if r.read_bit()? {
            if r.read_bit()? {
                let lz = r.read_bits(6)? as u32;
                let sig = r.read_bits(6)? as u32 + 1;
                if lz + sig > 64 {
                    return Err(BitsError);
                }
                // Both at most 64: checked above.
                self.leading = lz as u8;
                self.trailing = (64 - lz - sig) as u8;
                self.has_window = true;
            } else if !self.has_window {
                return Err(BitsError);
            }
            let (leading, trailing) = (u32::from(self.leading), u32::from(self.trailing));
            let sig = 64 - leading - trailing;
            let xor = r.read_bits(sig)? << trailing;
            self.prev ^= xor;
        }
        Ok(f64::from_bits(self.prev))
    }
}

/// Writes a signed delta-of-delta in Gorilla's prefix buckets (ms-sized).
#[inline]
pub(crate) fn write_dod(w: &mut BitWriter, dod: i64) {
    let fits = |bits: u32| {
        let lim = 1i64 << (bits - 1);
        (-lim..lim).contains(&dod)
    };
    if dod == 0 {
        w.write_bit(false);
    } else if fits(7) {
        w.write_bits(0b10, 2);
        w.write_bits(dod as u64, 7);
    } else if fits(9) {
        w.write_bits(0b110, 3);
        w.write_bits(dod as u64, 9);
    } else if fits(12) {
        w.write_bits(0b1110, 4);
        w.write_bits(dod as u64, 12);
    } else if fits(20) {
        w.write_bits(0b11110, 5);
        w.write_bits(dod as u64, 20);
    } else {
        w.write_bits(0b11111, 5);
        w.write_bits(dod as u64, 64);
    }
}

/// Reads a value written by [`write_dod`].
#[inline]
pub(crate) fn read_dod(r: &mut BitReader<'_>) -> Result<i64, BitsError> {
    let bits = match r.read_unary(5)? {
        0 => return Ok(0),
        1 => 7,
        2 => 9,
        3 => 12,
        4 => 20,
        _ => 64,
    };
    let raw = r.read_bits(bits)?;
    Ok(sign_extend(raw, bits))
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits == 64 {
        raw as i64
    } else {
        let shift = 64 - bits;
        ((raw << shift) as i64) >> shift
    }
}

/// An open chunk of raw samples, appended in time order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SampleChunk {
    w: BitWriter,
    n: u32,
    first_t: i64,
    last_t: i64,
    last_delta: i64,
    xor: XorState,
}

impl SampleChunk {
    /// An empty chunk.
    pub(crate) fn new() -> Self {
        Self {
            w: BitWriter::with_capacity(64),
            ..Self::default()
        }
    }

    /// Number of samples.
    pub(crate) fn len(&self) -> u32 {
        self.n
    }

    /// Timestamp of the first sample (meaningless when empty).
    pub(crate) fn min_t(&self) -> i64 {
        self.first_t
    }

    /// Timestamp of the newest sample (meaningless when empty).
    pub(crate) fn max_t(&self) -> i64 {
        self.last_t
    }

    /// Encoded bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Appends a sample newer than the last one.
    pub(crate) fn append(&mut self, t: i64, v: f64) {
        if self.n == 0 {
            self.w.write_bits(t as u64, 64);
            self.first_t = t;
        } else {
            let delta = t.wrapping_sub(self.last_t);
            write_dod(&mut self.w, delta.wrapping_sub(self.last_delta));
            self.last_delta = delta;
        }
        self.xor.write(&mut self.w, v);
        self.last_t = t;
        self.n += 1;
    }
}

/// Decodes `n` samples written by [`SampleChunk`], calling `f` for each.
pub(crate) fn decode_samples(
    bytes: &[u8],
    n: u32,
    mut f: impl FnMut(i64, f64),
) -> Result<(), BitsError> {
    let mut r = BitReader::new(bytes);
    let mut xor = XorState::default();
    let mut t = 0i64;
    let mut delta = 0i64;
    for i in 0..n {
        if i == 0 {
            t = r.read_bits(64)? as i64;
        } else {
            delta = delta.wrapping_add(read_dod(&mut r)?);
            t = t.wrapping_add(delta);
        }
        f(t, xor.read(&mut r)?);
    }
    Ok(())
}

/// An open chunk of buckets of one tier, appended in time order.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketChunk {
    w: BitWriter,
    n: u32,
    first_start: i64,
    last_idx: i64,
    last_didx: i64,
    last_count: u64,
    last: XorState,
    min: XorState,
    max: XorState,
    sum: XorState,
}

impl BucketChunk {
    /// An empty chunk.
    pub(crate) fn new() -> Self {
        Self {
            w: BitWriter::with_capacity(64),
            ..Self::default()
        }
    }

    /// Number of buckets.
    pub(crate) fn len(&self) -> u32 {
        self.n
    }

    /// Start of the first bucket (meaningless when empty).
    pub(crate) fn min_t(&self) -> i64 {
        self.first_start
    }

    /// Encoded bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Appends a bucket newer than the last one; `width` is the tier's width.
    pub(crate) fn append(&mut self, width: i64, b: &Bucket) {
        let idx = b.start_ms.div_euclid(width);
        if self.n == 0 {
            self.w.write_bits(idx as u64, 64);
            self.first_start = b.start_ms;
        } else {
            let didx = idx.wrapping_sub(self.last_idx);
            write_dod(&mut self.w, didx.wrapping_sub(self.last_didx));
            self.last_didx = didx;
        }
        write_dod(
            &mut self.w,
            (b.count as i64).wrapping_sub(self.last_count as i64),
        );
        self.last_count = b.count;
        self.last_idx = idx;
        self.last.write(&mut self.w, b.last);
        // Two samples: their first value, when min, max and sum follow from
        // it and the last exactly (as on disk, `chunk::short_form`); a flag
        // says which. One sample: nothing more (min, max and sum are it).
        let first = match b.count {
            2 => {
                let first = crate::chunk::short_form(b).flatten();
                self.w.write_bit(first.is_some());
                first
            }
            _ => None,
        };
        match first {
            Some(first) => self.min.write(&mut self.w, first),
            None if b.count > 1 => {
                self.min.write(&mut self.w, b.min);
                self.max.write(&mut self.w, b.max);
                self.sum.write(&mut self.w, b.sum);
            }
            None => {}
        }
        self.n += 1;
    }
}

/// Decodes `n` buckets written by [`BucketChunk`], calling `f` for each.
pub(crate) fn decode_buckets(
    bytes: &[u8],
    n: u32,
    width: i64,
    mut f: impl FnMut(Bucket),
) -> Result<(), BitsError> {
    let mut r = BitReader::new(bytes);
    let (mut last, mut min, mut max, mut sum) = (
        XorState::default(),
        XorState::default(),
        XorState::default(),
        XorState::default(),
    );
    let mut idx = 0i64;
    let mut didx = 0i64;
    let mut count = 0i64;
    for i in 0..n {
        if i == 0 {
            idx = r.read_bits(64)? as i64;
        } else {
            didx = didx.wrapping_add(read_dod(&mut r)?);
            idx = idx.wrapping_add(didx);
        }
        count = count.wrapping_add(read_dod(&mut r)?);
        if count < 1 {
            return Err(BitsError);
        }
        let l = last.read(&mut r)?;
        let start = idx.wrapping_mul(width);
        let b = if count == 2 && r.read_bit()? {
            let mut b = Bucket::new(start, min.read(&mut r)?);
            b.add(l);
            b
        } else {
            let mut b = Bucket::new(start, l);
            if count > 1 {
                b.count = count as u64;
                b.min = min.read(&mut r)?;
                b.max = max.read(&mut r)?;
                b.sum = sum.read(&mut r)?;
            }
            b
        };
        f(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip() {
        let mut c = SampleChunk::new();
        let data: Vec<(i64, f64)> = vec![
            (1000, 1.0),
            (2000, 1.0),
            (3001, 1.5),
            (3002, -0.0),
            (10_000_000, 1e300),
            (10_000_001, f64::MIN_POSITIVE),
        ];
        for &(t, v) in &data {
            c.append(t, v);
        }
        let mut got = Vec::new();
        decode_samples(c.bytes(), c.len(), |t, v| got.push((t, v))).unwrap();
        assert_eq!(got.len(), data.len());
        for (a, b) in got.iter().zip(&data) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
    }

    #[test]
    fn buckets_round_trip() {
        let mut c = BucketChunk::new();
        let mut data = Vec::new();
        for i in 0..50i64 {
            let mut b = Bucket::new(i * 3 * 60_000, i as f64);
            for k in 0..(i % 4) {
                b.add((i * k) as f64 * 0.5);
            }
            data.push(b);
            c.append(60_000, &b);
        }
        let mut got = Vec::new();
        decode_buckets(c.bytes(), c.len(), 60_000, |b| got.push(b)).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn two_sample_buckets_round_trip_bit_for_bit_and_take_less_room() {
        let bits = |b: &Bucket| {
            [b.min, b.max, b.sum, b.last]
                .map(f64::to_bits)
                .into_iter()
                .chain([b.start_ms as u64, b.count])
                .collect::<Vec<u64>>()
        };
        let pair = |i: i64, first: f64, last: f64| {
            let mut b = Bucket::new(i * 1000, first);
            b.add(last);
            b
        };
        let mut data = Vec::new();
        for i in 0..200i64 {
            let p = 64_000.0 + (i * 37 % 101) as f64 * 0.25;
            data.push(pair(i, p, p + 0.5 - (i % 3) as f64 * 0.25));
        }
        // Signed zeros, and a two-sample bucket whose min is neither value: the
        // general form, exact as well.
        data.push(pair(200, 0.0, -0.0));
        data.push(pair(201, -0.0, 0.0));
        let mut odd = pair(202, 3.0, 4.0);
        odd.min = -1.0;
        data.push(odd);
        data.push(Bucket::new(203_000, -0.0));
        let mut c = BucketChunk::new();
        for b in &data {
            c.append(1000, b);
        }
        let mut got = Vec::new();
        decode_buckets(c.bytes(), c.len(), 1000, |b| got.push(b)).unwrap();
        assert_eq!(got.len(), data.len());
        for (g, d) in got.iter().zip(&data) {
            assert_eq!(bits(g), bits(d), "{d:?}");
        }
        // Two-sample buckets of a varying series: last and first only.
        // 609 bytes; 1,132 with min, max and sum written for each.
        assert!(c.bytes().len() < 800, "{} bytes", c.bytes().len());
    }
}
