/**
 * SessionHost: the sessions one shard runs. The router is the lease agent: it claims a lease before it asks
 * the shard to start a session and renews the host's leases in batches, telling the shard each lease's new
 * `validUntil`. The shard's fencing check is local (epoch matches and the lease is still valid by the clock),
 * and a timer aborts every socket whose lease runs out, so a router cut off from the directory cannot keep a
 * socket alive past its lease.
 */
import type { WAMessage, WASocket } from '@whiskeysockets/baileys';
import { GatewayError } from '@wagw/shared';
import type { AuthDurableStats, BlobStore, GroupAction, GroupActionResult, LeaseGrant, Logger, MessageSendParams, MessageSendResult, MessagingConfig, SessionAction, SessionActionResult, SessionStartParams, ShardEvent, ShardSessionInfo } from '@wagw/shared';
import { DurableWaits } from '../auth/durable-waits.ts';
import { ByteBudget } from '../messaging/byte-budget.ts';
import { SendGovernor } from '../messaging/governor.ts';
import type { GovernorStats } from '../messaging/governor.ts';
import { RelayedSends } from '../messaging/relayed-sends.ts';
import { runAction, sendOne } from '../messaging/send.ts';
import { runGroupAction } from '../groups/actions.ts';
import type { SendDeps } from '../messaging/send.ts';
import type { ShardRequester } from '../messaging/inbound.ts';
import type { Gate, GateStats } from './gate.ts';
import { SessionRunner } from './session-runner.ts';
import type { RunnerEvent, WaConnectOptions } from './session-runner.ts';

export interface SessionHostOptions {
  blobs: BlobStore;
  logger: Logger;
  baileysLogger: Logger;
  wa: WaConnectOptions;
  gate: Gate;
  reconnect: { baseMs: number; maxMs: number; maxAttempts: number };
  emit: (event: ShardEvent) => void;
  maxSessions: number;
  now?: () => number;
  loginGateTimeoutMs?: number;
  /** Send governor and media limits (from config.ts through `init`; the shard has no defaults of its own). */
  messaging: MessagingConfig;
  /** Requests to the router: inbound messages and receipts are stored through it, getMessage is answered by it. */
  request: ShardRequester;
  /** Longest wait for WhatsApp's ack of a send (default 20 s). */
  ackTimeoutMs?: number;
  /** SESSION_KEY_WRITE_BEHIND: ratchet-only key writes are stored in the background. */
  keyWriteBehind: boolean;
  /** WA_MEDIA_HOST, passed only in simulator mode (setup.ts): the one non-WhatsApp host of inbound media. */
  mediaSimulatorHost?: string;
}

interface Entry {
  runner: SessionRunner;
  epoch: number;
  validUntil: number;
  timer: NodeJS.Timeout | undefined;
  governor: SendGovernor;
}

