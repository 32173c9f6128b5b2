import path from 'node:path';
import { GatewayError, isGatewayError } from '@wagw/shared';
import type { BlobStore, DependencyHealth, GatewayConfig, Logger, SessionDirectory, SqlDatabase } from '@wagw/shared';
import { LocalBlobStore } from './blobs/local.ts';
import { S3BlobStore } from './blobs/s3.ts';
import { probe } from './dependency.ts';
import { MemoryDirectory } from './directory/memory.ts';
import { RedisDirectory } from './directory/redis.ts';
import { migrate } from './sql/migrate.ts';
import { PgliteDatabase } from './sql/pglite.ts';
import { PostgresDatabase } from './sql/postgres.ts';
import { MemoryQrCache } from './qr/memory.ts';
import { RedisQrCache } from './qr/redis.ts';
import type { EventRelay, HostRegistry, QrCache } from '@wagw/shared';
import { RedisEventRelay } from './events/redis.ts';
import { MemoryHostRegistry, RedisHostRegistry } from './hosts/registry.ts';

/** The part of GatewayConfig the stores read. */
export type StoresConfig = Pick<GatewayConfig, 'redis' | 'database' | 's3' | 'dataDir' | 'pglitePort'>;

export interface OpenOptions {
  /** Connect/start-up timeout of each dependency. Default 3000 ms (S3: 5000 ms). */
  connectTimeoutMs?: number;
  /** Redis key prefix (default `wagw:`). */
  redisPrefix?: string;
}

export type HealthReport = Record<'redis' | 'postgres' | 'storage', DependencyHealth>;

export interface Stores {
  directory: SessionDirectory;
  blobs: BlobStore;
  sql: SqlDatabase;
  /** QR codes with their TTL: Redis next to the directory, or the router's memory. */
  qr: QrCache;
  /** The routers of the cluster: Redis next to the directory, or just this one. */
  hosts: HostRegistry;
  /**
   * Session events between the routers of a cluster: Redis pub/sub next to the directory; undefined with the
   * in-process directory (single host: nothing to relay). Its subscriber connection opens on `subscribe` only.
   */
  events: EventRelay | undefined;
  /** URL of the embedded PGlite wire server when this process runs it (embedded mode), else undefined. */
  embeddedSqlUrl: string | undefined;
  /** Pings every store (each bounded by a 2 s timeout); never throws. */
  health(): Promise<HealthReport>;
  /** Closes all three; safe to call twice. */
  close(): Promise<void>;
}

/** Redis when REDIS_URL is set, else the in-process directory (single host; lives in the router). */
export async function openDirectory(config: Pick<StoresConfig, 'redis'>, logger: Logger, options: OpenOptions = {}): Promise<SessionDirectory> {
  if (config.redis === undefined) return new MemoryDirectory();
  return RedisDirectory.create(config.redis.url, {
    logger,
    prefix: options.redisPrefix,
    connectTimeoutMs: options.connectTimeoutMs,
  });
}

/** S3 when S3_* is set (bucket created if missing), else `DATA_DIR/blobs`. */
export async function openBlobStore(config: Pick<StoresConfig, 's3' | 'dataDir'>, logger: Logger, options: OpenOptions = {}): Promise<BlobStore> {
  if (config.s3 === undefined) return LocalBlobStore.create(path.join(config.dataDir, 'blobs'));
  return S3BlobStore.create(config.s3, { logger, startupTimeoutMs: options.connectTimeoutMs === undefined ? undefined : Math.max(options.connectTimeoutMs, 1000) });
}

/** Where a process finds SQL: a PostgreSQL URL, or the embedded server's URL handed over by the router. */
export interface SqlTarget {
  url: string;
  kind?: 'postgres' | 'pglite';
  poolMax?: number;
  poolMaxWaiting?: number;
  queryTimeoutMs?: number;
}

/**
 * A pg connection to an existing server, for processes that do not run PGlite themselves (shards).
 * For `kind: 'pglite'` read docs/stores.md first: the embedded server takes one connection, held by the router.
 */
export async function openSql(target: SqlTarget, logger: Logger, options: OpenOptions = {}): Promise<SqlDatabase> {
  return PostgresDatabase.connect(target.url, {
    logger,
    kind: target.kind ?? 'postgres',
    poolMax: target.poolMax,
    poolMaxWaiting: target.poolMaxWaiting,
    queryTimeoutMs: target.queryTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
  });
}

/**
 * The router's database: PostgreSQL when DATABASE_URL is set, else PGlite under `DATA_DIR/pglite`, served on
 * 127.0.0.1:PGLITE_PORT. Does not migrate (openStores does).
 */
