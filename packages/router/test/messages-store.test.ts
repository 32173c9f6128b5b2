// The router's message SQL on embedded PostgreSQL (PGlite) with the real migrations: idempotency records
// (proceed, in progress, replay, reuse, takeover of an expired lock), insert-once, history pages.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { PgliteDatabase, migrate } from '@wagw/stores';
import { MessageStore, decodeBefore, encodeCursor } from '../src/messages/store.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

describe('MessageStore', () => {
  let dir: string;
  let db: PgliteDatabase;
  let store: MessageStore;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-msgstore-'));
    db = await PgliteDatabase.open({ dataDir: path.join(dir, 'pglite'), port: 0, logger });
    await migrate(db, { logger });
    store = new MessageStore(db);
  });

  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('idempotency: proceed, in progress, replay, reused with another body, takeover after the lock expired', async () => {
    assert.deepEqual(await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000), { action: 'proceed', takeover: false });
    const busy = await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000);
    assert.equal(busy.action, 'reject');
    assert.equal(busy.action === 'reject' ? busy.error.code : '', 'IDEMPOTENCY_IN_PROGRESS');
    await store.completeIdempotent('s1', 'k1', 201, { id: '3EB0AA', status: 'sent' });
    assert.deepEqual(await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000), { action: 'replay', status: 201, body: { id: '3EB0AA', status: 'sent' } });
    const reused = await store.beginIdempotent('s1', 'k1', 'fp-b', '3EB0AA', 60_000);
    assert.equal(reused.action === 'reject' ? reused.error.code : '', 'IDEMPOTENCY_KEY_REUSED');
    // Another session has its own key space.
    assert.equal((await store.beginIdempotent('s2', 'k1', 'fp-b', '3EB0BB', 60_000)).action, 'proceed');
    // A lock that expired (its shard died) is taken over once; a released key starts afresh.
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 1), { action: 'proceed', takeover: false });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000), { action: 'proceed', takeover: true });
    assert.equal((await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000)).action, 'reject');
    await store.releaseIdempotent('s1', 'k2');
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000), { action: 'proceed', takeover: false });
  });

  test('insert once; history newest first in pages chained by the cursor', async () => {
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 7; i++) {
      const m = { id: `M${i}`, chat: i % 2 === 0 ? 'a@s.whatsapp.net' : 'b@s.whatsapp.net', from: 'x@s.whatsapp.net', fromMe: false, type: 'text', text: `t${i}`, timestamp: new Date(base + Math.floor(i / 2) * 1000).toISOString() };
      assert.equal(await store.insert('h', m, 'received', 'AAAA'), true);
      assert.equal(await store.insert('h', m, 'received', 'AAAA'), false);
    }
    const ids: string[] = [];
    let before: { at: string; id: string } | undefined;
    for (;;) {
      const page = await store.list('h', { limit: 3, ...(before === undefined ? {} : { before }) });
      ids.push(...page.rows.map((r) => r.id));
      if (page.next === null) break;
      before = decodeBefore(page.next);
    }
    assert.deepEqual(ids, ['M6', 'M5', 'M4', 'M3', 'M2', 'M1', 'M0']);
    const chatA = await store.list('h', { limit: 10, chat: 'a@s.whatsapp.net' });
    assert.deepEqual(chatA.rows.map((r) => r.id), ['M6', 'M4', 'M2', 'M0']);
    const older = await store.list('h', { limit: 10, before: decodeBefore('2026-01-01T00:00:01Z') as { at: string; id: string } });
    assert.deepEqual(older.rows.map((r) => r.id), ['M1', 'M0']);
    assert.equal(decodeBefore('yesterday'), undefined);
    assert.deepEqual(decodeBefore(encodeCursor('2026-01-01T00:00:00.000Z', 'M0')), { at: '2026-01-01T00:00:00.000Z', id: 'M0' });
    assert.equal((await store.ref('h', 'M0'))?.raw, 'AAAA');
    assert.equal(await store.ref('h', 'nope'), undefined);
  });
});
