// Builders for the contract's records and the host's naming rules.
//
// Records use jco's JavaScript mapping of the WIT: camelCase fields, `s64` as
// BigInt, enums as strings, variants as `{ tag, val }`.

import { nowMs as hostNowMs } from "wasmeter:plugin/host@0.4.0";

const SEGMENT = /^[A-Za-z0-9_.:-]+$/;
const METRIC = /^[A-Za-z_:][A-Za-z0-9_:]*$/;

/** Wall-clock Unix milliseconds from the host (a BigInt). */
export const nowMs = () => hostNowMs();

export const isValidTopicSegment = (s) => SEGMENT.test(s);
export const isValidTopic = (t) => t.split("/").every(isValidTopicSegment);
export const isValidMetricName = (n) =>
  new TextEncoder().encode(n).length <= 200 && METRIC.test(n);

const sample = (kind) => (name, value, labels = [], ts = 0n) => ({
  name,
  labels: labels.map((l) => (Array.isArray(l) ? { name: l[0], value: l[1] } : { name: l.name, value: l.value })),
  value,
  kind,
  timestampMs: BigInt(ts),
});
/** `gauge(name, value, labels, tsMs)`: labels as `[name, value]` pairs or label
 * records (e.g. a sample's `labels`); `tsMs` 0: now. */
export const gauge = sample("gauge");
/** `counter(name, value, labels, tsMs)`, labels as for `gauge`. */
export const counter = sample("counter");

/** A number field for numbers, a text field for strings, a flag for booleans. */
export function field(name, value) {
  if (typeof value === "string") return { name, value: { tag: "text", val: value } };
  if (typeof value === "boolean") return { name, value: { tag: "flag", val: value } };
  return { name, value: { tag: "number", val: Number(value) } };
}

/** A topic update from `[name, value]` pairs, in order. */
export const update = (topic, fields) => ({ topic, fields: fields.map(([n, v]) => field(n, v)) });
/** A stream event from `[name, value]` pairs, in order. */
export const event = update;

/** The value of the label `name` of `sample`, else `fallback`. */
export const label = (sample, name, fallback = undefined) =>
  sample.labels.find((l) => l.name === name)?.value ?? fallback;
