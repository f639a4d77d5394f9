//! The cheapest WebSocket client that still speaks the protocol: a hand-written
//! HTTP upgrade over a `TcpStream`, masked text frames out, and a frame parser
//! that works on raw bytes read in large batches (no per-frame allocation).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a TCP connection from `source` (a loopback address, so that many
/// connections do not run out of ephemeral ports) and upgrades it to a WebSocket
/// on `path`. Returns the stream and any bytes read past the HTTP response.
pub async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
) -> Result<(TcpStream, Vec<u8>)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let mut stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("{addr} closed the connection during the upgrade");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 101") {
                let line = String::from_utf8_lossy(&head[..head.len().min(200)]).into_owned();
                bail!("{addr} refused the upgrade: {line}");
            }
            return Ok((stream, head.split_off(end + 4)));
        }
    }
}

/// A client-to-server text frame (masked, as RFC 6455 requires; the mask key is
/// zero, which leaves the payload as it is).
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// One complete frame in a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The (unmasked) payload.
    pub payload: &'a [u8],
    /// Header plus payload: the bytes this frame took on the wire.
    pub wire_len: usize,
}

/// The first complete frame at the start of `buf`, if there is one.
pub fn parse(buf: &[u8]) -> Option<Frame<'_>> {
    if buf.len() < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let (len, mut pos): (usize, usize) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    if masked {
        pos += 4;
    }
    let payload = buf.get(pos..pos.checked_add(len)?)?;
    Some(Frame {
        opcode: buf[0] & 0x0f,
        payload,
        wire_len: pos + len,
    })
}

/// Reassembles frames from reads of any size.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    len: usize,
}

impl FrameReader {
    /// A reader whose buffer starts with `leftover` and reads `capacity` at a time.
    pub fn new(leftover: Vec<u8>, capacity: usize) -> Self {
        let len = leftover.len();
        let mut buf = leftover;
        buf.resize(capacity.max(len * 2), 0);
        Self { buf, len }
    }

    /// Where the next read goes (grows the buffer for a frame larger than it).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.len..]
    }

    /// Takes `n` bytes read into [`FrameReader::spare`] and hands every complete
    /// frame to `each`.
    pub fn filled(&mut self, n: usize, mut each: impl FnMut(Frame<'_>)) {
        self.len += n;
        let mut at = 0;
        while let Some(frame) = parse(&self.buf[at..self.len]) {
            at += frame.wire_len;
            each(frame);
        }
        self.buf.copy_within(at..self.len, 0);
        self.len -= at;
    }
}

/// Counts frames and bytes in a byte stream without keeping or looking at
/// payloads: the bulk readers' parser. Its state is a partial header and the
/// length of payload still to skip, so it works on any split of the stream.
#[derive(Debug, Default, Clone)]
pub struct FrameCounter {
    header: [u8; 14],
    header_len: usize,
    skip: u64,
    /// Complete frames seen.
    pub frames: u64,
    /// Bytes seen.
    pub bytes: u64,
}

impl FrameCounter {
    /// Consumes a chunk of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = (self.skip as usize).min(data.len());
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0 {
                    self.frames += 1;
                }
                continue;
            }
            let want = self.header_needed();
            let take = (want - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            data = &data[take..];
            if self.header_len == self.header_needed() {
                let h = &self.header;
                let len = match h[1] & 0x7f {
                    126 => u16::from_be_bytes([h[2], h[3]]) as u64,
                    127 => u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")),
                    n => n as u64,
                };
                self.header_len = 0;
                if len == 0 {
                    self.frames += 1;
                } else {
                    self.skip = len;
                }
            }
        }
    }

    /// Header bytes needed given what is known of the header so far.
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        mask + match self.header[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = text_frame(payload);
        f[0] = 0x80 | opcode;
        f[1] &= 0x7f; // unmasked
        let at = f.len() - payload.len() - 4;
        f.drain(at..at + 4);
        f
    }

    #[test]
    fn counter_and_reader_agree_on_any_split() {
        let mut stream = Vec::new();
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            stream.extend(server_frame(1, &vec![b'x'; len]));
        }
        let mut expected = Vec::new();
        let mut whole = FrameReader::new(Vec::new(), 16);
        let n = stream.len();
        whole.spare();
        for byte in &stream {
            whole.spare()[0] = *byte;
            whole.filled(1, |f| expected.push(f.payload.len()));
        }
        assert_eq!(expected, vec![0, 5, 125, 126, 300, 70_000]);
        for split in [1, 3, 7, 1000] {
            let mut c = FrameCounter::default();
            for chunk in stream.chunks(split) {
                c.feed(chunk);
            }
            assert_eq!((c.frames, c.bytes), (6, n as u64), "split {split}");
        }
    }

    #[test]
    fn client_frames_parse_back() {
        let f = text_frame(b"hello");
        let parsed = parse(&f).unwrap();
        assert_eq!((parsed.opcode, parsed.payload), (1, &b"hello"[..]));
        assert_eq!(parsed.wire_len, f.len());
    }
}
