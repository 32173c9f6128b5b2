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
