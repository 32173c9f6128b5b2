import { Redis } from 'ioredis';
import { GatewayError, withTimeout } from '@wagw/shared';
import type { Logger } from '@wagw/shared';
import { dependencyUnavailable, describeFailure } from './dependency.ts';

/**
 * A Redis command's promise with connection-level failures (timed out, connection closed, retries exhausted)
 * turned into DEPENDENCY_UNAVAILABLE (503 to API callers, a known outage to the lease agent). An error reply of
 * the server (ReplyError: a script or type bug) stays as it is.
 */
export async function redisCall<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (err) {
    if (err instanceof Error && err.name !== 'ReplyError') {
      throw new GatewayError('DEPENDENCY_UNAVAILABLE', `Redis is unreachable: ${describeFailure(err)}`, { dependency: 'Redis' }, { cause: err });
    }
    throw err;
  }
}

export interface RedisConnectOptions {
  logger: Logger;
  /** Time to establish the TCP connection (start-up and every reconnect). Default 3000 ms. */
  connectTimeoutMs?: number;
  /** A command without an answer in this time fails (a renewal must not hang). Default 5000 ms. */
  commandTimeoutMs?: number;
  /** Connection name shown by CLIENT LIST. */
  connectionName?: string;
}

/**
 * Connects to Redis and fails fast: at start-up there is exactly one attempt, and an unreachable server
 * becomes DEPENDENCY_UNAVAILABLE naming the URL. Once connected, the client reconnects forever with a
 * capped backoff, and a command issued while disconnected fails after one reconnect attempt instead of
 * waiting in the offline queue indefinitely.
 */
/** Delay before reconnect attempt `times` (1-based): 100 ms doubling, capped at 2 s, half of it random. */
export function redisRetryDelay(times: number, random: () => number = Math.random): number {
  const ceiling = Math.min(100 * 2 ** Math.min(times, 5), 2000);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export async function connectRedis(url: string, options: RedisConnectOptions): Promise<Redis> {
  const log = options.logger;
  let started = false;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 3000,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    maxRetriesPerRequest: 1,
    // How long disconnect() waits for a clean socket end; ioredis's 2 s would hold a failed start-up open.
    disconnectTimeout: 200,
    enableReadyCheck: true,
    connectionName: options.connectionName,
    // Capped exponential with equal jitter: after a Redis restart every router and shard of a cluster would
    // otherwise reconnect in lockstep.
    retryStrategy: (times) => (started ? redisRetryDelay(times) : null),
  });
  let lastError = '';
  let startupError: Error | undefined;
  client.on('error', (err: Error) => {
    if (!started) {
      startupError ??= err; // connect() itself only says "Connection is closed."
      return;
    }
    // ioredis emits one error per failed attempt; log each distinct one once per outage.
    if (err.message === lastError) return;
    lastError = err.message;
    log.warn({ err: err.message, dependency: 'redis' }, 'redis connection error');
  });
  client.on('ready', () => {
    if (lastError !== '') log.info({ dependency: 'redis' }, 'redis connection restored');
    lastError = '';
  });
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  try {
    // connectTimeout covers the TCP connect only; a server that accepts and never answers would hold the
    // ready check for far longer, so the whole start-up is bounded too.
    await withTimeout(client.connect(), connectTimeoutMs + 250, () =>
      Object.assign(new Error(`no answer within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }),
    );
  } catch (err) {
    client.disconnect();
    throw dependencyUnavailable('Redis', url, startupError ?? err);
  }
  started = true;
  return client;
}
