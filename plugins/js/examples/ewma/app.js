// ewma in JavaScript: exponentially weighted moving average per series.
//
// The twin of the Rust `plugins/ewma`: config `metrics` (comma list, default every
// gauge not ending in `_ewma`) and `alpha` (default 0.2, in (0, 1]); for each selected
// sample the gauge `<name>_ewma` with its labels and timestamp. State: schema `ewma`
// v1, the same bytes as the Rust plugin's, so a hot swap between them keeps the averages.

import { StateReader, StateWriter, exportMetric } from "../../wasmeter-guest/index.js";
import { Selection, key } from "../../wasmeter-guest/series.js";
import { gauge, isValidMetricName } from "../../wasmeter-guest/values.js";

const FLOAT = /^[+-]?(inf|infinity|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)$/i;

class Ewma {
  static NAME = "ewma";
  static VERSION = "0.1.0";
  static DESCRIPTION = "Exponentially weighted moving average per series, in JavaScript";

  static info() {
    return { emits: ["*_ewma"], stateful: true };
  }

  constructor(config) {
    const raw = (config.get("alpha") ?? "0.2").trim();
    if (!FLOAT.test(raw)) throw `config \`alpha\`: \`${raw}\` is not a valid f64`;
    this.alpha = Number(raw);
    if (!(this.alpha > 0 && this.alpha <= 1)) throw `config \`alpha\`: \`${raw}\` must be in (0, 1]`;
    this.selection = new Selection(config, "metrics", "gauge", ["_ewma"]);
    this.series = new Map(); // key -> { name, labels: [[n, v]], value }
  }

  exportState() {
    const w = new StateWriter("ewma", 1).count(this.series.size);
    for (const k of [...this.series.keys()].sort()) {
      const a = this.series.get(k);
      w.str(a.name).labels(a.labels).f64(a.value);
    }
    return w.finish();
  }

  importState(data) {
    const r = new StateReader(data, "ewma");
    const series = new Map();
    for (let i = r.count(); i > 0; i--) {
      const a = { name: r.str(), labels: r.labels(), value: r.f64() };
      series.set(key(a.name, a.labels), a);
    }
    r.finish();
    this.series = series;
  }

  reads(name, kind) {
    return this.selection.reads(name, kind);
  }

  onSamples(samples) {
    const out = [];
    for (const s of samples) {
      if (!this.selection.matches(s)) continue;
      const k = key(s.name, s.labels);
      const labels = s.labels.map((l) => [l.name, l.value]);
      let a = this.series.get(k);
      if (a === undefined) this.series.set(k, (a = { name: s.name, labels, value: s.value }));
      else a.value = this.alpha * s.value + (1 - this.alpha) * a.value;
      const name = `${s.name}_ewma`;
      if (isValidMetricName(name)) out.push(gauge(name, a.value, labels, s.timestampMs));
    }
    return out;
  }
}

export const { plugin, derive } = exportMetric(Ewma);
