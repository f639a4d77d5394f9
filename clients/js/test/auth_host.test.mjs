// Tokens against a real host with [auth] (the `wasmeter` binary at $WASMETER_BIN):
// a client whose getToken hands out tokens of a few seconds refreshes each one on
// the open connection before it expires, so the connection outlives them all and
// keeps receiving updates; a subscription outside the token's topics is refused
// (`forbidden`) and dropped; a token that expires without getToken ends the
// client with 4004.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '../wasmeter.js';
import { BIN, Host, workdir, eventually } from './host.mjs';

const SECRET = 'a secret for the JS client test, 32+ bytes';
const b64url = (s) => Buffer.from(s).toString('base64url');

/** An HS256 JWT for `topics`, expiring in `secs` seconds. */
function mint(topics, secs, sub = 'js-test') {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + secs, topics }));
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// The host closes a connection at exp + leeway; the client refreshes shortly before exp.
const AUTH = `
[auth]
hmac_secret_file = "secret"
leeway_secs = 2
`;

test('tokens are refreshed on the open connection, refused topics are dropped, an expired token ends the client', { skip: !BIN && 'WASMETER_BIN is not set (tests/clients.rs sets it)' }, async () => {
  const work = workdir(AUTH);
  writeFileSync(join(work.dir, 'secret'), SECRET);
  const host = await Host.start(work.dir);
  const clients = [];
  try {
    host.append('trades.csv', 'BTC,100,1,1700000000000\n');
    let minted = 0;
    const c = connect(`ws://${host.addr}/ws`, {
      WebSocket,
      getToken: async () => { minted++; return mint(['trades/*'], 3); },
    });
    clients.push(c);
    const refreshed = [];
    const errors = [];
    const statuses = [];
    c.on('refreshed', (f) => refreshed.push(f));
    c.on('error', (e) => errors.push(e));
    c.on('status', (s) => statuses.push(s.status));
    c.subscribe('trades/*');
    c.subscribe('system/*');
    await eventually(() => c.get('trades/BTC')?.state.price === 100, 'the snapshot');
    await eventually(() => errors.some((e) => e.code === 'forbidden'), 'the refusal of system/*');
    // Three refreshes: the connection outlived at least two tokens.
    await eventually(() => refreshed.length >= 3, 'three refreshes', 30000);
    host.append('trades.csv', 'BTC,101,1,1700000000001\n');
    await eventually(() => c.get('trades/BTC')?.state.price === 101, 'an update after the refreshes');
    assert.deepEqual(statuses.filter((s) => s === 'reconnecting'), [], `never reconnected: ${statuses}`);
    assert.ok(minted >= 4, `getToken called ${minted} times`);
    assert.ok(!c.subs.has('system/*'), 'the refused pattern is not held');

    // A fixed token that expires: 4004, no reconnect loop.
    const fixed = connect(`ws://${host.addr}/ws`, { WebSocket, token: mint(['trades/*'], 1) });
    clients.push(fixed);
    fixed.subscribe('trades/*');
    await eventually(() => fixed.status.status === 'closed', 'the expiry', 20000);
    assert.equal(fixed.status.code, 4004, JSON.stringify(fixed.status));
  } finally {
    for (const c of clients) c.close();
    await host.stop().catch(() => {});
    work.remove();
  }
});
