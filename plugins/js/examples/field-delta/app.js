// field-delta in JavaScript: the twin of plugins/field-delta (world `delta`).
//
// diff: the fields of `current` that are new or differ from `previous` (numbers:
// |a - b| > epsilon, NaN equal only to NaN; text and flags: !==; a change of type
// always counts), and the names in `previous` but not in `current`; both sorted by
// name. apply: `previous` with `changed` set and `removed` deleted, sorted by name; a
// name both changed and removed is an error. Stateless.

import { exportDelta } from "../../wasmeter-guest/index.js";

// By UTF-8 bytes, as the host and the Rust plugin sort.
const utf8 = new TextEncoder();
function byName(a, b) {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

function differs(a, b, epsilon) {
  if (a.tag !== b.tag) return true;
  if (a.tag === "number") {
    const [x, y] = [a.val, b.val];
    if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) !== Number.isNaN(y);
    return x !== y && Math.abs(x - y) > epsilon;
  }
  return a.val !== b.val;
}

class FieldDelta {
  static NAME = "field-delta";
  static VERSION = "0.1.0";
  static DESCRIPTION = "Per-field topic deltas, with an absolute tolerance for numbers";

  static info() {
    return { emits: [], stateful: false };
  }

  constructor(config) {
    const raw = config.get("epsilon") ?? "0";
    this.epsilon = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(this.epsilon) || this.epsilon < 0) {
      throw `config \`epsilon\`: \`${raw}\` must be a finite number >= 0`;
    }
  }

  exportState() {
    return undefined;
  }

  importState() {}

  diff(_topic, previous, current) {
    // Inputs in any order; the last of a duplicate name wins.
    const before = new Map(previous.map((f) => [f.name, f.value]));
    const now = new Map(current.map((f) => [f.name, f]));
    const changed = [...now.values()]
      .filter((f) => !before.has(f.name) || differs(before.get(f.name), f.value, this.epsilon))
      .sort((a, b) => byName(a.name, b.name));
    const removed = [...before.keys()].filter((n) => !now.has(n)).sort(byName);
    return { changed, removed };
  }

  apply(previous, changed, removed) {
    const gone = new Set(removed);
    for (const f of changed) {
      if (gone.has(f.name)) throw `field \`${f.name}\` is both changed and removed`;
    }
    const state = new Map(previous.filter((f) => !gone.has(f.name)).map((f) => [f.name, f]));
    for (const f of changed) state.set(f.name, f);
    return [...state.keys()].sort(byName).map((n) => state.get(n));
  }
}

export const { plugin, diff } = exportDelta(FieldDelta);
