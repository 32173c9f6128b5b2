import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { createTestDatabase, redisNamespace, startPrivateRedis, startS3, tempDir, waitFor } from '../../../test/harness/index.ts';
import { assembleStores, LocalBlobStore, openDirectory, openStores } from '../src/index.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

test('openStores with nothing configured: in-process directory, local blobs, PGlite migrated and persisted under DATA_DIR', async (t) => {
  const dir = await tempDir(t);
  const config = { redis: undefined, database: undefined, s3: undefined, dataDir: dir.path, pglitePort: 0 };
  const stores = await openStores(config, logger);
  try {
    assert.equal(stores.directory.kind, 'memory');
    assert.equal(stores.blobs.kind, 'local');
    assert.equal(stores.sql.kind, 'pglite');
    assert.match(stores.embeddedSqlUrl ?? '', /^postgres:\/\/postgres@localhost\/postgres\?host=%2F.+wagw-pg-/, 'a private Unix socket (pglite-socket.test.ts)');
    const health = await stores.health();
    assert.deepEqual(
      Object.fromEntries(Object.entries(health).map(([k, v]) => [k, [v.ok, v.kind]])),
      { redis: [true, 'memory'], postgres: [true, 'pglite'], storage: [true, 'local'] },
    );
    await stores.sql.query("INSERT INTO sessions (id, status) VALUES ('s1', 'connected')");
    await stores.blobs.put('auth/s1/creds.json', Buffer.from('{}'));
  } finally {
    await stores.close();
    await stores.close(); // twice is fine
  }
  const again = await openStores(config, logger);
  await assert.rejects(openStores(config, logger), /PGlite data directory .* is in use by process \d+/, 'a second live owner is refused');
  t.after(() => again.close());
  const rows = await again.sql.query<{ id: string }>('SELECT id FROM sessions');
  assert.deepEqual(rows.rows, [{ id: 's1' }], 'PGlite data survives a restart');
  assert.equal((await again.blobs.get('auth/s1/creds.json'))?.toString(), '{}', 'blobs survive a restart');
});

test('openStores with Redis, S3 and PostgreSQL configured uses them', async (t) => {
  const [ns, s3, db, dir] = await Promise.all([redisNamespace(t), startS3(t), createTestDatabase(t), tempDir(t)]);
  const stores = await openStores(
    { redis: { url: ns.url }, database: { url: db.url, poolMax: 3 }, s3: { ...s3 }, dataDir: dir.path, pglitePort: 0 },
    logger,
    { redisPrefix: ns.prefix },
  );
  t.after(() => stores.close());
  assert.equal(stores.directory.kind, 'redis');
  assert.equal(stores.blobs.kind, 's3');
  assert.equal(stores.sql.kind, 'postgres');
  assert.equal(stores.embeddedSqlUrl, undefined);
  const health = await stores.health();
  assert.ok(health.redis.ok && health.postgres.ok && health.storage.ok, JSON.stringify(health));
  const tables = await stores.sql.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'webhook_outbox'");
  assert.equal(tables.rowCount, 1, 'migrated');
});

test('Redis killed and restarted empty: health reports it down, the same directory works again, epochs still grow', async (t) => {
  const redis = await startPrivateRedis(t);
  const directory = await openDirectory({ redis: { url: redis.url } }, logger, { connectTimeoutMs: 500 });
  t.after(() => directory.close());
  const dir = await tempDir(t);
  const blobs = await LocalBlobStore.create(dir.path);
  const fakeSql = { kind: 'postgres' as const, query: async () => ({ rows: [], rowCount: 0 }), transaction: async <T>(fn: (tx: never) => Promise<T>) => fn(undefined as never), ping: async () => {}, close: async () => {} };
  const stores = assembleStores(directory, blobs, fakeSql);

  const before = await directory.claim('s1', 'host-a/0', 30_000);
  assert.ok(before.ok);
  await redis.kill();
  const down = await stores.health();
  assert.equal(down.redis.ok, false);
  assert.equal(down.redis.kind, 'redis');
  assert.ok((down.redis.error ?? '').length > 0, 'the failure is described');
  await assert.rejects(directory.claim('s2', 'host-a/0', 30_000), 'a call during the outage fails instead of hanging');

  await redis.restart();
  await waitFor(async () => (await stores.health()).redis.ok, { what: 'Redis health to recover after restart', timeoutMs: 5000 });
  const after = await directory.claim('s1', 'host-b/0', 30_000);
  assert.ok(after.ok, 'the restarted (empty) Redis hands out the lease');
  assert.ok(after.lease.epoch > before.lease.epoch, 'epochs keep growing although Redis lost every key');
  assert.equal(await directory.isCurrent('s1', before.lease.epoch), false, 'the pre-outage epoch stays fenced');
});