/** Longest timer Node accepts; a lease further out is re-armed when its timer fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SessionHost {
  readonly #opts: SessionHostOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  readonly #messaging: MessagingConfig;
  /** Media bytes held by the sends of all sessions of this shard (MEDIA_DOWNLOAD_BUDGET_BYTES). */
  readonly #mediaBudget: ByteBudget;
  /**
   * Keyed sends of every session of this shard, kept across a session's runs: a lease that lapsed while the
   * shard's channel was backed up re-places the session here while its first attempt may still run.
   */
  readonly #relayed = new RelayedSends();
  /** Every session's waits for a durable auth write before a stanza leaves (stats: `authDurable`). */
  readonly #durableWaits = new DurableWaits();

  constructor(options: SessionHostOptions) {
    this.#opts = options;
    this.#messaging = options.messaging;
    this.#mediaBudget = new ByteBudget(this.#messaging.media.downloadBudgetBytes);
    this.#log = options.logger.child({ component: 'sessions' });
    this.#now = options.now ?? Date.now;
  }

  get count(): number {
    return this.#entries.size;
  }

  /** The runner of a session (tests, message sending later). */
  runner(sessionId: string): SessionRunner | undefined {
    return this.#entries.get(sessionId)?.runner;
  }

  /** Starts a session under the router's lease. Idempotent for the same epoch (extends the validity). */
  async start(params: SessionStartParams): Promise<ShardSessionInfo> {
    const { sessionId, epoch, validUntil } = params;
    const existing = this.#entries.get(sessionId);
    if (existing) {
      if (existing.epoch === epoch && !existing.runner.stoppedOrFailed) {
        this.#extend(existing, validUntil);
        return this.#info(sessionId, existing);
      }
      if (existing.epoch > epoch) throw new GatewayError('STALE_EPOCH', `session ${sessionId} runs here at a newer epoch`, { epoch: existing.epoch });
      // An older epoch (or a stopped runner) still here: it has no lease any more.
      this.#remove(sessionId, existing);
      existing.runner.abort('superseded by a newer lease');
    }
    if (validUntil <= this.#now()) throw new GatewayError('LEASE_LOST', `lease of ${sessionId} lapsed before the start`);
    if (this.#entries.size >= this.#opts.maxSessions) throw new GatewayError('NO_CAPACITY', 'This shard is full.', { maxSessions: this.#opts.maxSessions });
    const self: { entry?: Entry } = {};
    const runner = new SessionRunner(sessionId, epoch, {
      blobs: this.#opts.blobs,
      logger: this.#opts.logger,
      baileysLogger: this.#opts.baileysLogger,
      wa: this.#opts.wa,
      gate: this.#opts.gate,
      reconnect: this.#opts.reconnect,
      keyWriteBehind: this.#opts.keyWriteBehind,
      loginGateTimeoutMs: this.#opts.loginGateTimeoutMs ?? 30_000,
      isCurrent: async (id, e) => {
        const current = this.#entries.get(id);
        return current !== undefined && current === self.entry && current.epoch === e && this.#now() < current.validUntil;
      },
      leaseValid: () => {
        const current = this.#entries.get(sessionId);
        if (current !== undefined && current === self.entry && this.#now() < current.validUntil) return true;
        // Woken past the lease (or already replaced): abort now rather than wait for the timer.
        if (current !== undefined && current === self.entry) queueMicrotask(() => this.abort(sessionId, 'lease expired (found on a frame)'));
        return false;
      },
      emit: (event) => this.#emit(event),
      request: this.#opts.request,
      groupCache: this.#messaging.groups,
      durableWaits: this.#durableWaits,
      inboundMedia: {
        download: this.#messaging.media.inboundDownload,
        maxBytes: this.#messaging.media.maxBytes,
        fetchTimeoutMs: this.#messaging.media.fetchTimeoutMs,
        ...(this.#opts.mediaSimulatorHost === undefined ? {} : { simulatorHost: this.#opts.mediaSimulatorHost }),
      },
    });
    const send = this.#messaging.send;
    const governor = new SendGovernor({
      ratePerSec: send.ratePerSec,
      burst: send.burst,
      perRecipientIntervalMs: send.perRecipientIntervalMs,
      queueMax: send.queueMax,
      queueTimeoutMs: send.queueTimeoutMs,
      enabled: send.ratePerSec > 0,
    });
    const entry: Entry = { runner, epoch, validUntil, timer: undefined, governor };
    self.entry = entry;
    this.#entries.set(sessionId, entry);
    this.#arm(sessionId, entry);
    this.#log.info({ sessionId, epoch, reason: params.reason }, 'session starting');
    try {
      await runner.start();
    } catch (err) {
      if (this.#entries.get(sessionId) === entry) this.#remove(sessionId, entry);
      runner.abort('start failed');
      throw err;
    }
    return this.#info(sessionId, entry);
  }

  /** Planned stop (migration, shutdown, restart): flush, close without logout. */
  async stop(sessionId: string, reason: string): Promise<boolean> {
    const entry = this.#entries.get(sessionId);
    if (!entry) return false;
    try {
      await entry.runner.stop(reason);
    } finally {
      if (this.#entries.get(sessionId) === entry) this.#remove(sessionId, entry);
    }
    return true;
  }

  /** The lease is gone: close at once, no flush (another owner may be writing). */
  abort(sessionId: string, reason: string): boolean {
    const entry = this.#entries.get(sessionId);
    if (!entry) return false;
    this.#remove(sessionId, entry);
    entry.runner.abort(reason);
    this.#log.warn({ sessionId, epoch: entry.epoch, reason }, 'session aborted');
    return true;
  }

  /** Unlinks the device and wipes its auth state. */
  async logout(sessionId: string): Promise<boolean> {
    const entry = this.#entries.get(sessionId);
    if (!entry) return false;
    try {
      await entry.runner.logout();
    } finally {
      if (this.#entries.get(sessionId) === entry) this.#remove(sessionId, entry);
    }
    return true;
  }

  async pairingCode(sessionId: string, phone: string): Promise<string> {
    const entry = this.#entries.get(sessionId);
    if (!entry) throw new GatewayError('SESSION_NOT_FOUND', `session ${sessionId} does not run on this shard`);
    return await entry.runner.requestPairingCode(phone);
  }

  /** Sends a message of a running session through its governor (IPC `message.send`). */
  async send(params: MessageSendParams, requestId?: string): Promise<MessageSendResult> {
    return await sendOne(params, this.#sendDeps(params.sessionId, requestId));
  }

  /** Read, edit, revoke, presence, number lookup (IPC `session.action`). */
  async action(sessionId: string, action: SessionAction): Promise<SessionActionResult> {
    return await runAction(action, this.#sendDeps(sessionId));
  }

  /** Group and community operations (IPC `group.action`). */
  async groupAction(sessionId: string, action: GroupAction): Promise<GroupActionResult> {
    const entry = this.#entries.get(sessionId);
    if (!entry) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${sessionId} does not run on this shard.`);
    const runner = entry.runner;
    return await runGroupAction(action, { sessionId, socket: () => runner.socket, connected: () => runner.status === 'connected', cache: runner.groups, blobs: this.#opts.blobs });
  }

  /** `requestId`: the API call behind a send (its stored message carries it as the correlation id). */
  #sendDeps(sessionId: string, requestId?: string): SendDeps {
    const entry = this.#entries.get(sessionId);
    if (!entry) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${sessionId} does not run on this shard.`);
    const runner = entry.runner;
    return {
      sessionId,
      socket: () => runner.socket,
      connected: () => runner.status === 'connected',
      acks: runner.acks,
      governor: entry.governor,
      blobs: this.#opts.blobs,
      media: this.#messaging.media,
      mediaBudget: this.#mediaBudget,
      inboundMedia: {
        maxBytes: this.#messaging.media.maxBytes,
        timeoutMs: this.#messaging.media.fetchTimeoutMs,
        ...(this.#opts.mediaSimulatorHost === undefined ? {} : { simulatorHost: this.#opts.mediaSimulatorHost }),
      },
      ackTimeoutMs: this.#opts.ackTimeoutMs ?? 20_000,
      noteSent: (id: string) => runner.noteApiSend(id, requestId),
      storeSent: async (sock: WASocket, sent: WAMessage) => await runner.storeSent(sock, sent),
      relayed: this.#relayed,
    };
  }

  /** The sessions' waits for durable auth writes before their stanzas left, since the shard started. */
  durableStats(): AuthDurableStats {
    return this.#durableWaits.stats();
  }

  /** The login gate's figures for the stats request. */
  gateStats(): GateStats {
    return this.#opts.gate.stats();
  }

  /** Governor figures of every session (depth, waits) for the stats request. */
  governorStats(): { sessionId: string; stats: GovernorStats }[] {
    return [...this.#entries].map(([sessionId, e]) => ({ sessionId, stats: e.governor.stats() }));
  }

  list(): ShardSessionInfo[] {
    return [...this.#entries].map(([id, e]) => this.#info(id, e));
  }

  /** New validity after a renewal; returns the ids this shard does not run (the router drops them). */
  extend(leases: readonly LeaseGrant[]): string[] {
    const unknown: string[] = [];
    for (const l of leases) {
      const entry = this.#entries.get(l.sessionId);
      if (!entry || entry.epoch !== l.epoch) unknown.push(l.sessionId);
      else this.#extend(entry, l.validUntil);
    }
    return unknown;
  }

  /** Graceful shutdown: every session flushes and closes without logout, in parallel. */
  async stopAll(reason: string): Promise<number> {
    const ids = [...this.#entries.keys()];
    const results = await Promise.allSettled(ids.map((id) => this.stop(id, reason)));
    for (const r of results) if (r.status === 'rejected') this.#log.error({ err: r.reason as unknown }, 'session stop failed');
    return ids.length;
  }

  #info(sessionId: string, e: Entry): ShardSessionInfo {
    const me = e.runner.account;
    return { sessionId, epoch: e.epoch, status: e.runner.status, validUntil: e.validUntil, ...(me === undefined ? {} : { me }) };
  }

  #extend(entry: Entry, validUntil: number): void {
    if (validUntil <= entry.validUntil) return;
    entry.validUntil = validUntil;
    // The armed timer re-arms itself for what is left when it fires (#arm): no clear-and-set per session at every
    // renewal round (idle CPU at thousands of sessions, docs/benchmarks.md "scale").
    if (entry.timer === undefined) this.#arm(entry.runner.id, entry);
  }

  #arm(sessionId: string, entry: Entry): void {
    clearTimeout(entry.timer);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, entry.validUntil - this.#now()));
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.#entries.get(sessionId) !== entry) return;
      if (this.#now() < entry.validUntil) this.#arm(sessionId, entry);
      else this.abort(sessionId, 'lease expired (not renewed in time)');
    }, delay);
    entry.timer.unref();
  }

  #remove(sessionId: string, entry: Entry): void {
    clearTimeout(entry.timer);
    entry.governor.close('session stopped').catch(() => undefined);
    entry.timer = undefined;
    this.#entries.delete(sessionId);
  }

  #emit(event: RunnerEvent): void {
    const at = new Date().toISOString();
    switch (event.type) {
      case 'status': {
        const { type: _t, ...rest } = event;
        this.#opts.emit({ type: 'session.status', ...rest, at });
        // A runner that ended by itself (logged out, failed) leaves the host; the router releases its lease.
        if (event.status === 'logged_out' || event.status === 'failed') {
          const entry = this.#entries.get(event.sessionId);
          if (entry && entry.epoch === event.epoch && entry.runner.stoppedOrFailed) this.#remove(event.sessionId, entry);
        }
        return;
      }
      case 'qr': {
        const { type: _t, ...rest } = event;
        this.#opts.emit({ type: 'session.qr', ...rest, at });
        return;
      }
    }
  }
}
