/**
 * SessionManager: the router's half of session ownership. The router is its host's lease agent:
 * - placement: least-loaded ready shard with room; the lease (owner `${hostId}/${shard}`) is claimed BEFORE the
 *   shard is told to start, and the shard gets the epoch and a `validUntil`;
 * - renewal: every lease of the host in one batch per owner every LEASE_RENEW_INTERVAL_MS, then one
 *   `leases.extend` per shard; a lease reported lost is aborted at once;
 * - recovery: a crashed shard's sessions are re-placed at once (its process is gone: release, claim with a
 *   higher epoch, start elsewhere, no new QR); at start every session that should run is restored;
 * - migration and scaling: stop (flush, close without logout), release, claim for the target, start;
 * - events: status/QR from shards are persisted (sessions row + webhook in one transaction), cached (QR) and
 *   published on the SSE hub.
 */
import { createHash, randomUUID } from 'node:crypto';
import { GatewayError, blobKeys } from '@wagw/shared';
import type {
  BlobStore,
  HostRecord,
  HostRegistry,
  IpcRequestBody,
  IpcResult,
  LeaseGrant,
  Logger,
  QrCache,
  RequestKind,
  SessionDirectory,
  SessionMe,
  SessionQrEvent,
  SessionState,
  SessionStatusData,
  SessionStatusEvent,
  ShardEvent,
  SqlClient,
  WebhookEvent,
  WebhookOutbox,
} from '@wagw/shared';
import type { EventHub, HubEvent } from '../api/sse.ts';
import type { CallOptions, ShardInfo } from '../supervisor.ts';
import { placementHost } from './placement-host.ts';
import { SessionStore } from './store.ts';
import type { SessionRecord } from './store.ts';

/** The slice of the ShardSupervisor the manager uses. */
export interface ShardControl {
  readonly count: number;
  list(): ShardInfo[];
  call<K extends RequestKind>(index: number, request: IpcRequestBody<K>, options?: CallOptions): Promise<IpcResult<K>>;
  setCount(count: number): Promise<ShardInfo[]>;
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
}

interface LocalSession {
  shard: number;
  epoch: number;
  owner: string;
  validUntil: number;
  /** Planned stop in progress (migration, restart, shutdown): its `disconnected` is not a status change. */
  quiet: boolean;
  /**
   * Claimed but `session.start` not answered yet: the shard may not know the session, so renewals keep its lease
   * (and `validUntil`, read when the start is sent) but send it no `leases.extend`, whose "unknown" would read as
   * "the shard lost it" and re-place a session whose start is still on its way (two sockets; placement-race test).
   */
  starting: boolean;
  /**
   * The id of the API request that started this epoch (create, restart, migrate), carried as the correlation
   * id of the events it causes (`qr`, `connecting`, `connected`, a failure) until the session first connects or
   * ends; later events (network drops, reconnects) were not caused by a request and carry none.
   */
  cause?: string | undefined;
}

export interface SessionView {
  id: string;
  status: SessionState;
  reason?: string;
  me?: SessionMe;
  shard: number | null;
  host: string | null;
  desired: 'running' | 'stopped';
  metadata: Record<string, unknown>;
  webhookUrl: string | null;
  createdAt: string;
  updatedAt: string;
  connectedAt: string | null;
}

/** A host as `GET /api/v1/admin/hosts` shows it. */
export interface HostView extends HostRecord {
  state: 'alive' | 'draining' | 'dead';
  /** ISO time of its last heartbeat. */
  lastHeartbeatAt: string;
}

export interface ShardView {
  index: number;
  state: ShardInfo['state'];
  pid: number | null;
  sessions: number;
  maxSessions: number;
  draining: boolean;
  restarts: number;
}

/** Where a call for a session must go. */
export type Ownership = { kind: 'local'; shard: number } | { kind: 'idle' } | { kind: 'foreign'; hostId: string };

export function hostOfOwner(owner: string): string {
  const i = owner.lastIndexOf('/');
  return i < 0 ? owner : owner.slice(0, i);
}

export function toView(r: SessionRecord): SessionView {
  const v: SessionView = {
    id: r.id,
    status: r.status,
    shard: r.shard,
    host: r.hostId,
    desired: r.desired,
    metadata: r.metadata,
    webhookUrl: r.webhookUrl,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    connectedAt: r.connectedAt,
  };
  if (r.statusReason !== null) v.reason = r.statusReason;
  if (r.me !== null) v.me = r.me;
  return v;
}

/** Status a session is shown with when its row says it runs but no host holds its lease (see #withOwnership). */
const OWNER_LOST = { status: 'reconnecting', reason: 'owner host lost' } as const;
const OWNER_MOVING = { status: 'reconnecting', reason: 'moving to another host' } as const;

