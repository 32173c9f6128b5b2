import pg from 'pg';
import { randomId } from './util.ts';
import type { Cleanup } from './util.ts';

/** Admin connection to the local PostgreSQL (any database; used to create and drop test databases). */
export function testPgUrl(): string {
  return process.env['TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
}

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPgUrl(), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates `wagw_test_<random>` on the local PostgreSQL; drop() (or the test's end) removes it, forcing out clients. */
export async function createTestDatabase(cleanup?: Cleanup): Promise<TestDatabase> {
  const name = `wagw_test_${randomId()}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(testPgUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  const handle: TestDatabase = {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
  cleanup?.after(() => handle.drop());
  return handle;
}
