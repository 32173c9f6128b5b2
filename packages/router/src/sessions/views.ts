/**
 * What the API reads about sessions, shards and hosts. The row says what the owner last reported; the lease
 * says whether an owner still exists: a `connected` row nobody holds is shown `reconnecting`, on every host.
 */
import { GatewayError } from '@wagw/shared';
import type { HostRecord, SessionMe, SessionState } from '@wagw/shared';
import type { HubEvent } from '../api/sse.ts';
import type { ShardInfo } from '../supervisor.ts';
import type { SessionRecord } from './store.ts';
import { hostOfOwner } from './context.ts';
import type { SessionContext } from './context.ts';

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

/** Status a session is shown with when its row says it runs but no host holds its lease (see withOwnership). */
const OWNER_LOST = { status: 'reconnecting', reason: 'owner host lost' } as const;
const OWNER_MOVING = { status: 'reconnecting', reason: 'moving to another host' } as const;

export class SessionViews {
  readonly #ctx: SessionContext;

  constructor(ctx: SessionContext) {
    this.#ctx = ctx;
  }

  /** Where a call for this session goes: a shard of this host, another host, or nowhere (not running). */
  async ownership(id: string): Promise<Ownership> {
    const { o, local } = this.#ctx;
    const l = local.get(id);
    if (l) return { kind: 'local', shard: l.shard };
    if (o.singleHost) return { kind: 'idle' };
    const lease = await o.directory.get(id);
    if (lease !== null && hostOfOwner(lease.owner) !== o.hostId) return { kind: 'foreign', hostId: hostOfOwner(lease.owner) };
    return { kind: 'idle' };
  }

  async get(id: string): Promise<SessionView> {
    const [view] = await this.#withOwnership([toView(await this.#ctx.record(id))]);
    return view as SessionView;
  }

  async list(options: { limit: number; after?: string; ids?: readonly string[] }): Promise<SessionView[]> {
    return await this.#withOwnership((await this.#ctx.store.list(options)).map(toView));
  }

  /** The current QR (404 QR_NOT_AVAILABLE when none, 409 when connected). */
  async currentQr(id: string): Promise<{ qr: string; expiresAt: number; shard: number | null }> {
    const ctx = this.#ctx;
    const r = await ctx.record(id);
    if (r.status === 'connected') throw new GatewayError('SESSION_ALREADY_CONNECTED', `Session ${id} is connected; it has no QR code.`);
    const cached = await ctx.o.qr.get(id);
    if (cached === null) throw new GatewayError('QR_NOT_AVAILABLE', `Session ${id} has no current QR code (status ${r.status}).`, { status: r.status });
    return { qr: cached.qr, expiresAt: cached.expiresAt, shard: ctx.local.get(id)?.shard ?? null };
  }

  /** What a new SSE client gets first: the session's current status (and QR when there is one). */
  async initialEvents(id: string): Promise<HubEvent[]> {
    const ctx = this.#ctx;
    const r = await ctx.record(id);
    // The same ownership check as GET /:id: a stream never starts with `connected` for a session nobody runs.
    const [view] = await this.#withOwnership([toView(r)]);
    const status: Record<string, unknown> = { id, status: view?.status ?? r.status, host: r.hostId, shard: r.shard, at: r.updatedAt };
    if (view?.reason !== undefined) status['reason'] = view.reason;
    if (r.me !== null) status['me'] = r.me;
    const out: HubEvent[] = [{ type: 'status', data: status }];
    const qr = r.status === 'connected' ? null : await ctx.o.qr.get(id);
    if (qr) out.push({ type: 'qr', data: { id, qr: qr.qr, index: qr.index, expiresAt: new Date(qr.expiresAt).toISOString() } });
    return out;
  }

  shards(): ShardView[] {
    const ctx = this.#ctx;
    const counts = ctx.countsByShard();
    return ctx.o.shards.list().map((s) => ({
      index: s.index,
      state: s.state,
      pid: s.pid ?? null,
      sessions: counts.get(s.index) ?? 0,
      maxSessions: ctx.o.maxSessionsPerShard,
      draining: ctx.drainingShards.has(s.index),
      restarts: s.restarts,
    }));
  }

  /** Every known host (alive, draining, dead in the last hour) with its load and last heartbeat. */
  async hosts(): Promise<HostView[]> {
    const ctx = this.#ctx;
    await ctx.announce();
    const now = Date.now();
    return (await ctx.o.hosts.listAll()).map((h) => ({
      ...h,
      state: h.expiresAt <= now ? 'dead' : h.draining ? 'draining' : 'alive',
      lastHeartbeatAt: h.updatedAt,
    }));
  }

  /**
   * A `connected` row whose lease is gone (its host died or was cut off) is shown as `reconnecting`, never as
   * alive; so is one whose lease another host than the row's already holds (failover or hand-off under way).
   */
  async #withOwnership(views: SessionView[]): Promise<SessionView[]> {
    const { o, local } = this.#ctx;
    if (o.singleHost) return views;
    return await Promise.all(
      views.map(async (v) => {
        if (v.status !== 'connected') return v;
        // Claimed here a moment ago, its row not yet rewritten: the status is the previous owner's.
        if (local.has(v.id)) return v.host === o.hostId ? v : { ...v, ...OWNER_MOVING };
        const lease = await o.directory.get(v.id).catch(() => undefined);
        // Directory unreachable (undefined): the row is all we know.
        if (lease === null) return { ...v, ...OWNER_LOST };
        // Claimed by another host than the row names: the new owner is logging in (its row write follows).
        if (lease !== undefined && hostOfOwner(lease.owner) !== v.host) return { ...v, ...OWNER_MOVING };
        return v;
      }),
    );
  }
}
