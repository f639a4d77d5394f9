// wasmeter.js: a small, dependency-free client of the wasmeter subscriber protocol (v1).
// Served by every wasmeter host at /client/wasmeter.js and published as the npm package
// `wasmeter-client` (clients/js); documented in docs/CLIENT.md, typed in wasmeter.d.ts.
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
// answers the server's heartbeat, reads JSON or MessagePack frames (with the default
// map envelope or, with `envelope: 'compact'`, the positional one, expanded to the same
// frames), and sends a subscriber token (`?token=`), refreshing it on the open
// connection before it expires.

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

// ---- MessagePack (decoding only: the server's frames) ----

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const MAX_DEPTH = 256;

/**
 * Decodes one MessagePack value (the whole input): maps (to objects; keys as strings),
 * arrays, strings, integers (64-bit ones beyond 2^53 lose precision, as in JSON),
 * float 32/64, booleans, nil (null), bin (Uint8Array) and ext (`{ext: type, data}`).
 * Throws on truncated or trailing bytes and on the unused byte 0xc1.
 * @param {ArrayBuffer|ArrayBufferView} input
 * @returns {any}
 */
export function decodeMsgpack(input) {
  const bytes = input instanceof ArrayBuffer
    ? new Uint8Array(input)
    : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n) => {
    if (pos + n > bytes.length) throw new Error(`msgpack: truncated at byte ${pos} (needs ${n} more)`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2));
  const u32 = () => view.getUint32(need(4));
  const str = (n) => UTF8.decode(bytes.subarray(need(n), pos));
  const bin = (n) => bytes.slice(need(n), pos);
  const arr = (n, depth) => {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = value(depth + 1);
    return out;
  };
  const map = (n, depth) => {
    const out = {};
    for (let i = 0; i < n; i++) {
      const key = String(value(depth + 1));
      const v = value(depth + 1);
      // An own property even for `__proto__`, as JSON.parse does.
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
    }
    return out;
  };
  const ext = (n) => {
    const type = view.getInt8(need(1));
    return { ext: type, data: bin(n) };
  };
  function value(depth) {
    if (depth > MAX_DEPTH) throw new Error(`msgpack: nested deeper than ${MAX_DEPTH}`);
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return arr(b & 0x0f, depth);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(u16());
      case 0xc6: return bin(u32());
      case 0xc7: return ext(u8());
      case 0xc8: return ext(u16());
      case 0xc9: return ext(u32());
      case 0xca: return view.getFloat32(need(4));
      case 0xcb: return view.getFloat64(need(8));
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: return Number(view.getBigUint64(need(8)));
      case 0xd0: return view.getInt8(need(1));
      case 0xd1: return view.getInt16(need(2));
      case 0xd2: return view.getInt32(need(4));
      case 0xd3: return Number(view.getBigInt64(need(8)));
      case 0xd4: return ext(1);
      case 0xd5: return ext(2);
      case 0xd6: return ext(4);
      case 0xd7: return ext(8);
      case 0xd8: return ext(16);
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return arr(u16(), depth);
      case 0xdd: return arr(u32(), depth);
      case 0xde: return map(u16(), depth);
      case 0xdf: return map(u32(), depth);
      default: throw new Error(`msgpack: byte 0x${b.toString(16)} at ${pos - 1} is not a valid type`);
    }
  }
  const out = value(0);
  if (pos !== bytes.length) throw new Error(`msgpack: ${bytes.length - pos} bytes after the value`);
  return out;
}

// ---- the compact envelope ----

/**
 * Expands a compact data frame (docs/PROTOCOL.md, "Compact envelope") into the map
 * frame it stands for: `[0, topic, epoch, seq, ts, state, extras?]` a snapshot,
 * `[1, topic, seq, ts, delta, stale?]` an update, `[2, topic, seq, ts, fields, epoch?]`
 * an event. Updates and events take their epoch from `epochOf(topic)` (the topic's
 * last snapshot, gap or epoch-opening event). `null` for an unknown tag.
 * @param {any[]} a
 * @param {(topic: string) => string|undefined} epochOf
 * @returns {object|null}
 */
export function expandCompact(a, epochOf) {
  switch (a[0]) {
    case 0: {
      const f = { type: 'snapshot', topic: a[1], epoch: a[2], seq: a[3], ts: a[4], state: a[5] };
      const extras = a[6] ?? {};
      if (extras.stale !== undefined) f.stale = extras.stale;
      if (extras.recovered !== undefined) f.recovered = extras.recovered;
      if (extras.stream !== undefined) f.stream = extras.stream;
      return f;
    }
    case 1: {
      const f = { type: 'update', topic: a[1], epoch: epochOf(a[1]), seq: a[2], ts: a[3], delta: a[4] };
      if (a.length > 5) f.stale = a[5];
      return f;
    }
    case 2:
      return { type: 'event', topic: a[1], epoch: a.length > 5 ? a[5] : epochOf(a[1]), seq: a[2], ts: a[3], fields: a[4] };
    default:
      return null;
  }
}

