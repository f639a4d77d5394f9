// Trades: parsing of values and the per-symbol book (`wasmeter_sdk::trades`).
//
// Same topics, samples, messages and state (schema `trades` v1) as the Rust SDK, so a
// JavaScript collector and a Rust one are interchangeable, state included.

import { StateReader, StateWriter } from "./state.js";
import { counter, event, gauge, isValidTopic, isValidTopicSegment, nowMs, update } from "./values.js";

export const METRICS = ["trade_price", "trade_qty", "trades_total", "trade_volume_total"];
const FLOAT = /^[+-]?(inf|infinity|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)$/i;
const NON_FINITE = /^[+-]?(inf|infinity|nan)$/i;
const INT = /^[+-]?\d+$/;

function prefix(key, value) {
  const p = value.trim().replace(/\/+$/, "");
  if (!isValidTopic(p)) {
    throw `config \`${key}\`: \`${value}\` is not a valid topic (\`/\`-separated segments of [A-Za-z0-9_.:-])`;
  }
  return p;
}

export function parseSymbol(what, text) {
  const s = text.trim();
  if (!s) throw `${what}: empty (a symbol is required)`;
  if (!isValidTopicSegment(s)) throw `${what}: \`${s}\` may only contain letters, digits and \`_.:-\``;
  return s;
}

export function parseNumber(what, text) {
  const t = text.trim();
  if (!FLOAT.test(t)) throw `${what}: \`${t}\` is not a number`;
  const v = Number(t);
  if (NON_FINITE.test(t) || !Number.isFinite(v)) throw `${what}: \`${t}\` is not a finite number`;
  return v;
}

export function parseQty(what, text) {
  const q = parseNumber(what, text);
  if (q < 0) throw `${what}: \`${text.trim()}\` is negative`;
  return q;
}

/** Unix ms as a BigInt; empty means 0. */
export function parseTs(what, text) {
  const t = text.trim();
  if (!t) return 0n;
  const v = INT.test(t) ? BigInt(t) : null;
  if (v === null || v < -(2n ** 63n) || v >= 2n ** 63n) throw `${what}: \`${t}\` is not an integer (Unix ms)`;
  if (v < 0n) throw `${what}: \`${t}\` is negative`;
  return v;
}

/** Running count and volume per symbol; turns each trade into the output. */
export class TradeBook {
  constructor(config) {
    this.prefix = prefix("topic_prefix", config.get("topic_prefix") ?? "trades");
    this.tape = null;
    if (config.has("tape_prefix")) {
      const tape = prefix("tape_prefix", config.get("tape_prefix"));
      if (tape === this.prefix) {
        throw `config \`tape_prefix\`: \`${tape}\` is also the \`topic_prefix\`; a topic is either a stream of trades or the latest trade, not both`;
      }
      this.tape = tape;
    }
    this.totals = new Map();
  }

  emits() {
    const out = [...METRICS, `${this.prefix}/*`];
    return this.tape ? [...out, `${this.tape}/*`] : out;
  }

  record(symbol, price, qty, ts, out) {
    const [c, v] = this.totals.get(symbol) ?? [0n, 0];
    const count = c + 1n;
    const volume = v + qty;
    this.totals.set(symbol, [count, volume]);
    const fieldTs = Number(ts > 0n ? ts : nowMs());
    if (this.tape) {
      const fields = [["price", price], ["qty", qty], ["ts", fieldTs], ["trade", Number(count)]];
      out.events.push(event(`${this.tape}/${symbol}`, fields));
    }
    const fields = [["price", price], ["qty", qty], ["ts", fieldTs], ["count", Number(count)], ["volume", volume]];
    out.updates.push(update(`${this.prefix}/${symbol}`, fields));
    const labels = [["symbol", symbol]];
    out.samples.push(gauge("trade_price", price, labels, ts));
    out.samples.push(gauge("trade_qty", qty, labels, ts));
    out.samples.push(counter("trades_total", Number(count), labels, ts));
    out.samples.push(counter("trade_volume_total", volume, labels, ts));
  }

  exportState() {
    const w = new StateWriter("trades", 1).count(this.totals.size);
    for (const symbol of [...this.totals.keys()].sort()) {
      const [count, volume] = this.totals.get(symbol);
      w.str(symbol).u64(count).f64(volume);
    }
    return w.finish();
  }

  importState(data) {
    const r = new StateReader(data, "trades");
    if (r.version > 1) throw `state: trades v${r.version} is newer than this plugin (v1)`;
    const totals = new Map();
    for (let i = r.count(); i > 0; i--) {
      const symbol = r.str();
      totals.set(symbol, [r.u64(), r.f64()]);
    }
    r.finish();
    this.totals = totals;
  }
}
