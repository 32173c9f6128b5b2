import type { ChainableCommander, Redis } from 'ioredis';
import type { ClaimResult, Lease, LeaseRef, SessionDirectory } from '@wagw/shared';
import { redisKeys } from '../redis-keys.ts';
import type { RedisKeys } from '../redis-keys.ts';
import { connectRedis, redisCall } from '../redis-client.ts';
import type { RedisConnectOptions } from '../redis-client.ts';
import { CLAIM, LIST_BY_OWNER, RELEASE, RENEW } from './lua.ts';
import { assertSessionId, assertTtl } from './validate.ts';

type Reply = Promise<unknown>;
interface LeaseCommands {
  wagwLeaseClaim(lease: string, epoch: string, ownerSet: string, owner: string, ttl: number, sessionId: string): Reply;
  wagwLeaseRelease(lease: string, ownerSet: string, owner: string, epoch: number, sessionId: string): Reply;
  wagwLeaseList(ownerSet: string, owner: string, leasePrefix: string, leaseSuffix: string): Reply;
}
interface PipelineCommands {
  wagwLeaseRenew(numKeys: number, ...args: (string | number)[]): ChainableCommander;
}

/** Leases renewed per script call; a larger batch is split into several calls sent in one pipeline. */
const RENEW_CHUNK = 500;

function toNumber(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new Error(`Unexpected ${what} from the lease script: ${String(value)}`);
  return n;
}

export interface RedisDirectoryOptions {
  /** Key prefix (default `wagw:`); tests use a unique one per run. */
  prefix?: string;
  /** Whether close() quits the client (true when the directory created it). */
  ownsClient?: boolean;
}

/**
 * Session leases in Redis. claim/renew/release/listByOwner are Lua scripts (loaded once, run by EVALSHA via
 * ioredis `defineCommand`), get and isCurrent are single reads. Expiry is Redis's own PEXPIRE and clock.
 * Single-instance Redis (or Sentinel); see docs/stores.md for Redis Cluster.
 */
export class RedisDirectory implements SessionDirectory {
  readonly kind = 'redis' as const;
  readonly scope = 'cluster' as const;
  readonly keys: RedisKeys;
  readonly #redis: Redis & LeaseCommands;
  readonly #ownsClient: boolean;

  constructor(redis: Redis, options: RedisDirectoryOptions = {}) {
    this.keys = redisKeys(options.prefix);
    this.#ownsClient = options.ownsClient ?? false;
    redis.defineCommand('wagwLeaseClaim', { numberOfKeys: 3, lua: CLAIM });
    redis.defineCommand('wagwLeaseRenew', { lua: RENEW });
    redis.defineCommand('wagwLeaseRelease', { numberOfKeys: 2, lua: RELEASE });
    redis.defineCommand('wagwLeaseList', { numberOfKeys: 1, lua: LIST_BY_OWNER });
    this.#redis = redis as Redis & LeaseCommands;
  }

  /** The client, shared by the QR cache and the host registry (one connection per router). */
  get client(): Redis {
    return this.#redis;
  }

  /** Connects (failing fast with DEPENDENCY_UNAVAILABLE) and returns a directory owning its client. */
  static async create(url: string, options: RedisConnectOptions & { prefix?: string }): Promise<RedisDirectory> {
    const redis = await connectRedis(url, { connectionName: 'wagw-directory', ...options });
    return new RedisDirectory(redis, { prefix: options.prefix, ownsClient: true });
  }

  async claim(sessionId: string, owner: string, ttlMs: number): Promise<ClaimResult> {
    assertSessionId(sessionId);
    assertTtl(ttlMs);
    const k = this.keys;
    const reply = await redisCall(this.#redis.wagwLeaseClaim(k.lease(sessionId), k.epoch(sessionId), k.owner(owner), owner, ttlMs, sessionId));
    if (!Array.isArray(reply)) throw new Error('Unexpected reply from the claim script');
    if (reply[0] === 1) {
      return { ok: true, lease: { sessionId, owner, epoch: toNumber(reply[1], 'epoch'), expiresAt: toNumber(reply[2], 'expiresAt') } };
    }
    return {
      ok: false,
      holder: { sessionId, owner: String(reply[1]), epoch: toNumber(reply[2], 'epoch'), expiresAt: toNumber(reply[3], 'expiresAt') },
    };
  }

  async renew(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<string[]> {
    assertTtl(ttlMs);
    if (leases.length === 0) return [];
    const pipeline = this.#redis.pipeline() as ChainableCommander & PipelineCommands;
    const chunks: LeaseRef[][] = [];
    for (let i = 0; i < leases.length; i += RENEW_CHUNK) chunks.push(leases.slice(i, i + RENEW_CHUNK));
    for (const chunk of chunks) {
      const keys = [this.keys.owner(owner), ...chunk.map((l) => this.keys.lease(l.sessionId))];
      pipeline.wagwLeaseRenew(keys.length, ...keys, owner, ttlMs, ...chunk.map((l) => String(l.epoch)), ...chunk.map((l) => l.sessionId));
    }
    const results = await redisCall(pipeline.exec());
    if (results === null) throw new Error('Lease renewal pipeline was aborted');
    const lost: string[] = [];
    results.forEach(([err, reply], c) => {
      if (err) throw err;
      const chunk = chunks[c];
      if (!Array.isArray(reply) || chunk === undefined) throw new Error('Unexpected reply from the renew script');
      for (const index of reply) {
        const ref = chunk[toNumber(index, 'index') - 1];
        if (ref !== undefined) lost.push(ref.sessionId);
      }
    });
    return lost;
  }

  async release(sessionId: string, owner: string, epoch: number): Promise<boolean> {
    const reply = await redisCall(this.#redis.wagwLeaseRelease(this.keys.lease(sessionId), this.keys.owner(owner), owner, epoch, sessionId));
    return reply === 1;
  }

  async get(sessionId: string): Promise<Lease | null> {
    const [owner, epoch, expiresAt] = await redisCall(this.#redis.hmget(this.keys.lease(sessionId), 'owner', 'epoch', 'expiresAt'));
    if (owner === null || owner === undefined) return null;
    return { sessionId, owner, epoch: toNumber(epoch, 'epoch'), expiresAt: toNumber(expiresAt, 'expiresAt') };
  }

  async isCurrent(sessionId: string, epoch: number): Promise<boolean> {
    // One read is atomic; an expired hash reads as absent.
    const current = await redisCall(this.#redis.hget(this.keys.lease(sessionId), 'epoch'));
    return current !== null && current === String(epoch);
  }

  async listByOwner(owner: string): Promise<Lease[]> {
    const [leasePrefix, leaseSuffix] = this.keys.leaseKeyParts;
    const reply = await redisCall(this.#redis.wagwLeaseList(this.keys.owner(owner), owner, leasePrefix, leaseSuffix));
    if (!Array.isArray(reply)) throw new Error('Unexpected reply from the list script');
    const leases = reply.map((row: unknown): Lease => {
      if (!Array.isArray(row)) throw new Error('Unexpected row from the list script');
      return { sessionId: String(row[0]), owner, epoch: toNumber(row[1], 'epoch'), expiresAt: toNumber(row[2], 'expiresAt') };
    });
    return leases.sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
  }

  async ping(): Promise<void> {
    await redisCall(this.#redis.ping());
  }

  async close(): Promise<void> {
    if (!this.#ownsClient) return;
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

