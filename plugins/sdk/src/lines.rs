//! Line-by-line processing of a chunk, with per-line errors.
//!
//! The host does the framing: a chunk holds only whole records, each ending in `\n`. These
//! helpers split it into [`Line`]s that know their 1-based line number and byte offset, so
//! a problem with one line becomes a [`RecordError`] pointing at it while the other lines
//! are still used.
//!
//! ```
//! use wasmeter_sdk::{CollectOutput, lines};
//!
//! let mut out = CollectOutput::new();
//! let mut sum = 0.0;
//! lines::for_each(b"1\nx\n2\n", &mut out, |line, _out| {
//!     sum += line.text.parse::<f64>().map_err(|_| format!("`{}` is not a number", line.text))?;
//!     Ok(())
//! });
//! assert_eq!(sum, 3.0);
//! assert_eq!(out.errors.len(), 1);
//! assert_eq!((out.errors[0].line, out.errors[0].offset), (2, 2));
//! ```

use crate::{CollectOutput, RecordError};

/// One line of a chunk, without its `\n` (or `\r\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number within the chunk.
    pub number: u32,
    /// Byte offset of the line's first byte within the chunk.
    pub offset: u32,
    /// The line's text, without the line terminator.
    pub text: &'a str,
}

impl Line<'_> {
    /// A record error pointing at this line.
    pub fn error(&self, message: impl Into<String>) -> RecordError {
        RecordError::new(self.number, self.offset, message)
    }

    /// True if the line is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }
}

/// `text.trim()`, without decoding a character when `text` starts and ends with a
/// visible ASCII character (there is no whitespace to remove): a field of a
/// record usually does.
pub fn trim(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| (0x21..0x80).contains(&b));
    let bytes = text.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// Iterator over the lines of a chunk; see [`iter`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    chunk: &'a [u8],
    pos: usize,
    number: u32,
}

/// The lines of `chunk`: `Ok(Line)`, or `Err(RecordError)` for a line that is not valid
/// UTF-8. A last line without `\n` is still yielded; an empty chunk yields nothing.
pub fn iter(chunk: &[u8]) -> Lines<'_> {
    Lines {
        chunk,
        pos: 0,
        number: 0,
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.chunk.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.chunk[start..];
        let (raw, consumed) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += consumed;
        self.number = self.number.saturating_add(1);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let offset = u32::try_from(start).unwrap_or(u32::MAX);
        Some(match std::str::from_utf8(raw) {
            Ok(text) => Ok(Line {
                number: self.number,
                offset,
                text,
            }),
            Err(e) => Err(RecordError::new(
                self.number,
                offset,
                format!(
                    "line is not valid UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )),
        })
    }
}

/// Calls `f` for every line of `chunk`; an `Err(message)` from `f` (or a line that is not
/// valid UTF-8) is appended to `out.errors` as a [`RecordError`] for that line, and the
/// next line is processed.
///
/// Blank lines are passed to `f` too (check [`Line::is_blank`]). If `f` fails, whatever it
/// already pushed to `out` stays: validate a line before emitting its output.
pub fn for_each<'a, F>(chunk: &'a [u8], out: &mut CollectOutput, mut f: F)
where
    F: FnMut(&Line<'a>, &mut CollectOutput) -> Result<(), String>,
{
    for item in iter(chunk) {
        match item {
            Ok(line) => {
                if let Err(message) = f(&line, out) {
                    out.errors.push(line.error(message));
                }
            }
            Err(error) => out.errors.push(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_removes_what_str_trim_removes() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta b\r",
            "\u{a0}x",
            "x\u{2003}",
            "é",
            " é ",
            "\u{1c}x\u{7f}",
            "price",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn numbers_offsets_and_utf8() {
        let chunk = b"a\r\n\nb\xffc\nlast";
        let items: Vec<_> = iter(chunk).collect();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0],
            Ok(Line {
                number: 1,
                offset: 0,
                text: "a"
            })
        );
        assert_eq!(items[1].as_ref().unwrap().text, "");
        assert_eq!(items[1].as_ref().unwrap().offset, 3);
        let err = items[2].as_ref().unwrap_err();
        assert_eq!((err.line, err.offset), (3, 4));
        assert!(err.message.contains("UTF-8"));
        assert_eq!(items[3].as_ref().unwrap().text, "last");
    }
}
