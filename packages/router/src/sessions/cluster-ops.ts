/**
 * Moving sessions: migration between shards of this host (and the target end of a cross-host migration),
 * hand-off to another host, host drain, rebalancing, a scaled-away shard's sessions, and the failover claims of
 * dead hosts' sessions (run by each lease round, leases.ts). Every move is stop (flush, close without logout),
 * release, claim with a higher epoch, start; the lease decides any race between hosts.
 */
import { createHash } from 'node:crypto';
import { GatewayError } from '@wagw/shared';
import type { HostRecord } from '@wagw/shared';
import type { SessionRecord } from './store.ts';
import { SessionContext, codeOf, mapLimit } from './context.ts';
import type { Placement } from './placement.ts';
import { takesSessions } from './placement-host.ts';

/** Order of orphans for one host: each host walks them in its own hashed order, so claims rarely collide. */
const hashedOrder = (hostId: string, ids: readonly string[]): string[] =>
  ids
    .map((id) => ({ id, k: createHash('sha1').update(`${hostId}|${id}`).digest('hex') }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.id);

interface Target {
  hostId: string;
  sessions: number;
  capacity: number;
}

export class ClusterOps {
  readonly #ctx: SessionContext;
  readonly #placement: Placement;
  /**
   * Hand-offs whose target may not have claimed (and announced) them yet, by target host: counted as the
   * target's load until two heartbeats later, so rebalancing does not move the same load twice.
   */
  readonly #inFlight = new Map<string, { to: string; at: number }>();
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #rebalancing: Promise<void> | undefined;

  constructor(ctx: SessionContext, placement: Placement) {
    this.#ctx = ctx;
    this.#placement = placement;
  }

  /** Starts periodic rebalancing when configured (multi-host only). */
  start(): void {
    const ctx = this.#ctx;
    const rb = ctx.o.cluster?.rebalance;
    if (rb?.enabled !== true || ctx.o.singleHost) return;
    this.#rebalanceTimer = setInterval(() => {
      this.#rebalancing ??= this.rebalanceOnce().then(
        () => {
          this.#rebalancing = undefined;
        },
        (err: unknown) => {
          this.#rebalancing = undefined;
          ctx.log.warn({ err: codeOf(err) ?? String(err) }, 'rebalancing failed');
        },
      );
    }, rb.intervalMs);
    this.#rebalanceTimer.unref();
  }

  stop(): void {
    clearInterval(this.#rebalanceTimer);
  }

  /** Hands a live session to another shard of this host: stop (flush), release, claim (higher epoch), start. */
  async migrate(id: string, target: { shard?: number; host?: string }, reqId?: string): Promise<{ id: string; shard: number; host: string; epoch: number }> {
    const ctx = this.#ctx;
    const hostId = ctx.o.hostId;
    await ctx.record(id);
    if (target.host !== undefined && target.host !== hostId) {
      // The route hands the session off (handOff) and forwards the call to the target host.
      throw new GatewayError('VALIDATION_FAILED', 'Migration to another host goes through handOff.', { fields: [{ location: 'body', field: 'body.host', message: 'must be this host' }] });
    }
    return await ctx.withLock(id, async () => {
      const local = ctx.local.get(id);
      if (target.host !== undefined && target.shard === undefined && local) {
        // The target end of a cross-host migration (or a repeat of it): the session already runs here.
        return { id, shard: local.shard, host: hostId, epoch: local.epoch };
      }
      if (target.host !== undefined && !local) {
        if (ctx.drainingHost) throw new GatewayError('HOST_UNAVAILABLE', `Host ${hostId} is draining.`, { host: hostId });
        // Claimed here: a lease still held elsewhere makes place() refuse (CONFLICT), so two hosts never both run it.
        const placed = await this.#placement.place(id, 'migrate', target.shard, reqId);
        return { id, shard: placed.shard, host: hostId, epoch: placed.epoch };
      }
      const dest = target.shard ?? this.#placement.pickShard(new Set(local ? [local.shard] : []));
      if (dest === undefined) throw new GatewayError('NO_CAPACITY', 'No other shard has room for the session.');
      this.#placement.assertPlaceable(dest);
      if (local && local.shard === dest) return { id, shard: dest, host: hostId, epoch: local.epoch };
      if (local) await this.#placement.stopLocal(id, local, 'migrate', reqId);
      const placed = await this.#placement.place(id, 'migrate', dest, reqId);
      return { id, shard: placed.shard, host: hostId, epoch: placed.epoch };
    });
  }

  /** `beforeStop`: scale-down migrates the shard's sessions away; a router shutdown lets the shard stop them. */
  async beforeShardStop(index: number, reason: string): Promise<void> {
    const ctx = this.#ctx;
    const ids = [...ctx.local].filter(([, l]) => l.shard === index).map(([id]) => id);
    if (ctx.stopping) {
      for (const id of ids) {
        const l = ctx.local.get(id);
        if (l) l.quiet = true;
      }
      return;
    }
    ctx.drainingShards.add(index);
    ctx.log.info({ shard: index, sessions: ids.length, reason }, 'draining shard by migration');
    await mapLimit(ids, ctx.placeConcurrency, async (id) => {
      try {
        await this.migrate(id, {});
      } catch (err) {
        ctx.log.error({ sessionId: id, shard: index, err: codeOf(err) ?? String(err) }, 'migration off a stopping shard failed');
      }
    });
  }

  /**
   * First half of a cross-host migration: the row is given to `hostId` while this host still holds the lease
   * (so the target cannot claim it yet and this host's reconcile no longer restores it), then the session is
   * stopped like a shard migration (drain, flush, close without logout) and the lease released. The target
   * claims it with a higher epoch: at once when the caller then asks it (route), else at its next reconcile.
   */
  async handOff(id: string, hostId: string, reqId?: string): Promise<{ moved: boolean }> {
    const ctx = this.#ctx;
    await ctx.record(id);
    const target = await ctx.o.hosts.get(hostId);
    if (target === null) throw new GatewayError('HOST_UNAVAILABLE', `Host ${hostId} is not alive.`, { host: hostId });
    if (target.draining) throw new GatewayError('HOST_UNAVAILABLE', `Host ${hostId} is draining.`, { host: hostId });
    return await ctx.withLock(id, async () => {
      const local = ctx.local.get(id);
      if (!local) {
        const lease = await ctx.o.directory.get(id);
        if (lease !== null) throw new GatewayError('CONFLICT', `Session ${id} runs on ${lease.owner}.`, { owner: lease.owner });
        await ctx.store.assign(id, hostId);
        return { moved: false };
      }
      await ctx.store.assign(id, hostId);
      this.#inFlight.set(id, { to: hostId, at: Date.now() });
      ctx.unplaced.delete(id);
      await this.#placement.stopLocal(id, local, `migrate to host ${hostId}`, reqId);
      ctx.log.info({ sessionId: id, to: hostId }, 'session handed off to another host');
      return { moved: true };
    });
  }

  /**
   * Marks this host draining (announced at once: no host hands it sessions, /ready is 503) and hands every
   * session to the other live hosts, spread by load. Sessions with nowhere to go stay (reported).
   */
  async drain(reqId?: string): Promise<{ hostId: string; moved: number; remaining: number }> {
    const ctx = this.#ctx;
    ctx.drainingHost = true;
    await ctx.announce();
    // Sessions waiting for a placement here (restore, recovery) go too: their rows are given away unstarted.
    const moved = await this.handAway([...new Set([...ctx.local.keys(), ...ctx.unplaced])], reqId);
    await ctx.announce();
    return { hostId: ctx.o.hostId, moved, remaining: ctx.local.size };
  }

  /** Hands sessions (running or not) to the least-loaded other hosts; returns how many went. */
  async handAway(ids: readonly string[], reqId?: string): Promise<number> {
    const ctx = this.#ctx;
    const targets = await this.#targets();
    ctx.log.info({ sessions: ids.length, targets: targets.length }, 'handing sessions to other hosts');
    let moved = 0;
    await mapLimit(ids, ctx.placeConcurrency, async (id) => {
      const to = this.#leastLoaded(targets);
      if (to === undefined) return;
      try {
        const unstarted = !ctx.local.has(id);
        if ((await this.handOff(id, to, reqId)).moved || unstarted) moved++;
        ctx.unplaced.delete(id);
      } catch (err) {
        if (codeOf(err) === 'SESSION_NOT_FOUND') ctx.unplaced.delete(id);
        ctx.log.error({ sessionId: id, to, err: codeOf(err) ?? String(err) }, 'hand-off while draining failed');
      }
    });
    return moved;
  }

  /**
   * One rebalancing step: while this host's load is above the mean of the live hosts by more than the
   * tolerance, hand off at most `maxMoves` connected sessions, in the order this host holds them, to the
   * least-loaded hosts. A session that is pairing or starting is never moved.
   */
  async rebalanceOnce(): Promise<{ moved: number }> {
    const ctx = this.#ctx;
    const rb = ctx.o.cluster?.rebalance;
    if (!rb || ctx.stopping || ctx.drainingHost || ctx.o.singleHost) return { moved: 0 };
    const capacity = ctx.capacity();
    const hosts = (await ctx.o.hosts.list()).filter((h) => !h.draining && h.capacity > 0 && h.hostId !== ctx.o.hostId);
    const pending = this.#pendingByHost();
    const totalSessions = hosts.reduce((n, h) => n + h.sessions + (pending.get(h.hostId) ?? 0), 0) + ctx.local.size;
    const totalCapacity = hosts.reduce((n, h) => n + h.capacity, 0) + capacity;
    if (hosts.length === 0 || capacity === 0) return { moved: 0 };
    const mean = totalSessions / totalCapacity;
    if (ctx.local.size <= (mean + rb.tolerance) * capacity) return { moved: 0 };
    // Down to the mean (not just under the tolerance), so a new host fills up in a few steps.
    const want = Math.min(rb.maxMoves, Math.ceil(ctx.local.size - mean * capacity));
    const candidates = [...ctx.local].filter(([, l]) => !l.starting && !l.quiet).map(([id]) => id);
    const records = await Promise.all(candidates.map(async (id) => await ctx.store.get(id)));
    const connected = records.filter((r): r is SessionRecord => r !== null && r.status === 'connected').map((r) => r.id);
    const targets = await this.#targets();
    let moved = 0;
    for (const id of connected.slice(0, want)) {
      const to = this.#leastLoaded(targets);
      if (to === undefined) break;
      try {
        if ((await this.handOff(id, to)).moved) moved++;
      } catch (err) {
        ctx.log.warn({ sessionId: id, to, err: codeOf(err) ?? String(err) }, 'rebalancing hand-off failed');
      }
    }
    if (moved > 0) ctx.log.info({ moved, mean: Number(mean.toFixed(3)), sessions: ctx.local.size }, 'rebalanced sessions to other hosts');
    return { moved };
  }

  /**
   * Host failover: sessions that should run, whose recorded host is dead (no heartbeat for HOST_DEAD_AFTER_MS,
   * unknown, or alive without a ready shard) and whose lease is gone, are claimed by the live hosts. Each host
   * takes at most its share per pass, proportional to its free room, walking the orphans in its own hashed order;
   * the lease decides a race (a loser's claim fails with CONFLICT and it does nothing). Placement writes
   * `sessions.host_id` to this host.
   */
  async claimOrphans(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.stopping || ctx.drainingHost || ctx.o.singleHost) return;
    const timings = ctx.o.timings;
    await SessionContext.timed(async () => await this.#claimOrphans(), timings && ((s) => timings.orphanClaimPass(s)));
  }

  async #claimOrphans(): Promise<void> {
    const ctx = this.#ctx;
    const myFree = ctx.capacity() - ctx.local.size - ctx.unplaced.size;
    if (myFree <= 0) return;
    let orphans: string[];
    let alive: HostRecord[];
    try {
      alive = await ctx.o.hosts.list();
      // A host that heartbeats without a ready shard (crash loop, start-up) cannot run its sessions either: once
      // their leases are gone they are as orphaned as a dead host's (its own claims still race fairly).
      const aliveIds = [...new Set([...alive.filter((h) => h.shardsReady > 0).map((h) => h.hostId), ctx.o.hostId])];
      orphans = await ctx.store.idsOfDeadHosts(aliveIds);
    } catch (err) {
      ctx.log.warn({ err: codeOf(err) ?? String(err) }, 'orphan scan: reading hosts or sessions failed');
      return;
    }
    const free: string[] = [];
    for (const id of orphans) {
      if (ctx.local.has(id) || ctx.unplaced.has(id) || ctx.locks.has(id)) continue;
      const lease = await ctx.o.directory.get(id).catch(() => undefined);
      if (lease === null) free.push(id);
    }
    if (free.length === 0) return;
    const othersFree = alive
      .filter((h) => h.hostId !== ctx.o.hostId && takesSessions(h))
      .reduce((n, h) => n + Math.max(0, h.capacity - h.sessions), 0);
    const share = Math.min(myFree, Math.ceil((free.length * myFree) / (myFree + othersFree)));
    const mine = hashedOrder(ctx.o.hostId, free).slice(0, share);
    ctx.log.warn({ orphans: free.length, claiming: mine.length }, 'sessions of dead hosts without a lease; claiming a share');
    for (const id of mine) ctx.unplaced.add(id);
  }

  /** Live hosts other than this one that take sessions, with their load. */
  async #targets(): Promise<Target[]> {
    const ctx = this.#ctx;
    const pending = this.#pendingByHost();
    return (await ctx.o.hosts.list())
      .filter((h) => h.hostId !== ctx.o.hostId && takesSessions(h) && h.capacity > h.sessions)
      .map((h) => ({ hostId: h.hostId, sessions: h.sessions + (pending.get(h.hostId) ?? 0), capacity: h.capacity }));
  }

  /** Recent hand-offs per target host (see #inFlight). */
  #pendingByHost(): Map<string, number> {
    const horizon = Date.now() - 2 * this.#ctx.o.lease.renewIntervalMs - 1000;
    const out = new Map<string, number>();
    for (const [id, f] of this.#inFlight) {
      if (f.at < horizon) this.#inFlight.delete(id);
      else out.set(f.to, (out.get(f.to) ?? 0) + 1);
    }
    return out;
  }

  /** The host with the lowest load counting the moves already planned (its count is bumped). */
  #leastLoaded(targets: Target[]): string | undefined {
    let best: Target | undefined;
    for (const t of targets) {
      if (t.sessions >= t.capacity) continue;
      if (!best || t.sessions / t.capacity < best.sessions / best.capacity) best = t;
    }
    if (best) best.sessions++;
    return best?.hostId;
  }
}
