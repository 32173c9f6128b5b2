/**
 * The router <-> shard IPC protocol. Plain JSON on the wire (no media bytes: those go through storage).
 *
 * - Handshake: the router sends `init`; the shard answers `ready` or `init-failed`. No request is routed to a
 *   shard before `ready`. The protocol version is checked there.
 * - Requests: `{kind, id, reqId?, ...params}`, one kind per entry of `IpcRequestMap`.
 * - Replies: `{kind: 'reply', id, ok: true, value}` or `{kind: 'reply', id, ok: false, error: {code, message,
 *   details?}}`; errors are rebuilt on the router with `fromErrorBody`. Several replies produced in one tick
 *   may travel together as `{kind: 'replies', replies: [...]}`.
 * - Events: one-way `{kind: 'event', event}` from the shard, one type per entry of `ShardEventMap`.
 * - `exiting`: the shard's last word before a deliberate exit (after `shutdown`, SIGTERM, or a fatal error).
 *
 * To add a request kind: add an entry `name: { params; result }` to `IpcRequestMap` (and its name to
 * `REQUEST_KINDS`); the shard handler's exhaustive switch then fails to compile until it handles it, and
 * `ShardSupervisor.call(i, {kind: 'name', ...params})` returns `Promise<result>`. The other way (shard ->
 * router): an entry in `ShardRequestMap` and `SHARD_REQUEST_KINDS`; the router's `ShardRequestHandlers` object
 * then fails to compile until it answers it. See docs/protocol.md.
 */
import type { ErrorBody } from './errors.ts';
import type {
  LeasesExtendParams,
  QrRenderParams,
  QrRenderResult,
  SessionPairingCodeParams,
  SessionQrEvent,
  SessionStartParams,
  SessionStatusEvent,
  SessionStopParams,
  ShardSessionInfo,
  ShardSessionsConfig,
} from './sessions.ts';
import type { SendMessageRequest } from './api/messages.ts';
import type { WireMessage } from './api/stored-message.ts';
import type { GroupAction, GroupActionResult, GroupUpdateWire } from './groups.ts';

/** Bumped on every incompatible change of the messages below. Checked in the `init` handshake. */
export const PROTOCOL_VERSION = 5;

// ---------------------------------------------------------------------------------------------------------
// Handshake

/** The part of the router's configuration a shard needs. Shards do not read the environment themselves. */
export interface ShardInitConfig {
  nodeEnv: 'development' | 'production' | 'test';
  logLevel: string;
  dataDir: string;
  maxSessions: number;
  workerThreads: number;
  callTimeoutMs: number;
  stopTimeoutMs: number;
  /** How the shard sends replies: several per tick in one `replies` message (default), or one by one. */
  replyBatching?: 'immediate' | 'none';
  /** Session hosting (blob store, WhatsApp endpoint, login cap). Absent: the shard refuses session requests. */
  sessions?: ShardSessionsConfig;
}

export interface InitMessage {
  kind: 'init';
  protocolVersion: number;
  shardIndex: number;
  hostId: string;
  config: ShardInitConfig;
}

export interface ReadyMessage {
  kind: 'ready';
  protocolVersion: number;
  pid: number;
}

