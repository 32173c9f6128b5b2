/**
 * One WhatsApp session inside a shard: its Baileys socket, its fenced auth state and its lifecycle.
 * The runner never decides placement; it runs while its lease epoch is valid and reports every change.
 * Over 500 lines on purpose: the socket's lifecycle (connect, reconnect policy, lease fence, state machine) and
 * the wiring of its Baileys events share the same per-socket state; the parts that stand alone already live
 * beside it (disconnect.ts, the inbound and group forwarders, auth state).
 */
import type { Agent } from 'node:https';
import { Browsers, makeWASocket } from '@whiskeysockets/baileys';
import type { WAMessage, WASocket, WAVersion, proto } from '@whiskeysockets/baileys';
import { GatewayError, backoffDelay, canTransition } from '@wagw/shared';
import type { BlobStore, Logger, SessionMe, SessionState } from '@wagw/shared';
import { BlobAuthState } from '../auth/blob-auth-state.ts';
import type { DurableWaits } from '../auth/durable-waits.ts';
import { sessionBaileysLogger } from './baileys-logger.ts';
import { AckTracker } from '../messaging/send.ts';
import { InboundForwarder, getMessageFromRouter } from '../messaging/inbound.ts';
import type { ShardRequester } from '../messaging/inbound.ts';
import { GroupMetadataCache } from '../groups/cache.ts';
import { GroupEventForwarder, groupUpdateOf } from '../groups/events.ts';
import { disconnectAction } from './disconnect.ts';
import type { Gate } from './gate.ts';

export type { SessionMe } from '@wagw/shared';

export type RunnerEvent =
  | { type: 'status'; sessionId: string; epoch: number; seq: number; status: SessionState; reason?: string; me?: SessionMe }
  | { type: 'qr'; sessionId: string; epoch: number; qr: string; ttlMs: number; index: number };

export interface WaConnectOptions {
  /** WebSocket URL of WhatsApp (the simulator's in tests). */
  url?: string;
  version?: WAVersion;
  /** Agent for media upload/download (e.g. trusting the simulator's certificate). */
  fetchAgent?: Agent;
  connectTimeoutMs?: number;
  keepAliveIntervalMs?: number;
}

export interface SessionRunnerDeps {
  blobs: BlobStore;
  logger: Logger;
  baileysLogger: Logger;
  wa: WaConnectOptions;
  /** Caps concurrent logins/pairings in this shard. */
  gate: Gate;
  /** Fencing: true while this session's lease is still ours at `epoch`. */
  isCurrent: (sessionId: string, epoch: number) => Promise<boolean>;
  /**
   * The same check, synchronous, made on every frame the socket sends or receives: false means the lease's
   * `validUntil` passed (the host aborts the session). A process that was paused (SIGSTOP) past its lease may
   * handle queued I/O before any timer fires when it wakes; this keeps it off the wire and off the auth state.
   */
  leaseValid?: () => boolean;
  emit: (event: RunnerEvent) => void;
  reconnect: { baseMs: number; maxMs: number; maxAttempts: number };
  /** Longest a login may hold a gate slot before it is released anyway. */
  loginGateTimeoutMs: number;
  /** Requests to the router: inbound messages are stored through it, getMessage is answered by it. */
  request: ShardRequester;
  /** `simulatorHost`: WA_MEDIA_HOST in simulator mode (the one non-WhatsApp media host, inbound-media.ts). */
  inboundMedia: { download: 'eager' | 'lazy'; maxBytes: number; fetchTimeoutMs: number; simulatorHost?: string };
  /** Ratchet-only key writes are stored in the background (BlobAuthState `writeBehind`). */
  keyWriteBehind: boolean;
  /** GROUP_METADATA_CACHE_TTL_MS / GROUP_METADATA_CACHE_MAX. */
  groupCache: { ttlMs: number; max: number };
  /** Counts the sends' waits for a durable auth write (the shard's stats); none: not counted. */
  durableWaits?: DurableWaits;
}

