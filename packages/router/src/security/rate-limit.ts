/**
 * Abuse limits with koa-ratelimit: one limiter per client IP (before authentication, so credential guessing
 * is limited too) and one per principal (token subject or API key name, after authentication). Backed by
 * Redis when REDIS_URL is set (a sliding window shared by every router), by koa-ratelimit's Map driver
 * otherwise (a size-capped Map). On only when config.rateLimit.enabled: NODE_ENV=production and
 * RATE_LIMITING_ENABLED not false (the seed's rule).
 */
import ratelimit from 'koa-ratelimit';
import type { MiddlewareOptions } from 'koa-ratelimit';
import type { Middleware, ParameterizedContext } from 'koa';
import { GatewayError } from '@wagw/shared';
import type { GatewayConfig, Logger } from '@wagw/shared';
import { connectRedis } from '@wagw/stores';
import { isPublicPath } from './auth.ts';
import { ForwardVerifier } from './forwarded.ts';
import type { SecurityState } from './principal.ts';

/** The ioredis 5 client koa-ratelimit's Redis driver takes (what @wagw/stores' connectRedis returns). */
export type RateLimitRedis = Awaited<ReturnType<typeof connectRedis>>;

/** Logs whether rate limiting is on and why (the seed's rule), once at start. */
export function logRateLimitDecision(config: GatewayConfig, logger: Logger): void {
  const { enabled, reason, perIp, perPrincipal, windowMs } = config.rateLimit;
  const store = enabled ? (config.redis ? 'redis' : 'memory') : undefined;
  logger.info({ enabled, reason, perIp: enabled ? perIp : undefined, perPrincipal: enabled ? perPrincipal : undefined, windowMs: enabled ? windowMs : undefined, store }, enabled ? 'rate limiting on' : 'rate limiting off');
  if (enabled && config.redis && config.http.clusterSecret === undefined) {
    logger.warn('CLUSTER_SECRET unset: calls forwarded between routers are unsigned and counted again by the owning host');
  }
}

/**
 * A Map that keeps at most `max` entries: inserting beyond it first drops expired limiter entries, then the
 * oldest ones (koa-ratelimit's memory driver only checks `instanceof Map`). Every cache has a size cap.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly max: number;
  constructor(max: number) {
    super();
    this.max = max;
  }
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const nowSec = Date.now() / 1000;
      for (const [k, v] of this) {
        const reset = (v as { reset?: unknown }).reset;
        if (typeof reset === 'number' && reset < nowSec) this.delete(k);
      }
      for (const k of this.keys()) {
        if (this.size < this.max) break;
        this.delete(k);
      }
    }
    return super.set(key, value);
  }
}

export interface RateLimitsOptions {
  logger: Logger;
  /** An ioredis client to use (not closed by close()); default: one opened from REDIS_URL when enabled. */
  redis?: RateLimitRedis;
  /** Redis key prefix, default `wagw:ratelimit:` (tests use a unique one). */
  keyPrefix?: string;
  /** Entries of each in-memory limiter, default 100 000. */
  memoryMaxEntries?: number;
}

type Ctx = ParameterizedContext<SecurityState>;
const pass: Middleware<SecurityState> = (_ctx, next) => next();

/** The two limiters as Koa middleware; pass-through when rate limiting is off. */
export class RateLimits {
  readonly enabled: boolean;
  readonly store: 'redis' | 'memory' | 'off';
  /** Per client IP (`ctx.ip`); put it before authentication. Public probe paths are exempt. */
  readonly perIp: Middleware<SecurityState>;
  /** Per principal (`ctx.state.principal`); put it after authentication. Anonymous callers are exempt. */
  readonly perPrincipal: Middleware<SecurityState>;
  readonly #ownedRedis: RateLimitRedis | undefined;
  readonly #log: Logger;
  #lastStoreError = 0;

