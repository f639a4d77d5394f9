// Glue between a plugin class and the exports componentize-js expects.
//
// A plugin is a class with static `NAME`, `VERSION`, `DESCRIPTION`, a constructor
// taking the config (a `Map`; throw a string naming the key to refuse it) and the call
// of its world; optionally a static `info(config)` returning `{ emits, stateful }` and
// `exportState()` / `importState(bytes)` (without them: no state, and a state given
// is ignored). The one instance created by `init`
// lives here for the life of the component instance.

import { config as hostConfig } from "wasmeter:plugin/host@0.3.0";

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

/** `export const { plugin, derive } = exportMetric(MyMetric);` */
export function exportMetric(Cls) {
  return {
    plugin: lifecycle(Cls, "metric"),
    derive: {
      onSamples(samples) {
        return guard(() => required().onSamples(samples));
      },
      onTick(now) {
        const p = required();
        return p.onTick ? guard(() => p.onTick(now)) : [];
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
      diff(changes) {
        const p = required();
        return changes.map((c) => {
          try {
            const { changed, removed } = p.diff(c.topic, c.previous, c.current);
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