export interface InitFailedMessage {
  kind: 'init-failed';
  protocolVersion: number;
  pid: number;
  error: ErrorBody;
  /** False when starting again cannot help (protocol mismatch, invalid config): the router gives up at once. */
  retryable: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Requests (router -> shard) and their results

export interface PingParams {
  /** Any JSON value, echoed back. Keep it small; the bench uses up to 4 KB. */
  payload?: unknown;
  /** Answer after this many milliseconds (tests, timeouts). Capped at `MAX_PING_DELAY_MS`. */
  delayMs?: number;
}

export interface PingResult {
  payload?: unknown;
  pid: number;
}

export interface MemoryStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface EventLoopStats {
  /**
   * Event loop delay percentiles of the current window, milliseconds. The window runs from the shard's start or
   * the last `stats` call with `resetWindow: true`; a plain `stats` call (a /metrics scrape) only reads it.
   */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Fraction of time the loop was busy in the current window (0..1). */
  utilization: number;
}

export interface CpuPoolStats {
  threads: number;
  queued: number;
  completed: number;
  utilization: number;
}

export interface ShardStats {
  shardIndex: number;
  pid: number;
  uptimeMs: number;
  sessions: number;
  /** Requests being handled right now (including this one). */
  inFlight: number;
  memory: MemoryStats;
  eventLoop: EventLoopStats;
  cpuPool: CpuPoolStats;
  /** Send governors of the shard's sessions, summed: sends waiting and sends in flight. */
  sendQueue?: { depth: number; inFlight: number };
  /** The shard's IPC outbox (shard/src/ipc-outbox.ts): messages held while the channel catches up. */
  outbox?: IpcOutboxStats;
  /** The login gate of the shard's sessions (concurrency cap and start spacing). */
  loginGate?: { waiting: number; running: number; rateLimitedWaits: number };
  /** Sent stanzas' waits for their auth-state write to be durable, since the shard started. */
  authDurable?: AuthDurableStats;
}

/** Running totals of the `beforeRelay` waits of a shard's sessions (shard/src/auth/durable-waits.ts). */
export interface AuthDurableStats {
  waits: number;
  waitSeconds: number;
  /** Waits of 5 ms or more. */
  slowWaits: number;
}

export interface IpcOutboxStats {
  /** Messages held now. */
  depth: number;
  /** The most held at once since the shard started. */
  highWater: number;
  /** Requests held at most. */
  capacity: number;
  /** Callers waiting for room for their request. */
  waitingRequests: number;
  /** Status/QR events replaced by a newer one before they were written. */
  coalescedTotal: number;
}

export interface StatsParams {
  /** Run a full garbage collection first when the shard was started with --expose-gc (benchmarks). */
  gc?: boolean;
  /** Start a new event-loop window after reading this one (a benchmark measuring one phase). Default: only read. */
  resetWindow?: boolean;
}

export interface ShutdownParams {
  /** Free text for the logs (e.g. 'router stopping', 'scale down'). */
  reason: string;
}

export interface ShutdownResult {
  /** Requests that were still running when the shutdown began and finished before the reply. */
  drained: number;
}

/** A stored message the router hands to the shard (quote / react / edit targets): key and raw proto. */
export interface MessageRefWire {
  id: string;
  chat: string;
  fromMe: boolean;
  participant?: string;
  /** base64 of the `proto.Message` bytes; absent when not stored. */
  raw?: string;
}

export interface MessageSendParams {
  sessionId: string;
  /** The validated request; `{base64}` media was rewritten by the router to `{upload}` (bytes in the blob store). */
  request: SendMessageRequest;
  /** WhatsApp message id to use (derived from the Idempotency-Key); absent: the shard generates one. */
  messageId?: string;
  /** Messages the request refers to (quotedId, reaction target), looked up by the router. */
  refs?: MessageRefWire[];
}

/** Non-send operations on a session's socket (read, edit, revoke, presence, number lookup). */
export type SessionAction =
  | { type: 'read'; ref: MessageRefWire }
  | { type: 'edit'; ref: MessageRefWire; text: string }
  | { type: 'revoke'; ref: MessageRefWire }
  | { type: 'presence'; to?: string; state: 'composing' | 'paused' | 'recording' | 'available' | 'unavailable' }
  | { type: 'exists'; jid: string }
  /** Downloads a received message's media to the blob store (INBOUND_MEDIA_DOWNLOAD=lazy, first GET of …/media). */
  | { type: 'download'; ref: MessageRefWire; key: string };

export interface SessionActionResult {
  /** edit / revoke: the id of the protocol message sent. */
  id?: string;
  /** exists: whether the number has WhatsApp, and its JID. */
  exists?: boolean;
  jid?: string;
  /** edit / revoke: base64 of the sent protocol message. */
  raw?: string;
}

export interface MessageSendResult {
  id: string;
  status: 'sent';
  /** The sent message as stored (the shard stored it through `message.received` before answering). */
  message: WireMessage;
  /** Governor queue wait of this send, ms. */
  waitMs: number;
}

/**
 * Every request kind with its parameters and result. The single place to extend the protocol.
 */
export interface IpcRequestMap {
  /** Echo; used by /health and bench/ipc. */
  ping: { params: PingParams; result: PingResult };
  /** Memory, event loop and session counts. */
  stats: { params: StatsParams; result: ShardStats };
  /** Planned stop: refuse new requests, drain the running ones, close the CPU pool, reply, exit 0. */
  shutdown: { params: ShutdownParams; result: ShutdownResult };
  /** Runs a session under a lease the router claimed: load auth state, open the socket. Idempotent per epoch. */
  'session.start': { params: SessionStartParams; result: ShardSessionInfo };
  /** Planned stop: flush auth state, close the socket without logging out. `stopped` false when not running. */
  'session.stop': { params: SessionStopParams; result: { stopped: boolean } };
  /** The lease is gone: close the socket at once, no more writes. */
  'session.abort': { params: SessionStopParams; result: { aborted: boolean } };
  /** Unlinks the device at WhatsApp (when connected), closes the socket, wipes the auth state. */
  'session.logout': { params: SessionStopParams; result: { loggedOut: boolean } };
  /** Asks WhatsApp for a pairing code for a phone number (login without QR). */
  'session.pairing-code': { params: SessionPairingCodeParams; result: { code: string } };
  /** Every session the shard runs. */
  'session.list': { params: Record<never, never>; result: { sessions: ShardSessionInfo[] } };
  /** After a batch renewal: the new validity of this shard's leases. `unknown`: ids the shard does not run. */
  'leases.extend': { params: LeasesExtendParams; result: { unknown: string[] } };
  /** Renders a QR string to PNG (base64), SVG or text in the shard's piscina pool. */
  'qr.render': { params: QrRenderParams; result: QrRenderResult };
  /** Sends a message through the session's governor; resolves after WhatsApp's server ack. */
  'message.send': { params: MessageSendParams; result: MessageSendResult };
  /** Read receipts, edit, revoke (through the governor, after the server ack), presence, "is on WhatsApp". */
  'session.action': { params: { sessionId: string; action: SessionAction }; result: SessionActionResult };
  /** Group and community operations on the session's socket (docs/groups.md). */
  'group.action': { params: { sessionId: string; action: GroupAction }; result: GroupActionResult };
}

export type RequestKind = keyof IpcRequestMap;
export type IpcParams<K extends RequestKind> = IpcRequestMap[K]['params'];
export type IpcResult<K extends RequestKind> = IpcRequestMap[K]['result'];

/** Runtime list of request kinds; kept in step with `IpcRequestMap` by the type below. */
export const REQUEST_KINDS = [
  'ping',
  'stats',
  'shutdown',
  'session.start',
  'session.stop',
  'session.abort',
  'session.logout',
  'session.pairing-code',
  'session.list',
  'leases.extend',
  'qr.render',
  'message.send',
  'session.action',
  'group.action',
] as const satisfies readonly RequestKind[];
type _AllKindsListed = Exclude<RequestKind, (typeof REQUEST_KINDS)[number]> extends never ? true : never;
const _allKindsListed: _AllKindsListed = true;
void _allKindsListed;

export function isRequestKind(value: unknown): value is RequestKind {
  return typeof value === 'string' && (REQUEST_KINDS as readonly string[]).includes(value);
}

/** What a caller passes: the kind and its parameters (the envelope fields are added by the supervisor). */
export type IpcRequestBody<K extends RequestKind = RequestKind> = {
  [P in K]: { kind: P } & IpcParams<P>;
}[K];

/** A request on the wire. `reqId` is the HTTP request id, so the shard's logs carry it. */
export type IpcRequest<K extends RequestKind = RequestKind> = {
  [P in K]: { kind: P; id: number; reqId?: string } & IpcParams<P>;
}[K];

/** Everything the router sends (replies answer the shard's own requests, see `ShardRequestMap`). */
export type RouterToShard = InitMessage | IpcRequest | IpcReply;

// ---------------------------------------------------------------------------------------------------------
// Replies, events (shard -> router)

export interface IpcReplyOk<V = unknown> {
  kind: 'reply';
  id: number;
  ok: true;
  value: V;
}

export interface IpcReplyError {
  kind: 'reply';
  id: number;
  ok: false;
  error: ErrorBody;
}

export type IpcReply<V = unknown> = IpcReplyOk<V> | IpcReplyError;

/** Replies produced in the same tick, sent as one message (fewer pipe writes under load). */
export interface IpcReplyBatch {
  kind: 'replies';
  replies: IpcReply[];
}

// ---------------------------------------------------------------------------------------------------------
// Requests the other way (shard -> router): the router answers with an `IpcReply` of the same id.

export interface InboundMessageWire {
  message: WireMessage;
  /** base64 of the `proto.Message` bytes (served to Baileys' retry requests via `message.get`). */
  raw: string;
  /** Blob key of the media, when downloaded on arrival (INBOUND_MEDIA_DOWNLOAD=eager). */
  mediaKey?: string;
  /** The session's own send through the API: the `x-request-id` of that call (stored as the correlation id). */
  requestId?: string;
}

export interface MessagesReceivedParams {
  sessionId: string;
  epoch: number;
  /** Baileys' upsert type: `notify` (live) or `append` (offline / history). */
  upsert: string;
  messages: InboundMessageWire[];
}

export type MessageStatus = 'sent' | 'delivered' | 'read' | 'played' | 'failed';

export interface MessageStatusWire {
  id: string;
  chat: string;
  status: MessageStatus;
  /** ISO-8601 */
  at: string;
}

/** Every request a shard may make, with its result. The router acknowledges only after the work committed. */
export interface ShardRequestMap {
  /** Messages a session received (or sent from another device): stored once, webhook + SSE. */
  'message.received': { params: MessagesReceivedParams; result: { stored: number } };
  /** Receipts of this session's sent messages: the stored status moves forward only (sent < delivered < read < played). */
  'message.status': { params: { sessionId: string; epoch: number; updates: MessageStatusWire[] }; result: { changed: number } };
  /** A stored message's raw proto for Baileys' `getMessage` (retry requests); absent when unknown. */
  /** A stored message's proto (`raw`, base64) and its author: `fromMe`, else `from` (sender JID) and its `fromLid`. */
  'message.get': { params: { sessionId: string; id: string }; result: { raw?: string; chat?: string; fromMe?: boolean; from?: string; fromLid?: string } };
  /** Changes in the session's groups (WhatsApp's group notifications): `group-update` webhook + SSE, once per id. */
  'group.updated': { params: { sessionId: string; epoch: number; updates: GroupUpdateWire[] }; result: { stored: number } };
}

export type ShardRequestKind = keyof ShardRequestMap;
export type ShardRequestBody<K extends ShardRequestKind = ShardRequestKind> = {
  [P in K]: { kind: P } & ShardRequestMap[P]['params'];
}[K];
export type ShardRequestResult<K extends ShardRequestKind> = ShardRequestMap[K]['result'];

/** Runtime list of shard request kinds; kept in step with `ShardRequestMap` by the type below. */
export const SHARD_REQUEST_KINDS = ['message.received', 'message.status', 'message.get', 'group.updated'] as const satisfies readonly ShardRequestKind[];
type _AllShardKindsListed = Exclude<ShardRequestKind, (typeof SHARD_REQUEST_KINDS)[number]> extends never ? true : never;
const _allShardKindsListed: _AllShardKindsListed = true;
void _allShardKindsListed;

export function isShardRequestKind(value: unknown): value is ShardRequestKind {
  return typeof value === 'string' && (SHARD_REQUEST_KINDS as readonly string[]).includes(value);
}

/**
 * The router's answer to every kind a shard may ask, typed per kind like the shard's handling of the router's
 * requests: an object of this type without a handler for a new `ShardRequestMap` entry fails to compile, and
 * each handler must return its kind's result. Dispatched by `answerShardRequest` (ipc-peer.ts).
 */
export type ShardRequestHandlers = {
  [K in ShardRequestKind]: (shard: number, request: ShardRequestBody<K>) => Promise<ShardRequestResult<K>>;
};

export interface ShardRequestMessage {
  kind: 'request';
  id: number;
  request: ShardRequestBody;
}

/** One-way notifications from a shard. */
export interface ShardEventMap {
  /** A session's state changed (one event per change). */
  'session.status': SessionStatusEvent;
  /** A session's socket produced a QR code. */
  'session.qr': SessionQrEvent;
}

export type ShardEventType = keyof ShardEventMap;
export type ShardEvent = { [T in ShardEventType]: { type: T } & ShardEventMap[T] }[ShardEventType];

export interface ShardEventMessage {
  kind: 'event';
  event: ShardEvent;
}

/** The shard's last message before a deliberate exit. */
export interface ExitingMessage {
  kind: 'exiting';
  code: number;
  reason: string;
}

/** Everything a shard sends. */
export type ShardToRouter = ReadyMessage | InitFailedMessage | IpcReply | IpcReplyBatch | ShardEventMessage | ExitingMessage | ShardRequestMessage;

// ---------------------------------------------------------------------------------------------------------
// Limits and helpers

export const MAX_PING_DELAY_MS = 60_000;

/** Compile-time exhaustiveness for `switch (msg.kind)`: a new union member without a case fails to compile. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(value)}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An error body as it crosses IPC: `{code, message}` strings (details, when present, an object). The code is
 * not required to be a known one: `fromErrorBody` maps an unknown code to INTERNAL.
 */
function isErrorBodyShape(value: unknown): boolean {
  if (!isObject(value) || typeof value['code'] !== 'string' || typeof value['message'] !== 'string') return false;
  return value['details'] === undefined || isObject(value['details']);
}

/** `{kind: 'reply', id, ok: true, value}` or `{kind: 'reply', id, ok: false, error: {code, message}}`. */
function isReply(value: unknown): boolean {
  if (!isObject(value) || value['kind'] !== 'reply' || !Number.isSafeInteger(value['id'])) return false;
  if (value['ok'] === true) return true;
  return value['ok'] === false && isErrorBodyShape(value['error']);
}

/**
 * Structural check of a message from the router, down to every field the shard reads before dispatching (a
 * malformed one is logged and dropped; it must never throw inside the shard's message listener).
 */
export function isRouterToShard(value: unknown): value is RouterToShard {
  if (!isObject(value)) return false;
  if (value['kind'] === 'init') {
    return typeof value['protocolVersion'] === 'number' && Number.isSafeInteger(value['shardIndex']) && typeof value['hostId'] === 'string' && isObject(value['config']);
  }
  if (value['kind'] === 'reply') return isReply(value);
  return isRequestKind(value['kind']) && Number.isSafeInteger(value['id']) && (value['reqId'] === undefined || typeof value['reqId'] === 'string');
}

/**
 * Structural check of a message from a shard, down to every field the supervisor reads (each batched reply,
 * an error body, the `init-failed` error): the router logs and drops anything else instead of throwing in its
 * `message` listener, which would end the router and every shard with it. A shard parses untrusted WhatsApp
 * data, so its messages are checked like input, not trusted like a peer's.
 */
export function isShardToRouter(value: unknown): value is ShardToRouter {
  if (!isObject(value)) return false;
  switch (value['kind']) {
    case 'reply':
      return isReply(value);
    case 'replies':
      return Array.isArray(value['replies']) && value['replies'].every(isReply);
    case 'ready':
      return typeof value['protocolVersion'] === 'number' && typeof value['pid'] === 'number';
    case 'init-failed':
      return typeof value['protocolVersion'] === 'number' && isErrorBodyShape(value['error']) && typeof value['retryable'] === 'boolean';
    case 'event':
      return isObject(value['event']) && typeof value['event']['type'] === 'string';
    case 'exiting':
      return typeof value['code'] === 'number' && typeof value['reason'] === 'string';
    case 'request':
      return Number.isSafeInteger(value['id']) && isObject(value['request']) && typeof value['request']['kind'] === 'string';
    default:
      return false;
  }
}
