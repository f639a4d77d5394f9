// The wasmeter dashboard: topics from GET /api/topics, live values over the public
// WebSocket protocol through /client/wasmeter.js, plugins from GET /api/plugins.
import { connect } from '/client/wasmeter.js';
import { RANGES, pastValues, useToken } from './history.js';
import { fmt, fmtField } from './format.js';

const POINTS = 2000;
const TOPICS_POLL_MS = 2000;
const PLUGINS_POLL_MS = 4000;
const PREFERRED = ['price', 'value', 'total', 'used_percent', 'used_pct', 'usage_percent', 'rate'];

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// A host with [auth] needs a subscriber token: `/#token=<jwt>` (the fragment never
// reaches the server's or a proxy's logs). It goes with the WebSocket and every request.
const token = hashParam('token');
const headers = token ? { Authorization: `Bearer ${token}` } : {};
useToken(token);
const client = connect('/ws', { format: 'json', token: token ?? undefined });
let allTopics = []; // from /api/topics
const selected = new Map(); // topic -> card view
let autoSelected = false;

// ---------- selection and range (kept in the URL hash: #topics=a,b&range=1h) ----------

function hashParam(key) {
  const m = new RegExp(`(?:^|&)${key}=([^&]*)`).exec(location.hash.slice(1));
  return m ? decodeURIComponent(m[1]) : null;
}

function hashTopics() {
  const t = hashParam('topics');
  return t === null ? null : t.split(',').filter(Boolean);
}

let range = RANGES[hashParam('range')] ? hashParam('range') : '5m';

function saveHash() {
  const list = [...selected.keys()].map(encodeURIComponent).join(',');
  const keep = token ? `&token=${encodeURIComponent(token)}` : '';
  history.replaceState(null, '', `#topics=${list}&range=${range}${keep}`);
}

function select(topic) {
  if (selected.has(topic)) return;
  const view = makeCard(topic);
  selected.set(topic, view);
  $('cards').append(view.root);
  $('empty').hidden = true;
  client.subscribe(topic);
  const held = client.get(topic);
  if (held) render(view, held, Object.keys(held.state), []);
  else noteUnknown(view);
  saveHash();
  renderTopics();
}

const UNKNOWN = 'no such topic on the host yet: it shows here once it is published';

// A watched topic the host does not have (a stale link, a typo) says so, once the
// topic list is known, until it appears.
function noteUnknown(view) {
  const known = client.get(view.topic) || allTopics.some((t) => t.name === view.topic);
  if (!known && allTopics.length > 0) {
    view.note.textContent = UNKNOWN;
    view.note.hidden = false;
  } else if (known && view.note.textContent === UNKNOWN) {
    view.note.hidden = true;
  }
}

function unselect(topic) {
  const view = selected.get(topic);
  if (!view) return;
  view.root.remove();
  selected.delete(topic);
  client.unsubscribe(topic);
  $('empty').hidden = selected.size > 0;
  saveHash();
  renderTopics();
}

// A first look without configuration: the demo's headline topics when they exist,
// else the first topic of each top-level group (internal `_wasmeter/*` skipped).
const DEMO_TOPICS = ['trades/BTC-USD', 'ticker/BTC-USD', 'metrics/trade_vwap/BTC-USD', 'system/cpu', 'system/memory'];
function autoSelect() {
  const names = allTopics.map((t) => t.name);
  const demo = DEMO_TOPICS.filter((t) => names.includes(t));
  if (demo.length > 0) {
    demo.forEach(select);
    return;
  }
  const groups = new Map();
  for (const t of names) {
    const key = t.split('/')[0];
    if (!t.startsWith('_') && !groups.has(key)) groups.set(key, t);
  }
  [...groups.values()].slice(0, 4).forEach(select);
}

// ---------- topic list ----------

