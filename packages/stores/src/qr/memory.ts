import type { CachedQr, QrCache } from '@wagw/shared';

/** QR codes in the router's memory (embedded, single host): TTL per entry and a size cap (oldest evicted). */
export class MemoryQrCache implements QrCache {
  readonly kind = 'memory' as const;
  readonly #max: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, CachedQr & { deadline: number }>();

  constructor(options: { maxEntries?: number; clock?: () => number } = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#now = options.clock ?? Date.now;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  get size(): number {
    return this.#entries.size;
  }

  async set(sessionId: string, entry: CachedQr, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) throw new RangeError('ttlMs must be positive');
    this.#entries.delete(sessionId); // re-insert: the map's order is the eviction order
    this.#entries.set(sessionId, { ...entry, deadline: this.#now() + ttlMs });
    if (this.#entries.size > this.#max) this.#sweep();
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  async get(sessionId: string): Promise<CachedQr | null> {
    const e = this.#entries.get(sessionId);
    if (!e) return null;
    if (e.deadline <= this.#now()) {
      this.#entries.delete(sessionId);
      return null;
    }
    return { qr: e.qr, epoch: e.epoch, index: e.index, expiresAt: e.expiresAt };
  }

  async delete(sessionId: string): Promise<void> {
    this.#entries.delete(sessionId);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, e] of this.#entries) if (e.deadline <= now) this.#entries.delete(id);
  }
}
