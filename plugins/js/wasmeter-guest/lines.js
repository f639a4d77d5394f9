// Splits a chunk into records, like `wasmeter_sdk::lines` of the Rust SDK.

import { validUtf8Prefix } from "./state.js";

/**
 * Calls `handle(text)` per line (`\r\n` or `\n`, 1-based numbers). A string (or
 * Error) thrown by `handle`, or a line that is not UTF-8, becomes a record error of
 * that line in `out.errors`; the other lines still count.
 */
export function forEach(chunk, out, handle) {
  const decoder = new TextDecoder();
  let pos = 0;
  let number = 0;
  while (pos < chunk.length) {
    let end = chunk.indexOf(0x0a, pos);
    const next = end < 0 ? chunk.length : end + 1;
    if (end < 0) end = chunk.length;
    let raw = chunk.subarray(pos, end);
    if (raw.length > 0 && raw[raw.length - 1] === 0x0d) raw = raw.subarray(0, raw.length - 1);
    number += 1;
    const valid = validUtf8Prefix(raw);
    try {
      if (valid !== raw.length) {
        throw `line is not valid UTF-8 (invalid byte at column ${valid + 1})`;
      }
      handle(decoder.decode(raw));
    } catch (e) {
      out.errors.push({ line: number, offset: pos, message: String(e?.message ?? e) });
    }
    pos = next;
  }
}
