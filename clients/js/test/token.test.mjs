// Subscriber tokens with a fake WebSocket: `?token=` on every connect, getToken before
// every connect and before expiry (a `refresh` on the open connection), 4004 and
// HTTP 401 with and without getToken, a refused refresh, and `forbidden` subscribes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { connect, tokenExpiry, refreshAt } from '../wasmeter.js';
import { FakeWS, sockets, until, jwt } from './fake.mjs';

const fast = { WebSocket: FakeWS, backoffBaseMs: 1, backoffCapMs: 2, idleTimeoutMs: 0, connectTimeoutMs: 0 };
const tokenOf = (ws) => new URL(ws.url).searchParams.get('token');

test('a JWT payload is read without verification; refresh time is min(30 s, 10%) before exp', () => {
  assert.equal(tokenExpiry(jwt({ sub: 'a', exp: 1700000000 })), 1700000000);
  assert.equal(tokenExpiry(jwt({ sub: 'a' })), null);
  assert.equal(tokenExpiry('not a jwt'), null);
  assert.equal(tokenExpiry('a.!!!.c'), null);
  // One hour left: 30 s before. Ten seconds left: one second before.
  assert.equal(refreshAt(3600, 0), 3600000 - 30000);
  assert.equal(refreshAt(10, 0), 9000);
  assert.equal(refreshAt(10, 20000), 10000, 'already expired: now');
});

test('a static token goes on the URL, also one given in the URL', () => {
  const a = connect('ws://h:1/ws', { ...fast, token: 'abc' });
  assert.equal(tokenOf(sockets.at(-1)), 'abc');
  assert.equal(new URL(sockets.at(-1).url).searchParams.get('format'), 'json');
  a.close();
  const b = connect('ws://h:1/ws?token=xyz', fast);
  assert.equal(tokenOf(sockets.at(-1)), 'xyz');
  assert.ok(!b.url.includes('xyz'), 'the URL kept is without the token');
  b.close();
});

test('getToken is called before every connect', async () => {
  let n = 0;
  const before = sockets.length;
  const c = connect('ws://h:1/ws', { ...fast, getToken: async () => `t${++n}` });
  await until(() => sockets.length > before, 'the first connect');
  const first = sockets.at(-1);
  first.open();
  first.closeWith(1001);
  await until(() => sockets.at(-1) !== first, 'a reconnect');
  assert.equal(tokenOf(sockets.at(-1)), 't2');
  c.close();
});

test('a failing getToken is reported and retried', async () => {
  let n = 0;
  const errors = [];
  const c = connect('ws://h:1/ws', {
    ...fast,
    getToken: async () => {
      if (++n === 1) throw new Error('issuer down');
      return 'ok';
    },
  });
  c.on('error', (e) => errors.push(e));
  const before = sockets.length;
  await until(() => sockets.length > before, 'a connect after the retry');
  assert.equal(errors[0].code, 'token_unavailable');
  assert.match(errors[0].message, /issuer down/);
  assert.equal(tokenOf(sockets.at(-1)), 'ok');
  c.close();
});

/** Lets promise callbacks run (setImmediate is not mocked). */
const settle = () => new Promise((r) => setImmediate(r));
const NOW = 1_700_000_000_000;

test('a getToken that never answers is given up after connectTimeoutMs and called again', async () => {
  let calls = 0;
  const c = connect('ws://h:1/ws', { ...fast, connectTimeoutMs: 10, getToken: () => { calls++; return new Promise(() => {}); } });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await until(() => calls >= 2, 'a second getToken');
  assert.equal(errors[0].code, 'token_unavailable');
  assert.match(errors[0].message, /no token within 10 ms/);
  c.close();
});

test('the token is refreshed on the open connection min(30 s, 10%) before it expires', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: NOW });
  const exp = NOW / 1000 + 3600;
  const tokens = [jwt({ exp }), jwt({ exp: exp + 3600 }), jwt({ exp: exp + 7200 })];
  let calls = 0;
  const before = sockets.length;
  const c = connect('ws://h:1/ws', { ...fast, getToken: async () => tokens[calls++] });
  const refreshed = [];
  c.on('refreshed', (f) => refreshed.push(f));
  await settle();
  assert.equal(sockets.length, before + 1);
  const ws = sockets.at(-1);
  assert.equal(tokenOf(ws), tokens[0]);
  ws.open();
  const refreshes = () => ws.sent.filter((m) => m.type === 'refresh');
  t.mock.timers.tick(3600_000 - 30_000 - 1);
  await settle();
  assert.equal(refreshes().length, 0, 'not before 30 s ahead of exp');
  t.mock.timers.tick(1);
  await settle();
  assert.equal(refreshes().length, 1, 'at 30 s ahead of exp');
  const msg = refreshes()[0];
  assert.equal(msg.token, tokens[1]);
  assert.equal(typeof msg.id, 'number');
  assert.equal(sockets.at(-1), ws, 'on the same connection');
  ws.recv({ type: 'refreshed', id: msg.id, expires_at: (exp + 3600) * 1000 });
  assert.equal(refreshed.length, 1);
  // The next one is scheduled from the new token's exp.
  t.mock.timers.tick(3600_000 - 1);
  await settle();
  assert.equal(refreshes().length, 1);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(refreshes().length, 2);
  assert.equal(refreshes()[1].token, tokens[2]);
  c.close();
});