/** Order of orphans for one host: each host walks them in its own hashed order, so claims rarely collide. */
const hashedOrder = (hostId: string, ids: readonly string[]): string[] =>
  ids
    .map((id) => ({ id, k: createHash('sha1').update(`${hostId}|${id}`).digest('hex') }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.id);

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export class SessionManager {
  readonly store: SessionStore;
  readonly #o: SessionManagerOptions;
  readonly #log: Logger;
  readonly #local = new Map<string, LocalSession>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #eventChains = new Map<string, Promise<void>>();
  readonly #unplaced = new Set<string>();
  readonly #draining = new Set<number>();
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #placing: Promise<void> | undefined;
  #placeAgain = false;
  #stopping = false;
  /** This host is being drained: it hands its sessions away and claims none (orphans, hand-offs). */
  #drainingHost = false;
  #rebalanceTimer: NodeJS.Timeout | undefined;
  /**
   * Hand-offs whose target may not have claimed (and announced) them yet, by target host: counted as the
   * target's load until two heartbeats later, so rebalancing does not move the same load twice.
   */
  readonly #inFlight = new Map<string, { to: string; at: number }>();
  #rebalancing: Promise<void> | undefined;

  constructor(options: SessionManagerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'sessions' });
    this.store = new SessionStore(options.sql);
  }

  get hostId(): string {
    return this.#o.hostId;
  }

  /** Sessions running on this host right now. */
  get localCount(): number {
    return this.#local.size;
  }

  /** The shard and lease epoch a session runs under on this host, if it runs here. */
  leaseOf(id: string): { shard: number; epoch: number } | undefined {
    const l = this.#local.get(id);
    return l === undefined ? undefined : { shard: l.shard, epoch: l.epoch };
  }

  /** Starts the renewal/announce timer and restores every session that should run (in the background). */
  start(): Promise<void> {
    const tick = (): void => {
      this.#renewing ??= this.#renewTick().finally(() => {
        this.#renewing = undefined;
      });
    };
    this.#renewTimer = setInterval(tick, this.#o.lease.renewIntervalMs);
    this.#renewTimer.unref();
    const rb = this.#o.cluster?.rebalance;
    if (rb?.enabled === true && !this.#o.singleHost) {
      this.#rebalanceTimer = setInterval(() => {
        this.#rebalancing ??= this.rebalanceOnce().then(
          () => {
            this.#rebalancing = undefined;
          },
          (err: unknown) => {
            this.#rebalancing = undefined;
            this.#log.warn({ err: codeOf(err) ?? String(err) }, 'rebalancing failed');
          },
        );
      }, rb.intervalMs);
      this.#rebalanceTimer.unref();
    }
    void this.#announce();
    return this.restoreAll();
  }

  /** Restores every session whose desired state is `running` on this host. */
  async restoreAll(): Promise<void> {
    const ids = await this.store.idsToRestore(this.#o.singleHost ? undefined : this.#o.hostId);
    if (ids.length === 0) return;
    this.#log.info({ sessions: ids.length }, 'restoring sessions');
    for (const id of ids) this.#unplaced.add(id);
    await this.#placeUnplaced();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Ownership

  /** Where a call for this session goes: a shard of this host, another host, or nowhere (not running). */
  async ownership(id: string): Promise<Ownership> {
    const local = this.#local.get(id);
    if (local) return { kind: 'local', shard: local.shard };
    if (this.#o.singleHost) return { kind: 'idle' };
    const lease = await this.#o.directory.get(id);
    if (lease !== null && hostOfOwner(lease.owner) !== this.#o.hostId) return { kind: 'foreign', hostId: hostOfOwner(lease.owner) };
    return { kind: 'idle' };
  }

  async #record(id: string): Promise<SessionRecord> {
    const r = await this.store.get(id);
    if (r === null) throw new GatewayError('SESSION_NOT_FOUND', `No session ${id}.`, { id });
    return r;
  }

  // ---------------------------------------------------------------------------------------------------------
  // API operations

  async create(input: { id?: string; webhookUrl?: string; metadata?: Record<string, unknown> }, reqId?: string): Promise<{ id: string; status: SessionState; shard: number; host: string }> {
    if (this.#stopping) throw new GatewayError('SHUTTING_DOWN');
    // A draining host places nothing: the route forwards the create to placementHost() (this guard stops a
    // create forwarded here just as this host started draining).
    if (this.#drainingHost) throw new GatewayError('HOST_UNAVAILABLE', `Host ${this.#o.hostId} is draining; it takes no new sessions.`, { host: this.#o.hostId });
    const id = input.id ?? randomUUID();
    const webhookUrl = input.webhookUrl === undefined ? null : (this.#o.validateWebhookUrl?.(input.webhookUrl) ?? input.webhookUrl);
    const inserted = await this.store.insert({ id, hostId: this.#o.hostId, webhookUrl, metadata: input.metadata ?? {} });
    if (!inserted) throw new GatewayError('SESSION_EXISTS', `A session ${id} already exists.`, { id });
    try {
      const placed = await this.#withLock(id, () => this.#place(id, 'create', undefined, reqId));
      return { id, status: 'starting', shard: placed.shard, host: this.#o.hostId };
    } catch (err) {
      // Nothing runs: the caller may retry the creation with the same id.
      await this.store.delete(id).catch(() => undefined);
      throw err;
    }
  }

  async get(id: string): Promise<SessionView> {
    const [view] = await this.#withOwnership([toView(await this.#record(id))]);
    return view as SessionView;
  }

  async list(options: { limit: number; after?: string; ids?: readonly string[] }): Promise<SessionView[]> {
    return await this.#withOwnership((await this.store.list(options)).map(toView));
  }

  /**
   * The row says what the owner last reported; the lease says whether an owner still exists. A `connected` row
   * whose lease is gone (its host died or was cut off) is shown as `reconnecting`, never as alive, on every host;
   * so is one whose lease another host than the row's already holds (failover or hand-off under way).
   */
  async #withOwnership(views: SessionView[]): Promise<SessionView[]> {
    if (this.#o.singleHost) return views;
    return await Promise.all(
      views.map(async (v) => {
        if (v.status !== 'connected') return v;
        // Claimed here a moment ago, its row not yet rewritten: the status is the previous owner's.
        if (this.#local.has(v.id)) return v.host === this.#o.hostId ? v : { ...v, ...OWNER_MOVING };
        const lease = await this.#o.directory.get(v.id).catch(() => undefined);
        // Directory unreachable (undefined): the row is all we know.
        if (lease === null) return { ...v, ...OWNER_LOST };
        // Claimed by another host than the row names: the new owner is logging in (its row write follows).
        if (lease !== undefined && hostOfOwner(lease.owner) !== v.host) return { ...v, ...OWNER_MOVING };
        return v;
      }),
    );
  }

  /** The current QR (404 QR_NOT_AVAILABLE when none, 409 when connected). */
  async currentQr(id: string): Promise<{ qr: string; expiresAt: number; shard: number | null }> {
    const r = await this.#record(id);
    if (r.status === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED', `Session ${id} is connected; it has no QR code.`);
    const cached = await this.#o.qr.get(id);
    if (cached === null) throw new GatewayError('QR_NOT_AVAILABLE', `Session ${id} has no current QR code (status ${r.status}).`, { status: r.status });
    return { qr: cached.qr, expiresAt: cached.expiresAt, shard: this.#local.get(id)?.shard ?? null };
  }

  /** Renders a QR in a shard's piscina pool (the owner's when it is ready, else any ready shard). */
  async renderQr(text: string, format: 'png' | 'svg' | 'utf8', preferShard: number | null, reqId?: string): Promise<IpcResult<'qr.render'>> {
    const ready = this.#o.shards.list().filter((s) => s.state === 'ready');
    const shard = ready.find((s) => s.index === preferShard) ?? ready[0];
    if (!shard) throw new GatewayError('SHARD_UNAVAILABLE', 'No shard is ready to render the QR code.');
    return await this.#o.shards.call(shard.index, { kind: 'qr.render', text, format, width: 320 }, { requestId: reqId });
  }

  async pairingCode(id: string, phone: string, reqId?: string): Promise<string> {
    const r = await this.#record(id);
    if (r.status === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED');
    const local = this.#local.get(id);
    if (!local) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} is not running (status ${r.status}); restart it first.`, { status: r.status });
    const { code } = await this.#o.shards.call(local.shard, { kind: 'session.pairing-code', sessionId: id, phone }, { requestId: reqId, timeoutMs: 40_000 });
    return code;
  }

  /** Stops (flush, no logout) and starts the session again, on the same shard when it can. */
  async restart(id: string, reqId?: string): Promise<{ shard: number }> {
    await this.#record(id);
    return await this.#withLock(id, async () => {
      const local = this.#local.get(id);
      if (local) await this.#stopLocal(id, local, 'restart', reqId);
      await this.store.setDesired(id, 'running');
      return await this.#place(id, 'restart', local?.shard, reqId);
    });
  }

  /** Unlinks the device at WhatsApp, wipes its state, stops; the row stays with status logged_out. */
  async logout(id: string, reqId?: string): Promise<SessionView> {
    await this.#record(id);
    return await this.#withLock(id, async () => {
      await this.#logoutAndWipe(id, reqId);
      const r = await this.#writeStatus(id, { status: 'logged_out', reason: 'logout requested', me: null, desired: 'stopped' }, `logout|${Date.now()}`, undefined, reqId);
      if (r === null) throw new GatewayError('SESSION_NOT_FOUND', `No session ${id}.`);
      return toView(r);
    });
  }

  /** Stops, logs out and deletes every stored byte of the session (auth blobs, row, QR). */
  async delete(id: string, reqId?: string): Promise<void> {
    await this.#record(id);
    await this.#withLock(id, async () => {
      await this.#logoutAndWipe(id, reqId);
      await this.store.delete(id, async (tx) => {
        await this.#enqueue(tx, id, null, { status: 'logged_out', reason: 'deleted' }, `deleted|${Date.now()}`, reqId);
      });
      this.#o.hub.publish(id, { type: 'deleted', data: { id } });
    });
  }

  async #logoutAndWipe(id: string, reqId?: string): Promise<void> {
    const local = this.#local.get(id);
    if (local) {
      local.quiet = true;
      local.cause = reqId; // the shard's logged_out is this request's doing
      try {
        await this.#o.shards.call(local.shard, { kind: 'session.logout', sessionId: id, reason: 'logout requested' }, { requestId: reqId, timeoutMs: 20_000 });
      } catch (err) {
        this.#log.warn({ sessionId: id, err: codeOf(err) }, 'logout on the shard failed; aborting and wiping');
        await this.#o.shards.call(local.shard, { kind: 'session.abort', sessionId: id, reason: 'logout' }).catch(() => undefined);
      }
      this.#local.delete(id);
      await this.#release(id, local);
    }
    await this.#o.blobs.deletePrefix(blobKeys.session(id));
    await this.#o.qr.delete(id);
  }

  /** Hands a live session to another shard of this host: stop (flush), release, claim (higher epoch), start. */
  async migrate(id: string, target: { shard?: number; host?: string }, reqId?: string): Promise<{ id: string; shard: number; host: string; epoch: number }> {
    await this.#record(id);
    if (target.host !== undefined && target.host !== this.#o.hostId) {
      // The route hands the session off (handOff) and forwards the call to the target host.
      throw new GatewayError('VALIDATION_FAILED', 'Migration to another host goes through handOff.', { fields: [{ location: 'body', field: 'body.host', message: 'must be this host' }] });
    }
    return await this.#withLock(id, async () => {
      const local = this.#local.get(id);
      if (target.host !== undefined && target.shard === undefined && local) {
        // The target end of a cross-host migration (or a repeat of it): the session already runs here.
        return { id, shard: local.shard, host: this.#o.hostId, epoch: local.epoch };
      }
      if (target.host !== undefined && !local) {
        if (this.#drainingHost) throw new GatewayError('HOST_UNAVAILABLE', `Host ${this.#o.hostId} is draining.`, { host: this.#o.hostId });
        // Claimed here: a lease still held elsewhere makes #place refuse (CONFLICT), so two hosts never both run it.
        const placed = await this.#place(id, 'migrate', target.shard, reqId);
        return { id, shard: placed.shard, host: this.#o.hostId, epoch: placed.epoch };
      }
      const dest = target.shard ?? this.#pickShard(new Set(local ? [local.shard] : []));
      if (dest === undefined) throw new GatewayError('NO_CAPACITY', 'No other shard has room for the session.');
      this.#assertPlaceable(dest);
      if (local && local.shard === dest) return { id, shard: dest, host: this.#o.hostId, epoch: local.epoch };
      if (local) await this.#stopLocal(id, local, 'migrate', reqId);
      const placed = await this.#place(id, 'migrate', dest, reqId);
      return { id, shard: placed.shard, host: this.#o.hostId, epoch: placed.epoch };
    });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Shards (operators)

  shards(): ShardView[] {
    const counts = this.#countsByShard();
    return this.#o.shards.list().map((s) => ({
      index: s.index,
      state: s.state,
      pid: s.pid ?? null,
      sessions: counts.get(s.index) ?? 0,
      maxSessions: this.#o.maxSessionsPerShard,
      draining: this.#draining.has(s.index),
      restarts: s.restarts,
    }));
  }

  /** Grows (new shards take new sessions) or shrinks (sessions of removed shards migrate first). */
  async setShardCount(count: number): Promise<ShardView[]> {
    if (this.#stopping) throw new GatewayError('SHUTTING_DOWN');
    const current = this.#o.shards.count;
    if (count < current) for (let i = count; i < current; i++) this.#draining.add(i);
    try {
      await this.#o.shards.setCount(count);
    } finally {
      for (let i = count; i < current; i++) this.#draining.delete(i);
    }
    void this.#placeUnplaced();
    return this.shards();
  }

  /** Every known host (alive, draining, dead in the last hour) with its load and last heartbeat. */
  async hosts(): Promise<HostView[]> {
    await this.#announce();
    const now = Date.now();
    return (await this.#o.hosts.listAll()).map((h) => ({
      ...h,
      state: h.expiresAt <= now ? 'dead' : h.draining ? 'draining' : 'alive',
      lastHeartbeatAt: h.updatedAt,
    }));
  }

  /** The host a new session goes to while this one drains (sessions/placement-host.ts); null when none takes it. */
  async placementHost(): Promise<string | null> {
    return placementHost(await this.#o.hosts.list(), this.#o.hostId);
  }

  /** Whether this host is being drained (`/ready` answers 503 meanwhile). */
  get draining(): boolean {
    return this.#drainingHost;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Multi-host: hand-off, drain, rebalancing

  /**
   * First half of a cross-host migration: the row is given to `hostId` while this host still holds the lease
   * (so the target cannot claim it yet and this host's reconcile no longer restores it), then the session is
   * stopped like a shard migration (drain, flush, close without logout) and the lease released. The target
   * claims it with a higher epoch: at once when the caller then asks it (route), else at its next reconcile.
   */
  async handOff(id: string, hostId: string, reqId?: string): Promise<{ moved: boolean }> {
    await this.#record(id);
    const target = await this.#o.hosts.get(hostId);
    if (target === null) throw new GatewayError('HOST_UNAVAILABLE', `Host ${hostId} is not alive.`, { host: hostId });
    if (target.draining) throw new GatewayError('HOST_UNAVAILABLE', `Host ${hostId} is draining.`, { host: hostId });
    return await this.#withLock(id, async () => {
      const local = this.#local.get(id);
      if (!local) {
        const lease = await this.#o.directory.get(id);
        if (lease !== null) throw new GatewayError('CONFLICT', `Session ${id} runs on ${lease.owner}.`, { owner: lease.owner });
        await this.store.assign(id, hostId);
        return { moved: false };
      }
      await this.store.assign(id, hostId);
      this.#inFlight.set(id, { to: hostId, at: Date.now() });
      this.#unplaced.delete(id);
      await this.#stopLocal(id, local, `migrate to host ${hostId}`, reqId);
      this.#log.info({ sessionId: id, to: hostId }, 'session handed off to another host');
      return { moved: true };
    });
  }

  /** Live hosts other than this one that take sessions, with their load. */
  async #targets(): Promise<{ hostId: string; sessions: number; capacity: number }[]> {
    const pending = this.#pendingByHost();
    return (await this.#o.hosts.list())
      .filter((h) => h.hostId !== this.#o.hostId && !h.draining && h.shardsReady > 0 && h.capacity > h.sessions)
      .map((h) => ({ hostId: h.hostId, sessions: h.sessions + (pending.get(h.hostId) ?? 0), capacity: h.capacity }));
  }

  /** Recent hand-offs per target host (see #inFlight). */
  #pendingByHost(): Map<string, number> {
    const horizon = Date.now() - 2 * this.#o.lease.renewIntervalMs - 1000;
    const out = new Map<string, number>();
    for (const [id, f] of this.#inFlight) {
      if (f.at < horizon) this.#inFlight.delete(id);
      else out.set(f.to, (out.get(f.to) ?? 0) + 1);
    }
    return out;
  }

  /** The host with the lowest load counting the moves already planned (its count is bumped). */
  #leastLoaded(targets: { hostId: string; sessions: number; capacity: number }[]): string | undefined {
    let best: (typeof targets)[number] | undefined;
    for (const t of targets) {
      if (t.sessions >= t.capacity) continue;
      if (!best || t.sessions / t.capacity < best.sessions / best.capacity) best = t;
    }
    if (best) best.sessions++;
    return best?.hostId;
  }

  /**
   * Marks this host draining (announced at once: no host hands it sessions, /ready is 503) and hands every
   * session to the other live hosts, spread by load. Sessions with nowhere to go stay (reported).
   */
  async drain(reqId?: string): Promise<{ hostId: string; moved: number; remaining: number }> {
    this.#drainingHost = true;
    await this.#announce();
    // Sessions waiting for a placement here (restore, recovery) go too: their rows are given away unstarted.
    const moved = await this.#handAway([...new Set([...this.#local.keys(), ...this.#unplaced])], reqId);
    await this.#announce();
    return { hostId: this.#o.hostId, moved, remaining: this.#local.size };
  }

  /** Hands sessions (running or not) to the least-loaded other hosts; returns how many went. */
  async #handAway(ids: readonly string[], reqId?: string): Promise<number> {
    const targets = await this.#targets();
    this.#log.info({ sessions: ids.length, targets: targets.length }, 'handing sessions to other hosts');
    let moved = 0;
    await this.#mapLimit(ids, this.#o.placeConcurrency ?? 8, async (id) => {
      const to = this.#leastLoaded(targets);
      if (to === undefined) return;
      try {
        const unstarted = !this.#local.has(id);
        if ((await this.handOff(id, to, reqId)).moved || unstarted) moved++;
        this.#unplaced.delete(id);
      } catch (err) {
        if (codeOf(err) === 'SESSION_NOT_FOUND') this.#unplaced.delete(id);
        this.#log.error({ sessionId: id, to, err: codeOf(err) ?? String(err) }, 'hand-off while draining failed');
      }
    });
    return moved;
  }

  /**
   * One rebalancing step: while this host's load is above the mean of the live hosts by more than the
   * tolerance, hand off at most `maxMoves` connected sessions, the least busy first (messages seen), to the
   * least-loaded hosts. A session that is pairing or starting is never moved.
   */
  async rebalanceOnce(): Promise<{ moved: number }> {
    const rb = this.#o.cluster?.rebalance;
    if (!rb || this.#stopping || this.#drainingHost || this.#o.singleHost) return { moved: 0 };
    const capacity = this.#capacity();
    const hosts = (await this.#o.hosts.list()).filter((h) => !h.draining && h.capacity > 0 && h.hostId !== this.#o.hostId);
    const pending = this.#pendingByHost();
    const totalSessions = hosts.reduce((n, h) => n + h.sessions + (pending.get(h.hostId) ?? 0), 0) + this.#local.size;
    const totalCapacity = hosts.reduce((n, h) => n + h.capacity, 0) + capacity;
    if (hosts.length === 0 || capacity === 0) return { moved: 0 };
    const mean = totalSessions / totalCapacity;
    if (this.#local.size <= (mean + rb.tolerance) * capacity) return { moved: 0 };
    // Down to the mean (not just under the tolerance), so a new host fills up in a few steps.
    const want = Math.min(rb.maxMoves, Math.ceil(this.#local.size - mean * capacity));
    const candidates = [...this.#local].filter(([, l]) => !l.starting && !l.quiet).map(([id]) => id);
    const records = await Promise.all(candidates.map(async (id) => await this.store.get(id)));
    const connected = records.filter((r): r is SessionRecord => r !== null && r.status === 'connected').map((r) => r.id);
    const targets = await this.#targets();
    let moved = 0;
    for (const id of connected.slice(0, want)) {
      const to = this.#leastLoaded(targets);
      if (to === undefined) break;
      try {
        if ((await this.handOff(id, to)).moved) moved++;
      } catch (err) {
        this.#log.warn({ sessionId: id, to, err: codeOf(err) ?? String(err) }, 'rebalancing hand-off failed');
      }
    }
    if (moved > 0) this.#log.info({ moved, mean: Number(mean.toFixed(3)), sessions: this.#local.size }, 'rebalanced sessions to other hosts');
    return { moved };
  }

  /** Sessions this host accepts: ready, non-draining shards times SHARD_MAX_SESSIONS. */
  #capacity(): number {
    return this.#o.shards.list().filter((s) => s.state === 'ready' && !this.#draining.has(s.index)).length * this.#o.maxSessionsPerShard;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Supervisor hooks

  /** `beforeStop`: scale-down migrates the shard's sessions away; a router shutdown lets the shard stop them. */
  async beforeShardStop(index: number, reason: string): Promise<void> {
    const ids = [...this.#local].filter(([, l]) => l.shard === index).map(([id]) => id);
    if (this.#stopping) {
      for (const id of ids) {
        const l = this.#local.get(id);
        if (l) l.quiet = true;
      }
      return;
    }
    this.#draining.add(index);
    this.#log.info({ shard: index, sessions: ids.length, reason }, 'draining shard by migration');
    await this.#mapLimit(ids, this.#o.placeConcurrency ?? 8, async (id) => {
      try {
        await this.migrate(id, {});
      } catch (err) {
        this.#log.error({ sessionId: id, shard: index, err: codeOf(err) ?? String(err) }, 'migration off a stopping shard failed');
      }
    });
  }

  /** A shard changed state: a dead process frees its sessions at once; a ready one takes waiting sessions. */
  onShardState(info: ShardInfo): void {
    if (info.state === 'ready') {
      void this.#placeUnplaced();
      return;
    }
    if (info.state !== 'restarting' && info.state !== 'failed' && info.state !== 'stopped') return;
    const orphans = [...this.#local].filter(([, l]) => l.shard === info.index);
    if (orphans.length === 0) return;
    if (this.#stopping) this.#log.info({ shard: info.index, sessions: orphans.length }, 'shard stopped with the router');
    else this.#log.warn({ shard: info.index, state: info.state, sessions: orphans.length }, 'shard gone; re-placing its sessions');
    for (const [id, l] of orphans) {
      this.#local.delete(id);
      // The process is dead: no socket of it survives, so the lease can go now (not at its expiry).
      void this.#release(id, l);
      if (!this.#stopping) this.#unplaced.add(id);
    }
    if (!this.#stopping) void this.#placeUnplaced();
  }

  onShardEvent(index: number, event: ShardEvent): void {
    switch (event.type) {
      case 'session.status':
        this.#chain(event.sessionId, () => this.#onStatus(index, event));
        return;
      case 'session.qr':
        this.#chain(event.sessionId, () => this.#onQr(index, event));
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Shutdown

  /** First step of a router stop: no new placements, planned stops are not status changes, SSE ends. */
  beginShutdown(): void {
    this.#stopping = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#rebalanceTimer);
    for (const l of this.#local.values()) l.quiet = true;
    this.#o.hub.close();
  }

  /** Last step (after the shards stopped and flushed): releases every lease so a peer can take over at once. */
  async releaseAll(): Promise<void> {
    await this.#renewing?.catch(() => undefined);
    const all = [...this.#local];
    this.#local.clear();
    await Promise.allSettled(all.map(([id, l]) => this.#release(id, l)));
    await Promise.allSettled([...this.#eventChains.values()]);
    await this.#o.hosts.remove(this.#o.hostId).catch(() => undefined);
    this.#log.info({ released: all.length }, 'leases released');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Placement

  #countsByShard(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const l of this.#local.values()) counts.set(l.shard, (counts.get(l.shard) ?? 0) + 1);
    return counts;
  }

  /** Least-loaded ready shard with room, not draining, not excluded. */
  #pickShard(exclude: ReadonlySet<number> = new Set()): number | undefined {
    const counts = this.#countsByShard();
    let best: number | undefined;
    let bestLoad = Infinity;
    for (const s of this.#o.shards.list()) {
      if (s.state !== 'ready' || this.#draining.has(s.index) || exclude.has(s.index)) continue;
      const load = counts.get(s.index) ?? 0;
      if (load >= this.#o.maxSessionsPerShard) continue;
      if (load < bestLoad) {
        best = s.index;
        bestLoad = load;
      }
    }
    return best;
  }

  #assertPlaceable(shard: number): void {
    const info = this.#o.shards.list().find((s) => s.index === shard);
    if (!info) throw new GatewayError('VALIDATION_FAILED', `No shard ${shard} on this host.`, { fields: [{ location: 'body', field: 'body.shard', message: `must be 0-${this.#o.shards.count - 1}` }] });
    if (info.state !== 'ready' || this.#draining.has(shard)) throw new GatewayError('SHARD_UNAVAILABLE', `Shard ${shard} is ${this.#draining.has(shard) ? 'draining' : info.state}.`, { shard });
    if ((this.#countsByShard().get(shard) ?? 0) >= this.#o.maxSessionsPerShard) throw new GatewayError('NO_CAPACITY', `Shard ${shard} is full.`, { shard });
  }

  #validUntil(sentAt: number): number {
    const { ttlMs } = this.#o.lease;
    // Margin for the IPC hop and timer slack: the shard gives up its socket before the directory would.
    return sentAt + ttlMs - Math.max(500, Math.floor(ttlMs / 10));
  }

  /** Claims the lease for a shard and starts the session there. Caller holds the session's lock. */
  async #place(id: string, reason: string, preferred: number | undefined, reqId?: string): Promise<{ shard: number; epoch: number }> {
    if (this.#stopping) throw new GatewayError('SHUTTING_DOWN');
    if (this.#local.has(id)) throw new GatewayError('CONFLICT', `Session ${id} is already running.`);
    let shard = preferred !== undefined && this.#isPlaceable(preferred) ? preferred : this.#pickShard();
    if (shard === undefined) {
      const ready = this.#o.shards.list().some((s) => s.state === 'ready');
      throw ready ? new GatewayError('NO_CAPACITY') : new GatewayError('SHARD_UNAVAILABLE', 'No shard is ready.');
    }
    const existing = await this.#o.directory.get(id);
    if (existing !== null) {
      if (hostOfOwner(existing.owner) !== this.#o.hostId) {
        throw new GatewayError('CONFLICT', `Session ${id} runs on host ${hostOfOwner(existing.owner)}.`, { host: hostOfOwner(existing.owner) });
      }
      // A lease of this host we do not track: left by a previous incarnation of this router (its shards are
      // gone with it) or by a shard that just died. Take it over with a higher epoch.
      const prevShard = Number(existing.owner.slice(existing.owner.lastIndexOf('/') + 1));
      if (preferred === undefined && this.#isPlaceable(prevShard)) shard = prevShard;
      else await this.#o.directory.release(id, existing.owner, existing.epoch);
    }
    const owner = `${this.#o.hostId}/${shard}`;
    const sentAt = Date.now();
    const claim = await this.#o.directory.claim(id, owner, this.#o.lease.ttlMs);
    if (!claim.ok) {
      throw new GatewayError('CONFLICT', `Session ${id} is held by ${claim.holder.owner}.`, { owner: claim.holder.owner });
    }
    const epoch = claim.lease.epoch;
    const local: LocalSession = { shard, epoch, owner, validUntil: this.#validUntil(sentAt), quiet: false, starting: true, cause: reqId };
    this.#local.set(id, local);
    try {
      await this.store.placed(id, this.#o.hostId, shard, epoch);
      // The lease may have been lost (renewal) while the row was written: then this epoch must not start at all.
      if (this.#local.get(id) !== local) throw new GatewayError('LEASE_LOST', `The lease of ${id} was lost before its start.`, { epoch });
      await this.#o.shards.call(shard, { kind: 'session.start', sessionId: id, epoch, validUntil: local.validUntil, reason }, { requestId: reqId });
      local.starting = false;
    } catch (err) {
      if (this.#local.get(id) === local) this.#local.delete(id);
      await this.#o.shards.call(shard, { kind: 'session.abort', sessionId: id, reason: 'start failed' }).catch(() => undefined);
      await this.#release(id, local);
      throw err;
    }
    this.#log.info({ sessionId: id, shard, epoch, reason }, 'session placed');
    return { shard, epoch };
  }

  #isPlaceable(shard: number): boolean {
    try {
      this.#assertPlaceable(shard);
      return true;
    } catch {
      return false;
    }
  }

  /** Planned stop of a local session (flush, close without logout) and release of its lease. */
  async #stopLocal(id: string, local: LocalSession, reason: string, reqId?: string): Promise<void> {
    local.quiet = true;
    try {
      await this.#o.shards.call(local.shard, { kind: 'session.stop', sessionId: id, reason }, { requestId: reqId, timeoutMs: 15_000 });
    } catch (err) {
      const code = codeOf(err);
      if (code !== 'SHARD_CRASHED' && code !== 'SHARD_UNAVAILABLE') {
        // The shard may still hold the socket: abort it and wait out its lease before anyone else runs it.
        this.#log.warn({ sessionId: id, shard: local.shard, err: code }, 'planned stop failed; aborting and waiting for the lease to lapse');
        await this.#o.shards.call(local.shard, { kind: 'session.abort', sessionId: id, reason }).catch(() => undefined);
        const wait = local.validUntil - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
    if (this.#local.get(id) === local) this.#local.delete(id);
    await this.#release(id, local);
  }

  async #release(id: string, local: LocalSession): Promise<void> {
    try {
      await this.#o.directory.release(id, local.owner, local.epoch);
    } catch (err) {
      this.#log.warn({ sessionId: id, err: codeOf(err) ?? String(err) }, 'lease release failed (it lapses by itself)');
    }
  }

  /** Places every waiting session (restore, recovery); one pass at a time, more passes when asked meanwhile. */
  #placeUnplaced(): Promise<void> {
    if (this.#placing) {
      this.#placeAgain = true;
      return this.#placing;
    }
    this.#placing = (async () => {
      do {
        this.#placeAgain = false;
        await this.#placePass();
      } while (this.#placeAgain && !this.#stopping);
    })().finally(() => {
      this.#placing = undefined;
    });
    return this.#placing;
  }

  async #placePass(): Promise<void> {
    if (this.#unplaced.size === 0 || this.#stopping) return;
    if (this.#drainingHost) {
      // A draining host starts nothing: what it should place (a crashed shard's sessions) goes to other hosts.
      await this.#handAway([...this.#unplaced]);
      return;
    }
    const ids = [...this.#unplaced];
    const desired = await this.store.desiredOf(ids).catch((err: unknown) => {
      this.#log.error({ err }, 'reading sessions to place failed');
      return null;
    });
    if (desired === null) return;
    await this.#mapLimit(ids, this.#o.placeConcurrency ?? 8, async (id) => {
      if (this.#stopping) return;
      if (desired.get(id) !== 'running') {
        this.#unplaced.delete(id);
        return;
      }
      try {
        await this.#withLock(id, async () => {
          if (this.#local.has(id)) return;
          await this.#place(id, 'recover', undefined);
        });
        this.#unplaced.delete(id);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'CONFLICT' || code === 'SESSION_NOT_FOUND') this.#unplaced.delete(id);
        this.#log.warn({ sessionId: id, err: code ?? String(err) }, 'placing a session failed; will retry');
      }
    });
  }

  async #mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  }

  async #withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Renewal

  async #renewTick(): Promise<void> {
    const byOwner = new Map<string, { shard: number; refs: { sessionId: string; epoch: number }[] }>();
    for (const [id, l] of this.#local) {
      let g = byOwner.get(l.owner);
      if (!g) byOwner.set(l.owner, (g = { shard: l.shard, refs: [] }));
      g.refs.push({ sessionId: id, epoch: l.epoch });
    }
    await Promise.all(
      [...byOwner].map(async ([owner, g]) => {
        const sentAt = Date.now();
        let lost: string[];
        try {
          lost = await this.#o.directory.renew(owner, g.refs, this.#o.lease.ttlMs);
        } catch (err) {
          // The shard aborts these sockets by itself when their validUntil passes.
          this.#log.error({ owner, sessions: g.refs.length, err: codeOf(err) ?? String(err) }, 'lease renewal failed');
          return;
        }
        const lostSet = new Set(lost);
        const validUntil = this.#validUntil(sentAt);
        const grants: LeaseGrant[] = [];
        for (const ref of g.refs) {
          const l = this.#local.get(ref.sessionId);
          if (!l || l.epoch !== ref.epoch) continue;
          if (lostSet.has(ref.sessionId)) continue;
          l.validUntil = validUntil;
          if (!l.starting) grants.push({ sessionId: ref.sessionId, epoch: ref.epoch, validUntil });
        }
        for (const id of lost) this.#onLeaseLost(id, g.shard, g.refs.find((r) => r.sessionId === id)?.epoch);
        if (grants.length === 0) return;
        try {
          const { unknown } = await this.#o.shards.call(g.shard, { kind: 'leases.extend', leases: grants });
          for (const id of unknown) {
            const l = this.#local.get(id);
            // Only the grant's own epoch: a session re-placed meanwhile (same shard, newer epoch) is fine.
            if (l && l.shard === g.shard && l.epoch === grants.find((x) => x.sessionId === id)?.epoch && !l.quiet) {
              this.#log.warn({ sessionId: id, shard: g.shard }, 'shard does not run a session it holds a lease for; re-placing');
              this.#local.delete(id);
              await this.#release(id, l);
              this.#unplaced.add(id);
            }
          }
        } catch (err) {
          this.#log.warn({ shard: g.shard, err: codeOf(err) }, 'leases.extend failed');
        }
      }),
    );
    // Every tick: a session handed to this host is claimed within one renewal interval.
    await this.#reconcile();
    await this.#claimOrphans();
    if (this.#unplaced.size > 0) void this.#placeUnplaced();
    await this.#announce();
  }

  /**
   * Safety net: every session that should run on this host but has no owner here (and no live lease
   * elsewhere) is queued for placement, whatever path lost track of it. Logged, since it should not happen.
   */
  async #reconcile(): Promise<void> {
    // A draining host gives its sessions away; it does not pick its rows up again.
    if (this.#stopping || this.#drainingHost) return;
    let ids: string[];
    try {
      ids = await this.store.idsToRestore(this.#o.singleHost ? undefined : this.#o.hostId);
    } catch (err) {
      this.#log.warn({ err: codeOf(err) ?? String(err) }, 'reconcile: reading sessions failed');
      return;
    }
    const missing: string[] = [];
    for (const id of ids) {
      if (this.#local.has(id) || this.#unplaced.has(id) || this.#locks.has(id)) continue;
      const lease = await this.#o.directory.get(id).catch(() => undefined);
      // Unreadable directory: try again next tick rather than start a session someone may hold.
      if (lease === undefined || (lease !== null && hostOfOwner(lease.owner) !== this.#o.hostId)) continue;
      missing.push(id);
    }
    if (missing.length === 0) return;
    this.#log.info({ sessions: missing.length, sample: missing.slice(0, 5) }, 'reconcile: sessions of this host have no owner; placing');
    for (const id of missing) this.#unplaced.add(id);
  }

  /**
   * Host failover: sessions that should run, whose recorded host is dead (no heartbeat for HOST_DEAD_AFTER_MS,
   * unknown, or alive without a ready shard) and whose lease is gone, are claimed by the live hosts. Each host takes at most its share per
   * pass, proportional to its free room, walking the orphans in its own hashed order; the lease decides a race
   * (a loser's claim fails with CONFLICT and it does nothing). `#place` writes `sessions.host_id` to this host.
   */
  async #claimOrphans(): Promise<void> {
    if (this.#stopping || this.#drainingHost || this.#o.singleHost) return;
    const myFree = this.#capacity() - this.#local.size - this.#unplaced.size;
    if (myFree <= 0) return;
    let orphans: string[];
    let alive: HostRecord[];
    try {
      alive = await this.#o.hosts.list();
      // A host that heartbeats without a ready shard (crash loop, start-up) cannot run its sessions either: once
      // their leases are gone they are as orphaned as a dead host's (its own claims still race fairly).
      const aliveIds = [...new Set([...alive.filter((h) => h.shardsReady > 0).map((h) => h.hostId), this.#o.hostId])];
      orphans = await this.store.idsOfDeadHosts(aliveIds);
    } catch (err) {
      this.#log.warn({ err: codeOf(err) ?? String(err) }, 'orphan scan: reading hosts or sessions failed');
      return;
    }
    const free: string[] = [];
    for (const id of orphans) {
      if (this.#local.has(id) || this.#unplaced.has(id) || this.#locks.has(id)) continue;
      const lease = await this.#o.directory.get(id).catch(() => undefined);
      if (lease === null) free.push(id);
    }
    if (free.length === 0) return;
    const othersFree = alive
      .filter((h) => h.hostId !== this.#o.hostId && !h.draining && h.shardsReady > 0)
      .reduce((n, h) => n + Math.max(0, h.capacity - h.sessions), 0);
    const share = Math.min(myFree, Math.ceil((free.length * myFree) / (myFree + othersFree)));
    const mine = hashedOrder(this.#o.hostId, free).slice(0, share);
    this.#log.warn({ orphans: free.length, claiming: mine.length }, 'sessions of dead hosts without a lease; claiming a share');
    for (const id of mine) this.#unplaced.add(id);
  }

  #onLeaseLost(id: string, shard: number, epoch: number | undefined): void {
    const l = this.#local.get(id);
    if (!l || l.epoch !== epoch) return;
    this.#local.delete(id);
    this.#log.error({ sessionId: id, shard, epoch }, 'lease lost; aborting the socket');
    // Under the session's lock until the shard confirmed the abort: a re-placement may pick another shard, and the
    // IPC channels of two shards are not ordered with each other, so a new login could otherwise reach WhatsApp
    // while the old socket is still open (two live sockets; chaos campaign, "Redis restarted, data lost").
    // Placement passes and reconcile wait for or skip a session whose lock is held.
    void this.#withLock(id, async () => {
      await this.#o.shards.call(shard, { kind: 'session.abort', sessionId: id, reason: 'lease lost' }).catch(() => undefined);
      // When nobody holds it now (it lapsed while the directory was unreachable), run it again.
      const lease = await this.#o.directory.get(id).catch(() => undefined);
      if (lease === null) this.#unplaced.add(id);
    }).then(() => {
      if (this.#unplaced.has(id)) void this.#placeUnplaced();
    });
  }

  async #announce(): Promise<void> {
    try {
      await this.#o.hosts.announce(
        {
          hostId: this.#o.hostId,
          url: this.#o.publicUrl(),
          shards: this.#o.shards.count,
          shardsReady: this.#o.shards.list().filter((s) => s.state === 'ready').length,
          sessions: this.#local.size,
          capacity: this.#capacity(),
          draining: this.#drainingHost,
        },
        this.#o.cluster?.hostDeadAfterMs ?? 3 * this.#o.lease.renewIntervalMs,
      );
    } catch (err) {
      this.#log.warn({ err: codeOf(err) ?? String(err) }, 'host announce failed');
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Events from shards

  #chain(id: string, fn: () => Promise<void>): void {
    const prev = this.#eventChains.get(id) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => this.#log.error({ sessionId: id, err }, 'session event handling failed'));
    this.#eventChains.set(id, next);
    void next.then(() => {
      if (this.#eventChains.get(id) === next) this.#eventChains.delete(id);
    });
  }

  #current(index: number, id: string, epoch: number): LocalSession | undefined {
    const l = this.#local.get(id);
    return l && l.shard === index && l.epoch === epoch ? l : undefined;
  }

  async #onStatus(index: number, ev: SessionStatusEvent): Promise<void> {
    const l = this.#current(index, ev.sessionId, ev.epoch);
    if (!l) {
      this.#log.debug({ sessionId: ev.sessionId, epoch: ev.epoch, status: ev.status }, 'status of a stale owner ignored');
      return;
    }
    if (l.quiet && ev.status === 'disconnected') return;
    const ended = ev.status === 'logged_out' || ev.status === 'failed';
    const write = {
      status: ev.status,
      reason: ev.reason ?? null,
      ownerEpoch: ev.epoch,
      ...(ev.me !== undefined ? { me: ev.me } : ev.status === 'logged_out' ? { me: null } : {}),
      ...(ended ? { desired: 'stopped' as const } : {}),
    };
    const cause = l.cause;
    if (ev.status === 'connected' || ended) l.cause = undefined;
    await this.#writeStatus(ev.sessionId, write, `${ev.epoch}|${ev.seq}`, index, cause);
    if (ev.status === 'connected' || ended) await this.#o.qr.delete(ev.sessionId);
    if (ended && this.#local.get(ev.sessionId) === l) {
      this.#local.delete(ev.sessionId);
      await this.#release(ev.sessionId, l);
      if (ev.status === 'logged_out') await this.#o.blobs.deletePrefix(blobKeys.session(ev.sessionId));
    }
  }

  async #writeStatus(
    id: string,
    w: { status: SessionState; reason: string | null; me?: SessionMe | null; desired?: 'running' | 'stopped'; ownerEpoch?: number },
    fact: string,
    shard?: number,
    requestId?: string,
  ): Promise<SessionRecord | null> {
    const record = await this.store.writeStatus(id, w, async (tx, r) => {
      const data: SessionStatusData = { status: w.status };
      if (w.reason !== null) data.reason = w.reason;
      if (r.me !== null) data.me = r.me;
      await this.#enqueue(tx, id, r.webhookUrl, data, `${w.status}|${fact}`, requestId);
    });
    if (record !== null) {
      const data: Record<string, unknown> = { id, status: w.status, host: this.#o.hostId, shard: shard ?? record.shard, at: record.updatedAt };
      if (w.reason !== null) data['reason'] = w.reason;
      if (record.me !== null) data['me'] = record.me;
      this.#o.hub.publish(id, { type: 'status', data });
    }
    return record;
  }

  async #enqueue(tx: SqlClient, id: string, webhookUrl: string | null, data: SessionStatusData, fact: string, requestId?: string): Promise<void> {
    if (!this.#o.outbox) return;
    const event: WebhookEvent<SessionStatusData> = {
      id: `evt_${sha256(`${id}|session-status|${fact}`).slice(0, 32)}`,
      topic: 'session-status',
      sessionId: id,
      occurredAt: new Date().toISOString(),
      data,
      ...(requestId === undefined ? {} : { requestId }),
    };
    await this.#o.outbox.enqueue(tx, event, webhookUrl);
  }

  async #onQr(index: number, ev: SessionQrEvent): Promise<void> {
    const l = this.#current(index, ev.sessionId, ev.epoch);
    if (!l) return;
    const expiresAt = Date.parse(ev.at) + ev.ttlMs;
    await this.#o.qr.set(ev.sessionId, { qr: ev.qr, epoch: ev.epoch, index: ev.index, expiresAt }, ev.ttlMs);
    const qrExpiresAt = new Date(expiresAt).toISOString();
    this.#o.hub.publish(ev.sessionId, { type: 'qr', data: { id: ev.sessionId, qr: ev.qr, index: ev.index, expiresAt: qrExpiresAt } });
    await this.store.withRecord(ev.sessionId, async (tx, r) => {
      await this.#enqueue(tx, ev.sessionId, r.webhookUrl, { status: 'qr', qr: ev.qr, qrExpiresAt }, `qr|${sha256(ev.qr)}`, l.cause);
    });
  }

  /** What a new SSE client gets first: the session's current status (and QR when there is one). */
  async initialEvents(id: string): Promise<HubEvent[]> {
    const r = await this.#record(id);
    // The same ownership check as GET /:id: a stream never starts with `connected` for a session nobody runs.
    const [view] = await this.#withOwnership([toView(r)]);
    const status: Record<string, unknown> = { id, status: view?.status ?? r.status, host: r.hostId, shard: r.shard, at: r.updatedAt };
    if (view?.reason !== undefined) status['reason'] = view.reason;
    if (r.me !== null) status['me'] = r.me;
    const out: HubEvent[] = [{ type: 'status', data: status }];
    const qr = r.status === 'connected' ? null : await this.#o.qr.get(id);
    if (qr) out.push({ type: 'qr', data: { id, qr: qr.qr, index: qr.index, expiresAt: new Date(qr.expiresAt).toISOString() } });
    return out;
  }
}
