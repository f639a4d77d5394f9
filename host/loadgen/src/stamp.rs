//! Bench records and what the timing connections read back from frames: the
//! producer numbers every record and logs when it wrote it (see
//! [`crate::sendlog`]); a frame's record number says which records it stands for.
//!
//! The clock is `CLOCK_REALTIME` in microseconds on both sides: producer and
//! subscribers run on the same machine.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix microseconds.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The CSV columns of a bench record, for the CSV collector's `columns` config:
/// `recno` (the record's number, see [`crate::sendlog`]) becomes a field of the
/// topic.
pub const COLUMNS: &str = "symbol,price,qty,ts,recno";

/// Appends bench record number `n` (`symbol,price,qty,ts,recno`, topic
/// `S<n % topics>`) written at `sent_us` to `out`.
pub fn record(out: &mut Vec<u8>, topics: usize, n: u64, sent_us: u64) {
    record_at(out, topics, n, sent_us / 1000);
}

/// Appends bench record number `n` with `ts_ms` as its trade time.
pub fn record_at(out: &mut Vec<u8>, topics: usize, n: u64, ts_ms: u64) {
    use std::io::Write;
    let symbol = n % topics as u64;
    let price = 100.0 + (n % 997) as f64 * 0.25;
    let _ = writeln!(out, "S{symbol},{price},1,{ts_ms},{n}");
}

/// Whether a frame is a live update (not a snapshot, reply or heartbeat). Works
/// for JSON, MessagePack and the floor server's frames alike: all carry the
/// string `update` as the value of `type`.
pub fn is_update(payload: &[u8]) -> bool {
    find(payload, b"update").is_some()
}

/// The record number carried by a frame: the `recno` field of an update or
/// snapshot, JSON or MessagePack (the floor's frames carry it the same way).
pub fn recno(payload: &[u8]) -> Option<u64> {
    if let Some(at) = find(payload, b"\"recno\":") {
        return json_number(&payload[at + 8..]);
    }
    let at = find(payload, b"\xa5recno")?;
    msgpack_number(&payload[at + 6..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn json_number(text: &[u8]) -> Option<u64> {
    let end = text
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
        .unwrap_or(text.len());
    let s = std::str::from_utf8(&text[..end]).ok()?;
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().map(|f| f as u64))
}

fn msgpack_number(b: &[u8]) -> Option<u64> {
    let be = |n: usize| -> Option<[u8; 8]> {
        let mut out = [0u8; 8];
        out[8 - n..].copy_from_slice(b.get(1..1 + n)?);
        Some(out)
    };
    match *b.first()? {
        0xcb => Some(f64::from_be_bytes(be(8)?) as u64),
        0xcf | 0xd3 => Some(u64::from_be_bytes(be(8)?)),
        0xce | 0xd2 => Some(u64::from_be_bytes(be(4)?)),
        x if x < 0x80 => Some(x as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_record_number_in_every_encoding() {
        let json = br#"{"type":"update","delta":{"price":1.5,"recno":123457.0,"ts":17}}"#;
        assert_eq!(recno(json), Some(123_457));
        let mp = rmp_serde::to_vec_named(
            &serde_json::json!({"type":"update","delta":{"recno":70000.0,"ts":17}}),
        )
        .unwrap();
        assert_eq!(recno(&mp), Some(70_000));
        let mut line = Vec::new();
        record(&mut line, 10, 73, 1_763_830_000_123_456);
        assert_eq!(line, b"S3,118.25,1,1763830000123,73\n");
        assert!(is_update(json) && is_update(&mp) && !is_update(br#"{"type":"snapshot"}"#));
    }
}
