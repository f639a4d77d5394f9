//! A small versioned, self-describing binary encoding for plugin state (hot swap).
//!
//! Layout: the magic `WMST`, the format version (1), a schema name and a schema version
//! chosen by the plugin, then values, each preceded by a one-byte type tag (`u` u64, `i`
//! i64, `f` f64, `b` bool, `s` string, `y` bytes; numbers little-endian, strings and bytes
//! prefixed with a u32 length). The tags make a mismatch between writer and reader an error
//! that says where and what, instead of garbage; the schema name keeps a plugin from
//! importing another plugin's state; the schema version lets a newer plugin read the
//! state of an older one.
//!
//! ```
//! use wasmeter_sdk::state::{StateReader, StateWriter};
//!
//! let mut w = StateWriter::new("my-plugin", 1);
//! w.count(1).str("BTC").f64(1.5);
//! let bytes = w.finish();
//!
//! let mut r = StateReader::new(&bytes, "my-plugin").unwrap();
//! assert_eq!(r.version(), 1);
//! for _ in 0..r.count().unwrap() {
//!     assert_eq!(r.str().unwrap(), "BTC");
//!     assert_eq!(r.f64().unwrap(), 1.5);
//! }
//! r.finish().unwrap();
//! ```

use crate::Label;

const MAGIC: &[u8; 4] = b"WMST";
const FORMAT: u8 = 1;

/// Writes state; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct StateWriter {
    buf: Vec<u8>,
}

impl StateWriter {
    /// Starts a state of `schema` (usually the plugin's name) at `version`.
    pub fn new(schema: &str, version: u32) -> Self {
        let mut w = StateWriter {
            buf: Vec::with_capacity(64),
        };
        w.buf.extend_from_slice(MAGIC);
        w.buf.push(FORMAT);
        w.str(schema).u64(u64::from(version));
        w
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.push(b'u');
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends an `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.push(b'i');
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends an `f64` (bit-exact, NaN included).
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.push(b'f');
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        self
    }

    /// Appends a `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(b'b');
        self.buf.push(u8::from(v));
        self
    }

