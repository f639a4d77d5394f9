// wasmeter.js: a small, dependency-free client of the wasmeter subscriber protocol (v1).
// Served by every wasmeter host at /client/wasmeter.js; documented in docs/CLIENT.md.
//
//   import { connect } from '/client/wasmeter.js';
//   const client = connect('ws://127.0.0.1:8080/ws', { format: 'json' });
//   client.subscribe(['trades/*'], { fields: ['price'] });
//   client.on('topic', (e) => console.log(e.topic, e.state));
//
// It keeps every topic's state (snapshots replace it, updates are RFC 7396 merge
// patches: null removes a field; `stale` marks fields; a stream topic's state is its
// last event, and every event is emitted as `event`), reconnects with exponential
// backoff and full jitter, resumes with `since` = the last (epoch, seq) per topic,
// and answers the server's heartbeat.

/**
 * @typedef {Object} ConnectOptions
 * @property {'json'} [format] Wire format. Only 'json' is implemented by this client.
 * @property {number} [backoffBaseMs=250] First reconnect delay bound.
 * @property {number} [backoffCapMs=10000] Largest reconnect delay bound.
 * @property {number} [idleTimeoutMs=45000] Reconnect when nothing arrives for this long
 *   (the server pings every 15 s by default). 0 disables.
 * @property {number} [connectTimeoutMs=10000] A connection not open by then is given up
 *   and retried. 0 disables.
 * @property {typeof WebSocket} [WebSocket] WebSocket constructor (default: the global one;
 *   on Node < 22 pass one, e.g. `WebSocket` from the `ws` package).
 */

/**
 * @typedef {Object} SubscribeOptions
 * @property {string[]} [fields] Only these fields.
 * @property {number} [maxRateHz] At most this many updates per second per topic.
 */

/**
 * The state held for one topic.
 * @typedef {Object} TopicState
 * @property {string} topic
 * @property {string} epoch
 * @property {number} seq
 * @property {number} ts Time of the last update (Unix ms).
 * @property {Object<string, *>} state The fields.
 * @property {Set<string>} stale Fields currently stale (they keep their last value).
 */

/**
 * Event payloads, by name (see {@link WasmeterClient#on}):
 * - `topic`: `{topic, kind: 'snapshot'|'update'|'event', state: TopicState, changed: string[],
 *   removed: string[], stale: string[], recovered: boolean|undefined}`; after every frame that changed a topic.
 * - `event`: `{topic, epoch, seq, ts, fields}`; one event of a stream topic, each one
 *   once, in order (its state then also emits `topic` with kind 'event').
 * - `gap`: `{topic, epoch, after, next, missed}`; the events of a stream topic after
 *   `after` and before `next` are gone (this subscriber fell behind the host's history).
 * - `removed`: `{topic}`; the topic was removed from the host.
 * - `status`: `{status: 'connecting'|'connected'|'reconnecting'|'closed', attempt, retryAt,
 *   resumed: null|boolean, notRecovered: string[]}`.
 * - `subscribed`: the server's `subscribed` frame. `error`: the server's `error` frame.
 * - `frame`: every decoded frame except pings.
 * @typedef {'topic'|'event'|'gap'|'removed'|'status'|'subscribed'|'error'|'frame'} EventName
 */

/**
 * Does a topic match a subscription pattern (`*` = one segment, trailing `**` = one or more)?
 * @param {string} pattern
 * @param {string} topic
 * @returns {boolean}
 */