const FIRST_QR_TTL_MS = 60_000;
const NEXT_QR_TTL_MS = 20_000;

export class SessionRunner {
  readonly id: string;
  readonly epoch: number;
  private readonly deps: SessionRunnerDeps;
  private readonly log: Logger;
  private auth: BlobAuthState | undefined;
  private sock: WASocket | undefined;
  /** The previous socket, between Baileys' `close` event and its WebSocket actually closing. */
  private closing: WASocket | undefined;
  private state: SessionState = 'starting';
  private me: SessionMe | undefined;
  private attempts = 0;
  private qrIndex = 0;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private releaseGate: (() => void) | undefined;
  private gateTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  /** Last time a message or a key/creds write went through (for the drain before a planned stop). */
  private lastActivity = 0;
  private readonly stateWaiters = new Set<() => void>();
  /** Server acks of sent messages (the send path waits on them). */
  readonly acks = new AckTracker();
  private readonly inbound: InboundForwarder;
  /** Group metadata for Baileys' `cachedGroupMetadata` (groups/cache.ts): group sends do not query it each time. */
  readonly groups: GroupMetadataCache;
  private readonly groupEvents: GroupEventForwarder;

  constructor(id: string, epoch: number, deps: SessionRunnerDeps) {
    this.id = id;
    this.epoch = epoch;
    this.deps = deps;
    this.log = deps.logger.child({ sessionId: id, epoch });
    this.groups = new GroupMetadataCache(deps.groupCache);
    this.groupEvents = new GroupEventForwarder({ sessionId: id, epoch, request: deps.request, logger: this.log });
    this.inbound = new InboundForwarder({
      sessionId: id,
      epoch,
      request: deps.request,
      blobs: deps.blobs,
      logger: this.log,
      mediaDownload: deps.inboundMedia.download,
      mediaMaxBytes: deps.inboundMedia.maxBytes,
      mediaFetchTimeoutMs: deps.inboundMedia.fetchTimeoutMs,
      ...(deps.inboundMedia.simulatorHost === undefined ? {} : { mediaSimulatorHost: deps.inboundMedia.simulatorHost }),
    });
  }

  get status(): SessionState {
    return this.state;
  }

  get account(): SessionMe | undefined {
    return this.me;
  }

  get socket(): WASocket | undefined {
    return this.sock;
  }

  get stoppedOrFailed(): boolean {
    return this.stopped;
  }

  /**
   * Loads the auth state, then opens the socket in the background (a login may wait for a gate slot).
   * Rejects when the state cannot be read (never a fresh identity).
   */
  async start(): Promise<void> {
    this.emitStatus(); // `starting`
    this.auth = await BlobAuthState.load({
      blobs: this.deps.blobs,
      sessionId: this.id,
      epoch: this.epoch,
      isCurrent: (epoch) => this.deps.isCurrent(this.id, epoch),
      logger: this.log,
      writeBehind: this.deps.keyWriteBehind,
      onBackgroundError: (err) => this.onAuthWriteFailed(err),
    });
    this.me = meFromCreds(this.auth.state.creds.me);
    this.connect().catch((err: unknown) => this.fail(err));
  }

