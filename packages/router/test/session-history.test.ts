// The stored status history of a session (migration 008, SessionStore.writeStatus/history), on PostgreSQL and on
// PGlite with the real migrations: written in the status write's transaction (a failing webhook enqueue rolls
// both back), an identical repeat adds nothing, a fenced (stale owner) write adds nothing, the newest 200 are kept,
// keyset pages newest first, and the rows go with the session.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import type { SqlDatabase } from '@wagw/shared';
import { PgliteDatabase, PostgresDatabase, migrate } from '@wagw/stores';
import { createTestDatabase, seedEmbeddedDb, tempDir } from '../../../test/harness/index.ts';
import { STATUS_HISTORY_KEEP, SessionStore } from '../src/sessions/store.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

async function check(db: SqlDatabase): Promise<void> {
  await migrate(db, { logger });
  const store = new SessionStore(db);
  const count = async (id: string): Promise<number> =>
    (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM session_status_history WHERE session_id = $1', [id])).rows[0]?.n ?? -1;

  assert.equal(await store.history('nobody', { limit: 10 }), null, 'no session: null (the route answers 404)');
  assert.ok(await store.insert({ id: 's1', hostId: 'h1', webhookUrl: null, metadata: {} }));
  assert.deepEqual(await store.history('s1', { limit: 10 }), { data: [], nextCursor: null });
  await store.placed('s1', 'h1', 0, 7);

  await store.writeStatus('s1', { status: 'qr', reason: null });
  await store.writeStatus('s1', { status: 'qr', reason: null });
  assert.equal(await count('s1'), 1, 'an identical repeat adds no row');
  await store.writeStatus('s1', { status: 'connected', reason: null });
  await store.writeStatus('s1', { status: 'disconnected', reason: 'connection lost (428)' });
  await store.writeStatus('s1', { status: 'disconnected', reason: 'restart required (515)' });
  await store.writeStatus('s1', { status: 'connected', reason: null });
  const page = await store.history('s1', { limit: 10 });
  assert.deepEqual(
    page?.data.map((e) => [e.status, e.reason, e.host, e.shard, e.epoch]),
    [
      ['connected', null, 'h1', 0, 7],
      ['disconnected', 'restart required (515)', 'h1', 0, 7],
      ['disconnected', 'connection lost (428)', 'h1', 0, 7],
      ['connected', null, 'h1', 0, 7],
      ['qr', null, 'h1', 0, 7],
    ],
    'newest first, each with its reason and placement; another reason is another entry',
  );
  // The entry's time is the row's updated_at of that write.
  assert.equal(page?.data[0]?.at, (await store.get('s1'))?.updatedAt);

  // Same transaction: a failing step after the row update (the webhook enqueue) leaves neither row nor history.
  await assert.rejects(
    store.writeStatus('s1', { status: 'failed', reason: 'boom' }, async () => {
      throw new Error('enqueue failed');
    }),
    /enqueue failed/,
  );
  assert.equal((await store.get('s1'))?.status, 'connected');
  assert.equal(await count('s1'), 5, 'rolled back with the row');

  // A stale owner's report (the row's epoch is newer) changes nothing, history included.
  assert.equal(await store.writeStatus('s1', { status: 'disconnected', reason: 'zombie', ownerEpoch: 6 }), null);
  assert.equal(await count('s1'), 5);

  // Keyset paging: each page continues below the previous one's last seq, the last page has no cursor.
  const first = await store.history('s1', { limit: 2 });
  assert.equal(first?.data.length, 2);
  assert.notEqual(first?.nextCursor, null);
  const second = await store.history('s1', { limit: 2, cursor: first?.nextCursor ?? 0 });
  const third = await store.history('s1', { limit: 2, cursor: second?.nextCursor ?? 0 });
  assert.deepEqual(
    [...(first?.data ?? []), ...(second?.data ?? []), ...(third?.data ?? [])].map((e) => e.seq),
    page?.data.map((e) => e.seq),
  );
  assert.equal(third?.nextCursor, null);

  // The newest 200 are kept: 230 more changes leave exactly 200, the newest of them.
  for (let i = 0; i < 230; i++) await store.writeStatus('s1', { status: i % 2 === 0 ? 'reconnecting' : 'connected', reason: `change ${i}` });
  assert.equal(await count('s1'), STATUS_HISTORY_KEEP);
  const kept = await store.history('s1', { limit: 200 });
  assert.equal(kept?.data[0]?.reason, 'change 229');
  assert.equal(kept?.data.at(-1)?.reason, 'change 30');
  assert.equal(kept?.nextCursor, null);

  // Another session's history is its own, and deleting a session deletes its history.
  assert.ok(await store.insert({ id: 's2', hostId: 'h1', webhookUrl: null, metadata: {} }));
  await store.writeStatus('s2', { status: 'qr', reason: null });
  assert.ok(await store.delete('s1'));
  assert.equal(await count('s1'), 0, 'gone with the session');
  assert.equal(await count('s2'), 1);
  assert.equal(await store.history('s1', { limit: 10 }), null);
}

describe('session status history', () => {
  test('on PostgreSQL', async (t) => {
    const fresh = await createTestDatabase(t);
    const db = await PostgresDatabase.connect(fresh.url, { logger, poolMax: 2 });
    t.after(() => db.close());
    await check(db);
  });

  test('on PGlite', async (t) => {
    const dir = await tempDir(t);
    await seedEmbeddedDb(dir.path);
    const db = await PgliteDatabase.open({ dataDir: path.join(dir.path, 'pglite'), port: 0, logger });
    t.after(() => db.close());
    await check(db);
  });
});
