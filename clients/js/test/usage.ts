// A typed use of the whole public API, checked by `tsc --noEmit` (test/types.test.mjs):
// if wasmeter.d.ts and the client drift apart in a way users see, this stops compiling.
import WebSocket from 'ws';
import {
  connect,
  matches,
  backoffDelay,
  decodeMsgpack,
  tokenExpiry,
  refreshAt,
  WasmeterClient,
  type ConnectOptions,
  type TopicState,
  type Status,
  type TopicEvent,
  type StreamEvent,
  type GapEvent,
  type ErrorEvent,
} from 'wasmeter-client';

const options: ConnectOptions = {
  format: 'msgpack',
  backoffBaseMs: 250,
  backoffCapMs: 10000,
  idleTimeoutMs: 45000,
  connectTimeoutMs: 10000,
  token: 'a.b.c',
  getToken: async () => 'a.b.c',
  WebSocket,
};
const client: WasmeterClient = connect('ws://127.0.0.1:8080/ws', options);
connect('/ws', { getToken: () => 'sync token' });
client.subscribe(['trades/*', 'system/cpu']);
client.subscribe('metrics/**', { fields: ['vwap'], maxRateHz: 2 });
client.unsubscribe('metrics/**');

const off: () => void = client.on('topic', (e: TopicEvent) => {
  const kind: 'snapshot' | 'update' | 'event' = e.kind;
  const s: TopicState = e.state;
  const stale: boolean = s.stale.has('x');
  const recovered: boolean | undefined = e.recovered;
  console.log(kind, s.topic, s.epoch, s.seq + 1, s.ts, s.state.price, e.changed[0], e.removed[0], e.stale[0], stale, recovered);
});
off();
client.on('event', (e: StreamEvent) => console.log(e.topic, e.epoch, e.seq, e.ts, e.fields));
client.on('gap', (g: GapEvent) => console.log(g.after + g.next + g.missed, g.epoch));
client.on('removed', (r) => console.log(r.topic));
client.on('status', (s: Status) => {
  const name: 'connecting' | 'connected' | 'reconnecting' | 'closed' = s.status;
  const code: number | null = s.code;
  console.log(name, s.attempt, s.retryAt, s.resumed, s.notRecovered.length, code);
});
client.on('subscribed', (f) => console.log(f.id, f.topics, f.recovered?.['trades/BTC']));
client.on('refreshed', (f) => console.log(f.id, f.expires_at));
client.on('error', (e: ErrorEvent) => console.log(e.code, e.message, e.id, e.patterns?.join()));
client.on('frame', (f) => console.log(f.type));

const held: TopicState | undefined = client.get('trades/BTC');
const all: Map<string, TopicState> = client.topics;
const status: Status = client.status;
console.log(held?.state, all.size, status.status, client.url);
const ok: boolean = matches('trades/*', 'trades/BTC');
const delay: number = backoffDelay(1, 250, 10000);
const decoded: unknown = decodeMsgpack(new Uint8Array([0xc0]));
const exp: number | null = tokenExpiry('a.b.c');
const at: number = refreshAt(1700000000, Date.now());
console.log(ok, delay, decoded, exp, at);
client.close();

// @ts-expect-error: an unknown format
connect('/ws', { format: 'xml' });
// @ts-expect-error: an unknown event
client.on('nope', () => {});
// @ts-expect-error: fields is a list
client.subscribe('a', { fields: 'price' });
