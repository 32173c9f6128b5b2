/**
 * @wagw/stores: the implementations of the store interfaces in @wagw/shared (SessionDirectory, BlobStore,
 * SqlDatabase), the factory that picks production or embedded ones from GatewayConfig, and the migrations.
 * Design and choices: docs/stores.md.
 */
export { openStores, openDirectory, openBlobStore, openDatabase, openSql, assembleStores } from './open.ts';
export type { Stores, StoresConfig, OpenOptions, SqlTarget, HealthReport } from './open.ts';
export { RedisDirectory } from './directory/redis.ts';
export type { RedisDirectoryOptions } from './directory/redis.ts';
export { MemoryDirectory } from './directory/memory.ts';
export type { Clock } from './directory/memory.ts';
export { redisKeys, DEFAULT_REDIS_PREFIX } from './redis-keys.ts';
export type { RedisKeys } from './redis-keys.ts';
export { connectRedis, redisRetryDelay } from './redis-client.ts';
export type { RedisConnectOptions } from './redis-client.ts';
export { S3BlobStore } from './blobs/s3.ts';
export type { S3BlobStoreOptions } from './blobs/s3.ts';
export { LocalBlobStore } from './blobs/local.ts';
export { assertBlobKey, assertBlobPrefix, BlobKeyError } from './blobs/keys.ts';
export { PostgresDatabase } from './sql/postgres.ts';
export type { PostgresOptions } from './sql/postgres.ts';
export { PgliteDatabase, EmbeddedPostgres } from './sql/pglite.ts';
export type { EmbeddedPostgresOptions } from './sql/pglite.ts';
export { migrate, loadMigrations, MIGRATIONS_DIR, MIGRATION_LOCK_KEY } from './sql/migrate.ts';
export type { Migration, MigrateResult } from './sql/migrate.ts';
export { dependencyUnavailable, redactUrl } from './dependency.ts';
export { MemoryQrCache } from './qr/memory.ts';
export { RedisQrCache } from './qr/redis.ts';
export { MemoryHostRegistry, RedisHostRegistry } from './hosts/registry.ts';
export { RedisEventRelay } from './events/redis.ts';
// The interfaces live in @wagw/shared with the other store contracts; re-exported for existing importers.
export type { CachedQr, QrCache, HostAnnouncement, HostRecord, HostRegistry } from '@wagw/shared';