// Every topic, page by page (the server sends at most 1,000 per page by
// default), up to MAX_TOPICS; null if the host did not answer, `unchanged` if
// no topic was created or removed since the last listing (asked for cheaply,
// with the listing's generation). A full listing is taken at least every
// FULL_REFRESH_MS all the same, for the seq numbers it shows.
const MAX_TOPICS = 20000;
const FULL_REFRESH_MS = 30000;
let generation = null;
let fullAt = 0;
/** A refused listing: a token problem is said on the page (the host's words). */
async function refused(r) {
  if (r.status === 401 || r.status === 403) {
    const body = await r.json().catch(() => ({}));
    const why = body.error?.message ?? `HTTP ${r.status}`;
    const hint = token ? '' : ' Open the dashboard as /#token=<your token>.';
    $('empty').hidden = false;
    $('empty').textContent = `The host refused the dashboard: ${why}.${hint}`;
  }
  return null;
}

async function fetchTopics() {
  if (generation !== null && Date.now() - fullAt < FULL_REFRESH_MS) {
    const r = await fetch(`/api/topics?limit=1&unless_generation=${generation}`, { cache: 'no-store', headers });
    if (!r.ok) return refused(r);
    if ((await r.json()).unchanged) return 'unchanged';
  }
  const topics = [];
  let after = null;
  let first = null;
  do {
    const query = after === null ? '' : `&after=${encodeURIComponent(after)}`;
    const r = await fetch(`/api/topics?limit=5000${query}`, { cache: 'no-store', headers });
    if (!r.ok) return refused(r);
    const page = await r.json();
    first ??= page.generation ?? null;
    topics.push(...(page.topics ?? []));
    after = page.next ?? null;
  } while (after !== null && topics.length < MAX_TOPICS);
  generation = first;
  fullAt = Date.now();
  return topics;
}

async function pollTopics() {
  try {
    const topics = await fetchTopics();
    if (topics !== null && topics !== 'unchanged') {
      allTopics = topics;
      allTopics.sort((a, b) => a.name.localeCompare(b.name));
      if (!autoSelected && allTopics.length > 0) {
        autoSelected = true;
        if (hashTopics() === null) autoSelect();
      }
      for (const view of selected.values()) noteUnknown(view);
      renderTopics();
    }
  } catch {
    // the connection status already tells that the host is away
  }
  schedulePoll();
}

// A hidden tab does not refetch the topic list; it does so when shown again.
let pollTimer = null;
function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = document.visibilityState === 'hidden' ? null : setTimeout(pollTopics, TOPICS_POLL_MS);
}
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && pollTimer === null) pollTopics();
});

function renderTopics() {
  const f = $('filter').value.trim().toLowerCase();
  const shown = allTopics.filter((t) => t.name.toLowerCase().includes(f));
  const ul = $('topics');
  ul.replaceChildren(
    ...shown.map((t) => {
      const li = el('li', selected.has(t.name) ? 'selected' : '');
      li.dataset.topic = t.name;
      // A dormant topic (a sample series nobody subscribes to) is created when
      // selected: the host then publishes it.
      li.title = t.dormant
        ? `${t.name}\nnot subscribed yet: select it to see its values`
        : `${t.name}\n${t.fields} fields, epoch ${t.epoch}, seq ${t.seq}`;
      const name = el('span', 'name');
      // Ellipsis at the start: long names differ at their end.
      name.append(el('bdi', '', t.name));
      li.append(name, el('span', 'seq', t.dormant ? '·' : `#${t.seq}`));
      li.onclick = () => (selected.has(t.name) ? unselect(t.name) : select(t.name));
      return li;
    }),
  );
  $('topic-count').textContent = f ? `${shown.length} of ${allTopics.length} topics` : `${allTopics.length} topics`;
  $('summary').textContent = `${allTopics.length} topics · ${selected.size} watched`;
}

// ---------- cards ----------

function makeCard(topic) {
  const root = el('article', 'card');
  root.dataset.topic = topic;
  const head = el('header');
  const close = el('button', '', '×');
  close.title = 'stop watching';
  close.onclick = () => unselect(topic);
  const pos = el('span', 'pos', '');
  head.append(el('h3', '', topic), pos, close);
  const note = el('div', 'note');
  note.hidden = true;
  const charts = el('div', 'charts');
  const table = el('table');
  const body = el('tbody');
  table.append(body);
  root.append(head, note, charts, table);
  return { topic, root, pos, note, charts, body, rows: new Map(), series: new Map(), chartPicked: false };
}

