// Group commit of the message write path (packages/router/src/messages/group-commit.ts), on PostgreSQL:
// concurrent writes share transactions, each caller is answered only once its own write is committed (seen
// from another connection), and one failing write fails alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '@wagw/router';
import type { BulkWrite } from '@wagw/router';
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

/** An op writing each input as its own row, one statement per input (so one input can fail alone); answers `ok<id>`. */
function rowsOp(trace?: number[]): BulkWrite<number, string> {
  return {
    order: 0,
    async run(tx, inputs) {
      trace?.push(inputs.length);
      for (const i of inputs) await tx.query('INSERT INTO t (id, v) VALUES ($1, $2)', [i, i === 5 ? 'duplicate' : `v${i}`]);
      return inputs.map((i) => `ok${i}`);
    },
  };
}

test('200 concurrent writes commit in a few shared transactions; each answer comes after its row is visible to another connection', async (t) => {
  const { db, observer } = await setUp(t);
  const batches: number[] = [];
  const waits: number[] = [];
  const writer = new GroupCommit(db, { writers: 1, logger, onBatch: (n) => batches.push(n), onWait: (s) => waits.push(s) });
  const op = rowsOp();
  const seenAtAnswer: boolean[] = [];
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const r = await writer.submit(op, 1000 + i);
      assert.equal(r, `ok${1000 + i}`, 'each caller gets its own result');
      // Committed (not merely written inside a transaction that is still open) when the caller is answered.
      const seen = await observer.query('SELECT 1 FROM t WHERE id = $1', [1000 + i]);
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
  const runs: number[] = [];
  const writer = new GroupCommit(db, { writers: 1, logger });
  await db.query(`INSERT INTO t (id, v) VALUES (5, 'taken')`);
  const op = rowsOp(runs);
  // Queued while the writer is busy with the first: the other nine share one batch, which the duplicate 5 fails.
  const results = await Promise.allSettled([100, 101, 102, 5, 104, 105, 106, 107, 108, 109].map((i) => writer.submit(op, i)));
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  assert.ok(runs.some((n) => n > 1), `the failing input shared a batch before it re-ran alone (run sizes: ${runs.join(',')})`);
  const ids = (await observer.query<{ id: number }>('SELECT id FROM t WHERE id >= 100 ORDER BY id')).rows.map((r) => r.id);
  assert.deepEqual(ids, [100, 101, 102, 104, 105, 106, 107, 108, 109], 'the failing write rolled back, the rest committed once');
  assert.equal((await observer.query<{ v: string }>('SELECT v FROM t WHERE id = 5')).rows[0]?.v, 'taken');
});

test('writers: 0 is one transaction per write (grouping off)', async (t) => {
  const { db } = await setUp(t);
  const batches: number[] = [];
  const runs: number[] = [];
  const writer = new GroupCommit(db, { writers: 0, logger, onBatch: (n) => batches.push(n) });
  const op = rowsOp(runs);
  await Promise.all(Array.from({ length: 20 }, (_, i) => writer.submit(op, 1000 + i)));
  assert.equal(batches.length, 0, 'no batch ran');
  assert.deepEqual(runs, Array.from({ length: 20 }, () => 1), 'each input ran alone');
  assert.equal((await db.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n'], 20);
});

test('bulk writes: the inputs of one op in a batch go to one run call, each caller gets its own result; ops of one batch run in their order', async (t) => {
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
  const middle = {
    order: 0,
    async run(tx: SqlClient, inputs: readonly string[]): Promise<number[]> {
      trace.push('middle');
      const n = Number((await tx.query('SELECT count(*)::int AS n FROM t')).rows[0]?.['n']);
      return inputs.map(() => n);
    },
  };
  const after = { order: 1, run: async (_tx: SqlClient, inputs: readonly string[]) => (trace.push('after'), inputs.map((s) => s.length)) };
  // The first call runs alone (the writer is idle); the rest queue behind it and share the next batch, the ops of
  // order 1 and 0 queued before those of order -1: the batch runs them by order, not by arrival.
  const [first, afterResult, middleResult, ...rest] = await Promise.all([
    writer.submit(insert, 0),
    writer.submit(after, 'abc'),
    writer.submit(middle, 'count'),
    ...Array.from({ length: 99 }, (_, i) => writer.submit(insert, i + 1)),
  ]);
  assert.deepEqual([first, ...rest], Array.from({ length: 100 }, (_, i) => `ok${i}`), 'each caller gets its own result');
  assert.equal(middleResult, 100, 'the order-0 op saw the rows its batch\'s order -1 op wrote before it');
  assert.equal(afterResult, 3);
  const tail = trace.slice(trace.indexOf('middle') - 1);
  assert.deepEqual(tail, ['bulk', 'middle', 'after'], `in the batch of the order-0 op: the op of order -1 before it, the op of order 1 after (${trace.join(',')})`);
  assert.deepEqual(runs, [1, 99], 'the first input alone, the other 99 in one run call');
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
