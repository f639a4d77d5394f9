//! The least HTTP client the scale scenario needs: one `GET` per connection over
//! a blocking socket, the whole body read (by `Content-Length` or chunked), with
//! a bound on the wait. No dependency beyond std.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Longest a request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

/// `GET path` from `addr`; the answer whatever its status.
pub fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    let mut s =
        TcpStream::connect_timeout(&addr, TIMEOUT).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("GET {path}: reading the answer"))?;
    parse(&raw).with_context(|| format!("GET {path}"))
}

/// The sum of the host's `/metrics` samples of metric `name` (every series).
pub fn metric(addr: SocketAddr, name: &str) -> Result<f64> {
    let a = get(addr, "/metrics")?;
    Ok(String::from_utf8_lossy(&a.body)
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// `GET path`, which must answer 200; its body as JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> Result<(serde_json::Value, usize)> {
    let a = get(addr, path)?;
    if a.status != 200 {
        bail!(
            "GET {path}: status {}: {}",
            a.status,
            String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
        );
    }
    let v = serde_json::from_slice(&a.body).with_context(|| format!("GET {path}: not JSON"))?;
    Ok((v, a.body.len()))
}

fn parse(raw: &[u8]) -> Result<Answer> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&rest[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("chunk size `{size_text}`"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).context("chunk shorter than its size")?);
        rest = rest.get(size + 2..).context("chunk without its CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let a = parse(plain).unwrap();
        assert_eq!((a.status, &a.body[..]), (200, &b"hello"[..]));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        let a = parse(chunked).unwrap();
        assert_eq!((a.status, &a.body[..]), (404, &b"hello"[..]));
    }
}
