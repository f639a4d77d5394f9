// The built-in MessagePack decoder: every type the server writes (rmp_serde's named
// maps), checked against a reference encoder and against hand-written bytes; and the
// client reading binary frames on a `format: 'msgpack'` connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { connect, decodeMsgpack } from '../wasmeter.js';
import { FakeWS, sockets } from './fake.mjs';

const bytes = (...b) => new Uint8Array(b);

test('round trips what a reference encoder writes', () => {
  const values = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER,
    0.5, -1.25, 1e300, Math.PI, true, false, null, '', 'a', 'é€😀', 'x'.repeat(31), 'x'.repeat(32),
    'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70000),
    [], [1, [2, [3]]], new Array(15).fill(1), new Array(16).fill(2), new Array(70000).fill(0),
    {}, { type: 'snapshot', topic: 'trades/BTC', epoch: 'k3-7', seq: 42, ts: 1700000000000, state: { price: 64000.5, side: 'buy', ok: true, gone: null } },
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
    Object.fromEntries(Array.from({ length: 70000 }, (_, i) => [`k${i}`, i])),
  ];
  for (const v of values) {
    assert.deepEqual(decodeMsgpack(encode(v)), v, `value ${JSON.stringify(v)?.slice(0, 60)}`);
  }
  const bin = new Uint8Array([1, 2, 3, 255]);
  assert.deepEqual(decodeMsgpack(encode(bin)), bin);
  assert.deepEqual(decodeMsgpack(encode(new Uint8Array(300))), new Uint8Array(300));
});

test('hand-written bytes: float32, uint64/int64, bin, ext, non-string keys, __proto__', () => {
  assert.equal(decodeMsgpack(bytes(0xca, 0x3f, 0xc0, 0x00, 0x00)), 1.5);
  assert.equal(decodeMsgpack(bytes(0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18)), Math.PI);
  assert.equal(decodeMsgpack(bytes(0xcf, 0, 0, 0, 1, 0, 0, 0, 7)), 2 ** 32 + 7);
  assert.equal(decodeMsgpack(bytes(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe)), -2);
  assert.equal(decodeMsgpack(bytes(0xd0, 0x80)), -128);
  assert.deepEqual(decodeMsgpack(bytes(0xc4, 2, 9, 8)), bytes(9, 8));
  assert.deepEqual(decodeMsgpack(bytes(0xd4, 0x05, 0x2a)), { ext: 5, data: bytes(0x2a) });
  assert.deepEqual(decodeMsgpack(bytes(0x81, 0x07, 0xa1, 0x78)), { 7: 'x' });
  const proto = decodeMsgpack(bytes(0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x70, 0x01));
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, 'the prototype is not replaced');
  assert.deepEqual(Object.keys(proto), ['__proto__']);
  // A Node Buffer (a view into a larger pool) decodes from its own bytes only.
  const pooled = Buffer.from(encode({ a: 1 }));
  assert.deepEqual(decodeMsgpack(pooled), { a: 1 });
  const view = encode({ a: [1, 2] });
  const own = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  assert.deepEqual(decodeMsgpack(own), { a: [1, 2] }, 'an ArrayBuffer of its own');
});

test('bad input is refused with the reason', () => {
  assert.throws(() => decodeMsgpack(bytes(0xcd, 0x01)), /truncated at byte 1/);
  assert.throws(() => decodeMsgpack(bytes(0xa3, 0x61)), /truncated/);
  assert.throws(() => decodeMsgpack(bytes(0x01, 0x02)), /1 bytes after the value/);
  assert.throws(() => decodeMsgpack(bytes(0xc1)), /0xc1 at 0 is not a valid type/);
  assert.throws(() => decodeMsgpack(bytes(0xa2, 0xff, 0xfe)), /not valid|encoded data/i);
  assert.throws(() => decodeMsgpack(new Uint8Array(300).fill(0x91)), /nested deeper than 256/);
});

test('a msgpack connection asks for it and applies binary frames', () => {
  const c = connect('ws://h:1/ws', { format: 'msgpack', WebSocket: FakeWS, idleTimeoutMs: 0 });
  const ws = sockets.at(-1);
  assert.equal(ws.url, 'ws://h:1/ws?format=msgpack');
  assert.equal(ws.binaryType, 'arraybuffer');
  c.subscribe('t/*');
  ws.open();
  assert.equal(ws.sent[0].type, 'subscribe', 'client messages stay JSON');
  const snap = encode({ type: 'snapshot', topic: 't/a', epoch: 'e', seq: 3, ts: 10, state: { x: 1.5, s: 'a' } });
  ws.recvBinary(snap.buffer.slice(snap.byteOffset, snap.byteOffset + snap.byteLength));
  ws.recvBinary(encode({ type: 'update', topic: 't/a', epoch: 'e', seq: 4, ts: 11, delta: { x: 2, s: null }, stale: ['y'] }));
  ws.recvBinary(encode({ type: 'ping' }));
  ws.recvBinary(bytes(0xc1));
  const t = c.get('t/a');
  assert.deepEqual([t.seq, t.state, [...t.stale]], [4, { x: 2 }, ['y']]);
  assert.equal(ws.sent.at(-1).type, 'pong');
  c.close();
});
