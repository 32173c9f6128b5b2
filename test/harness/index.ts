/**
 * The test harness: every integration and end-to-end test gets its services from here, and every service it
 * starts is torn down even when the test fails. Pass the node:test context (`t`, or any object with
 * `after(fn)`) to register the teardown automatically; otherwise call the returned stop()/drop()/remove().
 *
 * This is the only test code that reads the environment:
 *   TEST_PG_URL     an admin connection to PostgreSQL (default postgres://postgres@127.0.0.1:5432/test)
 *   TEST_REDIS_URL  the shared Redis (default redis://127.0.0.1:6379)
 *   REDIS_SERVER_BIN the redis-server binary for private instances (default: redis-server on PATH)
 */
export { freePort, tempDir, waitFor, randomId } from './util.ts';
export type { Cleanup, TempDir, WaitForOptions } from './util.ts';
export { startS3 } from './s3.ts';
export type { TestS3 } from './s3.ts';
export { createTestDatabase, testPgUrl } from './postgres.ts';
export type { TestDatabase } from './postgres.ts';
export { startPrivateRedis, redisNamespace, testRedisUrl } from './redis.ts';
export type { PrivateRedis, RedisNamespace } from './redis.ts';
export { testLogger } from './logger.ts';
export { seedEmbeddedDb } from './pglite-template.ts';
export { startTestBackend } from './backend.ts';
export type { TestBackend, TestBackendOptions, BackendMode, RecordedRequest, ReceivedWebhook } from './backend.ts';
