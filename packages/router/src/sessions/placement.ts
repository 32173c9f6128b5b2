/**
 * Placement: which shard of this host runs a session, the claim-then-start of one placement, the planned stop,
 * and the queue of sessions waiting for a shard (restore at start, a crashed shard's sessions, reconcile,
 * orphan claims). The lease (owner `${hostId}/${shard}`) is claimed BEFORE the shard is told to start, and the
 * shard gets the epoch and a `validUntil`.
 */
import { GatewayError, backoffDelay } from '@wagw/shared';
import type { ShardInfo } from '../supervisor.ts';
import { SessionContext, codeOf, hostOfOwner, mapLimit } from './context.ts';
import type { LocalSession } from './context.ts';

/** The longest wait between start attempts of a session whose start keeps failing for a reason of its own. */
const START_RETRY_MAX_MS = 60_000;

export class Placement {
  readonly #ctx: SessionContext;
  /** Where a draining host sends what it would place (cluster-ops.ts `handAway`). */
  readonly #handAway: (ids: readonly string[]) => Promise<number>;
  #placing: Promise<void> | undefined;
  #placeAgain = false;
  /**
   * Sessions whose start failed for a reason of their own (an error without a code, or INTERNAL: e.g. an auth
   * state that cannot be read), with when the next attempt may run. Such a failure repeats on every attempt, so
   * retries back off (renewal interval doubling to START_RETRY_MAX_MS, jittered) instead of running every tick.
   * Failures of the shard, the host or a dependency are not counted: they clear on their own and recovery
   * waits on them.
   */
  readonly #startFailures = new Map<string, { count: number; notBefore: number }>();

  /** Shards picked in the placement pass under way (restore, recovery), for pickShard; undefined between passes. */
  #passPicks: Map<number, number> | undefined;

  constructor(ctx: SessionContext, handAway: (ids: readonly string[]) => Promise<number>) {
    this.#ctx = ctx;
    this.#handAway = handAway;
  }

  /**
   * Least-loaded ready shard with room, not draining, not excluded. During a placement pass (restore, recovery)
   * the shards picked fewest times in this pass come first, sessions second: each placement is a login the shard
   * runs next (on its own event loop, `SESSION_LOGIN_CONCURRENCY` at once), and by session count alone a crashed
   * shard's replacement (ready within seconds, empty) took nearly all of its sessions and logged them in on one
   * core (bench/scale: 1.2 of 2 cores busy, 1.67x the login-CPU bound; docs/benchmarks.md "scale").
   */
  pickShard(exclude: ReadonlySet<number> = new Set()): number | undefined {
    const { o, drainingShards } = this.#ctx;
    const counts = this.#ctx.countsByShard();
    const picks = this.#passPicks;
    let best: number | undefined;
    let bestPicks = Infinity;
    let bestLoad = Infinity;
    for (const s of o.shards.list()) {
      if (s.state !== 'ready' || drainingShards.has(s.index) || exclude.has(s.index)) continue;
      const load = counts.get(s.index) ?? 0;
      if (load >= o.maxSessionsPerShard) continue;
      const picked = picks?.get(s.index) ?? 0;
      if (picked < bestPicks || (picked === bestPicks && load < bestLoad)) {
        best = s.index;
        bestPicks = picked;
        bestLoad = load;
      }
    }
    if (best !== undefined && picks) picks.set(best, (picks.get(best) ?? 0) + 1);
    return best;
  }

