import type { ClaimResult, Lease, LeaseRef, SessionDirectory } from '@wagw/shared';
import { assertSessionId, assertTtl } from './validate.ts';

/** Milliseconds since the epoch; injectable so tests can move time instead of waiting. */
export type Clock = () => number;

/**
 * Session leases in the router's memory, for single-host embedded mode. Same semantics as RedisDirectory:
 * epochs only grow per session (kept apart from the leases, so release and expiry never reset them, and
 * floored at the clock so a restart does not reset them either), a lapsed lease counts as absent. Shards reach it through the router over IPC.
 */
export class MemoryDirectory implements SessionDirectory {
  readonly kind = 'memory' as const;
  readonly scope = 'process' as const;
  readonly #now: Clock;
  readonly #leases = new Map<string, Lease>();
  readonly #epochs = new Map<string, number>();
  #closed = false;

  constructor(options: { clock?: Clock } = {}) {
    this.#now = options.clock ?? Date.now;
  }

  #live(sessionId: string): Lease | null {
    const lease = this.#leases.get(sessionId);
    if (lease === undefined) return null;
    if (lease.expiresAt <= this.#now()) {
      this.#leases.delete(sessionId);
      return null;
    }
    return lease;
  }

  #check(): void {
    if (this.#closed) throw new Error('MemoryDirectory is closed');
  }

  async claim(sessionId: string, owner: string, ttlMs: number): Promise<ClaimResult> {
    this.#check();
    assertSessionId(sessionId);
    assertTtl(ttlMs);
    const current = this.#live(sessionId);
    if (current !== null && current.owner !== owner) return { ok: false, holder: { ...current } };
    // Floored at the clock like RedisDirectory: a restarted router (all epochs forgotten) still hands out
    // epochs above any a surviving zombie shard may hold.
    const epoch = Math.max(Math.max(this.#epochs.get(sessionId) ?? 0, current?.epoch ?? 0) + 1, Math.floor(this.#now()));
    this.#epochs.set(sessionId, epoch);
    const lease: Lease = { sessionId, owner, epoch, expiresAt: this.#now() + ttlMs };
    this.#leases.set(sessionId, lease);
    return { ok: true, lease: { ...lease } };
  }

  async renew(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<string[]> {
    this.#check();
    assertTtl(ttlMs);
    const expiresAt = this.#now() + ttlMs;
    const lost: string[] = [];
    for (const ref of leases) {
      const current = this.#live(ref.sessionId);
      if (current !== null && current.owner === owner && current.epoch === ref.epoch) current.expiresAt = expiresAt;
      else lost.push(ref.sessionId);
    }
    return lost;
  }

  async release(sessionId: string, owner: string, epoch: number): Promise<boolean> {
    this.#check();
    const current = this.#live(sessionId);
    if (current === null || current.owner !== owner || current.epoch !== epoch) return false;
    this.#leases.delete(sessionId);
    return true;
  }

  async get(sessionId: string): Promise<Lease | null> {
    this.#check();
    const current = this.#live(sessionId);
    return current === null ? null : { ...current };
  }

  async isCurrent(sessionId: string, epoch: number): Promise<boolean> {
    this.#check();
    return this.#live(sessionId)?.epoch === epoch;
  }

  async listByOwner(owner: string): Promise<Lease[]> {
    this.#check();
    const out: Lease[] = [];
    for (const id of [...this.#leases.keys()]) {
      const lease = this.#live(id);
      if (lease !== null && lease.owner === owner) out.push({ ...lease });
    }
    return out.sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
  }

  async ping(): Promise<void> {
    this.#check();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