    /// Appends a string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.buf.push(b's');
        self.raw(v.as_bytes())
    }

    /// Appends bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.push(b'y');
        self.raw(v)
    }

    /// Appends the length of a collection whose items follow.
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u64(n as u64)
    }

    /// Appends a list of labels.
    pub fn labels(&mut self, labels: &[Label]) -> &mut Self {
        self.count(labels.len());
        for l in labels {
            self.str(&l.name).str(&l.value);
        }
        self
    }

    fn raw(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("state item larger than 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// The encoded state.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads state written by [`StateWriter`]; every error says what was expected where.
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    buf: &'a [u8],
    pos: usize,
    version: u32,
}

impl<'a> StateReader<'a> {
    /// Checks the header: magic, format and that the state was written for `schema`.
    pub fn new(state: &'a [u8], schema: &str) -> Result<Self, String> {
        if state.len() < 5 || &state[..4] != MAGIC {
            return Err("state: not a wasmeter state (bad magic)".to_string());
        }
        if state[4] != FORMAT {
            return Err(format!("state: unsupported format version {}", state[4]));
        }
        let mut r = StateReader {
            buf: state,
            pos: 5,
            version: 0,
        };
        let found = r.str()?;
        if found != schema {
            return Err(format!(
                "state: written for `{found}`, this plugin reads `{schema}`"
            ));
        }
        r.version = u32::try_from(r.u64()?).map_err(|_| "state: bad schema version")?;
        Ok(r)
    }

    /// The schema version the writer used.
    pub fn version(&self) -> u32 {
        self.version
    }

    fn take(&mut self, tag: u8, what: &str, n: usize) -> Result<&'a [u8], String> {
        let at = self.pos;
        match self.buf.get(at) {
            None => {
                return Err(format!(
                    "state: expected {what} at byte {at}, found the end"
                ));
            }
            Some(&t) if t != tag => {
                return Err(format!(
                    "state: expected {what} at byte {at}, found tag `{}`",
                    t.escape_ascii()
                ));
            }
            Some(_) => {}
        }
        let bytes = self
            .buf
            .get(at + 1..at + 1 + n)
            .ok_or_else(|| format!("state: truncated {what} at byte {at}"))?;
        self.pos = at + 1 + n;
        Ok(bytes)
    }

    fn word(&mut self, tag: u8, what: &str) -> Result<[u8; 8], String> {
        let b = self.take(tag, what, 8)?;
        Ok(b.try_into().expect("8 bytes"))
    }

    fn raw(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        let at = self.pos;
        let len = self.take(tag, what, 4)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let bytes = self
            .buf
            .get(self.pos..self.pos + len)
            .ok_or_else(|| format!("state: truncated {what} at byte {at}"))?;
        self.pos += len;
        Ok(bytes)
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.word(b'u', "u64")?))
    }

    /// Reads an `i64`.
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.word(b'i', "i64")?))
    }

    /// Reads an `f64`.
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(u64::from_le_bytes(self.word(b'f', "f64")?)))
    }

    /// Reads a `bool`.
    pub fn bool(&mut self) -> Result<bool, String> {
        let at = self.pos;
        match self.take(b'b', "bool", 1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("state: bad bool {b} at byte {at}")),
        }
    }

    /// Reads a string.
    pub fn str(&mut self) -> Result<String, String> {
        let at = self.pos;
        let bytes = self.raw(b's', "string")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("state: bad UTF-8 at byte {at}"))
    }

    /// Reads bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.raw(b'y', "bytes")?.to_vec())
    }

    /// Reads a collection length (checked against the bytes left, so a corrupt length
    /// cannot make the plugin allocate without bound).
    pub fn count(&mut self) -> Result<usize, String> {
        let at = self.pos;
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "state: length {n} at byte {at} exceeds the {left} bytes left"
            ));
        }
        Ok(n as usize)
    }

    /// Reads a list of labels.
    pub fn labels(&mut self) -> Result<Vec<Label>, String> {
        let n = self.count()?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?;
            let value = self.str()?;
            labels.push(Label { name, value });
        }
        Ok(labels)
    }

    /// Checks that everything was read.
    pub fn finish(self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!(
                "state: {} unexpected bytes at byte {}",
                self.buf.len() - self.pos,
                self.pos
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut w = StateWriter::new("x", 3);
        w.u64(7)
            .i64(-2)
            .f64(0.5)
            .bool(true)
            .str("hé")
            .bytes(&[1, 2]);
        w.labels(&[Label::new("a", "b")]);
        let bytes = w.finish();
        let mut r = StateReader::new(&bytes, "x").unwrap();
        assert_eq!(r.version(), 3);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -2);
        assert_eq!(r.f64().unwrap(), 0.5);
        assert!(r.bool().unwrap());
        assert_eq!(r.str().unwrap(), "hé");
        assert_eq!(r.bytes().unwrap(), vec![1, 2]);
        assert_eq!(r.labels().unwrap(), vec![Label::new("a", "b")]);
        r.finish().unwrap();

        assert!(StateReader::new(&bytes, "y").unwrap_err().contains("`x`"));
        assert!(StateReader::new(b"nope", "x").is_err());
        let mut r = StateReader::new(&bytes, "x").unwrap();
        assert!(r.f64().unwrap_err().contains("expected f64"));
        let mut r = StateReader::new(&bytes[..bytes.len() - 1], "x").unwrap();
        r.u64().unwrap();
        r.i64().unwrap();
        r.f64().unwrap();
        r.bool().unwrap();
        r.str().unwrap();
        r.bytes().unwrap();
        assert!(r.labels().unwrap_err().contains("truncated"));
    }
}
