// Group commit of the message write path (packages/router/src/messages/group-commit.ts), on PostgreSQL:
// concurrent writes share transactions, each caller is answered only once its own write is committed (seen
// from another connection), and one failing write fails alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '@wagw/router';
import { PostgresDatabase } from '@wagw/stores';
import type { SqlClient } from '@wagw/shared';
import { createTestDatabase } from '../harness/index.ts';
import { quietLogger } from '../webhooks/helpers.ts';

const logger = quietLogger();

async function setUp(t: { after: (fn: () => Promise<void>) => void }): Promise<{ db: PostgresDatabase; observer: PostgresDatabase }> {
  const tdb = await createTestDatabase();
  const db = await PostgresDatabase.connect(tdb.url, { logger, poolMax: 4 });
  const observer = await PostgresDatabase.connect(tdb.url, { logger, poolMax: 1 });
  t.after(async () => {
    await db.close();
    await observer.close();
    await tdb.drop();
  });
  await db.query('CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)');
  return { db, observer };
}

test('200 concurrent writes commit in a few shared transactions; each answer comes after its row is visible to another connection', async (t) => {
  const { db, observer } = await setUp(t);
  const batches: number[] = [];
  const waits: number[] = [];
  const writer = new GroupCommit(db, { writers: 1, logger, onBatch: (n) => batches.push(n), onWait: (s) => waits.push(s) });
  const seenAtAnswer: boolean[] = [];
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const r = await writer.transaction(async (tx) => {
        await tx.query('INSERT INTO t (id, v) VALUES ($1, $2)', [i, `v${i}`]);
        return `ok${i}`;
      });
      assert.equal(r, `ok${i}`, 'each caller gets its own result');
      // Committed (not merely written inside a transaction that is still open) when the caller is answered.
      const seen = await observer.query('SELECT 1 FROM t WHERE id = $1', [i]);
      seenAtAnswer.push(seen.rowCount === 1);
    }),
  );
  assert.equal(seenAtAnswer.length, 200);
  assert.ok(seenAtAnswer.every(Boolean), 'every answered write was committed');
  assert.equal(batches.reduce((a, b) => a + b, 0), 200, 'every write committed once');
  assert.ok(batches.length < 200 && Math.max(...batches) > 1, `writes were grouped (batches: ${batches.join(',')})`);
  assert.equal((await observer.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n'], 200);
  // wagw_message_write_wait_seconds: one wait per committed write, queued to committed; the last queued waited for earlier batches.
  assert.equal(waits.length, 200);
  assert.ok(waits.every((w) => w >= 0 && w < 60), `waits in seconds: ${waits.slice(0, 5).join(',')}`);
  assert.ok(Math.max(...waits) > Math.min(...waits), 'writes queued behind a running batch waited longer');
});

test('a write that throws fails alone: the others of its batch commit, it leaves nothing behind', async (t) => {
  const { db, observer } = await setUp(t);
  const writer = new GroupCommit(db, { writers: 1, logger });
  await db.query(`INSERT INTO t (id, v) VALUES (5, 'taken')`);
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) =>
      writer.transaction(async (tx) => {
        await tx.query('INSERT INTO t (id, v) VALUES ($1, $2)', [100 + i, 'x']);
        if (i === 3) await tx.query(`INSERT INTO t (id, v) VALUES (5, 'duplicate')`); // unique violation
        return i;
      }),
    ),
  );
  assert.equal(results.filter((r) => r.status === 'rejected').length, 1);
  assert.equal(results[3]?.status, 'rejected');
  const ids = (await observer.query<{ id: number }>('SELECT id FROM t WHERE id >= 100 ORDER BY id')).rows.map((r) => r.id);
  assert.deepEqual(ids, [100, 101, 102, 104, 105, 106, 107, 108, 109], 'the failing write rolled back, the rest committed once');
});

test('writers: 0 is one transaction per write (grouping off)', async (t) => {
  const { db } = await setUp(t);
  const batches: number[] = [];
  const writer = new GroupCommit(db, { writers: 0, logger, onBatch: (n) => batches.push(n) });
  await Promise.all(Array.from({ length: 20 }, (_, i) => writer.transaction((tx) => tx.query('INSERT INTO t (id, v) VALUES ($1, $2)', [i, 'x']))));
  assert.equal(batches.length, 0, 'no batch ran');
  assert.equal((await db.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n'], 20);
});

test('bulk writes: the inputs of one op in a batch go to one run call, each caller gets its own result; ops run before or after the closures by their order', async (t) => {
  const { db, observer } = await setUp(t);
  const batches: number[] = [];
  const writer = new GroupCommit(db, { writers: 1, logger, onBatch: (n) => batches.push(n) });
  const runs: number[] = [];
  const trace: string[] = [];
  const insert = {
    order: -1,
    async run(tx: SqlClient, inputs: readonly number[]): Promise<string[]> {
      runs.push(inputs.length);
      trace.push('bulk');
      await tx.query('INSERT INTO t (id, v) SELECT id, $2 FROM unnest($1::int[]) AS id', [inputs, 'bulk']);
      return inputs.map((i) => `ok${i}`);
    },
  };
  const after = { order: 1, run: async (_tx: SqlClient, inputs: readonly string[]) => (trace.push('after'), inputs.map((s) => s.length)) };
  // The first call runs alone (the writer is idle); the rest queue behind it and share the later batches.
  const results = await Promise.all([
    ...Array.from({ length: 100 }, (_, i) => writer.submit(insert, i)),
    writer.transaction(async (tx) => (trace.push('closure'), (await tx.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n'])),
    writer.submit(after, 'abc'),
  ]);
  assert.deepEqual(results.slice(0, 100), Array.from({ length: 100 }, (_, i) => `ok${i}`), 'each caller gets its own result');
  assert.equal(results[101], 3);
  assert.ok(runs.length < 100 && Math.max(...runs) > 1, `inputs shared run calls (sizes: ${runs.join(',')})`);
  assert.equal(runs.reduce((a, b) => a + b, 0), 100, 'every input written once');
  const tail = trace.slice(trace.indexOf('closure') - 1);
  assert.deepEqual(tail, ['bulk', 'closure', 'after'], `in the batch of the closure: the op of order -1, the closure, the op of order 1 (${trace.join(',')})`);
  assert.equal((await observer.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n'], 100);
  assert.equal(batches.reduce((a, b) => a + b, 0), 102);
});

test('bulk writes: an input that makes its batch fail fails alone; the batch re-runs one transaction per item', async (t) => {
  const { db, observer } = await setUp(t);
  const writer = new GroupCommit(db, { writers: 1, logger });
  await db.query(`INSERT INTO t (id, v) VALUES (5, 'taken')`);
  const op = { order: 0, run: async (tx: SqlClient, inputs: readonly number[]) => (await tx.query('INSERT INTO t (id, v) SELECT id, $2 FROM unnest($1::int[]) AS id', [inputs, 'x']), [...inputs]) };
  await writer.submit(op, 1000);
  // The first of these runs alone (the writer was idle); the other five share a batch, which the duplicate 5 fails.
  const results = await Promise.allSettled([100, 101, 102, 5, 104, 105].map((i) => writer.submit(op, i)));
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  const ids = (await observer.query<{ id: number }>('SELECT id FROM t WHERE id >= 100 ORDER BY id')).rows.map((r) => r.id);
  assert.deepEqual(ids, [100, 101, 102, 104, 105, 1000]);
});
