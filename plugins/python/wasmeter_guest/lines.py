"""Splits a chunk into records, like ``wasmeter_sdk::lines`` of the Rust SDK."""

from .values import record_error


def for_each(chunk, out, handle):
    """Calls ``handle(text)`` per line (``\\r\\n`` or ``\\n``, 1-based numbers).

    A ``ValueError`` raised by ``handle``, or a line that is not UTF-8, becomes a
    record error of that line in ``out.errors``; the other lines still count.
    """
    pos, number = 0, 0
    while pos < len(chunk):
        end = chunk.find(b"\n", pos)
        stop, nxt = (len(chunk), len(chunk)) if end < 0 else (end, end + 1)
        raw = chunk[pos:stop]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            message = f"line is not valid UTF-8 (invalid byte at column {e.start + 1})"
            out.errors.append(record_error(number, pos, message))
        else:
            try:
                handle(text)
            except ValueError as e:
                out.errors.append(record_error(number, pos, str(e)))
        pos = nxt