  /** Asks WhatsApp for an 8-character pairing code for `phone` (digits with country code). */
  async requestPairingCode(phone: string, timeoutMs = 30_000): Promise<string> {
    if (this.state === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED');
    if (this.me !== undefined) throw new GatewayError('CONFLICT', 'The session is already linked; it is reconnecting.');
    // The socket must have finished its handshake (the first QR marks it) before it can ask for a code.
    await this.waitForState((s) => s === 'qr' || s === 'pairing' || s === 'connected' || this.stopped, timeoutMs);
    const sock = this.sock;
    if (!sock || this.stopped) throw new GatewayError('SESSION_NOT_CONNECTED', 'The session has no open socket.');
    if (this.status === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED');
    const code = await sock.requestPairingCode(phone);
    this.setState('pairing');
    return code;
  }

  private waitForState(pred: (s: SessionState) => boolean, timeoutMs: number): Promise<void> {
    if (pred(this.state)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!pred(this.state)) return;
        clearTimeout(timer);
        this.stateWaiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stateWaiters.delete(check);
        reject(new GatewayError('WA_TIMEOUT', 'The session socket did not become ready in time.'));
      }, timeoutMs);
      this.stateWaiters.add(check);
    });
  }

  /** Unlinks the device at WhatsApp and wipes the stored state. */
  async logout(): Promise<void> {
    const sock = this.sock;
    if (sock && this.state === 'connected') {
      try {
        await sock.logout();
      } catch (err) {
        this.log.warn({ err }, 'logout request failed; wiping local state anyway');
      }
    }
    await this.finishLoggedOut('logout requested');
  }

  /**
   * Closes the socket without logging out, after every auth write is durable (migration, shutdown). First the
   * socket stops reading: frames already read finish processing (decrypt, key writes, ack), so a message whose
   * ratchet step was stored is also acked; whatever was not read stays unacked and WhatsApp re-delivers it to
   * the next owner.
   */
  async stop(reason: string, drainMs = 3000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.releaseLoginGate();
    const sock = this.sock;
    if (sock) {
      sock.ev.removeAllListeners('connection.update');
      pauseReading(sock);
      await this.quiesce(drainMs);
      this.sock = undefined;
      // Reading is paused, so a close handshake could not complete: drop the connection (acks already went out).
      terminate(sock);
      await sock.end(undefined);
      await waitClosed(sock, 2000);
    }
    await this.auth?.close();
    this.setState('disconnected', reason);
  }

  /** Waits until no message or key activity happened for a short while (bounded by `maxMs`). */
  private async quiesce(maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    const quietMs = 250;
    for (;;) {
      // Bounded too: against a store that is down, flush would wait for as long as the outage lasts (failed
      // writes are retried until they land), and a stop (migration, shutdown) must not hang on it. What is still
      // unwritten then gets close()'s few last tries.
      const flushed = this.auth?.flush().catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([flushed, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      const idleFor = Date.now() - this.lastActivity;
      if (idleFor >= quietMs || Date.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, Math.min(quietMs - idleFor, Math.max(0, deadline - Date.now()))));
    }
  }

  /** Closes the socket at once, without flushing: the lease is gone and another owner may be writing. */
  abort(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.releaseLoginGate();
    const sock = this.sock;
    this.sock = undefined;
    if (sock) {
      sock.ev.removeAllListeners('connection.update');
      // At once means the TCP connection, not a close handshake the server may finish late: until it does, the
      // server still counts this socket, and the session's next owner may already be logging in.
      terminate(sock);
      sock.end(new Error(reason)).catch(() => undefined);
    }
    this.setState('disconnected', reason);
  }

  private async connect(): Promise<void> {
    if (this.stopped || !this.auth) return;
    // Baileys reports `close` when it starts closing; the server may still count that socket as live. Never
    // log in again before it is gone (two live sockets for one device is what WhatsApp punishes).
    const closing = this.closing;
    if (closing !== undefined) {
      await waitClosed(closing, 2000);
      if (!closing.ws.isClosed) terminate(closing);
      this.closing = undefined;
      if (this.stopped) return;
    }
    this.releaseGate = await this.deps.gate.acquire();
    this.gateTimer = setTimeout(() => this.releaseLoginGate(), this.deps.loginGateTimeoutMs);
    if (this.stopped) {
      this.releaseLoginGate();
      return;
    }
    const auth = this.auth;
    const { wa } = this.deps;
    const inbound = this.inbound;
    const durableWaits = this.deps.durableWaits;
    const sock = makeWASocket({
      auth: {
        creds: auth.state.creds,
        keys: {
          get: (type, ids) => auth.state.keys.get(type, ids),
          set: (data) => {
            this.lastActivity = Date.now();
            return auth.state.keys.set(data);
          },
        },
      },
      logger: sessionBaileysLogger(this.deps.baileysLogger, this.log),
      browser: Browsers.ubuntu('Chrome'),
      markOnlineOnConnect: false,
      syncFullHistory: false,
      shouldSyncHistoryMessage: () => false,
      getMessage: getMessageFromRouter(this.id, this.deps.request, this.log),
      // The delivery receipt of an inbound message waits until the router stored it (patches/ adds the hook).
      beforeReceipt: (m: proto.IWebMessageInfo, type: 'notify' | 'append') => inbound.persist(sock, m as WAMessage, type),
      // A sent stanza leaves only once the key steps it used are stored (patches/; docs/messaging.md, "Crash safety"):
      // a shard killed after WhatsApp acknowledged a send must not restore a ratchet behind what the recipients saw.
      beforeRelay: durableWaits === undefined ? () => auth.durable() : () => durableWaits.measure(() => auth.durable()),
      // Group sends ask this first; only a miss queries WhatsApp (once, shared by concurrent sends).
      cachedGroupMetadata: (jid: string) => this.groups.getOrFetch(jid, (j) => sock.groupMetadata(j)),
      ...(wa.url === undefined ? {} : { waWebSocketUrl: wa.url }),
      ...(wa.version === undefined ? {} : { version: wa.version }),
      ...(wa.fetchAgent === undefined ? {} : { fetchAgent: wa.fetchAgent }),
      ...(wa.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: wa.connectTimeoutMs }),
      ...(wa.keepAliveIntervalMs === undefined ? {} : { keepAliveIntervalMs: wa.keepAliveIntervalMs }),
    });
    this.sock = sock;
    const valid = this.deps.leaseValid;
    if (valid !== undefined) fenceSocket(sock, valid);
    sock.ws.on('CB:ack,class:message', (node: { attrs?: Record<string, string> }) => {
      if (node.attrs !== undefined) this.acks.onAck(node.attrs);
    });
    sock.ev.on('messages.upsert', ({ messages, type }) => {
      if (this.sock !== sock) return;
      this.lastActivity = Date.now();
      this.inbound.push(sock, messages, type);
    });
    // Group notifications arrive as stub messages: each invalidates the group's cached metadata and becomes a
    // `group-update` event. The events below are Baileys' own view of the same notifications.
    sock.ev.on('messages.upsert', ({ messages }) => {
      if (this.sock !== sock) return;
      const me = [auth.state.creds.me?.id, auth.state.creds.me?.lid].filter((j): j is string => typeof j === 'string').map(bareUser);
      const updates = [];
      for (const m of messages) {
        const u = groupUpdateOf(m, me);
        if (u === undefined) continue;
        this.groups.invalidate(u.group);
        updates.push(u);
      }
      this.groupEvents.push(updates);
    });
    sock.ev.on('groups.update', (updates) => {
      for (const u of updates) if (u.id) this.groups.invalidate(u.id);
    });
    sock.ev.on('group-participants.update', (u) => this.groups.invalidate(u.id));
    sock.ev.on('messages.update', (updates) => {
      if (this.sock !== sock) return;
      this.inbound.pushStatus(updates);
    });
    sock.ev.on('creds.update', () => {
      this.lastActivity = Date.now();
      auth.saveCreds().catch((err: unknown) => this.onAuthWriteFailed(err));
    });
    sock.ev.on('connection.update', (update) => {
      if (this.sock !== sock) return;
      if (update.qr) {
        this.releaseLoginGate();
        const index = this.qrIndex++;
        this.setState('qr');
        this.deps.emit({ type: 'qr', sessionId: this.id, epoch: this.epoch, qr: update.qr, ttlMs: index === 0 ? FIRST_QR_TTL_MS : NEXT_QR_TTL_MS, index });
      }
      if (update.connection === 'open') {
        // notifications may have been missed while disconnected
        this.groups.clear();
        this.releaseLoginGate();
        this.attempts = 0;
        this.qrIndex = 0;
        this.me = meFromCreds(auth.state.creds.me);
        this.setState('connected');
      } else if (update.connection === 'close') {
        this.releaseLoginGate();
        this.sock = undefined;
        this.closing = sock;
        this.onClose(statusCodeOf(update.lastDisconnect?.error));
      }
    });
  }

  private onClose(statusCode: number | undefined): void {
    if (this.stopped) return;
    const action = disconnectAction(statusCode);
    this.log.info({ statusCode, action: action.kind }, 'socket closed');
    // A login that failed or a live socket the server dropped: the shard's next starts are spaced for a while
    // (the gate's trouble window). The restart WhatsApp asks for right after a pairing is part of connecting.
    if (!(action.kind === 'reconnect-now' && (this.state === 'qr' || this.state === 'pairing'))) this.deps.gate.noteTrouble();
    switch (action.kind) {
      case 'logged-out':
        this.finishLoggedOut(`logged out by WhatsApp (${statusCode})`).catch((err: unknown) => this.log.error({ err }, 'wipe after logout failed'));
        return;
      case 'reconnect-now':
        // Right after a pairing (the socket never opened: state qr or pairing) WhatsApp always asks for this
        // restart: it is part of connecting, so the status stays until `connected` (a backend alerting on
        // `reconnecting` is not paged for every new customer). On a socket that was up it is a real drop.
        if (this.state === 'qr' || this.state === 'pairing') {
          this.log.info({ statusCode }, 'paired; reconnecting as WhatsApp asks');
          this.connect().catch((err: unknown) => this.fail(err));
          return;
        }
        // WhatsApp asks every socket of a server it restarts at once: a random delay up to the base spreads the
        // shard's sessions out (the login gate also spaces the starts) instead of answering in lockstep.
        this.setState('reconnecting', `restart required (${statusCode})`);
        this.reconnectTimer = setTimeout(() => {
          this.connect().catch((err: unknown) => this.fail(err));
        }, Math.round(Math.random() * this.deps.reconnect.baseMs));
        return;
      case 'replaced':
        // Another login took this device over: do not fight it; retry later with backoff and cap.
        this.scheduleReconnect(`connection replaced (${statusCode})`);
        return;
      case 'reconnect-backoff':
        this.scheduleReconnect(`connection closed (${statusCode ?? 'unknown'})`);
        return;
      case 'stop':
        this.stopped = true;
        this.setState('failed', action.reason);
        return;
    }
  }

  private scheduleReconnect(reason: string): void {
    this.attempts++;
    const { baseMs, maxMs, maxAttempts } = this.deps.reconnect;
    if (this.attempts > maxAttempts) {
      this.stopped = true;
      this.setState('failed', `${reason}; gave up after ${maxAttempts} reconnect attempts`);
      return;
    }
    const delay = backoffDelay(this.attempts, baseMs, maxMs);
    this.setState('reconnecting', reason);
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch((err: unknown) => this.fail(err));
    }, delay);
  }

  private async finishLoggedOut(reason: string): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const sock = this.sock;
    this.sock = undefined;
    if (sock) {
      sock.ev.removeAllListeners('connection.update');
      await sock.end(undefined).catch(() => undefined);
    }
    await this.auth?.close().catch(() => undefined);
    await BlobAuthState.wipe(this.deps.blobs, this.id);
    this.me = undefined;
    this.setState('logged_out', reason);
  }

  /** The API is sending `messageId` for request `requestId` (`storeSent` stores it with that correlation id). */
  noteApiSend(messageId: string, requestId: string | undefined): void {
    this.inbound.noteApiSend(messageId, requestId);
  }

  /** Stores an API send's message, sent on `sock`, through the inbound chain (resolves once the router committed it). */
  storeSent(sock: WASocket, sent: WAMessage): Promise<void> {
    return this.inbound.storeSent(sock, sent);
  }

  private onAuthWriteFailed(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    if (code === 'STALE_EPOCH' || code === 'LEASE_LOST') this.abort('lease lost while writing auth state');
    else this.log.error({ err }, 'auth state write failed');
  }

  private fail(err: unknown): void {
    this.log.error({ err }, 'session failed');
    this.stopped = true;
    this.setState('failed', err instanceof Error ? err.message : String(err));
  }

  private releaseLoginGate(): void {
    clearTimeout(this.gateTimer);
    this.gateTimer = undefined;
    this.releaseGate?.();
    this.releaseGate = undefined;
  }

  private setState(next: SessionState, reason?: string): void {
    if (next === this.state) return;
    // The state machine (session-state.ts) is checked here, but a transition it does not list is logged, not
    // refused: the known one is a late `failed` after a stop (a connect that rejects after `disconnected`), and
    // dropping it would hide the last fact from the router. A warning here is a bug to look at.
    if (!canTransition(this.state, next)) this.log.warn({ from: this.state, to: next, reason }, 'unexpected session state transition');
    this.state = next;
    this.emitStatus(reason);
    for (const w of [...this.stateWaiters]) w();
  }

  private emitStatus(reason?: string): void {
    this.deps.emit({
      type: 'status',
      sessionId: this.id,
      epoch: this.epoch,
      seq: ++this.seq,
      status: this.state,
      ...(reason === undefined ? {} : { reason }),
      ...(this.me === undefined ? {} : { me: this.me }),
    });
  }
}

