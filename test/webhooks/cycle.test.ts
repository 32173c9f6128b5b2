// Recording results and claiming the next rows share one statement per cycle (cycle-sql.ts): every statement is
// a commit, and a record UPDATE of its own per flush used to double the dispatcher's statements. Counted on the
// database handle the dispatcher uses; the ordering and lease guarantees are dispatcher.test.ts's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SqlDatabase, SqlTransaction } from '@wagw/shared';
import { startTestBackend, waitFor } from '../harness/index.ts';
import { SECRET, createWebhookSystem, enqueueAll, event, openDb, quietLogger, sessionSecretFor, webhookConfig } from './helpers.ts';

const logger = quietLogger();

/** The dispatcher's database with its writing statements (claims and records: UPDATEs of the outbox) counted. */
function countingUpdates(db: SqlDatabase): { db: SqlDatabase; updates: () => number } {
  let updates = 0;
  const counted: SqlDatabase = {
    kind: db.kind,
    query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: readonly unknown[]) {
      if (/UPDATE webhook_outbox/.test(text)) updates++;
      return db.query<R>(text, params);
    },
    transaction: <T>(fn: (tx: SqlTransaction) => Promise<T>) => db.transaction(fn),
    ping: () => db.ping(),
    close: () => db.close(),
  };
  return { db: counted, updates: () => updates };
}

test('one statement per delivery cycle: each finished delivery is recorded by the statement that claims the next row', async (t) => {
  const raw = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  // One row in flight and one claimed at a time, and a receiver slower than the 5 ms a result waits before it
  // is written on its own: a design that records separately pays a record and a claim for every row.
  await backend.setMode('slow', { delayMs: 40 });
  const { db, updates } = countingUpdates(raw);
  const config = webhookConfig({ BACKEND_URL: backend.url, WEBHOOK_CONCURRENCY: '1', WEBHOOK_BATCH_SIZE: '1', WEBHOOK_POLL_INTERVAL_MS: '10000', WEBHOOK_TIMEOUT_MS: '5000', WEBHOOK_LOCK_TIMEOUT_MS: '30000' });
  const system = createWebhookSystem({ sql: db, config, logger });
  const n = 20;
  const events = Array.from({ length: n }, (_, i) => event('messages', 'c1', i));
  await enqueueAll(raw, system.outbox, events);
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  const stats = createWebhookSystem({ sql: raw, config, logger }).admin;
  await waitFor(async () => (await stats.stats()).pending === 0, { what: 'every row delivered and recorded', timeoutMs: 20_000, intervalMs: 20 });
  assert.equal(new Set(backend.accepted.map((w) => w.id)).size, n, 'every event arrived');
  const used = updates();
  // n claims are needed anyway; the records ride on them (a few more cycles at the end find nothing to claim).
  assert.ok(used <= n + 5, `${used} claim/record statements for ${n} deliveries (separate records would need about ${2 * n})`);
});