function row(view, field) {
  let r = view.rows.get(field);
  if (r) return r;
  const tr = el('tr');
  tr.dataset.field = field;
  const k = el('td', 'k', field);
  const v = el('td', 'v');
  v.dataset.field = field;
  const c = el('td', 'c');
  const box = el('input');
  box.type = 'checkbox';
  box.title = 'chart this field';
  box.hidden = true;
  box.onchange = () => (box.checked ? addChart(view, field) : removeChart(view, field));
  c.append(box);
  tr.append(k, v, c);
  // keep rows sorted by field name
  const after = [...view.rows.keys()].sort().find((f) => f > field);
  view.body.insertBefore(tr, after ? view.rows.get(after).tr : null);
  r = { tr, v, box };
  view.rows.set(field, r);
  return r;
}

function render(view, t, changed, removed, kind) {
  view.pos.textContent = `seq ${t.seq}`;
  view.pos.title = `epoch ${t.epoch}, updated ${new Date(t.ts).toLocaleTimeString()}`;
  for (const f of removed) {
    const r = view.rows.get(f);
    if (r) r.tr.remove();
    view.rows.delete(f);
    removeChart(view, f);
  }
  if (kind === 'snapshot') {
    for (const f of [...view.rows.keys()]) {
      if (!(f in t.state)) {
        view.rows.get(f).tr.remove();
        view.rows.delete(f);
      }
    }
  }
  for (const f of changed) {
    const value = t.state[f];
    const r = row(view, f);
    const text = fmtField(f, value);
    if (r.v.textContent !== text) {
      r.v.textContent = text;
      r.v.animate([{ backgroundColor: 'var(--flash)' }, { backgroundColor: 'transparent' }], { duration: 700, easing: 'ease-out' });
    }
    r.box.hidden = typeof value !== 'number';
    const s = view.series.get(f);
    if (s && typeof value === 'number') push(s, value, t.ts || Date.now());
  }
  for (const [f, r] of view.rows) r.tr.classList.toggle('stale', t.stale.has(f));
  if (!view.chartPicked) {
    const numeric = Object.keys(t.state).filter((f) => typeof t.state[f] === 'number' && f !== 'ts' && !f.endsWith('_ms'));
    const pick = PREFERRED.find((p) => numeric.includes(p)) ?? numeric[0];
    if (pick) {
      view.chartPicked = true;
      addChart(view, pick);
    }
  }
}

// ---------- charts: a field over the chosen time range ----------

function addChart(view, field) {
  if (view.series.has(field)) return;
  const root = el('div', 'chart');
  root.dataset.field = field;
  const canvas = el('canvas');
  const legend = el('div', 'legend');
  const axis = el('div', 'axis');
  root.append(canvas, legend, axis);
  view.charts.append(root);
  const s = { field, root, canvas, legend, axis, points: [], loading: 0 };
  view.series.set(field, s);
  const r = view.rows.get(field);
  if (r) r.box.checked = true;
  const held = client.get(view.topic);
  const v = held?.state[field];
  if (typeof v === 'number') push(s, v, held.ts || Date.now());
  loadPast(view, s);
}

// Fills a chart with the field's past over the range, then keeps what arrived
// live meanwhile.
async function loadPast(view, s) {
  const load = ++s.loading;
  const now = Date.now();
  const from = now - RANGES[range];
  let past = { points: [], source: 'none' };
  try {
    past = await pastValues(view.topic, s.field, from, now);
  } catch {
    // the host is away: the live values will do
  }
  if (load !== s.loading || !view.series.has(s.field)) return;
  const newest = past.points.length ? past.points[past.points.length - 1][0] : -Infinity;
  s.points = [...past.points, ...s.points.filter(([t]) => t > newest)];
  s.root.dataset.source = past.source;
  s.root.dataset.range = range;
  prune(s);
  dirty.add(s);
  requestAnimationFrame(drawDirty);
}

