// Unit checks of the browser client (host/cli/web/wasmeter.js) under node with a fake
// WebSocket: patterns, backoff bounds, snapshots and merge patches, stale fields, pong,
// reconnect with `since`, `recovered: false`, unsubscribe; a refused connection (error
// alone), a connect timeout, close code 4002, events and gaps, no WebSocket at all.
// Run by tests/browser.rs.
import { connect, matches, backoffDelay } from '../../host/cli/web/wasmeter.js';
const assert = (c, m) => { if (!c) { console.error('FAIL', m); process.exit(1); } };
assert(matches('trades/*', 'trades/BTC'), 1);
assert(!matches('trades/*', 'trades/BTC/1m'), 2);
assert(matches('trades/**', 'trades/BTC/1m'), 3);
assert(!matches('trades/**', 'trades'), 4);
assert(matches('**', 'a'), 5);
assert(matches('a/b', 'a/b') && !matches('a/b', 'a/c'), 6);
for (let i = 0; i < 100; i++) { const d = backoffDelay(i, 250, 10000); assert(d >= 0 && d < 10000, 7); }
const sockets = [];
class FakeWS { constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); } close() { this.readyState = 3; this.onclose?.(); }
  open() { this.readyState = 1; this.onopen(); } recv(m) { this.onmessage({ data: JSON.stringify(m) }); } }
globalThis.location = { href: 'http://h:1/' };
const c = connect('/ws', { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0 });
const statuses = []; c.on('status', (s) => statuses.push(s.status + ':' + s.resumed));
const events = []; c.on('topic', (e) => events.push(e));
assert(sockets[0].url === 'ws://h:1/ws?format=json', sockets[0].url);
c.subscribe(['t/*']);
sockets[0].open();
assert(sockets[0].sent[0].type === 'subscribe' && !sockets[0].sent[0].since, 'sub');
sockets[0].recv({ type: 'subscribed', id: 1, topics: ['t/*'] });
sockets[0].recv({ type: 'snapshot', topic: 't/a', epoch: 'e1', seq: 5, ts: 1, state: { x: 1, y: 2 } });
sockets[0].recv({ type: 'update', topic: 't/a', epoch: 'e1', seq: 7, ts: 2, delta: { x: 3, y: null }, stale: ['z'] });
sockets[0].recv({ type: 'ping' });
assert(sockets[0].sent.at(-1).type === 'pong', 'pong');
const t = c.get('t/a');
assert(t.seq === 7 && t.state.x === 3 && !('y' in t.state) && t.stale.has('z'), JSON.stringify(t));
assert(events[1].changed.join() === 'x' && events[1].removed.join() === 'y', 'events');
sockets[0].close();
await new Promise((r) => setTimeout(r, 20));
assert(sockets.length === 2, 'reconnected');
sockets[1].open();
const sub = sockets[1].sent[0];
assert(sub.since['t/a'].epoch === 'e1' && sub.since['t/a'].seq === 7, JSON.stringify(sub));
sockets[1].recv({ type: 'subscribed', id: 2, topics: ['t/*'], recovered: { 't/a': false } });
assert(c.status.resumed === false && c.status.notRecovered[0] === 't/a', JSON.stringify(c.status));
sockets[1].recv({ type: 'snapshot', topic: 't/a', epoch: 'e2', seq: 1, ts: 3, state: { x: 9 }, recovered: false });
assert(events.at(-1).recovered === false && c.get('t/a').epoch === 'e2', 'snap');
c.unsubscribe('t/*');
assert(c.topics.size === 0 && sockets[1].sent.at(-1).type === 'unsubscribe', 'unsub');
c.close();

// A refused connection that reports only `error` (no `close`) is retried.
const before = sockets.length;
const d = connect('/ws', { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0 });
sockets.at(-1).onerror();
await new Promise((r) => setTimeout(r, 20));
assert(sockets.length === before + 2, `retried after an error alone: ${sockets.length - before}`);
// A connection that never opens is given up after connectTimeoutMs and retried.
d.close();
const e = connect('/ws', { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0, connectTimeoutMs: 10 });
const n = sockets.length;
await new Promise((r) => setTimeout(r, 40));
assert(sockets.length > n, 'retried after the connect timeout');
// A socket given up on that opens late does not take over the connection.
const stale = sockets[n];
stale.open();
assert(e.status.status !== 'connected', `a timed-out socket opened late: ${JSON.stringify(e.status)}`);
e.close();
// 4002 (abusive) is not reconnected: the client says why and stops.
const g = connect('/ws', { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0, connectTimeoutMs: 0 });
const errors = []; g.on('error', (x) => errors.push(x));
sockets.at(-1).open();
sockets.at(-1).onclose({ code: 4002 });
const m = sockets.length;
await new Promise((r) => setTimeout(r, 20));
assert(sockets.length === m && g.status.status === 'closed' && g.status.code === 4002, JSON.stringify(g.status));
assert(errors[0]?.code === 'abusive', JSON.stringify(errors));
// Events of a stream topic and gaps.
const f = connect('/ws', { WebSocket: FakeWS, idleTimeoutMs: 0 });
const seen = []; f.on('event', (x) => seen.push(x.seq)); f.on('gap', (x) => seen.push(`gap ${x.missed}`));
f.subscribe('tape/*');
sockets.at(-1).open();
sockets.at(-1).recv({ type: 'event', topic: 'tape/a', epoch: 'e', seq: 1, ts: 1, fields: { p: 1 } });
sockets.at(-1).recv({ type: 'gap', topic: 'tape/a', epoch: 'e', after: 1, next: 5, missed: 3 });
sockets.at(-1).recv({ type: 'event', topic: 'tape/a', epoch: 'e', seq: 5, ts: 2, fields: { p: 2 } });
assert(seen.join() === '1,gap 3,5' && f.get('tape/a').state.p === 2, JSON.stringify(seen));
f.close();
// No WebSocket at all (Node < 22 without one passed in): a clear error, not a silent loop.
let thrown = '';
try { connect('/ws', { WebSocket: null }); } catch (x) { thrown = String(x); }
const saved = globalThis.WebSocket; globalThis.WebSocket = undefined;
try { connect('/ws'); } catch (x) { thrown = String(x); }
globalThis.WebSocket = saved;
assert(thrown.includes('no WebSocket here'), thrown);
console.log('client ok', statuses.join(' '));
