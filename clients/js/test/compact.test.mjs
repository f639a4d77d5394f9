// The compact envelope with a fake WebSocket: `envelope: 'compact'` asks for it in the
// URL; positional frames (JSON and MessagePack) become the same snapshots, updates and
// events as map frames, with each update's epoch taken from its topic's snapshot (an
// epoch-opening event or a gap for a stream topic); resume sends that epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { connect, expandCompact } from '../wasmeter.js';
import { FakeWS, sockets, until } from './fake.mjs';

globalThis.location = { href: 'http://h:1/' };
const fast = { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0 };

test('expands each compact frame into its map frame', () => {
  const epochOf = (t) => ({ 't/a': 'e1' })[t];
  assert.deepEqual(expandCompact([0, 't/a', 'e1', 5, 10, { x: 1 }], epochOf),
    { type: 'snapshot', topic: 't/a', epoch: 'e1', seq: 5, ts: 10, state: { x: 1 } });
  assert.deepEqual(expandCompact([0, 's', 'e9', 5, 10, { x: 1 }, { stale: ['x'], recovered: false, stream: true }], epochOf),
    { type: 'snapshot', topic: 's', epoch: 'e9', seq: 5, ts: 10, state: { x: 1 }, stale: ['x'], recovered: false, stream: true });
  assert.deepEqual(expandCompact([1, 't/a', 6, 11, { x: null }], epochOf),
    { type: 'update', topic: 't/a', epoch: 'e1', seq: 6, ts: 11, delta: { x: null } });
  assert.deepEqual(expandCompact([1, 't/a', 7, 12, {}, ['x']], epochOf).stale, ['x']);
  assert.deepEqual(expandCompact([2, 't/a', 8, 13, { p: 1 }], epochOf),
    { type: 'event', topic: 't/a', epoch: 'e1', seq: 8, ts: 13, fields: { p: 1 } });
  assert.equal(expandCompact([2, 'n', 1, 13, { p: 1 }, 'e7'], epochOf).epoch, 'e7');
  assert.equal(expandCompact([9, 't/a'], epochOf), null);
});

test('a compact client holds the same state and resumes with the epoch it tracked', async () => {
  const c = connect('/ws', { ...fast, envelope: 'compact' });
  const kinds = [];
  c.on('topic', (e) => kinds.push([e.kind, e.state.epoch, e.state.seq]));
  const events = [];
  c.on('event', (e) => events.push(e));
  const ws0 = sockets.at(-1);
  assert.equal(ws0.url, 'ws://h:1/ws?format=json&envelope=compact');
  c.subscribe(['t/*', 'tape/**']);
  ws0.open();
  ws0.recv({ type: 'subscribed', id: ws0.sent[0].id, topics: ['t/*', 'tape/**'] });
  ws0.recv([0, 't/a', 'e1', 5, 1, { x: 1, y: 2 }]);
  ws0.recv([1, 't/a', 6, 2, { x: 3, y: null }, ['z']]);
  ws0.recvBinary(encode([1, 't/a', 7, 3, { w: true }]));
  const t = c.get('t/a');
  assert.deepEqual([t.epoch, t.seq, t.ts, t.state, [...t.stale]], ['e1', 7, 3, { x: 3, w: true }, ['z']]);
  assert.deepEqual(kinds, [['snapshot', 'e1', 5], ['update', 'e1', 6], ['update', 'e1', 7]]);

  // A stream created after subscribing: its first event names the epoch.
  ws0.recv([2, 'tape/n', 1, 4, { p: 1 }, 'k1']);
  ws0.recv([2, 'tape/n', 2, 5, { p: 2 }]);
  // A stream whose first events were no longer held: the gap names the epoch.
  ws0.recv({ type: 'gap', topic: 'tape/g', epoch: 'k2', after: 0, next: 40, missed: 39 });
  ws0.recv([2, 'tape/g', 40, 6, { p: 3 }]);
  assert.deepEqual(events.map((e) => [e.topic, e.epoch, e.seq]), [['tape/n', 'k1', 1], ['tape/n', 'k1', 2], ['tape/g', 'k2', 40]]);

  ws0.close();
  await until(() => sockets.at(-1) !== ws0, 'a reconnect');
  const ws1 = sockets.at(-1);
  assert.equal(ws1.url, 'ws://h:1/ws?format=json&envelope=compact');
  ws1.open();
  // One subscribe per held pattern.
  assert.deepEqual([ws1.sent[0].since, ws1.sent[1].since], [
    { 't/a': { epoch: 'e1', seq: 7 } },
    { 'tape/n': { epoch: 'k1', seq: 2 }, 'tape/g': { epoch: 'k2', seq: 40 } },
  ]);
  ws1.recv({ type: 'subscribed', id: ws1.sent[0].id, topics: ['t/*'], recovered: { 't/a': true } });
  ws1.recv([1, 't/a', 8, 9, { x: 4 }]);
  assert.deepEqual([c.get('t/a').epoch, c.get('t/a').seq, c.get('t/a').state.x], ['e1', 8, 4]);

  // A removed topic forgets its epoch; the next lifetime starts with a snapshot.
  ws1.recv({ type: 'removed', topic: 't/a', epoch: 'e1' });
  ws1.recv([0, 't/a', 'e2', 1, 10, { x: 0 }]);
  ws1.recv([1, 't/a', 2, 11, { x: 5 }]);
  assert.deepEqual([c.get('t/a').epoch, c.get('t/a').seq, c.get('t/a').state], ['e2', 2, { x: 5 }]);
  c.close();
});

test('the default client ignores arrays and refuses an unknown envelope', () => {
  const c = connect('/ws', fast);
  const ws = sockets.at(-1);
  assert.equal(ws.url, 'ws://h:1/ws?format=json');
  ws.open();
  ws.recv([0, 't/a', 'e1', 5, 1, { x: 1 }]);
  assert.equal(c.get('t/a'), undefined);
  c.close();
  assert.throws(() => connect('/ws', { ...fast, envelope: 'tiny' }), /envelope 'tiny' is not supported/);
});
