// The expiry sweep (packages/router/src/messages/expiry.ts) on PGlite and on PostgreSQL, with a local blob
// store: Idempotency-Keys older than the TTL and uploads written longer ago than the upload TTL are deleted,
// everything younger (and an in-progress key with a valid lock, and a base64 temp younger than a send's
// deadline) stays; two routers sweeping at once on PostgreSQL delete each thing once and never fail.
import assert from 'node:assert/strict';
import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { ExpirySweeper } from '@wagw/router';
import type { ExpirySweeperOptions } from '@wagw/router';
import { createRootLogger } from '@wagw/shared';
import type { SqlDatabase } from '@wagw/shared';
import { LocalBlobStore } from '@wagw/stores';
import { tempDir, waitFor } from '../harness/index.ts';
import { openDb, secondPool } from '../webhooks/helpers.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });
const MIN = 60_000;

async function fixture(t: TestContext, kind: 'postgres' | 'pglite') {
  const db = await openDb(kind, t, logger);
  const dir = await tempDir(t);
  const blobs = await LocalBlobStore.create(dir.path);
  const now = Date.now();
  const keyAt = async (key: string, agoMs: number, opts: { done: boolean; lockedForMs?: number }) => {
    await db.query(
      `INSERT INTO idempotency_keys (session_id, key, request_hash, response, status_code, created_at, locked_until)
       VALUES ('s1', $1, 'fp', $2::jsonb, $3, $4, $5)`,
      [
        key,
        opts.done ? '{"id":"x"}' : null,
        opts.done ? 201 : null,
        new Date(now - agoMs).toISOString(),
        opts.lockedForMs === undefined ? null : new Date(now + opts.lockedForMs).toISOString(),
      ],
    );
  };
  await keyAt('old-done', 2 * MIN, { done: true });
  await keyAt('old-released-lock', 2 * MIN, { done: false, lockedForMs: -1000 });
  await keyAt('old-locked', 2 * MIN, { done: false, lockedForMs: MIN });
  await keyAt('fresh', 10_000, { done: true });
  const blobAt = async (key: string, agoMs: number) => {
    await blobs.put(key, Buffer.from(key));
    const at = new Date(now - agoMs);
    await utimes(path.join(blobs.root, 'objects', ...key.split('/')), at, at);
  };
  await blobAt('uploads/s1/u_old', 2 * MIN);
  await blobAt('uploads/s1/u_old.meta', 2 * MIN);
  await blobAt('uploads/s2/u_new', 10_000);
  await blobAt('uploads/s2/u_new.meta', 10_000);
  await blobAt('uploads/s1/b64-sending', 2 * MIN); // within the send deadline: kept
  await blobAt('uploads/s1/b64-orphan', 20 * MIN); // beyond it: swept
  await blobAt('media/s1/M1', 60 * MIN); // received media is not an upload
  const options = (sql: SqlDatabase): ExpirySweeperOptions => ({ sql, blobs, logger, idempotencyTtlMs: MIN, uploadTtlMs: MIN, intervalMs: 3_600_000, sendDeadlineMs: 10 * MIN });
  const keys = async () => (await db.query<{ key: string }>(`SELECT key FROM idempotency_keys ORDER BY key`)).rows.map((r) => r.key);
  return { db, blobs, options, keys };
}

const KEPT_KEYS = ['fresh', 'old-locked'];
const KEPT_BLOBS = ['media/s1/M1', 'uploads/s1/b64-sending', 'uploads/s2/u_new', 'uploads/s2/u_new.meta'];

describe('expiry sweep of idempotency keys and uploads', () => {
  for (const kind of ['pglite', 'postgres'] as const) {
    test(`${kind}: deletes what expired, keeps the rest; a second sweep finds nothing`, async (t) => {
      const f = await fixture(t, kind);
      assert.equal((await f.keys()).length, 4);
      const sweeper = new ExpirySweeper(f.options(f.db));
      assert.deepEqual(await sweeper.sweepOnce(), { ran: true, idempotencyKeys: 2, uploads: 3 });
      assert.deepEqual(await f.keys(), KEPT_KEYS);
      assert.deepEqual(await f.blobs.list(''), KEPT_BLOBS);
      assert.deepEqual(await sweeper.sweepOnce(), { ran: true, idempotencyKeys: 0, uploads: 0 });
    });
  }

  test('postgres: two routers sweeping at once delete each thing once, without errors', async (t) => {
    const f = await fixture(t, 'postgres');
    const url = (f.db as SqlDatabase & { url?: string }).url;
    assert.ok(url !== undefined);
    const other = await secondPool(url, t, logger);
    const [a, b] = await Promise.all([new ExpirySweeper(f.options(f.db)).sweepOnce(), new ExpirySweeper(f.options(other)).sweepOnce()]);
    assert.ok(a.ran || b.ran);
    assert.equal(a.idempotencyKeys + b.idempotencyKeys, 2);
    assert.equal(a.uploads + b.uploads, 3);
    assert.deepEqual(await f.keys(), KEPT_KEYS);
    assert.deepEqual(await f.blobs.list(''), KEPT_BLOBS);
  });

  test('start() sweeps on its own timer; stop() ends it', async (t) => {
    const f = await fixture(t, 'pglite');
    const sweeper = new ExpirySweeper({ ...f.options(f.db), intervalMs: 50 });
    t.after(() => sweeper.stop());
    sweeper.start();
    await waitFor(async () => ((await f.keys()).length === 2 ? true : null), { what: 'the timer swept', timeoutMs: 5000 });
    await sweeper.stop();
    assert.deepEqual(await f.blobs.list(''), KEPT_BLOBS);
  });
});
