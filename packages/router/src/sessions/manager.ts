/**
 * SessionManager: the router's half of session ownership, as one facade for the API routes and the supervisor
 * hooks. The router is its host's lease agent; the work is split by concern (shared state in context.ts):
 * - placement.ts: least-loaded ready shard with room; the lease is claimed BEFORE the shard is told to start;
 *   recovery of a crashed shard's sessions (release at once, claim with a higher epoch elsewhere, no new QR);
 * - leases.ts: renewal rounds (one batch per owner, one `leases.extend` per shard), reconcile, lost leases;
 * - cluster-ops.ts: migration, hand-off to another host, host drain, rebalancing, failover claims of orphans;
 * - intake.ts: status/QR events from shards (sessions row + webhook in one transaction, QR cache, SSE);
 * - views.ts: what the API reads (ownership, session views, shards, hosts, SSE's first events).
 * The API operations that span those parts (create, restart, logout, delete) and the start/shutdown sequence
 * stay here.
 */
import { randomUUID } from 'node:crypto';
import { GatewayError, blobKeys } from '@wagw/shared';
import type { IpcResult, SessionState, ShardEvent } from '@wagw/shared';
import type { HubEvent } from '../api/sse.ts';
import type { ShardInfo } from '../supervisor.ts';
import type { SessionStore } from './store.ts';
import { ClusterOps } from './cluster-ops.ts';
import { SessionContext, codeOf } from './context.ts';
import type { SessionManagerOptions } from './context.ts';
import { StatusIntake } from './intake.ts';
import { LeaseAgent } from './leases.ts';
import { placementHost } from './placement-host.ts';
import { Placement } from './placement.ts';
import { SessionViews, toView } from './views.ts';
import type { HostView, Ownership, SessionView, ShardView } from './views.ts';

export type { ShardControl, SessionManagerOptions } from './context.ts';
export { hostOfOwner } from './context.ts';
export type { HostView, Ownership, SessionView, ShardView } from './views.ts';
export { toView } from './views.ts';

export class SessionManager {
  readonly store: SessionStore;
  readonly #ctx: SessionContext;
  readonly #placement: Placement;
  readonly #leases: LeaseAgent;
  readonly #cluster: ClusterOps;
  readonly #intake: StatusIntake;
  readonly #views: SessionViews;

  constructor(options: SessionManagerOptions) {
    this.#ctx = new SessionContext(options);
    this.store = this.#ctx.store;
    // Placement and cluster-ops need each other (a draining host hands away what it would place; moves place):
    // the callbacks resolve the fields when they run, after construction.
    this.#placement = new Placement(this.#ctx, async (ids) => await this.#cluster.handAway(ids));
    this.#cluster = new ClusterOps(this.#ctx, this.#placement);
    this.#leases = new LeaseAgent(this.#ctx, this.#placement, async () => await this.#cluster.claimOrphans());
    this.#intake = new StatusIntake(this.#ctx);
    this.#views = new SessionViews(this.#ctx);
  }

  get hostId(): string {
    return this.#ctx.o.hostId;
  }

  /** Sessions running on this host right now. */
  get localCount(): number {
    return this.#ctx.local.size;
  }

