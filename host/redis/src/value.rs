//! Reading the replies of the scripts and commands.

use redis::Value;

/// A reply as bytes (bulk or simple string).
pub(crate) fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A reply as text.
pub(crate) fn text(v: &Value) -> Option<&str> {
    bytes(v).and_then(|b| std::str::from_utf8(b).ok())
}

/// A reply as a number (integer, or a string holding one).
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => text(v)?.parse().ok(),
    }
}

/// A reply as an array.
pub(crate) fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

/// The seq of a history entry id `<seq>-0`.
pub(crate) fn entry_seq(id: &str) -> Option<u64> {
    id.split_once('-')?.0.parse().ok()
}

/// The node of a lease value `<token>:<node>`.
pub(crate) fn lease_node(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    Some(value.split_once(':').map_or(value, |(_, n)| n).to_owned())
}
