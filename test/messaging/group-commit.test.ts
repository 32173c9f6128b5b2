// Group commit of the message write path (packages/router/src/messages/group-commit.ts), on PostgreSQL:
// concurrent writes share transactions, each caller is answered only once its own write is committed (seen
// from another connection), and one failing write fails alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '@wagw/router';
import { PostgresDatabase } from '@wagw/stores';
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
  const writer = new GroupCommit(db, { writers: 1, logger, onBatch: (n) => batches.push(n) });
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