test('a short-lived token is refreshed 10% of its lifetime ahead', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: NOW });
  const exp = NOW / 1000 + 100;
  const c = connect('ws://h:1/ws', { ...fast, getToken: async () => jwt({ exp }) });
  await settle();
  const ws = sockets.at(-1);
  ws.open();
  t.mock.timers.tick(90_000 - 1);
  await settle();
  assert.ok(!ws.sent.some((m) => m.type === 'refresh'));
  t.mock.timers.tick(1);
  await settle();
  assert.ok(ws.sent.some((m) => m.type === 'refresh'));
  c.close();
});

test('a refused refresh is an error; the client waits for the server to close', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: NOW });
  const exp = NOW / 1000 + 100;
  const c = connect('ws://h:1/ws', { ...fast, getToken: async () => jwt({ exp }) });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await settle();
  const ws = sockets.at(-1);
  ws.open();
  t.mock.timers.tick(90_000);
  await settle();
  const { id } = ws.sent.find((m) => m.type === 'refresh');
  ws.recv({ type: 'error', id, code: 'unauthorized', message: 'token signature invalid' });
  assert.equal(errors.at(-1).code, 'unauthorized');
  assert.equal(c.status.status, 'connected');
  assert.equal(sockets.at(-1), ws);
  c.close();
});

test('4004 without getToken: closed, told why, no reconnect', () => {
  const c = connect('ws://h:1/ws', { ...fast, token: jwt({ exp: 1 }) });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const ws = sockets.at(-1);
  ws.open();
  ws.closeWith(4004);
  assert.deepEqual([c.status.status, c.status.code, c.status.retryAt], ['closed', 4004, null]);
  assert.equal(errors[0].code, 'token_expired');
  assert.match(errors[0].message, /expired/);
});

test('4004 with getToken: a new token, then a reconnect', async () => {
  let n = 0;
  const before = sockets.length;
  const c = connect('ws://h:1/ws', { ...fast, getToken: () => `t${++n}` });
  await until(() => sockets.length > before, 'the connect');
  const ws = sockets.at(-1);
  ws.open();
  ws.closeWith(4004);
  await until(() => sockets.at(-1) !== ws, 'a reconnect');
  assert.equal(tokenOf(sockets.at(-1)), 't2');
  c.close();
});

/** A fake like `ws`: an EventEmitter that can answer the handshake with an HTTP status. */
class NodeLikeWS extends FakeWS {
  constructor(url) {
    super(url);
    this.emitter = new EventEmitter();
  }
  on(name, fn) { this.emitter.on(name, fn); return this; }
  reject(status) {
    const res = new EventEmitter();
    res.statusCode = status;
    res.resume = () => {};
    this.emitter.emit('unexpected-response', {}, res);
  }
}

test('HTTP 401 on the handshake (Node): closed with 401 without getToken', () => {
  const c = connect('ws://h:1/ws', { ...fast, WebSocket: NodeLikeWS, token: 'bad' });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  sockets.at(-1).reject(401);
  assert.deepEqual([c.status.status, c.status.code], ['closed', 401]);
  assert.equal(errors[0].code, 'unauthorized');
});

test('HTTP 401 on the handshake (Node): reconnect with a new token with getToken; 503 retried', async () => {
  let n = 0;
  const before = sockets.length;
  const c = connect('ws://h:1/ws', { ...fast, WebSocket: NodeLikeWS, getToken: () => `t${++n}` });
  await until(() => sockets.length > before, 'the connect');
  const first = sockets.at(-1);
  first.reject(401);
  await until(() => sockets.at(-1) !== first, 'a reconnect');
  assert.equal(tokenOf(sockets.at(-1)), 't2');
  const second = sockets.at(-1);
  second.reject(503);
  await until(() => sockets.at(-1) !== second, 'a retry after 503');
  c.close();
});

test('a forbidden subscribe is an error naming the patterns, and is not sent again', async () => {
  const c = connect('ws://h:1/ws', { ...fast, token: 't' });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const ws = sockets.at(-1);
  ws.open();
  c.subscribe(['ok/*']);
  c.subscribe(['secret/*', 'other/x']);
  const [ok, refused] = ws.sent;
  ws.recv({ type: 'subscribed', id: ok.id, topics: ['ok/*'] });
  ws.recv({ type: 'error', id: refused.id, code: 'forbidden', message: 'subscribe.topics[0]: `secret/*` is outside the token' });
  assert.equal(errors[0].code, 'forbidden');
  assert.deepEqual(errors[0].patterns, ['secret/*', 'other/x']);
  ws.closeWith(1001);
  await until(() => sockets.at(-1) !== ws, 'a reconnect');
  const again = sockets.at(-1);
  again.open();
  assert.deepEqual(again.sent.map((m) => m.topics), [['ok/*']]);
  c.close();
});
