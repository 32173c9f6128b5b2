import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { createTestDatabase, seedEmbeddedDb, tempDir } from '../../../test/harness/index.ts';
import type { TempDir, TestDatabase } from '../../../test/harness/index.ts';
import { migrate } from '../src/sql/migrate.ts';
import { PgliteDatabase } from '../src/sql/pglite.ts';
import { PostgresDatabase } from '../src/sql/postgres.ts';
import { sqlConformance } from './conformance/sql.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

let database: TestDatabase | undefined;
sqlConformance(
  'PostgreSQL (fresh database)',
  async () => {
    database = await createTestDatabase();
    const db = await PostgresDatabase.connect(database.url, { logger, poolMax: 4 });
    const close = db.close.bind(db);
    return Object.assign(db, {
      close: async () => {
        await close();
        await database?.drop();
      },
    });
  },
  { parallelTransactions: true },
);

let dir: TempDir | undefined;
sqlConformance(
  'PGlite over pglite-socket (temp dir)',
  async () => {
    dir = await tempDir();
    await seedEmbeddedDb(dir.path);
    const db = await PgliteDatabase.open({ dataDir: path.join(dir.path, 'pglite'), port: 0, logger });
    const close = db.close.bind(db);
    return Object.assign(db, {
      close: async () => {
        await close();
        await dir?.remove();
      },
    });
  },
  { parallelTransactions: false },
);

test('PostgreSQL: several processes migrating one database at once apply each migration once', async (t) => {
  const fresh = await createTestDatabase(t);
  const dbs = await Promise.all([0, 1, 2, 3].map(() => PostgresDatabase.connect(fresh.url, { logger, poolMax: 1 })));
  t.after(() => Promise.all(dbs.map((d) => d.close())).then(() => undefined));
  const results = await Promise.all(dbs.map((d) => migrate(d, { logger })));
  assert.equal(results.filter((r) => r.applied.length > 0).length, 1, 'exactly one run applied the migrations');
  const rows = await dbs[0]?.query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations');
  assert.equal(rows?.rows[0]?.n, results.find((r) => r.applied.length > 0)?.applied.length);
});

test('PostgreSQL: a named statement is prepared once per connection and then runs on its cached plan', async (t) => {
  const fresh = await createTestDatabase(t);
  const db = await PostgresDatabase.connect(fresh.url, { logger, poolMax: 1 });
  t.after(() => db.close());
  const text = 'SELECT count(*) AS n FROM unnest($1::text[]) AS x WHERE x <> $2';
  for (let i = 0; i < 10; i++) assert.equal((await db.query<{ n: number }>(text, [['a', 'b', 'c'], 'b'], { name: 'wagw_test_prepared' })).rows[0]?.n, 2);
  // The pool's one connection: its session's prepared statements.
  const r = await db.query<{ name: string; statement: string; generic_plans: number; custom_plans: number }>(`SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements`);
  assert.equal(r.rows.length, 1, `one prepared statement: ${JSON.stringify(r.rows)}`);
  assert.equal(r.rows[0]?.name, 'wagw_test_prepared');
  assert.equal(r.rows[0]?.statement, text);
  // PostgreSQL plans the first five executions with their values, then keeps a generic plan when it is no dearer.
  assert.equal((r.rows[0]?.generic_plans ?? 0) + (r.rows[0]?.custom_plans ?? 0), 10, 'parsed once, executed ten times');
  assert.ok((r.rows[0]?.generic_plans ?? 0) >= 5, `the cached plan served the later calls: ${JSON.stringify(r.rows[0])}`);
});
