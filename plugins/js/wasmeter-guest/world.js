// Glue between a plugin class and the exports componentize-js expects.
//
// A plugin is a class with static `NAME`, `VERSION`, `DESCRIPTION`, a constructor
// taking the config (a `Map`; throw a string naming the key to refuse it) and the call
// of its world; optionally a static `info(config)` returning `{ emits, stateful }` and
// `exportState()` / `importState(bytes)` (without them: no state, and a state given
// is ignored). The one instance created by `init`
// lives here for the life of the component instance.

import { config as hostConfig } from "wasmeter:plugin/host@0.4.0";

let instance = null;

/** Thrown values become the `err` string of the call. */
const message = (e) => String(e?.message ?? e);

function guard(call) {
  try {
    return call();
  } catch (e) {
    throw message(e);
  }
}

function required() {
  if (instance === null) throw "called before init";
  return instance;
}

function lifecycle(Cls, kind) {
  return {
    describe() {
      const info = Cls.info ? Cls.info(new Map(hostConfig())) : {};
      return {
        name: Cls.NAME,
        version: Cls.VERSION,
        kind,
        description: Cls.DESCRIPTION,
        emits: info.emits ?? [],
        stateful: Boolean(info.stateful ?? Cls.prototype.exportState),
      };
    },
    init(config) {
      instance = guard(() => new Cls(new Map(config)));
    },
    exportState() {
      return instance?.exportState ? (instance.exportState() ?? undefined) : undefined;
    },
    importState(state) {
      // Like the Rust SDK: a plugin without importState ignores the state.
      const p = required();
      if (p.importState) guard(() => p.importState(state));
    },
  };
}

/** `export const { plugin, collect } = exportCollector(MyCollector);` */
export function exportCollector(Cls) {
  return {
    plugin: lifecycle(Cls, "collector"),
    collect: {
      collect(source, chunk) {
        const out = {
          samples: [], seriesReset: false, series: [], points: [],
          updates: [], events: [], errors: [],
        };
        guard(() => required().collect(source, chunk, out));
        return out;
      },
    },
  };
}

/** The most series either side holds numbered (contract 0.4.0). */
const MAX_SERIES = 65536;
/** The series the host declared to this instance, by number, and whether the
 * plugin reads each (asked on its first point). */
let given = [];
/** The series this instance declared to the host: key -> number. */
let derived = new Map();

/** Takes the host's declarations of `batch` (whatever follows: the host counts
 * them as made) and returns its points. */
function takeGiven(batch) {
  if (batch.seriesReset) given = [];
  for (const series of batch.series) given.push({ series, read: undefined });
  return batch.points;
}

/** The points' samples, whole, of the series `reads(name, kind)` (asked once per
 * series; without `reads`: every series). */
function samplesRead(points, reads) {
  const samples = [];
  points.forEach((p, i) => {
    const g = given[p.series];
    if (g === undefined) {
      throw `input point #${i}: no series #${p.series} (the host declared ${given.length})`;
    }
    if (g.read === undefined) g.read = reads ? Boolean(reads(g.series.name, g.series.kind)) : true;
    if (g.read) {
      const s = g.series;
      samples.push({ name: s.name, labels: s.labels, value: p.value, kind: s.kind, timestampMs: p.timestampMs });
    }
  });
  return samples;
}

/** The plugin's samples as points of series declared once (only for a call
 * that succeeds: a failed call declares nothing). */
function batchOut(samples) {
  const keyOf = (s) => JSON.stringify([s.kind, s.name, s.labels.map((l) => [l.name, l.value])]);
  const keys = samples.map(keyOf);
  if (new Set(keys).size > MAX_SERIES) {
    throw `more than ${MAX_SERIES} series in one call: the host takes at most that many at once`;
  }
  const fresh = new Set(keys.filter((k) => !derived.has(k))).size;
  const seriesReset = derived.size + fresh > MAX_SERIES;
  if (seriesReset) derived = new Map();
  const series = [];
  const points = samples.map((s, i) => {
    let number = derived.get(keys[i]);
    if (number === undefined) {
      number = derived.size;
      derived.set(keys[i], number);
      series.push({ name: s.name, labels: s.labels, kind: s.kind });
    }
    return { series: number, value: s.value, timestampMs: BigInt(s.timestampMs) };
  });
  return { seriesReset, series, points };
}

/** `export const { plugin, derive } = exportMetric(MyMetric);` An optional
 * `reads(name, kind)` limits the samples it is given to the series it reads
 * (asked once per series). */
export function exportMetric(Cls) {
  return {
    plugin: lifecycle(Cls, "metric"),
    derive: {
      onSamples(batch) {
        const points = takeGiven(batch);
        const p = required();
        const reads = p.reads ? (name, kind) => p.reads(name, kind) : null;
        return guard(() => batchOut(p.onSamples(samplesRead(points, reads))));
      },
      onTick(now) {
        const p = required();
        return guard(() => batchOut(p.onTick ? p.onTick(now) : []));
      },
    },
  };
}

/**
 * `export const { plugin, diff } = exportDelta(MyDelta);` The class has
 * `diff(topic, previous, current) -> { changed, removed }` and
 * `apply(previous, changed, removed) -> fields`; a throw from `diff` costs only its
 * topic (subscribers then get the exact difference).
 */
export function exportDelta(Cls) {
  return {
    plugin: lifecycle(Cls, "delta"),
    diff: {
      diff(names, changes) {
        const p = required();
        // Contract 0.4.0 names each field once per call; fields give its index.
        const named = (fields) =>
          fields.map((f) => {
            if (f.name >= names.length) {
              throw `field name #${f.name} of ${names.length} given in the call`;
            }
            return { name: names[f.name], value: f.value };
          });
        return changes.map((c) => {
          try {
            const { changed, removed } = p.diff(c.topic, named(c.previous), named(c.current));
            return { tag: "ok", val: { changed, removed } };
          } catch (e) {
            return { tag: "err", val: message(e) };
          }
        });
      },
      apply(previous, delta) {
        return guard(() => required().apply(previous, delta.changed, delta.removed));
      },
    },
  };
}