  private constructor(config: GatewayConfig, options: RateLimitsOptions, redis: RateLimitRedis | undefined, owned: boolean) {
    this.#log = options.logger;
    this.#ownedRedis = owned ? redis : undefined;
    this.enabled = config.rateLimit.enabled;
    if (!this.enabled) {
      this.store = 'off';
      this.perIp = pass;
      this.perPrincipal = pass;
      return;
    }
    this.store = redis ? 'redis' : 'memory';
    const prefix = options.keyPrefix ?? 'wagw:ratelimit:';
    const { perIp, perPrincipal, windowMs } = config.rateLimit;
    const maxEntries = options.memoryMaxEntries ?? 100_000;
    const make = (name: 'ip' | 'principal', max: number, id: (ctx: Ctx) => string | false) =>
      this.#limiter(name, {
        ...(redis ? { driver: 'redis' as const, db: redis as unknown as MiddlewareOptions['db'] } : { driver: 'memory' as const, db: new BoundedMap(maxEntries) }),
        namespace: `${prefix}${name}`,
        duration: windowMs,
        max,
        id: id as MiddlewareOptions['id'],
        throw: false,
      });
    const ipLimiter = make('ip', perIp, (ctx) => (isPublicPath(ctx.path) ? false : ctx.ip || 'unknown'));
    const clusterSecret = config.http.clusterSecret;
    if (clusterSecret === undefined) {
      this.perIp = ipLimiter;
    } else {
      // A validly signed forwarded call was counted by the forwarding router against the real client: not again.
      const verifier = new ForwardVerifier(clusterSecret);
      this.perIp = async (ctx, next) => {
        const call = verifier.verify(ctx.method, ctx.originalUrl, (h) => ctx.get(h));
        if (call === null) return ipLimiter(ctx, next);
        ctx.state.forwarded = call;
        return next();
      };
    }
    this.perPrincipal = make('principal', perPrincipal, (ctx) => {
      const p = ctx.state.principal;
      return p === undefined || p.kind === 'anonymous' || ctx.state.forwarded !== undefined ? false : `${p.kind}:${p.subject}`;
    });
  }

  /** Opens the Redis connection when rate limiting is on, REDIS_URL is set and no client was given. */
  static async create(config: GatewayConfig, options: RateLimitsOptions): Promise<RateLimits> {
    if (!config.rateLimit.enabled) return new RateLimits(config, options, undefined, false);
    if (options.redis) return new RateLimits(config, options, options.redis, false);
    if (!config.redis) return new RateLimits(config, options, undefined, false);
    const redis = await connectRedis(config.redis.url, { logger: options.logger, connectionName: 'wagw-ratelimit', commandTimeoutMs: 1000 });
    return new RateLimits(config, options, redis, true);
  }

  /** Drops the owned Redis connection at once (counters need no flush; QUIT would wait out an outage). */
  async close(): Promise<void> {
    this.#ownedRedis?.disconnect();
  }

  /**
   * Wraps koa-ratelimit: a limited request becomes GatewayError RATE_LIMITED (the gateway's error body) with
   * Retry-After in whole seconds (at least 1); a store failure lets the request through (fail open, logged
   * at most every 10 s) so a Redis outage never takes the API down with it.
   */
  #limiter(name: 'ip' | 'principal', options: MiddlewareOptions): Middleware<SecurityState> {
    const inner = ratelimit(options) as unknown as Middleware<SecurityState>;
    return async (ctx, next) => {
      let passed = false;
      const downstream = async () => {
        passed = true;
        await next();
      };
      try {
        await inner(ctx, downstream);
      } catch (err) {
        if (passed) throw err; // thrown by a later middleware, not by the limiter
        const now = Date.now();
        if (now - this.#lastStoreError > 10_000) {
          this.#lastStoreError = now;
          this.#log.warn({ limiter: name, err: err instanceof Error ? err.message : String(err) }, 'rate limit store failed; letting requests through');
        }
        return downstream();
      }
      if (passed) return;
      const state = (ctx.state as { rateLimit?: { after?: unknown } }).rateLimit;
      const reset = Number(ctx.response.get('X-RateLimit-Reset'));
      const after = Math.max(1, Number.isFinite(reset) && reset > 0 ? Math.ceil(reset - Date.now() / 1000) : typeof state?.after === 'number' ? state.after : 1);
      ctx.set('Retry-After', String(after));
      throw new GatewayError('RATE_LIMITED', `Too many requests (${name === 'ip' ? 'per client address' : 'per credential'}); retry in ${after} s.`, {
        limit: name,
        retryAfterSeconds: after,
      });
    };
  }
}
