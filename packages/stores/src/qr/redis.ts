import type { Redis } from 'ioredis';
import { redisCall } from '../redis-client.ts';
import type { CachedQr, QrCache } from '@wagw/shared';

/** QR codes in Redis under `{prefix}qr:{sessionId}` with PX expiry (shared by every router of the cluster). */
export class RedisQrCache implements QrCache {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #key: (sessionId: string) => string;

  constructor(redis: Redis, key: (sessionId: string) => string) {
    this.#redis = redis;
    this.#key = key;
  }

  async set(sessionId: string, entry: CachedQr, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) throw new RangeError('ttlMs must be positive');
    await redisCall(this.#redis.set(this.#key(sessionId), JSON.stringify(entry), 'PX', Math.ceil(ttlMs)));
  }

  async get(sessionId: string): Promise<CachedQr | null> {
    const raw = await redisCall(this.#redis.get(this.#key(sessionId)));
    if (raw === null) return null;
    const v = JSON.parse(raw) as Partial<CachedQr>;
    if (typeof v.qr !== 'string' || typeof v.epoch !== 'number' || typeof v.index !== 'number' || typeof v.expiresAt !== 'number') return null;
    return { qr: v.qr, epoch: v.epoch, index: v.index, expiresAt: v.expiresAt };
  }

  async delete(sessionId: string): Promise<void> {
    await redisCall(this.#redis.del(this.#key(sessionId)));
  }
}
