// history.js: what a dashboard chart shows before the live updates: a field's
// past values over a time range, from the host's metric history (the Prometheus
// API, for sample-series topics `metrics/<name>/<label values>`) or, for any
// other topic, from its recent changes (GET /api/topics/{topic}/history).

// GET with the dashboard's subscriber token, if it has one (a host with [auth]).
let headers = {};

/** Sends `token` with every request of this module. */
export function useToken(token) {
  headers = token ? { Authorization: `Bearer ${token}` } : {};
}

/** Time ranges of the picker, in ms. */
export const RANGES = { '5m': 5 * 60e3, '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 };

/** At most this many points per chart: the query's step follows from it. */
const MAX_POINTS = 400;

// A label value as it appears in a series topic (see the host's series_topic).
const topicChar = (c) => (/[A-Za-z0-9_.:-]/.test(c) ? c : '_');
const asSegment = (v) => (v === '' ? '_' : [...v].map(topicChar).join(''));

/** The selector of the series a `metrics/...` topic publishes, or null. */
async function seriesSelector(topic) {
  const [prefix, name, ...values] = topic.split('/');
  if (prefix !== 'metrics' || !name) return null;
  const r = await fetch(`/api/v1/series?match[]=${encodeURIComponent(`{__name__="${name.replace(/"/g, '\\"')}"}`)}`, { headers });
  if (!r.ok) return null;
  const want = values.join('/');
  for (const labels of (await r.json()).data ?? []) {
    const names = Object.keys(labels).filter((k) => k !== '__name__').sort();
    if (names.map((k) => asSegment(labels[k])).join('/') === want) {
      const matchers = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
      return `{${matchers.join(',')}}`;
    }
  }
  return null;
}

/**
 * The past values of `field` of `topic` since `from` (Unix ms), oldest first, as
 * `[t, v]` pairs; `source` says where they came from ('history' or 'changes').
 * @returns {Promise<{points: [number, number][], source: string}>}
 */
export async function pastValues(topic, field, from, now = Date.now()) {
  if (field === 'value') {
    const selector = await seriesSelector(topic).catch(() => null);
    if (selector) {
      const step = Math.max(1, Math.ceil((now - from) / 1000 / MAX_POINTS));
      const q = `query=${encodeURIComponent(selector)}&start=${from / 1000}&end=${now / 1000}&step=${step}`;
      const r = await fetch(`/api/v1/query_range?${q}`, { headers });
      const values = r.ok ? (await r.json()).data?.result?.[0]?.values ?? [] : [];
      // Samples stamped outside the range (or no history kept): the changes will do.
      if (values.length > 0) return { points: values.map(([t, v]) => [t * 1000, Number(v)]), source: 'history' };
    }
  }
  const path = topic.split('/').map(encodeURIComponent).join('/');
  const r = await fetch(`/api/topics/${path}/history?limit=1000`, { headers });
  if (!r.ok) return { points: [], source: 'changes' };
  const points = [];
  for (const m of (await r.json()).messages ?? []) {
    const v = (m.delta ?? m.fields ?? {})[field];
    if (typeof v === 'number' && m.ts >= from) points.push([m.ts, v]);
  }
  return { points, source: 'changes' };
}