function removeChart(view, field) {
  const s = view.series.get(field);
  if (!s) return;
  s.root.remove();
  view.series.delete(field);
  const r = view.rows.get(field);
  if (r) r.box.checked = false;
}

function prune(s) {
  const from = Date.now() - RANGES[range];
  let drop = 0;
  while (drop < s.points.length - 1 && s.points[drop][0] < from) drop++;
  if (s.points.length - drop > POINTS) drop = s.points.length - POINTS;
  if (drop > 0) s.points.splice(0, drop);
  s.root.dataset.points = String(s.points.length);
}

const dirty = new Set();
function push(s, v, t) {
  const last = s.points[s.points.length - 1];
  if (last && t < last[0]) t = last[0];
  s.points.push([t, v]);
  prune(s);
  dirty.add(s);
  requestAnimationFrame(drawDirty);
}

function drawDirty() {
  for (const s of dirty) draw(s);
  dirty.clear();
}

const clock = (t, withDate) => {
  const d = new Date(t);
  const hm = d.toLocaleTimeString('en-GB', { hour12: false, hour: '2-digit', minute: '2-digit' });
  return withDate ? `${d.toLocaleDateString('en-GB', { day: '2-digit', month: 'short' })} ${hm}` : hm;
};

function draw(s) {
  const { canvas, points } = s;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (w === 0) return;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const t1 = Date.now();
  const t0 = t1 - RANGES[range];
  const long = RANGES[range] > 24 * 3600e3;
  s.axis.replaceChildren(el('span', '', clock(t0, long)), el('span', '', range), el('span', '', clock(t1, long)));
  if (points.length === 0) {
    s.legend.replaceChildren(el('b', '', s.field), el('span', '', 'no data'));
    return;
  }
  const values = points.map(([, v]) => v);
  const last = values[values.length - 1];
  const min = Math.min(...values);
  const max = Math.max(...values);
  s.legend.replaceChildren(el('b', '', `${s.field} ${fmt(last)}`), el('span', '', `${fmt(min)} – ${fmt(max)}`));
  const style = getComputedStyle(document.documentElement);
  const color = style.getPropertyValue('--accent').trim() || '#5aa9ff';
  const grid = style.getPropertyValue('--line').trim() || '#2a3039';
  const pad = 3;
  const span = max - min || 1;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (w - 2 * pad);
  const y = (v) => h - pad - ((v - min) / span) * (h - 2 * pad);
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  for (const f of [0.25, 0.5, 0.75]) {
    ctx.beginPath();
    ctx.moveTo(pad + f * (w - 2 * pad), 0);
    ctx.lineTo(pad + f * (w - 2 * pad), h);
    ctx.stroke();
  }
  ctx.beginPath();
  points.forEach(([t, v], i) => (i === 0 ? ctx.moveTo(x(t), y(v)) : ctx.lineTo(x(t), y(v))));
  // A value holds until the next one: the line runs on to now.
  ctx.lineTo(x(t1), y(last));
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = color;
  ctx.lineJoin = 'round';
  ctx.stroke();
  ctx.lineTo(x(t1), h);
  ctx.lineTo(x(points[0][0]), h);
  ctx.closePath();
  ctx.globalAlpha = 0.12;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.beginPath();
  ctx.arc(x(points[points.length - 1][0]), y(last), 2.5, 0, 2 * Math.PI);
  ctx.fill();
  // The value axis: the range's top and bottom values.
  ctx.font = '10px ui-monospace, monospace';
  ctx.fillStyle = style.getPropertyValue('--muted').trim() || '#8a94a3';
  ctx.textBaseline = 'top';
  ctx.fillText(fmt(max), pad + 1, 1);
  ctx.textBaseline = 'bottom';
  ctx.fillText(fmt(min), pad + 1, h - 1);
}