  assertPlaceable(shard: number): void {
    const { o, drainingShards } = this.#ctx;
    const info = o.shards.list().find((s) => s.index === shard);
    if (!info) throw new GatewayError('VALIDATION_FAILED', `No shard ${shard} on this host.`, { fields: [{ location: 'body', field: 'body.shard', message: `must be 0-${o.shards.count - 1}` }] });
    if (info.state !== 'ready' || drainingShards.has(shard)) throw new GatewayError('SHARD_UNAVAILABLE', `Shard ${shard} is ${drainingShards.has(shard) ? 'draining' : info.state}.`, { shard });
    if ((this.#ctx.countsByShard().get(shard) ?? 0) >= o.maxSessionsPerShard) throw new GatewayError('NO_CAPACITY', `Shard ${shard} is full.`, { shard });
  }

  isPlaceable(shard: number): boolean {
    try {
      this.assertPlaceable(shard);
      return true;
    } catch {
      return false;
    }
  }

  /** Claims the lease for a shard and starts the session there. Caller holds the session's lock. */
  async place(id: string, reason: string, preferred: number | undefined, reqId?: string): Promise<{ shard: number; epoch: number }> {
    const timings = this.#ctx.o.timings;
    return await SessionContext.timed(
      async () => await this.#place(id, reason, preferred, reqId),
      timings && ((s, ok) => timings.placement(s, reason, ok ? 'ok' : 'error')),
    );
  }

  async #place(id: string, reason: string, preferred: number | undefined, reqId?: string): Promise<{ shard: number; epoch: number }> {
    const ctx = this.#ctx;
    const { o } = ctx;
    if (ctx.stopping) throw new GatewayError('SHUTTING_DOWN');
    if (ctx.local.has(id)) throw new GatewayError('CONFLICT', `Session ${id} is already running.`);
    let shard = preferred !== undefined && this.isPlaceable(preferred) ? preferred : this.pickShard();
    if (shard === undefined) {
      const ready = o.shards.list().some((s) => s.state === 'ready');
      throw ready ? new GatewayError('NO_CAPACITY') : new GatewayError('SHARD_UNAVAILABLE', 'No shard is ready.');
    }
    const existing = await o.directory.get(id);
    if (existing !== null) {
      if (hostOfOwner(existing.owner) !== o.hostId) {
        throw new GatewayError('CONFLICT', `Session ${id} runs on host ${hostOfOwner(existing.owner)}.`, { host: hostOfOwner(existing.owner) });
      }
      // A lease of this host we do not track: left by a previous incarnation of this router (its shards are
      // gone with it) or by a shard that just died. Take it over with a higher epoch.
      const prevShard = Number(existing.owner.slice(existing.owner.lastIndexOf('/') + 1));
      if (preferred === undefined && this.isPlaceable(prevShard)) shard = prevShard;
      else await o.directory.release(id, existing.owner, existing.epoch);
    }
    const owner = `${o.hostId}/${shard}`;
    const sentAt = Date.now();
    const claim = await o.directory.claim(id, owner, o.lease.ttlMs);
    if (!claim.ok) {
      throw new GatewayError('CONFLICT', `Session ${id} is held by ${claim.holder.owner}.`, { owner: claim.holder.owner });
    }
    const epoch = claim.lease.epoch;
    const local: LocalSession = { shard, epoch, owner, validUntil: ctx.validUntil(sentAt), quiet: false, starting: true, cause: reqId };
    ctx.local.set(id, local);
    try {
      await ctx.store.placed(id, o.hostId, shard, epoch);
      // The lease may have been lost (renewal) while the row was written: then this epoch must not start at all.
      if (ctx.local.get(id) !== local) throw new GatewayError('LEASE_LOST', `The lease of ${id} was lost before its start.`, { epoch });
      await o.shards.call(shard, { kind: 'session.start', sessionId: id, epoch, validUntil: local.validUntil, reason }, { requestId: reqId });
      local.starting = false;
    } catch (err) {
      if (ctx.local.get(id) === local) ctx.local.delete(id);
      await o.shards.call(shard, { kind: 'session.abort', sessionId: id, reason: 'start failed' }).catch(() => undefined);
      await ctx.release(id, local);
      throw err;
    }
    ctx.log.info({ sessionId: id, shard, epoch, reason }, 'session placed');
    return { shard, epoch };
  }

  /** Planned stop of a local session (flush, close without logout) and release of its lease. */
  async stopLocal(id: string, local: LocalSession, reason: string, reqId?: string): Promise<void> {
    const ctx = this.#ctx;
    local.quiet = true;
    try {
      await ctx.o.shards.call(local.shard, { kind: 'session.stop', sessionId: id, reason }, { requestId: reqId, timeoutMs: 15_000 });
    } catch (err) {
      const code = codeOf(err);
      if (code !== 'SHARD_CRASHED' && code !== 'SHARD_UNAVAILABLE') {
        // The shard may still hold the socket: abort it and wait out its lease before anyone else runs it.
        ctx.log.warn({ sessionId: id, shard: local.shard, err: code }, 'planned stop failed; aborting and waiting for the lease to lapse');
        await ctx.o.shards.call(local.shard, { kind: 'session.abort', sessionId: id, reason }).catch(() => undefined);
        const wait = local.validUntil - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
    if (ctx.local.get(id) === local) ctx.local.delete(id);
    await ctx.release(id, local);
  }

  /** A shard changed state: a dead process frees its sessions at once; a ready one takes waiting sessions. */
  onShardState(info: ShardInfo): void {
    const ctx = this.#ctx;
    if (info.state === 'ready') {
      void this.placeUnplaced();
      return;
    }
    if (info.state !== 'restarting' && info.state !== 'failed' && info.state !== 'stopped') return;
    const orphans = [...ctx.local].filter(([, l]) => l.shard === info.index);
    if (orphans.length === 0) return;
    if (ctx.stopping) ctx.log.info({ shard: info.index, sessions: orphans.length }, 'shard stopped with the router');
    else ctx.log.warn({ shard: info.index, state: info.state, sessions: orphans.length }, 'shard gone; re-placing its sessions');
    for (const [id, l] of orphans) {
      ctx.local.delete(id);
      // The process is dead: no socket of it survives, so the lease can go now (not at its expiry).
      void ctx.release(id, l);
      if (!ctx.stopping) ctx.unplaced.add(id);
    }
    if (!ctx.stopping) void this.placeUnplaced();
  }

  /** Places every waiting session (restore, recovery); one pass at a time, more passes when asked meanwhile. */
  placeUnplaced(): Promise<void> {
    if (this.#placing) {
      this.#placeAgain = true;
      return this.#placing;
    }
    this.#placing = (async () => {
      do {
        this.#placeAgain = false;
        await this.#placePass();
      } while (this.#placeAgain && !this.#ctx.stopping);
    })().finally(() => {
      this.#placing = undefined;
    });
    return this.#placing;
  }

  async #placePass(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.unplaced.size === 0 || ctx.stopping) return;
    if (ctx.drainingHost) {
      // A draining host starts nothing: what it should place (a crashed shard's sessions) goes to other hosts.
      await this.#handAway([...ctx.unplaced]);
      return;
    }
    const ids = [...ctx.unplaced];
    const desired = await ctx.store.desiredOf(ids).catch((err: unknown) => {
      ctx.log.error({ err }, 'reading sessions to place failed');
      return null;
    });
    if (desired === null) return;
    const now = Date.now();
    for (const id of this.#startFailures.keys()) if (!ctx.unplaced.has(id)) this.#startFailures.delete(id);
    this.#passPicks = new Map();
    await mapLimit(ids, ctx.placeConcurrency, async (id) => {
      if (ctx.stopping) return;
      if (desired.get(id) !== 'running') {
        ctx.unplaced.delete(id);
        return;
      }
      const failed = this.#startFailures.get(id);
      if (failed !== undefined && failed.notBefore > now) return;
      try {
        await ctx.withLock(id, async () => {
          if (ctx.local.has(id)) return;
          await this.place(id, 'recover', undefined);
        });
        ctx.unplaced.delete(id);
        this.#startFailures.delete(id);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'CONFLICT' || code === 'SESSION_NOT_FOUND') ctx.unplaced.delete(id);
        if (code === undefined || code === 'INTERNAL') {
          const count = (failed?.count ?? 0) + 1;
          const waitMs = backoffDelay(count, ctx.o.lease.renewIntervalMs, START_RETRY_MAX_MS);
          this.#startFailures.set(id, { count, notBefore: Date.now() + waitMs });
          ctx.log.error({ sessionId: id, err, attempts: count, retryInMs: waitMs }, 'starting a session failed; retrying with backoff');
        } else {
          ctx.log.warn({ sessionId: id, err: code }, 'placing a session failed; will retry');
        }
      }
    }).finally(() => {
      this.#passPicks = undefined;
    });
  }
}
