//! Send timestamps: the producer writes one into every record, the timing
//! connections find it again in the frames they receive.
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
/// `sent` (the send time, microseconds) becomes a field of the topic.
pub const COLUMNS: &str = "symbol,price,qty,ts,sent";

/// Appends one bench record (`symbol,price,qty,ts,sent`) to `out`.
pub fn record(out: &mut Vec<u8>, symbol: usize, n: u64, sent_us: u64) {
    use std::io::Write;
    let price = 100.0 + (n % 997) as f64 * 0.25;
    let _ = writeln!(out, "S{symbol},{price},1,{},{sent_us}", sent_us / 1000);
}

/// Whether a frame is a live update (not a snapshot, reply or heartbeat). Works
/// for JSON, MessagePack and the floor server's frames alike: all carry the
/// string `update` as the value of `type`.
pub fn is_update(payload: &[u8]) -> bool {
    find(payload, b"update").is_some()
}

/// The send time carried by a frame: the `sent` field of a wasmeter update (JSON
/// or MessagePack), or the last column of the raw record the floor server sends
/// (`"line":"S1,...,SENT"`).
pub fn sent_us(payload: &[u8]) -> Option<u64> {
    if let Some(at) = find(payload, b"\"sent\":") {
        return json_number(&payload[at + 7..]);
    }
    if let Some(at) = find(payload, b"\xa4sent") {
        return msgpack_number(&payload[at + 5..]);
    }
    let at = find(payload, b"\"line\":\"")?;
    let line = &payload[at + 8..];
    let end = line.iter().position(|&b| b == b'"')?;
    let last = line[..end].rsplit(|&b| b == b',').next()?;
    json_number(last)
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
    fn finds_the_send_time_in_every_encoding() {
        let json = br#"{"type":"update","delta":{"price":1.5,"sent":1763830000123456.0}}"#;
        assert_eq!(sent_us(json), Some(1_763_830_000_123_456));
        let mp = rmp_serde::to_vec_named(
            &serde_json::json!({"type":"update","delta":{"sent":1763830000123456.0}}),
        )
        .unwrap();
        assert_eq!(sent_us(&mp), Some(1_763_830_000_123_456));
        let mut line = Vec::new();
        record(&mut line, 3, 7, 1_763_830_000_123_456);
        let floor = format!(
            r#"{{"type":"update","topic":"bench/S3","line":"{}"}}"#,
            String::from_utf8(line).unwrap().trim_end()
        );
        assert_eq!(sent_us(floor.as_bytes()), Some(1_763_830_000_123_456));
        assert!(is_update(json) && is_update(&mp) && !is_update(br#"{"type":"snapshot"}"#));
    }
}