// Charts move with the clock even when no value arrives.
setInterval(() => {
  for (const view of selected.values()) for (const s of view.series.values()) {
    prune(s);
    dirty.add(s);
  }
  requestAnimationFrame(drawDirty);
}, 1000);

function setRange(r) {
  if (!RANGES[r] || r === range) return;
  range = r;
  $('range').value = r;
  saveHash();
  for (const view of selected.values()) for (const s of view.series.values()) loadPast(view, s);
}

// ---------- the connection ----------

client.on('topic', (e) => {
  const view = selected.get(e.topic);
  if (!view) return;
  if (e.recovered === false) {
    view.note.textContent = 'not recovered after reconnect: fresh snapshot (new epoch or history too short)';
    view.note.hidden = false;
  } else if (e.kind === 'update') {
    view.note.hidden = true;
  }
  render(view, e.state, e.changed, e.removed, e.kind);
});

client.on('removed', (e) => {
  const view = selected.get(e.topic);
  if (!view) return;
  view.note.textContent = 'topic removed from the host';
  view.note.hidden = false;
});

function renderStatus() {
  const s = client.status;
  const node = $('status');
  node.dataset.status = s.status;
  // Values are as of the last connection: dimmed until it is back.
  document.body.classList.toggle('offline', s.status !== 'connected');
  let text = s.status;
  if (s.status === 'reconnecting' && s.retryAt) {
    const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
    text = `reconnecting in ${secs}s (attempt ${s.attempt})`;
  } else if (s.status === 'reconnecting') {
    text = `reconnecting (attempt ${s.attempt})`;
  } else if (s.status === 'connected' && s.resumed === true) {
    text = 'connected · resumed';
  } else if (s.status === 'connected' && s.resumed === false) {
    text = `connected · not recovered (${s.notRecovered.length} topic${s.notRecovered.length === 1 ? '' : 's'})`;
    node.title = `not recovered: ${s.notRecovered.join(', ')}`;
  }
  node.textContent = text;
}
client.on('status', renderStatus);
setInterval(renderStatus, 250);

// ---------- plugins ----------

async function pollPlugins() {
  const box = $('plugins');
  try {
    const r = await fetch('/api/plugins', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const plugins = (await r.json()).plugins ?? [];
    box.className = '';
    const table = el('table');
    const head = el('tr');
    for (const h of ['name', 'pipeline', 'role', 'plugin', 'state', 'calls', 'failures', 'rebuilds', 'busy', 'last error']) {
      head.append(el('th', '', h));
    }
    table.append(head);
    for (const p of plugins) {
      const tr = el('tr');
      tr.dataset.plugin = p.name;
      const state = el('td');
      state.append(el('span', `badge ${p.state}`, p.state));
      const err = el('td', 'err', p.last_error ?? '');
      err.title = p.last_error ?? '';
      tr.append(
        el('td', '', p.name),
        el('td', '', p.pipeline ?? ''),
        el('td', '', p.role ?? ''),
        el('td', '', `${p.plugin ?? ''} ${p.version ?? ''} ${p.kind ? `(${p.kind})` : ''}`),
        state,
        el('td', 'num', fmt(p.calls ?? 0)),
        el('td', 'num', fmt(p.failures ?? 0)),
        el('td', 'num', fmt(p.rebuilds ?? 0)),
        el('td', 'num', `${(p.busy_seconds ?? 0).toFixed(3)} s`),
        err,
      );
      table.append(tr);
    }
    box.replaceChildren(plugins.length ? table : el('span', 'muted', 'plugins: none'));
  } catch {
    box.className = 'muted';
    box.textContent = 'plugins: unavailable';
  }
  setTimeout(pollPlugins, PLUGINS_POLL_MS);
}

// ---------- start ----------

$('filter').addEventListener('input', renderTopics);
$('range').value = range;
$('range').addEventListener('change', (e) => setRange(e.target.value));
for (const t of hashTopics() ?? []) select(t);
renderStatus();
pollTopics();
pollPlugins();