export function matches(pattern, topic) {
  const p = pattern.split('/');
  const t = topic.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**' && i === p.length - 1) return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/**
 * A full-jitter exponential backoff delay: uniform in [0, min(cap, base * 2^attempt)).
 * @param {number} attempt 0 for the first retry.
 * @param {number} baseMs
 * @param {number} capMs
 * @returns {number}
 */
export function backoffDelay(attempt, baseMs, capMs) {
  return Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/** A connection that survives reconnects. Create with {@link connect}. */
export class WasmeterClient {
  /**
   * @param {string} url `ws://host:port/ws` (the format is added as `?format=`).
   * @param {ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    const format = options.format ?? 'json';
    if (format !== 'json') throw new Error(`wasmeter.js: format '${format}' is not supported (use 'json')`);
    const u = new URL(url, typeof location === 'undefined' ? undefined : location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    u.searchParams.set('format', format);
    this.url = u.toString();
    this.baseMs = options.backoffBaseMs ?? 250;
    this.capMs = options.backoffCapMs ?? 10000;
    this.idleMs = options.idleTimeoutMs ?? 45000;
    this.connectMs = options.connectTimeoutMs ?? 10000;
    this.WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WS !== 'function') {
      throw new Error("wasmeter.js: no WebSocket here: pass one as options.WebSocket (e.g. from the 'ws' package on Node < 22)");
    }
    /** @type {Map<string, TopicState>} */
    this.topics = new Map();
    /** @type {Map<string, SubscribeOptions>} patterns held, in subscription order */
    this.subs = new Map();
    this.listeners = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.closed = false;
    this.ws = null;
    this.timer = null;
    this.connectTimer = null;
    this.idleTimer = null;
    this.status = { status: 'connecting', attempt: 0, retryAt: null, resumed: null, notRecovered: [] };
    this.pendingResume = null;
    this.everOpen = false;
    this.open();
  }

  /**
   * Listens to an event; returns a function that stops listening.
   * @param {EventName} name
   * @param {(detail: any) => void} fn
   * @returns {() => void}
   */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  /**
   * Subscribes to topics or patterns; subscribing again to a pattern replaces its options.
   * Held across reconnects.
   * @param {string|string[]} topics
   * @param {SubscribeOptions} [options]
   */
  subscribe(topics, options = {}) {
    const list = Array.isArray(topics) ? topics : [topics];
    for (const t of list) this.subs.set(t, { fields: options.fields, maxRateHz: options.maxRateHz });
    this.sendSubscribe(list, options, false);
  }

  /**
   * Unsubscribes patterns exactly as subscribed, and forgets the topics no pattern covers.
   * @param {string|string[]} topics
   */
  unsubscribe(topics) {
    const list = (Array.isArray(topics) ? topics : [topics]).filter((t) => this.subs.has(t));
    if (list.length === 0) return;
    for (const t of list) this.subs.delete(t);
    this.send({ type: 'unsubscribe', id: this.nextId++, topics: list });
    for (const topic of [...this.topics.keys()]) {
      if (![...this.subs.keys()].some((p) => matches(p, topic))) this.topics.delete(topic);
    }
  }

  /**
   * The state held for a topic, if any.
   * @param {string} topic
   * @returns {TopicState|undefined}
   */
  get(topic) {
    return this.topics.get(topic);
  }

  /** Closes for good (no reconnect). */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    if (this.ws) this.ws.close(1000);
    this.setStatus({ status: 'closed', retryAt: null });
  }

  // ---- internals ----

  emit(name, detail) {
    for (const fn of this.listeners.get(name) ?? []) {
      try {
        fn(detail);
      } catch (e) {
        console.error('wasmeter.js listener', e);
      }
    }
  }

  setStatus(patch) {
    this.status = { ...this.status, ...patch };
    this.emit('status', this.status);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }

  sendSubscribe(list, options, resume) {
    const msg = { type: 'subscribe', id: this.nextId++, topics: list };
    if (options.fields) msg.fields = options.fields;
    if (options.maxRateHz) msg.max_rate_hz = options.maxRateHz;
    if (resume) {
      const since = {};
      for (const [topic, t] of this.topics) {
        if (!resume.has(topic) && list.some((p) => matches(p, topic))) {
          since[topic] = { epoch: t.epoch, seq: t.seq };
          resume.add(topic);
        }
      }
      if (Object.keys(since).length > 0) msg.since = since;
    }
    this.send(msg);
  }

  open() {
    this.setStatus({ status: this.attempt === 0 && !this.everOpen ? 'connecting' : 'reconnecting', retryAt: null });
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    clearTimeout(this.connectTimer);
    if (this.connectMs > 0) {
      // Not open in time (a black-holed address): give up on it and retry.
      this.connectTimer = setTimeout(() => this.lost(ws, null), this.connectMs);
    }
    ws.onopen = () => {
      // A socket already given up on (timed out, errored) may still open late: ignore it.
      if (this.ws !== ws) return;
      clearTimeout(this.connectTimer);
      this.attempt = 0;
      const resuming = this.everOpen && this.topics.size > 0;
      this.everOpen = true;
      this.pendingResume = resuming ? { waiting: 0, notRecovered: [] } : null;
      this.setStatus({ status: 'connected', retryAt: null, resumed: null, notRecovered: [] });
      this.touch();
      // One subscribe per held pattern, in order: a topic's position goes with the first
      // pattern that covers it (the server delivers it with that subscription's options).
      const resumed = new Set();
      for (const [pattern, options] of this.subs) {
        if (this.pendingResume) this.pendingResume.waiting++;
        this.sendSubscribe([pattern], options, resumed);
      }
      if (this.pendingResume && this.pendingResume.waiting === 0) this.pendingResume = null;
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.touch();
      if (typeof ev.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (ev) => this.lost(ws, ev?.code ?? null);
    // Some implementations report a refused connection with `error` alone.
    ws.onerror = () => this.lost(ws, null);
  }

  /**
   * The connection `ws` ended (closed with `code`, failed, or timed out): once per
   * connection, retry with backoff, unless the server said not to (4002: the
   * client sent too many bad messages; reconnecting would only repeat them).
   */
  lost(ws, code) {
    if (this.ws !== ws) return;
    this.ws = null;
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close();
    } catch {
      // already closing
    }
    if (this.closed) return;
    if (code === 4002) {
      this.closed = true;
      this.setStatus({ status: 'closed', retryAt: null, code });
      this.emit('error', { type: 'error', code: 'abusive', message: 'the server closed the connection (4002): too many refused messages; not reconnecting' });
      return;
    }
    this.retry();
  }

  touch() {
    clearTimeout(this.idleTimer);
    if (this.idleMs > 0) {
      this.idleTimer = setTimeout(() => {
        if (this.ws) this.ws.close(4000);
      }, this.idleMs);
    }
  }

  retry() {
    const delay = backoffDelay(this.attempt, this.baseMs, this.capMs);
    this.attempt++;
    this.setStatus({ status: 'reconnecting', attempt: this.attempt, retryAt: Date.now() + delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  handle(f) {
    switch (f.type) {
      case 'ping':
        this.send({ type: 'pong' });
        return;
      case 'snapshot':
        this.applySnapshot(f);
        break;
      case 'update':
        this.applyUpdate(f);
        break;
      case 'event':
        this.applyEvent(f);
        break;
      case 'gap': {
        const t = this.topics.get(f.topic);
        // Continue from the next event the host still has.
        if (t && t.epoch === f.epoch) t.seq = f.next - 1;
        this.emit('gap', { topic: f.topic, epoch: f.epoch, after: f.after, next: f.next, missed: f.missed });
        break;
      }
      case 'removed':
        this.topics.delete(f.topic);
        this.emit('removed', { topic: f.topic });
        break;
      case 'subscribed':
        if (this.pendingResume) {
          for (const [topic, ok] of Object.entries(f.recovered ?? {})) {
            if (!ok) this.pendingResume.notRecovered.push(topic);
          }
          if (--this.pendingResume.waiting <= 0) {
            const nr = this.pendingResume.notRecovered;
            this.pendingResume = null;
            this.setStatus({ resumed: nr.length === 0, notRecovered: nr });
          }
        }
        this.emit('subscribed', f);
        break;
      case 'error':
        this.emit('error', f);
        break;
    }
    this.emit('frame', f);
  }

  applySnapshot(f) {
    const old = this.topics.get(f.topic);
    const state = f.state ?? {};
    const changed = Object.keys(state).filter((k) => !old || !Object.is(old.state[k], state[k]));
    const removed = old ? Object.keys(old.state).filter((k) => !(k in state)) : [];
    const stale = f.stale ?? [];
    const t = { topic: f.topic, epoch: f.epoch, seq: f.seq, ts: f.ts, state: { ...state }, stale: new Set(stale) };
    this.topics.set(f.topic, t);
    this.emit('topic', { topic: f.topic, kind: 'snapshot', state: t, changed, removed, stale, recovered: f.recovered });
  }

  applyEvent(f) {
    const fields = f.fields ?? {};
    const t = { topic: f.topic, epoch: f.epoch, seq: f.seq, ts: f.ts, state: { ...fields }, stale: new Set() };
    this.topics.set(f.topic, t);
    this.emit('event', { topic: f.topic, epoch: f.epoch, seq: f.seq, ts: f.ts, fields });
    this.emit('topic', { topic: f.topic, kind: 'event', state: t, changed: Object.keys(fields), removed: [], stale: [] });
  }

  applyUpdate(f) {
    let t = this.topics.get(f.topic);
    if (!t || t.epoch !== f.epoch) {
      // Cannot happen with a conforming server (a new epoch starts with a snapshot).
      t = { topic: f.topic, epoch: f.epoch, seq: 0, ts: f.ts, state: {}, stale: new Set() };
      this.topics.set(f.topic, t);
    }
    const changed = [];
    const removed = [];
    for (const [k, v] of Object.entries(f.delta ?? {})) {
      if (v === null) {
        if (k in t.state) removed.push(k);
        delete t.state[k];
      } else {
        t.state[k] = v;
        changed.push(k);
      }
      t.stale.delete(k);
    }
    for (const k of f.stale ?? []) t.stale.add(k);
    t.seq = f.seq;
    t.ts = f.ts;
    this.emit('topic', { topic: f.topic, kind: 'update', state: t, changed, removed, stale: f.stale ?? [] });
  }
}

/**
 * Connects to a wasmeter host's WebSocket endpoint; reconnects until {@link WasmeterClient#close}.
 * @param {string} url e.g. `ws://127.0.0.1:8080/ws` (relative URLs resolve against the page)
 * @param {ConnectOptions} [options]
 * @returns {WasmeterClient}
 */
export function connect(url, options) {
  return new WasmeterClient(url, options);
}
