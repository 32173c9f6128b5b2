// pg-pool queues callers without a bound (each gives up only after its connection timeout): with PostgreSQL slow
// and callers retrying faster than it answers, the chaos campaign's routers held full queues for minutes. Past
// DATABASE_POOL_MAX_WAITING waiters a request now fails at once, named, and the pool's clients are observable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { createTestDatabase, waitFor } from '../../../test/harness/index.ts';
import { PostgresDatabase } from '../src/sql/postgres.ts';

test('past DATABASE_POOL_MAX_WAITING waiters a query fails at once with DEPENDENCY_UNAVAILABLE; the waiters still run', async (t) => {
  const dbInfo = await createTestDatabase();
  const db = await PostgresDatabase.connect(dbInfo.url, { logger: createRootLogger({ proc: 'test', level: 'silent' }), poolMax: 1, poolMaxWaiting: 2, connectTimeoutMs: 30_000 });
  t.after(async () => {
    await db.close();
    await dbInfo.drop();
  });
  // The pool's one connection is held by a transaction until `release`.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const holder = db.transaction(async (tx) => {
    await tx.query('SELECT 1');
    await held;
  });
  await waitFor(() => db.poolStats().total === 1 && db.poolStats().idle === 0, { what: 'the connection checked out' });

  const waiters = [db.query<{ n: number }>('SELECT 1 AS n'), db.query<{ n: number }>('SELECT 2 AS n')];
  assert.deepEqual(db.poolStats(), { total: 1, idle: 0, waiting: 2, rejected: 0 });
  const t0 = Date.now();
  await assert.rejects(db.query('SELECT 3'), (err: { code?: string; message?: string }) => {
    assert.equal(err.code, 'DEPENDENCY_UNAVAILABLE');
    assert.match(err.message ?? '', /PostgreSQL pool saturated: 2 requests already wait for one of its 1 connections \(DATABASE_POOL_MAX_WAITING\)/);
    return true;
  });
  assert.ok(Date.now() - t0 < 1000, 'refused at once, not after the 30 s connection timeout');
  assert.equal(db.poolStats().rejected, 1);

  release();
  await holder;
  assert.deepEqual((await Promise.all(waiters)).map((r) => r.rows[0]?.n), [1, 2]);
  assert.deepEqual((await db.query<{ n: number }>('SELECT 4 AS n')).rows, [{ n: 4 }]);
  assert.equal(db.poolStats().waiting, 0);
});
