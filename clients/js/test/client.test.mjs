// Unit checks of wasmeter.js under node's test runner with a fake WebSocket:
// patterns, backoff bounds, snapshots and merge patches, stale fields, pong,
// reconnect with `since`, `recovered: false`, unsubscribe; a refused connection
// (error alone), a connect timeout, close code 4002, events and gaps, no WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, matches, backoffDelay } from '../wasmeter.js';
import { FakeWS, sockets, until } from './fake.mjs';

globalThis.location = { href: 'http://h:1/' };
const fast = { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0 };

test('patterns and backoff bounds', () => {
  assert.ok(matches('trades/*', 'trades/BTC'));
  assert.ok(!matches('trades/*', 'trades/BTC/1m'));
  assert.ok(matches('trades/**', 'trades/BTC/1m'));
  assert.ok(!matches('trades/**', 'trades'));
  assert.ok(matches('**', 'a'));
  assert.ok(matches('a/b', 'a/b') && !matches('a/b', 'a/c'));
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(i, 250, 10000);
    assert.ok(d >= 0 && d < Math.min(10000, 250 * 2 ** i), `attempt ${i}: ${d}`);
  }
});

test('state, merge patches, stale fields, pong, resume with since, unsubscribe', async () => {
  const c = connect('/ws', fast);
  const events = [];
  c.on('topic', (e) => events.push(e));
  const ws0 = sockets.at(-1);
  assert.equal(ws0.url, 'ws://h:1/ws?format=json');
  c.subscribe(['t/*']);
  ws0.open();
  assert.equal(ws0.sent[0].type, 'subscribe');
  assert.equal(ws0.sent[0].since, undefined);
  ws0.recv({ type: 'subscribed', id: ws0.sent[0].id, topics: ['t/*'] });
  ws0.recv({ type: 'snapshot', topic: 't/a', epoch: 'e1', seq: 5, ts: 1, state: { x: 1, y: 2 } });
  ws0.recv({ type: 'update', topic: 't/a', epoch: 'e1', seq: 7, ts: 2, delta: { x: 3, y: null }, stale: ['z'] });
  ws0.recv({ type: 'ping' });
  assert.equal(ws0.sent.at(-1).type, 'pong');
  const t = c.get('t/a');
  assert.ok(t.seq === 7 && t.state.x === 3 && !('y' in t.state) && t.stale.has('z'), JSON.stringify(t));
  assert.deepEqual([events[1].changed, events[1].removed], [['x'], ['y']]);
  ws0.close();
  await until(() => sockets.at(-1) !== ws0, 'a reconnect');
  const ws1 = sockets.at(-1);
  ws1.open();
  const sub = ws1.sent[0];
  assert.deepEqual(sub.since['t/a'], { epoch: 'e1', seq: 7 });
  ws1.recv({ type: 'subscribed', id: sub.id, topics: ['t/*'], recovered: { 't/a': false } });
  assert.equal(c.status.resumed, false);
  assert.deepEqual(c.status.notRecovered, ['t/a']);
  ws1.recv({ type: 'snapshot', topic: 't/a', epoch: 'e2', seq: 1, ts: 3, state: { x: 9 }, recovered: false });
  assert.equal(events.at(-1).recovered, false);
  assert.equal(c.get('t/a').epoch, 'e2');
  c.subscribe('m/*', { fields: ['vwap'], maxRateHz: 2 });
  const { topics, fields, max_rate_hz } = ws1.sent.at(-1);
  assert.deepEqual({ topics, fields, max_rate_hz }, { topics: ['m/*'], fields: ['vwap'], max_rate_hz: 2 });
  c.unsubscribe(['t/*', 'm/*']);
  assert.equal(c.topics.size, 0);
  assert.equal(ws1.sent.at(-1).type, 'unsubscribe');
  assert.deepEqual(ws1.sent.at(-1).topics, ['t/*', 'm/*']);
  c.close();
  assert.equal(c.status.status, 'closed');
});

test('a subscribe of the user during a resume does not end it early', async () => {
  const c = connect('/ws', fast);
  c.subscribe(['a/*', 'b/*']);
  const ws0 = sockets.at(-1);
  ws0.open();
  ws0.recv({ type: 'snapshot', topic: 'a/x', epoch: 'e', seq: 1, ts: 1, state: { v: 1 } });
  ws0.close();
  await until(() => sockets.at(-1) !== ws0, 'a reconnect');
  const ws1 = sockets.at(-1);
  ws1.open();
  c.subscribe('c/*');
  const [a, b, own] = ws1.sent;
  ws1.recv({ type: 'subscribed', id: own.id, topics: ['c/*'] });
  ws1.recv({ type: 'subscribed', id: a.id, topics: ['a/*'], recovered: { 'a/x': true } });
  assert.equal(c.status.resumed, null, 'not yet: b/* is unanswered');
  ws1.recv({ type: 'subscribed', id: b.id, topics: ['b/*'] });
  assert.equal(c.status.resumed, true);
  c.close();
});

test('a refused connection that reports only `error` is retried', async () => {
  const c = connect('/ws', fast);
  const first = sockets.at(-1);
  first.onerror();
  await until(() => sockets.at(-1) !== first, 'a retry after an error alone');
  c.close();
});

test('a connection that never opens is given up after connectTimeoutMs; a late open is ignored', async () => {
  const c = connect('/ws', { ...fast, connectTimeoutMs: 10 });
  const first = sockets.at(-1);
  await until(() => sockets.at(-1) !== first, 'a retry after the connect timeout');
  first.open();
  assert.notEqual(c.status.status, 'connected', JSON.stringify(c.status));
  c.close();
});

test('4002 (abusive) is not reconnected: the client says why and stops', () => {
  const c = connect('/ws', { ...fast, connectTimeoutMs: 0 });
  const errors = [];
  c.on('error', (x) => errors.push(x));
  const ws = sockets.at(-1);
  ws.open();
  ws.closeWith(4002);
  assert.equal(c.status.status, 'closed');
  assert.equal(c.status.code, 4002);
  assert.equal(c.status.retryAt, null);
  assert.equal(errors[0]?.code, 'abusive');
});

test('events of a stream topic and gaps', () => {
  const c = connect('/ws', fast);
  const seen = [];
  c.on('event', (x) => seen.push(x.seq));
  c.on('gap', (x) => seen.push(`gap ${x.missed}`));
  c.subscribe('tape/*');
  const ws = sockets.at(-1);
  ws.open();
  ws.recv({ type: 'event', topic: 'tape/a', epoch: 'e', seq: 1, ts: 1, fields: { p: 1 } });
  ws.recv({ type: 'gap', topic: 'tape/a', epoch: 'e', after: 1, next: 5, missed: 3 });
  assert.equal(c.get('tape/a').seq, 4, 'resumes from the event before the next one held');
  ws.recv({ type: 'event', topic: 'tape/a', epoch: 'e', seq: 5, ts: 2, fields: { p: 2 } });
  assert.deepEqual(seen, [1, 'gap 3', 5]);
  assert.equal(c.get('tape/a').state.p, 2);
  c.close();
});

test('no WebSocket at all: a clear error, not a silent loop', () => {
  assert.throws(() => connect('/ws', { WebSocket: null }), /no WebSocket here/);
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    assert.throws(() => connect('/ws'), /no WebSocket here/);
  } finally {
    globalThis.WebSocket = saved;
  }
  assert.throws(() => connect('/ws', { WebSocket: FakeWS, format: 'xml' }), /format 'xml' is not supported/);
});
