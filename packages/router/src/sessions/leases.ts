/**
 * Lease renewal rounds: every LEASE_RENEW_INTERVAL_MS every lease of this host is renewed in one batch per
 * owner, then each shard gets one `leases.extend` with the new `validUntil`; a lease reported lost is aborted
 * at once, and the host heartbeat follows. Each tick also runs, apart so that their SQL never delays a renewal,
 * the safety nets: reconcile (sessions of this host nobody runs), the orphan claims of dead hosts
 * (cluster-ops.ts), placement of what waits.
 */
import type { LeaseGrant } from '@wagw/shared';
import { SessionContext, codeOf, hostOfOwner } from './context.ts';
import type { Placement } from './placement.ts';

export class LeaseAgent {
  readonly #ctx: SessionContext;
  readonly #placement: Placement;
  /** The failover pass of each round (cluster-ops.ts `claimOrphans`). */
  readonly #claimOrphans: () => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #checking: Promise<void> | undefined;

  constructor(ctx: SessionContext, placement: Placement, claimOrphans: () => Promise<void>) {
    this.#ctx = ctx;
    this.#placement = placement;
    this.#claimOrphans = claimOrphans;
  }

  /**
   * Starts the rounds: every tick a renewal (directory, then `leases.extend`, then the host heartbeat) and, apart,
   * the safety nets (reconcile, orphan claims, placement), each one at a time (a slow one is not overlapped by the
   * next tick). Apart, because the safety nets read SQL: with the pool saturated (waits of 3 s per query on a loaded
   * box, after a PostgreSQL outage) a round that ran them before its next renewal renewed too late, and the shards
   * aborted their sessions one lease after another ("lease expired (not renewed in time)", chaos campaign).
   */
  start(): void {
    this.#timer = setInterval(() => {
      this.#renewing ??= this.#renewRound().finally(() => {
        this.#renewing = undefined;
      });
      this.#checking ??= this.#safetyNets()
        .catch((err: unknown) => this.#ctx.log.warn({ err: codeOf(err) ?? String(err) }, 'lease round safety nets failed'))
        .finally(() => {
          this.#checking = undefined;
        });
    }, this.#ctx.o.lease.renewIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Resolves when the renewal and the safety nets under way (if any) ended. */
  async settled(): Promise<void> {
    await Promise.all([this.#renewing?.catch(() => undefined), this.#checking]);
  }

  async #renewRound(): Promise<void> {
    const ctx = this.#ctx;
    const byOwner = new Map<string, { shard: number; refs: { sessionId: string; epoch: number }[] }>();
    for (const [id, l] of ctx.local) {
      let g = byOwner.get(l.owner);
      if (!g) byOwner.set(l.owner, (g = { shard: l.shard, refs: [] }));
      g.refs.push({ sessionId: id, epoch: l.epoch });
    }
    const timings = ctx.o.timings;
    await SessionContext.timed(
      async () => await Promise.all([...byOwner].map(async ([owner, g]) => await this.#renewOwner(owner, g.shard, g.refs))),
      timings && ((s) => timings.leaseRenewRound(s)),
    );
    await ctx.announce();
  }

  async #safetyNets(): Promise<void> {
    const ctx = this.#ctx;
    // Every tick: a session handed to this host is claimed within one renewal interval.
    await this.#reconcile();
    await this.#claimOrphans();
    if (ctx.unplaced.size > 0) void this.#placement.placeUnplaced();
  }

  /** Renews one owner's (one shard's) leases in the directory, then tells the shard their new `validUntil`. */
  async #renewOwner(owner: string, shard: number, refs: { sessionId: string; epoch: number }[]): Promise<void> {
    const ctx = this.#ctx;
    const sentAt = Date.now();
    let lost: string[];
    try {
      lost = await ctx.o.directory.renew(owner, refs, ctx.o.lease.ttlMs);
    } catch (err) {
      // The shard aborts these sockets by itself when their validUntil passes.
      ctx.log.error({ owner, sessions: refs.length, err: codeOf(err) ?? String(err) }, 'lease renewal failed');
      return;
    }
    const lostSet = new Set(lost);
    const validUntil = ctx.validUntil(sentAt);
    const grants: LeaseGrant[] = [];
    // Grants for sessions whose `session.start` was not answered yet: they are extended too (a start that loads
    // its auth state for longer than the lease, on a loaded box or a slow blob store, was aborted by its own lease
    // timer, again at every attempt: sessions that never came back), but an "unknown" answer to them means the
    // shard has not seen the start yet, not that it lost the session (placement-race test).
    const starting = new Set<string>();
    for (const ref of refs) {
      const l = ctx.local.get(ref.sessionId);
      if (!l || l.epoch !== ref.epoch) continue;
      if (lostSet.has(ref.sessionId)) continue;
      l.validUntil = validUntil;
      if (l.starting) starting.add(ref.sessionId);
      grants.push({ sessionId: ref.sessionId, epoch: ref.epoch, validUntil });
    }
    for (const id of lost) this.#onLeaseLost(id, shard, refs.find((r) => r.sessionId === id)?.epoch);
    if (grants.length === 0) return;
    try {
      const { unknown } = await ctx.o.shards.call(shard, { kind: 'leases.extend', leases: grants });
      for (const id of unknown) {
        const l = ctx.local.get(id);
        // Only the grant's own epoch: a session re-placed meanwhile (same shard, newer epoch) is fine.
        if (l && l.shard === shard && l.epoch === grants.find((x) => x.sessionId === id)?.epoch && !l.quiet && !starting.has(id)) {
          ctx.log.warn({ sessionId: id, shard }, 'shard does not run a session it holds a lease for; re-placing');
          ctx.local.delete(id);
          await ctx.release(id, l);
          ctx.unplaced.add(id);
        }
      }
    } catch (err) {
      ctx.log.warn({ shard, err: codeOf(err) }, 'leases.extend failed');
    }
  }

  /**
   * Safety net: every session that should run on this host but has no owner here (and no live lease
   * elsewhere) is queued for placement, whatever path lost track of it. Logged, since it should not happen.
   */
  async #reconcile(): Promise<void> {
    const ctx = this.#ctx;
    // A draining host gives its sessions away; it does not pick its rows up again.
    if (ctx.stopping || ctx.drainingHost) return;
    const timings = ctx.o.timings;
    await SessionContext.timed(async () => await this.#reconcilePass(), timings && ((s) => timings.reconcilePass(s)));
  }

  async #reconcilePass(): Promise<void> {
    const ctx = this.#ctx;
    let ids: string[];
    try {
      ids = await ctx.store.idsToRestore(ctx.o.singleHost ? undefined : ctx.o.hostId);
    } catch (err) {
      ctx.log.warn({ err: codeOf(err) ?? String(err) }, 'reconcile: reading sessions failed');
      return;
    }
    const missing: string[] = [];
    for (const id of ids) {
      if (ctx.local.has(id) || ctx.unplaced.has(id) || ctx.locks.has(id)) continue;
      const lease = await ctx.o.directory.get(id).catch(() => undefined);
      // Unreadable directory: try again next tick rather than start a session someone may hold.
      if (lease === undefined || (lease !== null && hostOfOwner(lease.owner) !== ctx.o.hostId)) continue;
      missing.push(id);
    }
    if (missing.length === 0) return;
    ctx.log.info({ sessions: missing.length, sample: missing.slice(0, 5) }, 'reconcile: sessions of this host have no owner; placing');
    for (const id of missing) ctx.unplaced.add(id);
  }

  #onLeaseLost(id: string, shard: number, epoch: number | undefined): void {
    const ctx = this.#ctx;
    const l = ctx.local.get(id);
    if (!l || l.epoch !== epoch) return;
    ctx.local.delete(id);
    ctx.log.error({ sessionId: id, shard, epoch }, 'lease lost; aborting the socket');
    // Under the session's lock until the shard confirmed the abort: a re-placement may pick another shard, and the
    // IPC channels of two shards are not ordered with each other, so a new login could otherwise reach WhatsApp
    // while the old socket is still open (two live sockets; chaos campaign, "Redis restarted, data lost").
    // Placement passes and reconcile wait for or skip a session whose lock is held.
    void ctx
      .withLock(id, async () => {
        await ctx.o.shards.call(shard, { kind: 'session.abort', sessionId: id, reason: 'lease lost' }).catch(() => undefined);
        // When nobody holds it now (it lapsed while the directory was unreachable), run it again.
        const lease = await ctx.o.directory.get(id).catch(() => undefined);
        if (lease === null) ctx.unplaced.add(id);
      })
      .then(() => {
        if (ctx.unplaced.has(id)) void this.#placement.placeUnplaced();
      });
  }
}
