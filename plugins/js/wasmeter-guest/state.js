// The SDK's binary state format (`wasmeter_sdk::state` of the Rust SDK).
//
// `WMST`, format byte 1, then tagged items: `s` string (u32 LE length + UTF-8),
// `u` / `i` / `f` 8 bytes LE, `b` one byte. The first items are the schema name and
// version. A Rust plugin and a JavaScript plugin writing the same schema read each
// other's state, so a hot swap between them carries it.

const MAGIC = [0x57, 0x4d, 0x53, 0x54];
const FORMAT = 1;
const enc = new TextEncoder();

/** Builds a state blob: `new StateWriter("trades", 1).u64(3).finish()`. */
export class StateWriter {
  constructor(schema, version) {
    this.bytes = [...MAGIC, FORMAT];
    this.str(schema).u64(version);
  }
  word(tag, fill) {
    const view = new DataView(new ArrayBuffer(8));
    fill(view);
    this.bytes.push(tag.charCodeAt(0), ...new Uint8Array(view.buffer));
    return this;
  }
  u64(v) { return this.word("u", (d) => d.setBigUint64(0, BigInt(v), true)); }
  i64(v) { return this.word("i", (d) => d.setBigInt64(0, BigInt(v), true)); }
  f64(v) { return this.word("f", (d) => d.setFloat64(0, v, true)); }
  str(v) {
    const data = enc.encode(v);
    const n = data.length;
    this.bytes.push(0x73, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, ...data);
    return this;
  }
  count(n) { return this.u64(n); }
  /** Writes `[name, value]` pairs. */
  labels(labels) {
    this.count(labels.length);
    for (const [name, value] of labels) this.str(name).str(value);
    return this;
  }
  finish() { return new Uint8Array(this.bytes); }
}

/** Reads a state blob written for `schema`; errors are thrown strings. */
export class StateReader {
  constructor(data, schema) {
    if (data.length < 5 || MAGIC.some((b, i) => data[i] !== b)) {
      throw "state: not a wasmeter state (bad magic)";
    }
    if (data[4] !== FORMAT) throw `state: unsupported format version ${data[4]}`;
    this.buf = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.pos = 5;
    const found = this.str();
    if (found !== schema) throw `state: written for \`${found}\`, this plugin reads \`${schema}\``;
    this.version = Number(this.u64());
  }
  take(tag, what, n) {
    const at = this.pos;
    if (at >= this.buf.length) throw `state: expected ${what} at byte ${at}, found the end`;
    if (this.buf[at] !== tag.charCodeAt(0)) {
      throw `state: expected ${what} at byte ${at}, found tag \`${String.fromCharCode(this.buf[at])}\``;
    }
    if (at + 1 + n > this.buf.length) throw `state: truncated ${what} at byte ${at}`;
    this.pos = at + 1 + n;
    return at + 1;
  }
  u64() { return this.view.getBigUint64(this.take("u", "u64", 8), true); }
  i64() { return this.view.getBigInt64(this.take("i", "i64", 8), true); }
  f64() { return this.view.getFloat64(this.take("f", "f64", 8), true); }
  str() {
    const at = this.pos;
    const n = this.view.getUint32(this.take("s", "string", 4), true);
    if (this.pos + n > this.buf.length) throw `state: truncated string at byte ${at}`;
    const raw = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    if (validUtf8Prefix(raw) !== raw.length) throw `state: bad UTF-8 at byte ${at}`;
    return new TextDecoder().decode(raw);
  }
  count() {
    const at = this.pos;
    const n = this.u64();
    const left = this.buf.length - this.pos;
    if (n > BigInt(left)) throw `state: length ${n} at byte ${at} exceeds the ${left} bytes left`;
    return Number(n);
  }
  labels() {
    const out = [];
    for (let i = this.count(); i > 0; i--) out.push([this.str(), this.str()]);
    return out;
  }
  finish() {
    if (this.pos !== this.buf.length) {
      throw `state: ${this.buf.length - this.pos} unexpected bytes at byte ${this.pos}`;
    }
  }
}

/** Length of the longest valid UTF-8 prefix of `b` (Rust's `valid_up_to`). */
export function validUtf8Prefix(b) {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n, min;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return i;
}
