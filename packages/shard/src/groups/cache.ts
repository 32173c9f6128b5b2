/**
 * The group metadata cache of one session (docs/groups.md, "Caching rule"). Baileys asks its
 * `cachedGroupMetadata` hook before every group send and queries WhatsApp (`w:g2` metadata) on a miss; a
 * gateway that misses on every send is what WhatsApp answers with `rate-overlimit`. Entries live until a group
 * notification about that group invalidates them (participants, settings, subject: anything), or their TTL
 * passes, whichever comes first; the cache holds at most `max` groups (least recently used dropped first).
 * Concurrent misses for one group share one query.
 */
import type { GroupMetadata } from '@whiskeysockets/baileys';

export interface GroupCacheOptions {
  ttlMs: number;
  max: number;
  now?: () => number;
}

interface Entry {
  meta: GroupMetadata;
  expiresAt: number;
}

export class GroupMetadataCache {
  readonly #o: GroupCacheOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<GroupMetadata>>();
  #hits = 0;
  #misses = 0;

  constructor(options: GroupCacheOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The cached metadata, or undefined (expired entries are dropped). */
  get(jid: string): GroupMetadata | undefined {
    const e = this.#entries.get(jid);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.#now()) {
      this.#entries.delete(jid);
      return undefined;
    }
    // most recently used last
    this.#entries.delete(jid);
    this.#entries.set(jid, e);
    return e.meta;
  }

  set(jid: string, meta: GroupMetadata): void {
    this.#entries.delete(jid);
    this.#entries.set(jid, { meta, expiresAt: this.#now() + this.#o.ttlMs });
    while (this.#entries.size > this.#o.max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** The cached metadata, or `fetch`'s result (stored unless the group was invalidated meanwhile). */
  async getOrFetch(jid: string, fetch: (jid: string) => Promise<GroupMetadata>): Promise<GroupMetadata> {
    const hit = this.get(jid);
    if (hit !== undefined) {
      this.#hits++;
      return hit;
    }
    const running = this.#inflight.get(jid);
    if (running !== undefined) return await running;
    this.#misses++;
    // An invalidation while the query runs removes it from #inflight: its (maybe stale) answer is not stored.
    const holder: { p?: Promise<GroupMetadata> } = {};
    const p = fetch(jid).then((meta) => {
      if (this.#inflight.get(jid) === holder.p) this.set(jid, meta);
      return meta;
    });
    holder.p = p;
    this.#inflight.set(jid, p);
    try {
      return await p;
    } finally {
      if (this.#inflight.get(jid) === p) this.#inflight.delete(jid);
    }
  }

  invalidate(jid: string): void {
    this.#entries.delete(jid);
    this.#inflight.delete(jid);
  }

  clear(): void {
    this.#entries.clear();
    this.#inflight.clear();
  }

  stats(): { size: number; hits: number; misses: number } {
    return { size: this.#entries.size, hits: this.#hits, misses: this.#misses };
  }
}
