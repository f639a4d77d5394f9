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
/** The series the host declared to this instance, by number. */
let given = [];
/** The series this instance declared to the host: key -> number. */
let derived = new Map();

/** The host's batch (points of series declared once) as whole samples. Its
 * declarations are kept whatever follows, as the host keeps them. */
function samplesIn(batch) {
  if (batch.seriesReset) given = [];
  for (const s of batch.series) given.push(s);
  return batch.points.map((p, i) => {
    const s = given[p.series];
    if (s === undefined) {
      throw `input point #${i}: no series #${p.series} (the host declared ${given.length})`;
    }
    return { name: s.name, labels: s.labels, value: p.value, kind: s.kind, timestampMs: p.timestampMs };
  });
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

/** `export const { plugin, derive } = exportMetric(MyMetric);` */
export function exportMetric(Cls) {
  return {
    plugin: lifecycle(Cls, "metric"),
    derive: {
      onSamples(batch) {
        return guard(() => batchOut(required().onSamples(samplesIn(batch))));
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
