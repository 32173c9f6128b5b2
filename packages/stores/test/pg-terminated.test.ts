// A connection ended by the server while the gateway holds it between two queries (a restart, an operator's
// pg_terminate_backend, a network reset) is a failed call (DEPENDENCY_UNAVAILABLE), not an 'error' event nobody
// listens to, which would end the router (found by the chaos campaign: PostgreSQL faults killed the router).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createRootLogger } from '@wagw/shared';
import { createTestDatabase } from '../../../test/harness/index.ts';
import { PostgresDatabase } from '../src/sql/postgres.ts';

test('a connection terminated while checked out fails its transaction and leaves the process running', async (t) => {
  // after() hooks run in the order they were added: the database is dropped last, once its clients are closed.
  const dbInfo = await createTestDatabase();
  const db = await PostgresDatabase.connect(dbInfo.url, { logger: createRootLogger({ proc: 'test', level: 'silent' }), poolMax: 2 });
  const admin = new pg.Client({ connectionString: dbInfo.url });
  await admin.connect();
  t.after(async () => {
    await admin.end();
    await db.close();
    await dbInfo.drop();
  });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  t.after(() => void process.off('uncaughtException', onUncaught));

  const attempt = db.transaction(async (tx) => {
    const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
    await sleep(300); // the termination arrives while no query of this client is running
    await tx.query('SELECT 1');
  });
  await assert.rejects(attempt, (err: { code?: string }) => err.code === 'DEPENDENCY_UNAVAILABLE');
  assert.deepEqual(uncaught, []);
  // The pool replaces the dead connection: the next call works.
  assert.deepEqual((await db.query<{ one: number }>('SELECT 1 AS one')).rows, [{ one: 1 }]);
});
