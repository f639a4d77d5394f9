// Series identity and metric selection (`wasmeter_sdk::series`).

import { isValidMetricName } from "./values.js";

const byNameValue = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);

/** `name{a="1",b="2"}` with labels sorted: the identity of a series. Labels are
 * label records or `[name, value]` pairs. */
export function key(name, labels) {
  const pairs = labels.map((l) => (Array.isArray(l) ? l : [l.name, l.value])).sort(byNameValue);
  const esc = (v) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
  return `${name}{${pairs.map(([n, v]) => `${n}="${esc(v)}"`).join(",")}}`;
}

/** Which samples a metric plugin handles: the config list `key`, else every sample
 * of `defaultKind` not ending in one of `skipSuffixes`. */
export class Selection {
  constructor(config, key, defaultKind = "gauge", skipSuffixes = []) {
    const raw = config.get(key);
    const names = raw === undefined ? [] : raw.split(",").map((n) => n.trim()).filter((n) => n);
    for (const n of names) {
      if (!isValidMetricName(n)) throw `config \`${key}\`: \`${n}\` is not a valid metric name`;
    }
    this.names = names.length > 0 ? new Set(names) : null;
    this.defaultKind = defaultKind;
    this.skip = skipSuffixes;
  }
  /** Whether samples named `name` of `kind` are selected, whatever their value. */
  reads(name, kind) {
    if (this.names) return this.names.has(name);
    return kind === this.defaultKind && !this.skip.some((s) => name.endsWith(s));
  }
  matches(sample) {
    return Number.isFinite(sample.value) && this.reads(sample.name, sample.kind);
  }
}