// ---- tokens ----

/**
 * The `exp` claim (seconds since the epoch) of a JWT, read without verifying anything;
 * `null` when the token is not a JWT or has no numeric `exp`.
 * @param {string} token
 * @returns {number|null}
 */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const exp = JSON.parse(atob(b64)).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

/**
 * When to refresh a token expiring at `expSeconds`, seen at `nowMs`: min(30 s, 10% of the
 * remaining lifetime) before it expires (Unix ms).
 * @param {number} expSeconds
 * @param {number} nowMs
 * @returns {number}
 */
export function refreshAt(expSeconds, nowMs) {
  const expMs = expSeconds * 1000;
  return expMs - Math.min(30000, Math.max(0, expMs - nowMs) / 10);
}

// setTimeout's largest delay; a later refresh is re-armed when this one fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A connection that survives reconnects. Create with {@link connect}. */
export class WasmeterClient {
  /**
   * @param {string} url `ws://host:port/ws` (the format is added as `?format=`, the
   *   compact envelope as `&envelope=compact`).
   * @param {import('./wasmeter').ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    const format = options.format ?? 'json';
    if (format !== 'json' && format !== 'msgpack') {
      throw new Error(`wasmeter.js: format '${format}' is not supported (use 'json' or 'msgpack')`);
    }
    const envelope = options.envelope ?? 'map';
    if (envelope !== 'map' && envelope !== 'compact') {
      throw new Error(`wasmeter.js: envelope '${envelope}' is not supported (use 'map' or 'compact')`);
    }
    this.format = format;
    this.envelope = envelope;
    const u = new URL(url, typeof location === 'undefined' ? undefined : location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    u.searchParams.set('format', format);
    if (envelope === 'compact') u.searchParams.set('envelope', 'compact');
    // A token in the URL is taken as `options.token`; each connect sets the current one.
    const urlToken = u.searchParams.get('token');
    u.searchParams.delete('token');
    this.url = u.toString();
    this.baseMs = options.backoffBaseMs ?? 250;
    this.capMs = options.backoffCapMs ?? 10000;
    this.idleMs = options.idleTimeoutMs ?? 45000;
    this.connectMs = options.connectTimeoutMs ?? 10000;
    this.token = options.token ?? urlToken;
    this.getToken = options.getToken ?? null;
    if (this.getToken !== null && typeof this.getToken !== 'function') {
      throw new Error('wasmeter.js: options.getToken must be a function returning a token (or a promise of one)');
    }
    this.WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WS !== 'function') {
      throw new Error("wasmeter.js: no WebSocket here: pass one as options.WebSocket (e.g. from the 'ws' package on Node < 22)");
    }
    /** @type {Map<string, import('./wasmeter').TopicState>} */
    this.topics = new Map();
    /** With the compact envelope: each topic's epoch, which its updates leave out. */
    this.epochs = new Map();
    /** @type {Map<string, import('./wasmeter').SubscribeOptions>} patterns held, in subscription order */
    this.subs = new Map();
    /** Subscribes sent on this connection and not answered yet: id -> {patterns, resume}. */
    this.inflight = new Map();
    this.listeners = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.closed = false;
    this.ws = null;
    this.dialing = 0;
    this.timer = null;
    this.connectTimer = null;
    this.idleTimer = null;
    this.refreshTimer = null;
    this.refreshId = null;
    this.status = { status: 'connecting', attempt: 0, retryAt: null, resumed: null, notRecovered: [], code: null };
    this.pendingResume = null;
    this.everOpen = false;
    this.open();
  }

  /**
   * Listens to an event; returns a function that stops listening.
   * @param {string} name
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
   * @param {import('./wasmeter').SubscribeOptions} [options]
   */
  subscribe(topics, options = {}) {
    const list = Array.isArray(topics) ? topics : [topics];
    for (const t of list) this.subs.set(t, { fields: options.fields, maxRateHz: options.maxRateHz });
    this.sendSubscribe(list, options, null);
  }

  /**
   * Unsubscribes patterns exactly as subscribed, and forgets the topics no pattern covers.
   * @param {string|string[]} topics
   */
  unsubscribe(topics) {
    const list = (Array.isArray(topics) ? topics : [topics]).filter((t) => this.subs.has(t));
    if (list.length === 0) return;
    this.send({ type: 'unsubscribe', id: this.nextId++, topics: list });
    this.forget(list);
  }

  /**
   * The state held for a topic, if any.
   * @param {string} topic
   * @returns {import('./wasmeter').TopicState|undefined}
   */
  get(topic) {
    return this.topics.get(topic);
  }

  /** Closes for good (no reconnect). */
  close() {
    this.closed = true;
    this.stopTimers();
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
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
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /** Drops held patterns and the topics no remaining pattern covers. */
  forget(patterns) {
    for (const t of patterns) this.subs.delete(t);
    for (const topic of [...this.topics.keys()]) {
      if (![...this.subs.keys()].some((p) => matches(p, topic))) this.topics.delete(topic);
    }
    for (const topic of [...this.epochs.keys()]) {
      if (![...this.subs.keys()].some((p) => matches(p, topic))) this.epochs.delete(topic);
    }
  }

  sendSubscribe(list, options, resume) {
    const id = this.nextId++;
    const msg = { type: 'subscribe', id, topics: list };
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
    if (this.send(msg)) this.inflight.set(id, { patterns: list, resume: resume !== null });
  }

  stopTimers() {
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.refreshTimer);
    this.refreshId = null;
  }

  /** Starts a connection: fetches a token first when `getToken` is given. */
  open() {
    this.setStatus({ status: this.attempt === 0 && !this.everOpen ? 'connecting' : 'reconnecting', retryAt: null, code: null });
    const dial = ++this.dialing;
    if (!this.getToken) {
      this.dial(this.token);
      return;
    }
    let fetched;
    try {
      fetched = Promise.resolve(this.getToken());
    } catch (e) {
      fetched = Promise.reject(e);
    }
    if (this.connectMs > 0) {
      // getToken is part of connecting: bounded by the same timeout.
      let timer;
      const bound = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no token within ${this.connectMs} ms`)), this.connectMs);
      });
      fetched = Promise.race([fetched, bound]).finally(() => clearTimeout(timer));
    }
    fetched.then(
      (token) => {
        if (this.closed || dial !== this.dialing) return;
        this.token = token;
        this.dial(token);
      },
      (e) => {
        if (this.closed || dial !== this.dialing) return;
        this.emit('error', { type: 'error', code: 'token_unavailable', message: `getToken failed: ${e?.message ?? e}` });
        this.retry();
      },
    );
  }

  dial(token) {
    const u = new URL(this.url);
    if (token) u.searchParams.set('token', token);
    let ws;
    try {
      ws = new this.WS(u.toString());
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    if (this.format === 'msgpack') ws.binaryType = 'arraybuffer';
    clearTimeout(this.connectTimer);
    if (this.connectMs > 0) {
      // Not open in time (a black-holed address): give up on it and retry.
      this.connectTimer = setTimeout(() => this.lost(ws, null), this.connectMs);
    }
    // Node's `ws` reports the handshake's HTTP status (401: the token was refused);
    // browsers cannot see it.
    if (typeof ws.on === 'function') {
      ws.on('unexpected-response', (req, res) => {
        res.resume?.();
        this.lost(ws, res.statusCode === 401 ? 401 : null);
      });
    }
    ws.onopen = () => {
      // A socket already given up on (timed out, errored) may still open late: ignore it.
      if (this.ws !== ws) return;
      clearTimeout(this.connectTimer);
      this.attempt = 0;
      const resuming = this.everOpen && this.topics.size > 0;
      this.everOpen = true;
      this.inflight.clear();
      this.pendingResume = resuming ? { waiting: 0, notRecovered: [] } : null;
      this.setStatus({ status: 'connected', retryAt: null, resumed: null, notRecovered: [], code: null });
      this.touch();
      this.scheduleRefresh();
      // One subscribe per held pattern, in order: a topic's position goes with the first
      // pattern that covers it (the server delivers it with that subscription's options).
      const resumed = new Set();
      for (const [pattern, options] of this.subs) {
        if (this.pendingResume) this.pendingResume.waiting++;
        this.sendSubscribe([pattern], options, this.pendingResume ? resumed : new Set());
      }
      if (this.pendingResume && this.pendingResume.waiting === 0) this.pendingResume = null;
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.touch();
      let frame;
      try {
        frame = typeof ev.data === 'string' ? JSON.parse(ev.data) : decodeMsgpack(ev.data);
      } catch {
        return;
      }
      if (Array.isArray(frame)) frame = this.expand(frame);
      if (frame && typeof frame === 'object') this.handle(frame);
    };
    ws.onclose = (ev) => this.lost(ws, ev?.code ?? null);
    // Some implementations report a refused connection with `error` alone.
    ws.onerror = () => this.lost(ws, null);
  }

  /**
   * The connection `ws` ended (closed with `code`, failed, or timed out): once per
   * connection, retry with backoff, unless the server said not to (4002: the
   * client sent too many bad messages; 4004 or HTTP 401 without `getToken`: the
   * token expired or was refused, and there is no way to get another).
   */
  lost(ws, code) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.stopTimers();
    this.inflight.clear();
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close();
    } catch {
      // already closing
    }
    if (this.closed) return;
    if (code === 4002) {
      this.stop(code, 'abusive', 'the server closed the connection (4002): too many refused messages; not reconnecting');
      return;
    }
    if ((code === 4004 || code === 401) && !this.getToken) {
      const why = code === 4004 ? 'the token expired (4004)' : 'the token was refused (HTTP 401)';
      this.stop(code, code === 4004 ? 'token_expired' : 'unauthorized', `${why}; not reconnecting without getToken`);
      return;
    }
    this.retry();
  }

  stop(code, name, message) {
    this.closed = true;
    clearTimeout(this.timer);
    this.setStatus({ status: 'closed', retryAt: null, code });
    this.emit('error', { type: 'error', code: name, message });
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

  /** Arms the refresh of the current token (only with `getToken` and a JWT with `exp`). */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.getToken || !this.token) return;
    const exp = tokenExpiry(this.token);
    if (exp === null) return;
    const at = refreshAt(exp, Date.now());
    const delay = Math.max(0, at - Date.now());
    this.refreshTimer = setTimeout(() => {
      if (at > Date.now()) this.scheduleRefresh();
      else this.refresh();
    }, Math.min(delay, MAX_TIMER_MS));
  }

  /** Fetches a new token and sends it on the open connection. */
  async refresh() {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    let token;
    try {
      token = await this.getToken();
    } catch (e) {
      this.emit('error', { type: 'error', code: 'token_unavailable', message: `getToken failed: ${e?.message ?? e}` });
      return;
    }
    if (this.ws !== ws || this.closed) return;
    this.token = token;
    const id = this.nextId++;
    this.refreshId = id;
    this.send({ type: 'refresh', id, token });
  }

  /** A compact data frame as the map frame it stands for; tracks epochs per topic. */
  expand(a) {
    if (this.envelope !== 'compact') return null;
    const f = expandCompact(a, (topic) => this.epochs.get(topic));
    if (f && f.epoch !== undefined) this.epochs.set(f.topic, f.epoch);
    return f;
  }

  handle(f) {
    // Gaps and removals are map frames in both envelopes; they move epochs too.
    if (this.envelope === 'compact' && f.type === 'gap') this.epochs.set(f.topic, f.epoch);
    if (f.type === 'removed') this.epochs.delete(f.topic);
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
      case 'subscribed': {
        const sent = this.inflight.get(f.id);
        this.inflight.delete(f.id);
        if (this.pendingResume) {
          for (const [topic, ok] of Object.entries(f.recovered ?? {})) {
            if (!ok) this.pendingResume.notRecovered.push(topic);
          }
          if (!sent || sent.resume) this.resumeAnswered();
        }
        this.emit('subscribed', f);
        break;
      }
      case 'refreshed':
        if (f.id === this.refreshId) {
          this.refreshId = null;
          this.scheduleRefresh();
        }
        this.emit('refreshed', f);
        break;
      case 'error':
        this.handleError(f);
        break;
    }
    this.emit('frame', f);
  }

  handleError(f) {
    const sent = f.id == null ? undefined : this.inflight.get(f.id);
    if (sent) {
      this.inflight.delete(f.id);
      if (f.code === 'forbidden') {
        // The token does not allow these patterns: drop them, so they are not sent again.
        this.forget(sent.patterns);
        f = { ...f, patterns: sent.patterns };
      }
      if (this.pendingResume && sent.resume) this.resumeAnswered();
    }
    if (f.id != null && f.id === this.refreshId) this.refreshId = null;
    this.emit('error', f);
  }

  /** One resubscription of a reconnect was answered; the last one sets `resumed`. */
  resumeAnswered() {
    if (--this.pendingResume.waiting <= 0) {
      const nr = this.pendingResume.notRecovered;
      this.pendingResume = null;
      this.setStatus({ resumed: nr.length === 0, notRecovered: nr });
    }
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
 * @param {import('./wasmeter').ConnectOptions} [options]
 * @returns {WasmeterClient}
 */
export function connect(url, options) {
  return new WasmeterClient(url, options);
}