  /** The host a new session goes to while this one drains (sessions/placement-host.ts); null when none takes it. */
  async placementHost(): Promise<string | null> {
    return placementHost(await this.#ctx.o.hosts.list(), this.#ctx.o.hostId);
  }

  /** Whether this host is being drained (`/ready` answers 503 meanwhile). */
  get draining(): boolean {
    return this.#ctx.drainingHost;
  }

  /** The shard and lease epoch a session runs under on this host, if it runs here. */
  leaseOf(id: string): { shard: number; epoch: number } | undefined {
    const l = this.#ctx.local.get(id);
    return l === undefined ? undefined : { shard: l.shard, epoch: l.epoch };
  }

  /** Starts the renewal/announce rounds (and rebalancing) and restores every session that should run. */
  start(): Promise<void> {
    this.#leases.start();
    this.#cluster.start();
    void this.#ctx.announce();
    return this.restoreAll();
  }

  /** Restores every session whose desired state is `running` on this host. */
  async restoreAll(): Promise<void> {
    const ctx = this.#ctx;
    const ids = await ctx.store.idsToRestore(ctx.o.singleHost ? undefined : ctx.o.hostId);
    if (ids.length === 0) return;
    ctx.log.info({ sessions: ids.length }, 'restoring sessions');
    for (const id of ids) ctx.unplaced.add(id);
    await this.#placement.placeUnplaced();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reads (views.ts)

  ownership(id: string): Promise<Ownership> {
    return this.#views.ownership(id);
  }

  get(id: string): Promise<SessionView> {
    return this.#views.get(id);
  }

  list(options: { limit: number; after?: string; ids?: readonly string[] }): Promise<SessionView[]> {
    return this.#views.list(options);
  }

  currentQr(id: string): Promise<{ qr: string; expiresAt: number; shard: number | null }> {
    return this.#views.currentQr(id);
  }

  initialEvents(id: string): Promise<HubEvent[]> {
    return this.#views.initialEvents(id);
  }

  shards(): ShardView[] {
    return this.#views.shards();
  }

  hosts(): Promise<HostView[]> {
    return this.#views.hosts();
  }

  // ---------------------------------------------------------------------------------------------------------
  // API operations

  async create(input: { id?: string; webhookUrl?: string; metadata?: Record<string, unknown> }, reqId?: string): Promise<{ id: string; status: SessionState; shard: number; host: string }> {
    const ctx = this.#ctx;
    if (ctx.stopping) throw new GatewayError('SHUTTING_DOWN');
    // A draining host places nothing: the route forwards the create to placementHost() (this guard stops a
    // create forwarded here just as this host started draining).
    if (ctx.drainingHost) throw new GatewayError('HOST_UNAVAILABLE', `Host ${ctx.o.hostId} is draining; it takes no new sessions.`, { host: ctx.o.hostId });
    const id = input.id ?? randomUUID();
    const webhookUrl = input.webhookUrl === undefined ? null : (ctx.o.validateWebhookUrl?.(input.webhookUrl) ?? input.webhookUrl);
    const inserted = await ctx.store.insert({ id, hostId: ctx.o.hostId, webhookUrl, metadata: input.metadata ?? {} });
    if (!inserted) throw new GatewayError('SESSION_EXISTS', `A session ${id} already exists.`, { id });
    try {
      const placed = await ctx.withLock(id, () => this.#placement.place(id, 'create', undefined, reqId));
      return { id, status: 'starting', shard: placed.shard, host: ctx.o.hostId };
    } catch (err) {
      // Nothing runs: the caller may retry the creation with the same id.
      await ctx.store.delete(id).catch(() => undefined);
      throw err;
    }
  }

  /** Renders a QR in a shard's piscina pool (the owner's when it is ready, else any ready shard). */
  async renderQr(text: string, format: 'png' | 'svg' | 'utf8', preferShard: number | null, reqId?: string): Promise<IpcResult<'qr.render'>> {
    const { shards } = this.#ctx.o;
    const ready = shards.list().filter((s) => s.state === 'ready');
    const shard = ready.find((s) => s.index === preferShard) ?? ready[0];
    if (!shard) throw new GatewayError('SHARD_UNAVAILABLE', 'No shard is ready to render the QR code.');
    return await shards.call(shard.index, { kind: 'qr.render', text, format, width: 320 }, { requestId: reqId });
  }

  async pairingCode(id: string, phone: string, reqId?: string): Promise<string> {
    const ctx = this.#ctx;
    const r = await ctx.record(id);
    if (r.status === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED');
    const local = ctx.local.get(id);
    if (!local) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} is not running (status ${r.status}); restart it first.`, { status: r.status });
    const { code } = await ctx.o.shards.call(local.shard, { kind: 'session.pairing-code', sessionId: id, phone }, { requestId: reqId, timeoutMs: 40_000 });
    return code;
  }

  /** Stops (flush, no logout) and starts the session again, on the same shard when it can. */
  async restart(id: string, reqId?: string): Promise<{ shard: number }> {
    const ctx = this.#ctx;
    await ctx.record(id);
    return await ctx.withLock(id, async () => {
      const local = ctx.local.get(id);
      if (local) await this.#placement.stopLocal(id, local, 'restart', reqId);
      await ctx.store.setDesired(id, 'running');
      return await this.#placement.place(id, 'restart', local?.shard, reqId);
    });
  }

  /** Unlinks the device at WhatsApp, wipes its state, stops; the row stays with status logged_out. */
  async logout(id: string, reqId?: string): Promise<SessionView> {
    const ctx = this.#ctx;
    await ctx.record(id);
    return await ctx.withLock(id, async () => {
      await this.#logoutAndWipe(id, reqId);
      const r = await this.#intake.writeStatus(id, { status: 'logged_out', reason: 'logout requested', me: null, desired: 'stopped' }, `logout|${Date.now()}`, undefined, reqId);
      if (r === null) throw new GatewayError('SESSION_NOT_FOUND', `No session ${id}.`);
      return toView(r);
    });
  }

  /** Stops, logs out and deletes every stored byte of the session (auth blobs, row, QR). */
  async delete(id: string, reqId?: string): Promise<void> {
    const ctx = this.#ctx;
    await ctx.record(id);
    await ctx.withLock(id, async () => {
      await this.#logoutAndWipe(id, reqId);
      await ctx.store.delete(id, async (tx) => {
        await this.#intake.enqueue(tx, id, null, { status: 'logged_out', reason: 'deleted' }, `deleted|${Date.now()}`, reqId);
      });
      ctx.o.hub.publish(id, { type: 'deleted', data: { id } });
    });
  }

  async #logoutAndWipe(id: string, reqId?: string): Promise<void> {
    const ctx = this.#ctx;
    const local = ctx.local.get(id);
    if (local) {
      local.quiet = true;
      local.cause = reqId; // the shard's logged_out is this request's doing
      try {
        await ctx.o.shards.call(local.shard, { kind: 'session.logout', sessionId: id, reason: 'logout requested' }, { requestId: reqId, timeoutMs: 20_000 });
      } catch (err) {
        ctx.log.warn({ sessionId: id, err: codeOf(err) }, 'logout on the shard failed; aborting and wiping');
        await ctx.o.shards.call(local.shard, { kind: 'session.abort', sessionId: id, reason: 'logout' }).catch(() => undefined);
      }
      ctx.local.delete(id);
      await ctx.release(id, local);
    }
    await ctx.o.blobs.deletePrefix(blobKeys.session(id));
    await ctx.o.qr.delete(id);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Moves (cluster-ops.ts)

  /** Hands a live session to another shard of this host (or is the target end of a cross-host migration). */
  migrate(id: string, target: { shard?: number; host?: string }, reqId?: string): Promise<{ id: string; shard: number; host: string; epoch: number }> {
    return this.#cluster.migrate(id, target, reqId);
  }

  /** First half of a cross-host migration (cluster-ops.ts `handOff`). */
  handOff(id: string, hostId: string, reqId?: string): Promise<{ moved: boolean }> {
    return this.#cluster.handOff(id, hostId, reqId);
  }

  /** Marks this host draining and hands every session to the other live hosts. */
  drain(reqId?: string): Promise<{ hostId: string; moved: number; remaining: number }> {
    return this.#cluster.drain(reqId);
  }

  /** One rebalancing step (cluster-ops.ts). */
  rebalanceOnce(): Promise<{ moved: number }> {
    return this.#cluster.rebalanceOnce();
  }

  /** Grows (new shards take new sessions) or shrinks (sessions of removed shards migrate first). */
  async setShardCount(count: number): Promise<ShardView[]> {
    const ctx = this.#ctx;
    if (ctx.stopping) throw new GatewayError('SHUTTING_DOWN');
    const current = ctx.o.shards.count;
    if (count < current) for (let i = count; i < current; i++) ctx.drainingShards.add(i);
    try {
      await ctx.o.shards.setCount(count);
    } finally {
      for (let i = count; i < current; i++) ctx.drainingShards.delete(i);
    }
    void this.#placement.placeUnplaced();
    return this.shards();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Supervisor hooks

  /** `beforeStop`: scale-down migrates the shard's sessions away; a router shutdown lets the shard stop them. */
  beforeShardStop(index: number, reason: string): Promise<void> {
    return this.#cluster.beforeShardStop(index, reason);
  }

  /** A shard changed state: a dead process frees its sessions at once; a ready one takes waiting sessions. */
  onShardState(info: ShardInfo): void {
    this.#placement.onShardState(info);
  }

  /** Status and QR events of a shard (intake.ts). */
  onShardEvent(index: number, event: ShardEvent): void {
    this.#intake.onShardEvent(index, event);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Shutdown

  /** First step of a router stop: no new placements, planned stops are not status changes, SSE ends. */
  beginShutdown(): void {
    const ctx = this.#ctx;
    ctx.stopping = true;
    this.#leases.stop();
    this.#cluster.stop();
    for (const l of ctx.local.values()) l.quiet = true;
    ctx.o.hub.close();
  }

  /** Last step (after the shards stopped and flushed): releases every lease so a peer can take over at once. */
  async releaseAll(): Promise<void> {
    const ctx = this.#ctx;
    await this.#leases.settled();
    const all = [...ctx.local];
    ctx.local.clear();
    await Promise.allSettled(all.map(([id, l]) => ctx.release(id, l)));
    await this.#intake.settled();
    await ctx.o.hosts.remove(ctx.o.hostId).catch(() => undefined);
    ctx.log.info({ released: all.length }, 'leases released');
  }
}
