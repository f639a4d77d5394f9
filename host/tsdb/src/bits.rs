//! Bit streams: the substrate of the Gorilla codecs.
//!
//! [`BitWriter`] appends bits most-significant first into a byte vector;
//! [`BitReader`] reads them back and reports running off the end as an error
//! (never a panic), so corrupt chunks surface as [`BitsError`].

/// Reading past the end of a bit stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitsError;

/// Appends bits, most significant first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Number of valid bits in `buf` (the last byte may be partial).
    bits: u64,
}

impl BitWriter {
    /// An empty writer with room for `bytes` bytes.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            bits: 0,
        }
    }

    /// Number of bits written.
    pub(crate) fn bit_len(&self) -> u64 {
        self.bits
    }

    /// Bytes reserved.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The bytes written so far (the last one zero-padded).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Appends every bit written to `other`.
    pub(crate) fn append(&mut self, other: &BitWriter) {
        let full = (other.bits / 8) as usize;
        for &b in &other.buf[..full] {
            self.write_bits(u64::from(b), 8);
        }
        let rest = (other.bits % 8) as u32;
        if rest > 0 {
            self.write_bits(u64::from(other.buf[full] >> (8 - rest)), rest);
        }
    }

    /// Writes one bit.
    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `value` (`n <= 64`), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        let mut n = n;
        while n > 0 {
            let used = (self.bits % 8) as u32;
            if used == 0 {
                if self.buf.len() == self.buf.capacity() {
                    // Grow by a quarter, not double: an open chunk is cut at a
                    // few hundred bytes, and doubling would leave up to half of
                    // every series' chunks unused.
                    self.buf.reserve_exact((self.buf.len() / 4).max(16));
                }
                self.buf.push(0);
            }
            let free = 8 - used;
            let take = free.min(n);
            let chunk = ((value >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.buf.len() - 1;
            self.buf[last] |= chunk << (free - take);
            n -= take;
            self.bits += u64::from(take);
        }
    }
}

/// Reads bits written by [`BitWriter`].
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: u64,
    end: u64,
}

impl<'a> BitReader<'a> {
    /// A reader over every bit of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            end: buf.len() as u64 * 8,
        }
    }

    /// Reads one bit.
    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, BitsError> {
        if self.pos >= self.end {
            return Err(BitsError);
        }
        let byte = self.buf[(self.pos / 8) as usize];
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (`n <= 64`) as the low bits of a `u64`.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Result<u64, BitsError> {
        debug_assert!(n <= 64);
        if self.end - self.pos < u64::from(n) {
            return Err(BitsError);
        }
        if n == 0 {
            return Ok(0);
        }
        // Load the (up to) 9 bytes holding the bits into a 128-bit window.
        let byte = (self.pos / 8) as usize;
        let shift = (self.pos % 8) as u32;
        let mut w = [0u8; 16];
        let avail = (self.buf.len() - byte).min(16);
        w[..avail].copy_from_slice(&self.buf[byte..byte + avail]);
        let v = u128::from_be_bytes(w);
        self.pos += u64::from(n);
        Ok(((v << shift) >> (128 - n)) as u64)
    }

    /// Counts leading one bits, up to `max`, consuming them and the terminating zero
    /// (if fewer than `max` ones were read).
    #[inline]
    pub(crate) fn read_unary(&mut self, max: u32) -> Result<u32, BitsError> {
        let mut n = 0;
        while n < max {
            if !self.read_bit()? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Zig-zag encodes a signed integer so that small magnitudes become small.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of significant bits of `u` (0 for 0).
#[inline]
pub(crate) fn bit_width(u: u64) -> u32 {
    64 - u.leading_zeros()
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as a zig-zag LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// A cursor over a byte slice for varints and fixed-width fields; every read
/// reports truncation instead of panicking.
#[derive(Debug, Clone)]
pub(crate) struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Reads an unsigned LEB128 varint (at most 10 bytes).
    pub(crate) fn uvarint(&mut self) -> Result<u64, BitsError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(BitsError)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(BitsError);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(BitsError)
    }

    /// Reads a zig-zag varint.
    pub(crate) fn varint(&mut self) -> Result<i64, BitsError> {
        self.uvarint().map(unzigzag)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, BitsError> {
        let b = *self.buf.get(self.pos).ok_or(BitsError)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], BitsError> {
        let end = self.pos.checked_add(n).ok_or(BitsError)?;
        let s = self.buf.get(self.pos..end).ok_or(BitsError)?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a little-endian u64.
    pub(crate) fn u64_le(&mut self) -> Result<u64, BitsError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a varint length and that many bytes as UTF-8.
    pub(crate) fn string(&mut self) -> Result<&'a str, BitsError> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| BitsError)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| BitsError)
    }
}

/// Appends a varint length and the bytes of `s`.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_grows_by_a_quarter_not_double() {
        let mut w = BitWriter::with_capacity(64);
        for i in 0..30_000u64 {
            w.write_bits(i, 13);
            let (len, capacity) = (w.bytes().len(), w.capacity());
            assert!(
                capacity <= (len + len / 4 + 16).max(64),
                "{capacity} bytes for {len}"
            );
        }
    }

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        let items: Vec<(u64, u32)> = vec![
            (1, 1),
            (0, 1),
            (0x2a, 7),
            (u64::MAX, 64),
            (5, 3),
            (0, 0),
            (1 << 40, 41),
        ];
        for &(v, n) in &items {
            w.write_bits(v, n);
        }
        let mut r = BitReader::new(w.bytes());
        for &(v, n) in &items {
            assert_eq!(r.read_bits(n).unwrap(), v, "n={n}");
        }
        assert!(r.read_bits(8).is_err());
    }

    #[test]
    fn varints_round_trip() {
        let mut out = Vec::new();
        let vals = [0i64, 1, -1, i64::MAX, i64::MIN, 1_700_000_000_000];
        for v in vals {
            put_varint(&mut out, v);
        }
        let mut r = ByteReader::new(&out);
        for v in vals {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert!(r.varint().is_err());
    }
}