export async function openDatabase(config: Pick<StoresConfig, 'database' | 'dataDir' | 'pglitePort'>, logger: Logger, options: OpenOptions = {}): Promise<SqlDatabase> {
  if (config.database !== undefined) {
    // Every database setting reaches the pool as it is (a field listed by hand here was one to forget).
    return openSql({ ...config.database, kind: 'postgres' }, logger, options);
  }
  return PgliteDatabase.open({ dataDir: path.join(config.dataDir, 'pglite'), port: config.pglitePort, logger });
}

async function closeQuietly(store: { close(): Promise<void> } | undefined, logger: Logger, what: string): Promise<void> {
  if (store === undefined) return;
  try {
    await store.close();
  } catch (err) {
    logger.warn({ err: err instanceof Error ? err.message : String(err), store: what }, 'store close failed');
  }
}

/**
 * Opens the three stores in parallel, choosing Redis/S3/PostgreSQL when configured and the embedded ones
 * otherwise, then applies the SQL migrations. When any dependency is unavailable, closes what did open and
 * throws ONE DEPENDENCY_UNAVAILABLE naming every failed dependency and its URL (without credentials).
 */
export async function openStores(config: StoresConfig, logger: Logger, options: OpenOptions = {}): Promise<Stores> {
  const log = logger.child({ component: 'stores' });
  const [directory, blobs, sql] = await Promise.allSettled([
    openDirectory(config, log, options),
    openBlobStore(config, log, options),
    openDatabase(config, log, options),
  ]);
  const failures = [directory, blobs, sql].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (directory.status === 'rejected' || blobs.status === 'rejected' || sql.status === 'rejected') {
    await closeQuietly(directory.status === 'fulfilled' ? directory.value : undefined, log, 'directory');
    await closeQuietly(blobs.status === 'fulfilled' ? blobs.value : undefined, log, 'blobs');
    await closeQuietly(sql.status === 'fulfilled' ? sql.value : undefined, log, 'sql');
    throw combineFailures(failures);
  }
  try {
    const result = await migrate(sql.value, { logger: log });
    log.info({ db: sql.value.kind, applied: result.applied, schemaVersion: result.current }, 'database schema ready');
  } catch (err) {
    await closeQuietly(directory.value, log, 'directory');
    await closeQuietly(blobs.value, log, 'blobs');
    await closeQuietly(sql.value, log, 'sql');
    throw err;
  }
  log.info(
    {
      directory: directory.value.kind,
      blobs: blobs.value.kind,
      sql: sql.value.kind,
      dataDir: directory.value.kind === 'memory' || blobs.value.kind === 'local' || sql.value.kind === 'pglite' ? config.dataDir : undefined,
    },
    'stores open',
  );
  return assembleStores(directory.value, blobs.value, sql.value);
}

/** Wraps three open stores into a Stores (exported for tests and for processes that open them one by one). */
export function assembleStores(directory: SessionDirectory, blobs: BlobStore, sql: SqlDatabase): Stores {
  let closed: Promise<void> | undefined;
  const redis = directory instanceof RedisDirectory ? directory : undefined;
  const events = redis ? new RedisEventRelay(redis.client, redis.keys.events()) : undefined;
  return {
    directory,
    blobs,
    sql,
    qr: redis ? new RedisQrCache(redis.client, (id) => redis.keys.qr(id)) : new MemoryQrCache(),
    hosts: redis ? new RedisHostRegistry(redis.client, redis.keys.hosts()) : new MemoryHostRegistry(),
    events,
    embeddedSqlUrl: sql instanceof PgliteDatabase ? sql.url : undefined,
    async health() {
      const [redis, postgres, storage] = await Promise.all([
        probe(directory.kind, () => directory.ping()),
        probe(sql.kind, () => sql.ping()),
        probe(blobs.kind, () => blobs.ping()),
      ]);
      return { redis, postgres, storage };
    },
    close() {
      closed ??= Promise.allSettled([events?.close(), directory.close(), blobs.close(), sql.close()]).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      });
      return closed;
    },
  };
}

function combineFailures(failures: readonly unknown[]): Error {
  const first = failures[0];
  if (failures.length === 1 && first instanceof Error) return first;
  const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
  const dependencies = failures.map((f) => (isGatewayError(f) ? f.details?.['dependency'] : undefined)).filter((d) => d !== undefined);
  return new GatewayError('DEPENDENCY_UNAVAILABLE', messages.join('; '), { dependencies }, { cause: new AggregateError(failures) });
}
