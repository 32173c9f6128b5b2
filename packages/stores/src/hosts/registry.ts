import type { Redis } from 'ioredis';
import type { HostAnnouncement, HostRecord, HostRegistry } from '@wagw/shared';
import { redisCall } from '../redis-client.ts';

/** Single host (embedded): only this router's own record. */
export class MemoryHostRegistry implements HostRegistry {
  readonly kind = 'memory' as const;
  readonly #hosts = new Map<string, HostRecord>();

  async announce(record: HostAnnouncement, ttlMs: number): Promise<void> {
    this.#hosts.set(record.hostId, { ...record, updatedAt: new Date().toISOString(), expiresAt: Date.now() + ttlMs });
  }

  async list(): Promise<HostRecord[]> {
    const now = Date.now();
    return [...this.#hosts.values()].filter((h) => h.expiresAt > now).sort((a, b) => (a.hostId < b.hostId ? -1 : 1));
  }

  async listAll(): Promise<HostRecord[]> {
    return [...this.#hosts.values()].map((h) => ({ ...h })).sort((a, b) => (a.hostId < b.hostId ? -1 : 1));
  }

  async get(hostId: string): Promise<HostRecord | null> {
    const h = this.#hosts.get(hostId);
    return h && h.expiresAt > Date.now() ? { ...h } : null;
  }

  async remove(hostId: string): Promise<void> {
    this.#hosts.delete(hostId);
  }
}

/** Hosts in one Redis hash `{prefix}hosts` (field = host id, value = JSON with its expiry). */
export class RedisHostRegistry implements HostRegistry {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, key: string) {
    this.#redis = redis;
    this.#key = key;
  }

  async announce(record: HostAnnouncement, ttlMs: number): Promise<void> {
    const full: HostRecord = { ...record, updatedAt: new Date().toISOString(), expiresAt: Date.now() + ttlMs };
    await redisCall(this.#redis.hset(this.#key, record.hostId, JSON.stringify(full)));
  }

  async list(): Promise<HostRecord[]> {
    const now = Date.now();
    return (await this.listAll()).filter((h) => h.expiresAt > now);
  }

  async listAll(): Promise<HostRecord[]> {
    const all = await redisCall(this.#redis.hgetall(this.#key));
    const now = Date.now();
    const out: HostRecord[] = [];
    const stale: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const rec = parse(raw);
      if (rec && rec.expiresAt >= now - 3_600_000) out.push(rec);
      else stale.push(id);
    }
    if (stale.length > 0) await redisCall(this.#redis.hdel(this.#key, ...stale));
    return out.sort((a, b) => (a.hostId < b.hostId ? -1 : 1));
  }

  async get(hostId: string): Promise<HostRecord | null> {
    const raw = await redisCall(this.#redis.hget(this.#key, hostId));
    const rec = raw === null ? null : parse(raw);
    return rec && rec.expiresAt > Date.now() ? rec : null;
  }

  async remove(hostId: string): Promise<void> {
    await redisCall(this.#redis.hdel(this.#key, hostId));
  }
}

function parse(raw: string): HostRecord | null {
  try {
    const v = JSON.parse(raw) as Partial<HostRecord>;
    if (typeof v.hostId !== 'string' || typeof v.url !== 'string' || typeof v.expiresAt !== 'number') return null;
    // Records of routers from before these fields existed read as full and not ready (never picked as a target).
    return { shardsReady: 0, capacity: 0, draining: false, shards: 0, sessions: 0, updatedAt: new Date(0).toISOString(), ...v } as HostRecord;
  } catch {
    return null;
  }
}
