/**
 * The one conformance suite of SqlDatabase. The database is opened once per suite (PGlite takes seconds to
 * initialise) and must be empty; tests use their own tables.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import type { SqlDatabase } from '@wagw/shared';
import { loadMigrations, migrate } from '../../src/sql/migrate.ts';

export interface SqlConformanceOptions {
  /** The implementation runs transactions on several connections at once (PostgreSQL; not PGlite). */
  parallelTransactions: boolean;
}

const logger = createRootLogger({ proc: 'test', level: 'silent' });

export function sqlConformance(name: string, open: () => Promise<SqlDatabase>, options: SqlConformanceOptions): void {
  describe(`SqlDatabase conformance: ${name}`, () => {
    let db: SqlDatabase;
    before(async () => {
      db = await open();
    });
    after(() => db.close());

    test('query with parameters, rowCount, and value types', async () => {
      await db.ping();
      const r = await db.query<{ n: number; s: string; b: boolean; t: Date; big: number; nul: null }>(
        'SELECT $1::int AS n, $2::text AS s, $3::boolean AS b, now() AS t, 9007199254740991::bigint AS big, NULL AS nul',
        [42, 'hé', true],
      );
      assert.equal(r.rowCount, 1);
      assert.deepEqual({ ...r.rows[0], t: undefined }, { n: 42, s: 'hé', b: true, t: undefined, big: 9007199254740991, nul: null });
      assert.ok(r.rows[0]?.t instanceof Date);
      const count = await db.query<{ c: number }>('SELECT count(*) AS c FROM generate_series(1, 5)');
      assert.equal(count.rows[0]?.c, 5, 'count(*) (bigint) is a number');
      await assert.rejects(db.query('SELECT * FROM no_such_table'), /no_such_table/);
      await db.query('SELECT 1'); // still usable after an error
    });

    test('a named statement answers like an unnamed one, again and again, in and out of transactions', async () => {
      const text = 'SELECT $1::int * 2 AS n, unnest($2::text[]) AS s';
      for (let i = 0; i < 8; i++) {
        const r = await db.query<{ n: number; s: string }>(text, [i, ['a', 'b']], { name: 'wagw_conformance_named' });
        assert.deepEqual(r.rows, [{ n: i * 2, s: 'a' }, { n: i * 2, s: 'b' }]);
        const t = await db.transaction((tx) => tx.query<{ n: number; s: string }>(text, [i, ['c']], { name: 'wagw_conformance_named' }));
        assert.deepEqual(t.rows, [{ n: i * 2, s: 'c' }]);
      }
    });

    test('migrations apply, are recorded, and a second run does nothing', async () => {
      const first = await migrate(db, { logger });
      const files = await loadMigrations();
      assert.deepEqual(first.applied, files.map((m) => m.version));
      const second = await migrate(db, { logger });
      assert.deepEqual(second.applied, []);
      assert.equal(second.current, first.current);
      const recorded = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(recorded.rows.map((r) => r.version), files.map((m) => m.version));
      const tables = await db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      for (const table of ['idempotency_keys', 'message_status_events', 'messages', 'session_status_history', 'sessions', 'webhook_outbox']) {
        assert.ok(tables.rows.some((r) => r.table_name === table), `table ${table} exists`);
      }
    });

    test('a migration edited after it was applied is refused; a failing one leaves nothing behind', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-mig-'));
      try {
        await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE conf_mig_a (id int);');
        // The extra migrations live in their own table of versions: use a scratch schema.
        await db.query('CREATE SCHEMA IF NOT EXISTS conf_mig');
        await db.query('SET search_path TO conf_mig, public');
        try {
          assert.deepEqual((await migrate(db, { logger, dir })).applied, [1]);
          await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE conf_mig_a (id bigint);');
          await assert.rejects(migrate(db, { logger, dir }), /001_a was changed after it was applied/);
          await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE conf_mig_a (id int);');
          await writeFile(path.join(dir, '002_b.sql'), 'CREATE TABLE conf_mig_b (id int);');
          await writeFile(path.join(dir, '003_c.sql'), 'CREATE TABLE conf_mig_c (id int); SELECT no_such_function();');
          await assert.rejects(migrate(db, { logger, dir }), /003_c failed/);
          const b = await db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'conf_mig_b'");
          assert.equal(b.rowCount, 0, 'the run is one transaction: 002 was rolled back with 003');
        } finally {
          await db.query('SET search_path TO public');
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('jsonb round-trips objects, arrays (stringified), unicode and nulls', async () => {
      await migrate(db, { logger });
      const payload = { text: 'halo 👋', nested: { list: [1, 'two', null, { three: true }] }, n: 1.5 };
      await db.query(
        `INSERT INTO webhook_outbox (event_id, session_id, endpoint, event_type, payload) VALUES ($1, $2, $3, $4, $5)`,
        ['evt-json-1', 's1', 'https://backend.example/api/webhooks/messages', 'message', payload],
      );
      const r = await db.query<{ payload: unknown; id: number; attempts: number; next_attempt_at: Date }>(
        'SELECT id, payload, attempts, next_attempt_at FROM webhook_outbox WHERE event_id = $1',
        ['evt-json-1'],
      );
      assert.deepEqual(r.rows[0]?.payload, payload);
      assert.equal(typeof r.rows[0]?.id, 'number', 'bigserial ids are numbers');
      assert.equal(r.rows[0]?.attempts, 0);
      assert.ok(r.rows[0]?.next_attempt_at instanceof Date);
      const arr = await db.query<{ j: unknown }>('SELECT $1::jsonb AS j', [JSON.stringify([1, { a: 'b' }])]);
      assert.deepEqual(arr.rows[0]?.j, [1, { a: 'b' }]);
      await assert.rejects(
        db.query(`INSERT INTO webhook_outbox (event_id, endpoint, event_type, payload) VALUES ($1, $2, 'message', '{}')`, [
          'evt-json-1',
          'https://backend.example/api/webhooks/messages',
        ]),
        /duplicate key/,
        'one delivery row per event and endpoint',
      );
    });

    test('a transaction commits, and rolls back when its callback throws', async () => {
      await db.query('CREATE TABLE conf_tx (k text PRIMARY KEY, v int NOT NULL)');
      const value = await db.transaction(async (tx) => {
        await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['a', 1]);
        await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['b', 2]);
        return 'done';
      });
      assert.equal(value, 'done');
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['c', 3]);
          await tx.query('UPDATE conf_tx SET v = 100');
          throw new Error('boom');
        }),
        /boom/,
      );
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['d', 4]);
          await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['a', 5]); // duplicate key: SQL error
        }),
        /duplicate key/,
      );
      // A callback that catches an SQL error and goes on: PostgreSQL answers the COMMIT of the failed transaction with
      // ROLLBACK, which is a failure, not a commit (before, the transaction resolved and 'e' was silently lost).
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['e', 6]);
          await tx.query('INSERT INTO conf_tx VALUES ($1, $2)', ['a', 7]).catch(() => undefined);
        }),
        /COMMIT was answered ROLLBACK/,
      );
      const r = await db.query<{ k: string; v: number }>('SELECT k, v FROM conf_tx ORDER BY k');
      assert.deepEqual(r.rows, [
        { k: 'a', v: 1 },
        { k: 'b', v: 2 },
      ]);
    });

    test("a transaction's writes run in order and commit with it; a failing write fails it, named by its own error", async () => {
      await db.query('CREATE TABLE conf_write (k text PRIMARY KEY, v int NOT NULL)');
      // Writes whose result nobody waits for, a query that sees them, and a write as the last statement before COMMIT.
      const seen = await db.transaction(async (tx) => {
        tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['a', 1]);
        tx.write('UPDATE conf_write SET v = v + 1 WHERE k = $1', ['a']);
        const r = await tx.query<{ v: number }>('SELECT v FROM conf_write WHERE k = $1', ['a']);
        tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['b', 3], { name: 'wagw_conformance_write' });
        return r.rows[0]?.v;
      });
      assert.equal(seen, 2, 'the query ran after both writes');
      const rows = async (): Promise<unknown[]> => (await db.query<{ k: string; v: number }>('SELECT k, v FROM conf_write ORDER BY k')).rows;
      assert.deepEqual(await rows(), [{ k: 'a', v: 2 }, { k: 'b', v: 3 }]);

      // The last write fails (duplicate key): the transaction rejects with that error and nothing of it is committed.
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO conf_write VALUES ($1, $2)', ['c', 4]);
          tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['a', 5]);
        }),
        (err: { code?: string; message?: string }) => err.code === '23505' && /duplicate key/.test(err.message ?? ''),
      );
      // A query after a failing write rejects with the write's error, not "current transaction is aborted".
      let afterWrite: unknown;
      await assert.rejects(
        db.transaction(async (tx) => {
          tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['d', 6]);
          tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['b', 7]);
          try {
            await tx.query('SELECT 1');
          } catch (err) {
            afterWrite = err;
            throw err;
          }
        }),
        { code: '23505' },
      );
      assert.equal((afterWrite as { code?: string } | undefined)?.code, '23505');
      // A callback that throws right after a write: the write is rolled back with the rest, never run on its own.
      await assert.rejects(
        db.transaction(async (tx) => {
          tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['f', 9]);
          throw new Error('the state write failed');
        }),
        /state write failed/,
      );
      assert.deepEqual(await rows(), [{ k: 'a', v: 2 }, { k: 'b', v: 3 }], 'neither failed transaction left a row');
      // The connection is clean for the next transaction.
      await db.transaction(async (tx) => tx.write('INSERT INTO conf_write VALUES ($1, $2)', ['e', 8]));
      assert.deepEqual(await rows(), [{ k: 'a', v: 2 }, { k: 'b', v: 3 }, { k: 'e', v: 8 }]);
    });

    test('using the database instead of tx inside a transaction is refused (it would deadlock on one connection)', async () => {
      await assert.rejects(
        db.transaction(async () => {
          await db.query('SELECT 1');
        }),
        /Use the transaction client/,
      );
      let leaked: { query(text: string): Promise<unknown> } | undefined;
      await db.transaction(async (tx) => {
        leaked = tx;
      });
      await assert.rejects(leaked?.query('SELECT 1') ?? Promise.resolve(), /transaction has ended/);
    });

    test('concurrent transactions never lose an update', async () => {
      await db.query('CREATE TABLE conf_counter (id int PRIMARY KEY, n int NOT NULL)');
      await db.query('INSERT INTO conf_counter VALUES (1, 0)');
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          db.transaction(async (tx) => {
            const r = await tx.query<{ n: number }>('SELECT n FROM conf_counter WHERE id = 1 FOR UPDATE');
            await new Promise((resolve) => setTimeout(resolve, 2));
            await tx.query('UPDATE conf_counter SET n = $1 WHERE id = 1', [(r.rows[0]?.n ?? 0) + 1]);
            if (i % 4 === 3) throw new Error('rolled back on purpose');
          }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'rejected').length, 3);
      const r = await db.query<{ n: number }>('SELECT n FROM conf_counter WHERE id = 1');
      assert.equal(r.rows[0]?.n, 9);
    });

    if (options.parallelTransactions) {
      test('transactions run in parallel on separate connections', async () => {
        let arrived = 0;
        let release: () => void = () => {};
        const bothInside = new Promise<void>((resolve) => {
          release = resolve;
        });
        const pids = await Promise.all(
          [0, 1].map(() =>
            db.transaction(async (tx) => {
              const r = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
              arrived += 1;
              if (arrived === 2) release();
              await bothInside; // would never resolve if the two were serialised
              return r.rows[0]?.pid;
            }),
          ),
        );
        assert.notEqual(pids[0], pids[1]);
      });
    }
  });
}
