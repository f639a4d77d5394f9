// Types of wasmeter.js, the client of the wasmeter subscriber protocol (v1).
// See docs/CLIENT.md for the behaviour behind each name.

/** Wire format of the server's frames: JSON text or MessagePack binary frames. */
export type Format = 'json' | 'msgpack';

/**
 * How the server lays out data frames: 'map' (the default) or 'compact' (positional
 * arrays, smaller; the client expands them into the same frames and events).
 */
export type Envelope = 'map' | 'compact';

/** A WebSocket constructor: the browser's, Node 22's global one, or `WebSocket` of the `ws` package. */
export type WebSocketConstructor = new (url: string) => any;

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Wire format of the server's frames (default 'json'). Client messages are JSON either way. */
  format?: Format;
  /** Layout of data frames (default 'map'); 'compact' adds `&envelope=compact` to the URL. */
  envelope?: Envelope;
  /** First reconnect delay bound, ms (default 250). */
  backoffBaseMs?: number;
  /** Largest reconnect delay bound, ms (default 10000). */
  backoffCapMs?: number;
  /** Reconnect when nothing arrives for this long, ms (default 45000; 0 disables). */
  idleTimeoutMs?: number;
  /** Give up on a connection not open by then and retry, ms (default 10000; 0 disables). */
  connectTimeoutMs?: number;
  /** A subscriber token (a JWT), sent as `?token=` on the WebSocket URL. */
  token?: string;
  /**
   * Returns a fresh token; called before every connect and, on an open connection,
   * min(30 s, 10% of the remaining lifetime) before the current token's `exp`.
   */
  getToken?: () => string | Promise<string>;
  /** WebSocket constructor (default: the global one; on Node < 22 pass `WebSocket` from `ws`). */
  WebSocket?: WebSocketConstructor;
}

/** Options of {@link WasmeterClient.subscribe}. */
export interface SubscribeOptions {
  /** Only these fields. */
  fields?: string[];
  /** At most this many updates per second per topic. */
  maxRateHz?: number;
}

/** A topic's field values: numbers, strings, booleans (and, from MessagePack, bytes). */
export type Fields = Record<string, any>;

/** The state held for one topic. */
export interface TopicState {
  topic: string;
  /** Opaque; positions of different epochs are not comparable. */
  epoch: string;
  /** Position of the last applied frame within the epoch. */
  seq: number;
  /** Time of the last update, Unix ms. */
  ts: number;
  /** The fields now. */
  state: Fields;
  /** Fields currently stale (they keep their last value). */
  stale: Set<string>;
}

/** The connection's status, as `client.status` and the `status` event. */
export interface Status {
  status: 'connecting' | 'connected' | 'reconnecting' | 'closed';
  /** Reconnect attempts since the last open connection. */
  attempt: number;
  /** When the next attempt starts (Unix ms) while reconnecting, else null. */
  retryAt: number | null;
  /** After a reconnect, once every resubscription is answered: were all held topics recovered? */
  resumed: boolean | null;
  /** Held topics that got fresh snapshots instead of the missed updates. */
  notRecovered: string[];
  /** Why the client stopped, when `closed` by the server: 4002, 4004 or 401; else null. */
  code: number | null;
}

/** After every frame that changed a topic. */
export interface TopicEvent {
  topic: string;
  kind: 'snapshot' | 'update' | 'event';
  state: TopicState;
  /** Fields set by this frame. */
  changed: string[];
  /** Fields removed by this frame. */
  removed: string[];
  /** Fields this frame marked stale. */
  stale: string[];
  /** `false` on a snapshot answering a resume that could not be served. */
  recovered?: boolean;
}

/** One event of a stream topic, emitted once, in order. */
export interface StreamEvent {
  topic: string;
  epoch: string;
  seq: number;
  ts: number;
  fields: Fields;
}

/** Events of a stream topic this client will not get. */
export interface GapEvent {
  topic: string;
  epoch: string;
  after: number;
  /** The next event's seq. */
  next: number;
  missed: number;
}

/** The host removed the topic; its state is dropped. */
export interface RemovedEvent {
  topic: string;
}

/** The server's answer to a subscribe. */
export interface SubscribedFrame {
  type: 'subscribed';
  id?: number;
  topics: string[];
  /** Present when `since` was sent: per topic, whether it was resumed. */
  recovered?: Record<string, boolean>;
}

/** The server's answer to a token refresh. */
export interface RefreshedFrame {
  type: 'refreshed';
  id: number;
  /** When the new token expires, Unix ms. */
  expires_at: number;
}

/**
 * An error: the server's error frame, or one of the client's own
 * (`abusive`, `token_expired`, `unauthorized`, `token_unavailable`).
 */
export interface ErrorEvent {
  type: 'error';
  id?: number;
  /** Server codes: malformed, invalid, too_many_subscriptions, too_many_topics, not_subscribed, unauthorized, forbidden. */
  code: string;
  message: string;
  /** With `forbidden`: the patterns refused (they are no longer held). */
  patterns?: string[];
}

/** Any decoded frame from the server (as the `frame` event). */
export interface Frame {
  type: string;
  [key: string]: any;
}

/** The events of {@link WasmeterClient.on} and their payloads. */
export interface EventMap {
  topic: TopicEvent;
  event: StreamEvent;
  gap: GapEvent;
  removed: RemovedEvent;
  status: Status;
  subscribed: SubscribedFrame;
  refreshed: RefreshedFrame;
  error: ErrorEvent;
  frame: Frame;
}

/** Names of the events. */
export type EventName = keyof EventMap;

/** A connection that survives reconnects. Create with {@link connect}. */
export class WasmeterClient {
  constructor(url: string, options?: ConnectOptions);
  /** The WebSocket URL (with `?format=` and, if compact, `&envelope=`; the token is added per connect). */
  readonly url: string;
  /** The format of the server's frames. */
  readonly format: Format;
  /** The envelope of the server's data frames. */
  readonly envelope: Envelope;
  /** Every held topic. */
  readonly topics: Map<string, TopicState>;
  /** The last status. */
  readonly status: Status;
  /** Listens; returns a function that stops listening. */
  on<K extends EventName>(name: K, fn: (detail: EventMap[K]) => void): () => void;
  /** Topic names or patterns; held across reconnects; again for a pattern replaces its options. */
  subscribe(topics: string | string[], options?: SubscribeOptions): void;
  /** Patterns exactly as subscribed; topics no remaining pattern covers are forgotten. */
  unsubscribe(topics: string | string[]): void;
  /** The state held for a topic. */
  get(topic: string): TopicState | undefined;
  /** Closes for good (no reconnect). */
  close(): void;
}

/** Opens a connection that reconnects until closed. */
export function connect(url: string, options?: ConnectOptions): WasmeterClient;

/** Does a topic match a pattern (`*` one segment, trailing `**` one or more)? */
export function matches(pattern: string, topic: string): boolean;

/** Full-jitter backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number): number;

/**
 * Expands a compact data frame (`[0|1|2, topic, ...]`) into the map frame it stands
 * for; updates and events without an epoch take `epochOf(topic)`. Null for an unknown tag.
 */
export function expandCompact(a: any[], epochOf: (topic: string) => string | undefined): Frame | null;

/** Decodes one MessagePack value (the whole input). */
export function decodeMsgpack(input: ArrayBuffer | ArrayBufferView): any;

/** A JWT's `exp` (seconds since the epoch), unverified; null when absent. */
export function tokenExpiry(token: string): number | null;

/** When (Unix ms) to refresh a token expiring at `expSeconds`, seen at `nowMs`. */
export function refreshAt(expSeconds: number, nowMs: number): number;
