"""The SDK's binary state format (``wasmeter_sdk::state`` of the Rust SDK).

``WMST``, format byte 1, then tagged items: ``s`` string / ``y`` bytes (u32 LE length +
bytes), ``u`` / ``i`` / ``f`` 8 bytes LE, ``b`` one byte. The first items are the
schema name and version. A Rust plugin and a Python plugin writing the same schema
read each other's state, so a hot swap between them carries it.
"""

import struct

MAGIC = b"WMST"
FORMAT = 1


class StateWriter:
    """Builds a state blob: ``StateWriter("trades", 1).u64(3).finish()``."""

    def __init__(self, schema, version):
        self.buf = bytearray(MAGIC)
        self.buf.append(FORMAT)
        self.str(schema).u64(version)

    def u64(self, v):
        self.buf += b"u" + struct.pack("<Q", v)
        return self

    def i64(self, v):
        self.buf += b"i" + struct.pack("<q", v)
        return self

    def f64(self, v):
        self.buf += b"f" + struct.pack("<d", v)
        return self

    def str(self, v):
        data = v.encode("utf-8")
        self.buf += b"s" + struct.pack("<I", len(data)) + data
        return self

    def count(self, n):
        return self.u64(n)

    def labels(self, labels):
        """Writes ``(name, value)`` pairs (or objects with ``name``/``value``)."""
        self.count(len(labels))
        for label in labels:
            name, value = (label.name, label.value) if hasattr(label, "name") else label
            self.str(name).str(value)
        return self

    def finish(self):
        return bytes(self.buf)


class StateReader:
    """Reads a state blob written for ``schema``; errors are ``ValueError``s."""

    def __init__(self, data, schema):
        if len(data) < 5 or data[:4] != MAGIC:
            raise ValueError("state: not a wasmeter state (bad magic)")
        if data[4] != FORMAT:
            raise ValueError(f"state: unsupported format version {data[4]}")
        self.buf = bytes(data)
        self.pos = 5
        found = self.str()
        if found != schema:
            raise ValueError(f"state: written for `{found}`, this plugin reads `{schema}`")
        self.version = self.u64()

    def _take(self, tag, what, n):
        at = self.pos
        if at >= len(self.buf):
            raise ValueError(f"state: expected {what} at byte {at}, found the end")
        if self.buf[at] != tag:
            raise ValueError(f"state: expected {what} at byte {at}, found tag `{chr(self.buf[at])}`")
        if at + 1 + n > len(self.buf):
            raise ValueError(f"state: truncated {what} at byte {at}")
        self.pos = at + 1 + n
        return self.buf[at + 1 : at + 1 + n]

    def u64(self):
        return struct.unpack("<Q", self._take(ord("u"), "u64", 8))[0]

    def i64(self):
        return struct.unpack("<q", self._take(ord("i"), "i64", 8))[0]

    def f64(self):
        return struct.unpack("<d", self._take(ord("f"), "f64", 8))[0]

    def str(self):
        at = self.pos
        (n,) = struct.unpack("<I", self._take(ord("s"), "string", 4))
        if self.pos + n > len(self.buf):
            raise ValueError(f"state: truncated string at byte {at}")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"state: bad UTF-8 at byte {at}") from None

    def count(self):
        at = self.pos
        n = self.u64()
        left = len(self.buf) - self.pos
        if n > left:
            raise ValueError(f"state: length {n} at byte {at} exceeds the {left} bytes left")
        return n

    def labels(self):
        return [(self.str(), self.str()) for _ in range(self.count())]

    def finish(self):
        if self.pos != len(self.buf):
            raise ValueError(f"state: {len(self.buf) - self.pos} unexpected bytes at byte {self.pos}")