/**
 * Zombie safety: every frame out (`ws.send`, which all of Baileys' writes use) and every frame in (`message`
 * events of Baileys' WebSocketClient) first checks the lease by the clock. A stale one is dropped, not sent
 * or handled; `valid()` has the host abort the session.
 */
export function fenceSocket(sock: Pick<WASocket, 'ws'>, valid: () => boolean): void {
  const ws = sock.ws as unknown as { send: (data: unknown, cb?: (err?: Error) => void) => void; emit: (event: string | symbol, ...args: unknown[]) => boolean };
  const send = ws.send.bind(ws);
  ws.send = (data, cb) => {
    if (!valid()) {
      cb?.(new Error('lease lapsed: frame not sent'));
      return;
    }
    send(data, cb);
  };
  const emit = ws.emit.bind(ws);
  ws.emit = (event, ...args) => {
    if (event === 'message' && !valid()) return false;
    return emit(event, ...args);
  };
}

/** Stops reading frames from the WebSocket (writes, e.g. acks, still go out). */
function pauseReading(sock: WASocket): void {
  const ws = (sock.ws as unknown as { socket?: { pause?: () => void } | null }).socket;
  ws?.pause?.();
}

function terminate(sock: WASocket): void {
  const ws = (sock.ws as unknown as { socket?: { terminate?: () => void } | null }).socket;
  ws?.terminate?.();
}

async function waitClosed(sock: WASocket, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!sock.ws.isClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

function statusCodeOf(error: unknown): number | undefined {
  const output = (error as { output?: { statusCode?: unknown } } | undefined)?.output;
  return typeof output?.statusCode === 'number' ? output.statusCode : undefined;
}

/** `123:4@s.whatsapp.net` -> `123@s.whatsapp.net` */
function bareUser(jid: string): string {
  const at = jid.indexOf('@');
  return at < 0 ? jid : `${jid.slice(0, at).split(':')[0] ?? ''}${jid.slice(at)}`;
}

function meFromCreds(me: { id: string; lid?: string; name?: string; notify?: string } | undefined): SessionMe | undefined {
  if (!me) return undefined;
  const user = me.id.split('@')[0]?.split(':')[0] ?? '';
  const out: SessionMe = { phone: `+${user}`, jid: `${user}@s.whatsapp.net` };
  if (me.lid) out.lid = `${me.lid.split('@')[0]?.split(':')[0] ?? ''}@lid`;
  const name = me.name ?? me.notify;
  if (name) out.name = name;
  return out;
}
