/**
 * What the parts of the session manager share (manager.ts is the facade over them): the options, the sessions
 * this host runs (`local`), the per-session locks, the queue of sessions waiting for a placement, and the small
 * helpers every part needs (lock, lease release, capacity, host announce). State only: no part's logic lives here.
 *
 * Parts: placement.ts (shards, claim + start, stop, recovery), leases.ts (renewal rounds, reconcile, lost
 * leases), cluster-ops.ts (hand-off, drain, rebalancing, orphan claims), intake.ts (status/QR from shards),
 * views.ts (what the API reads).
 */
import { performance } from 'node:perf_hooks';
import { GatewayError } from '@wagw/shared';
import type { BlobStore, HostRegistry, IpcRequestBody, IpcResult, Logger, QrCache, RequestKind, SessionDirectory, WebhookOutbox } from '@wagw/shared';
import type { EventHub } from '../api/sse.ts';
import type { CallOptions, ShardInfo } from '../supervisor.ts';
import { SessionStore } from './store.ts';
import type { SessionRecord } from './store.ts';

/** The slice of the ShardSupervisor the manager uses. */
export interface ShardControl {
  readonly count: number;
  list(): ShardInfo[];
  call<K extends RequestKind>(index: number, request: IpcRequestBody<K>, options?: CallOptions): Promise<IpcResult<K>>;
  setCount(count: number): Promise<ShardInfo[]>;
}

/** Durations of the control-plane passes, in seconds (router metrics `wagw_*_seconds`, docs/architecture.md). */
export interface ControlPlaneTimings {
  /** One renewal of every lease of this host (all owners) and the `leases.extend` that follow. */
  leaseRenewRound(seconds: number): void;
  /** One reconcile pass (sessions of this host nobody runs). */
  reconcilePass(seconds: number): void;
  /** One placement: claim, row, `session.start` answered (or failed). */
  placement(seconds: number, reason: string, outcome: 'ok' | 'error'): void;
  /** One failover scan for dead hosts' sessions without a lease (multi-host only). */
  orphanClaimPass(seconds: number): void;
}

export interface SessionManagerOptions {
  hostId: string;
  /** URL other routers use to reach this one. */
  publicUrl: () => string;
  lease: { ttlMs: number; renewIntervalMs: number };
  maxSessionsPerShard: number;
  /** True when the directory is in-process (single host): every session in SQL is this host's. */
  singleHost: boolean;
  logger: Logger;
  shards: ShardControl;
  directory: SessionDirectory;
  blobs: BlobStore;
  sql: ConstructorParameters<typeof SessionStore>[0];
  qr: QrCache;
  hosts: HostRegistry;
  hub: EventHub;
  /** The durable webhook outbox (packages/router/src/webhooks); absent: no webhooks are recorded. */
  outbox?: WebhookOutbox;
  /** Multi-host membership, drain, rebalancing (config `cluster`); defaults: dead after 3 renewals, no rebalancing. */
  cluster?: { hostDeadAfterMs: number; rebalance: { enabled: boolean; intervalMs: number; maxMoves: number; tolerance: number } };
  /** Sessions placed at once during restore and recovery. */
  placeConcurrency?: number;
  /** Validates a session's webhookUrl at creation (webhook target policy); throws VALIDATION_FAILED. */
  validateWebhookUrl?: (url: string) => string;
  /** Control-plane timings (RouterMetrics.controlPlane); absent: not measured. */
  timings?: ControlPlaneTimings;
}

/** A session running on this host: its shard and lease. */
export interface LocalSession {
  shard: number;
  epoch: number;
  owner: string;
  validUntil: number;
  /** Planned stop in progress (migration, restart, shutdown): its `disconnected` is not a status change. */
  quiet: boolean;
  /**
   * Claimed but `session.start` not answered yet: the shard may not know the session yet. Renewals keep its lease
   * and `validUntil` (read when the start is sent) and send it `leases.extend` (a start can outlast one lease: its
   * auth state load), but an "unknown" answer to an extend sent while starting is not read as "the shard lost it":
   * that would re-place a session whose start is still on its way (two sockets; placement-race test).
   */
  starting: boolean;
  /**
   * The id of the API request that started this epoch (create, restart, migrate), carried as the correlation
   * id of the events it causes (`qr`, `connecting`, `connected`, a failure) until the session first connects or
   * ends; later events (network drops, reconnects) were not caused by a request and carry none.
   */
  cause?: string | undefined;
}

