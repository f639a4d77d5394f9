// The client against a real host (the `wasmeter` binary at $WASMETER_BIN): four
// clients, JSON and MessagePack each with the map and the compact envelope, hold the same state as
// GET /api/topics/{topic} after appends; the host is stopped (SIGTERM) and restarted
// on the same port and data dir, and both clients reconnect, resume every topic
// (`recovered: true`, status `resumed: true`) and again hold the REST state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect } from '../wasmeter.js';
import { BIN, Host, workdir, eventually } from './host.mjs';

const TOPICS = ['trades/BTC', 'trades/ETH'];

/** Does every client hold exactly what REST says for every topic? */
async function sameAsRest(host, clients) {
  for (const topic of TOPICS) {
    const { status, body } = await host.topic(topic);
    if (status !== 200) return false;
    for (const c of clients) {
      const held = c.get(topic);
      if (!held || held.epoch !== body.epoch || held.seq !== body.seq) return false;
      assert.deepEqual(held.state, body.state, `${c.format} ${c.envelope} state of ${topic}`);
    }
  }
  return true;
}

test('JSON and MessagePack clients hold the REST state, and resume across a host restart', { skip: !BIN && 'WASMETER_BIN is not set (tests/clients.rs sets it)' }, async () => {
  const work = workdir();
  let host = await Host.start(work.dir);
  const addr = host.addr;
  const clients = [];
  try {
    host.append('trades.csv', 'BTC,100,1,1700000000000\nETH,3000,2,1700000000001\n');
    await eventually(async () => (await host.topic('trades/ETH')).status === 200, 'the first topics');
    const options = { WebSocket, backoffBaseMs: 50, backoffCapMs: 300 };
    for (const [format, envelope] of [['json', 'map'], ['msgpack', 'map'], ['json', 'compact'], ['msgpack', 'compact']]) {
      const c = connect(`ws://${addr}/ws`, { ...options, format, envelope });
      c.subscribe('trades/*');
      clients.push(c);
    }
    const recovered = new Map(clients.map((c) => [c, []]));
    for (const c of clients) c.on('subscribed', (f) => recovered.get(c).push(f.recovered));
    await eventually(() => sameAsRest(host, clients), 'the snapshots');
    host.append('trades.csv', 'BTC,101,3,1700000000002\nBTC,102.5,1,1700000000003\nETH,2999.25,4,1700000000004\n');
    await eventually(async () => (await host.topic('trades/BTC')).body.state?.count === 3, 'the appends in REST');
    await eventually(() => sameAsRest(host, clients), 'the deltas');
    // The compact clients got compact frames (their epochs come from expanding them).
    for (const c of clients) assert.equal(c.epochs.size > 0, c.envelope === 'compact', `${c.format} ${c.envelope}`);
    const before = new Map(clients.map((c) => [c, c.get('trades/BTC').seq]));

    await host.stop();
    await eventually(() => clients.every((c) => c.status.status === 'reconnecting'), 'the clients to notice');
    host = await Host.start(work.dir, addr);
    host.append('trades.csv', 'BTC,103,2,1700000000005\nETH,3001,1,1700000000006\n');
    await eventually(async () => (await host.topic('trades/BTC')).body.state?.count === 4, 'the new appends in REST');
    await eventually(() => clients.every((c) => c.status.status === 'connected' && c.status.resumed !== null), 'the resume');
    for (const c of clients) {
      assert.equal(c.status.resumed, true, `${c.format} ${c.envelope}: ${JSON.stringify(c.status)}`);
      assert.deepEqual(recovered.get(c).at(-1), { 'trades/BTC': true, 'trades/ETH': true }, `${c.format} ${c.envelope}`);
    }
    await eventually(() => sameAsRest(host, clients), 'the state after the restart');
    for (const c of clients) assert.ok(c.get('trades/BTC').seq > before.get(c), 'the seqs went on');
  } finally {
    for (const c of clients) c.close();
    await host.stop().catch(() => {});
    work.remove();
  }
});