/** The host part of a lease owner `${hostId}/${shard}`. */
export function hostOfOwner(owner: string): string {
  const i = owner.lastIndexOf('/');
  return i < 0 ? owner : owner.slice(0, i);
}

export function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class SessionContext {
  readonly o: SessionManagerOptions;
  readonly log: Logger;
  readonly store: SessionStore;
  /** Sessions running on this host, by id. */
  readonly local = new Map<string, LocalSession>();
  /** Per-session locks (placement, stop, hand-off, lost-lease abort): see `withLock`. */
  readonly locks = new Map<string, Promise<unknown>>();
  /** Sessions waiting for a placement here (restore, recovery, reconcile, orphan claims). */
  readonly unplaced = new Set<string>();
  /** Shards being scaled away: they take no new session. */
  readonly drainingShards = new Set<number>();
  /** The router is stopping: no new placements, planned stops are not status changes. */
  stopping = false;
  /** This host is being drained: it hands its sessions away and claims none (orphans, hand-offs). */
  drainingHost = false;

  constructor(options: SessionManagerOptions) {
    this.o = options;
    this.log = options.logger.child({ component: 'sessions' });
    this.store = new SessionStore(options.sql);
  }

  /** Seconds since `t0` (a `performance.now()`), for the timings. */
  static since(t0: number): number {
    return (performance.now() - t0) / 1000;
  }

  /**
   * Runs `fn` and reports how long it took, in seconds, and whether it settled without throwing, whichever way
   * it ends (the control-plane histograms: renewal rounds, reconcile passes, orphan claims, placement).
   */
  static async timed<T>(fn: () => Promise<T>, observe: ((seconds: number, ok: boolean) => void) | undefined): Promise<T> {
    const t0 = performance.now();
    let ok = false;
    try {
      const value = await fn();
      ok = true;
      return value;
    } finally {
      observe?.(SessionContext.since(t0), ok);
    }
  }

  get placeConcurrency(): number {
    return this.o.placeConcurrency ?? 8;
  }

  async record(id: string): Promise<SessionRecord> {
    const r = await this.store.get(id);
    if (r === null) throw new GatewayError('SESSION_NOT_FOUND', `No session ${id}.`, { id });
    return r;
  }

  /** Runs `fn` after every earlier `withLock` of the same session (a failure does not break the chain). */
  async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  async release(id: string, local: LocalSession): Promise<void> {
    try {
      await this.o.directory.release(id, local.owner, local.epoch);
    } catch (err) {
      this.log.warn({ sessionId: id, err: codeOf(err) ?? String(err) }, 'lease release failed (it lapses by itself)');
    }
  }

  countsByShard(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const l of this.local.values()) counts.set(l.shard, (counts.get(l.shard) ?? 0) + 1);
    return counts;
  }

  /** Sessions this host accepts: ready, non-draining shards times SHARD_MAX_SESSIONS. */
  capacity(): number {
    return this.o.shards.list().filter((s) => s.state === 'ready' && !this.drainingShards.has(s.index)).length * this.o.maxSessionsPerShard;
  }

  /** The `validUntil` a shard gets for a lease claimed or renewed at `sentAt`. */
  validUntil(sentAt: number): number {
    const { ttlMs } = this.o.lease;
    // Margin for the IPC hop and timer slack: the shard gives up its socket before the directory would.
    return sentAt + ttlMs - Math.max(500, Math.floor(ttlMs / 10));
  }

  /** Heartbeat into the host registry with this host's load. */
  async announce(): Promise<void> {
    try {
      await this.o.hosts.announce(
        {
          hostId: this.o.hostId,
          url: this.o.publicUrl(),
          shards: this.o.shards.count,
          shardsReady: this.o.shards.list().filter((s) => s.state === 'ready').length,
          sessions: this.local.size,
          capacity: this.capacity(),
          draining: this.drainingHost,
        },
        this.o.cluster?.hostDeadAfterMs ?? 3 * this.o.lease.renewIntervalMs,
      );
    } catch (err) {
      this.log.warn({ err: codeOf(err) ?? String(err) }, 'host announce failed');
    }
  }
}
