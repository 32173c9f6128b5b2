// The outbox writer and a plain delivery, on PostgreSQL and on embedded PGlite (one shared connection).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startTestBackend, waitFor } from '../harness/index.ts';
import { SECRET, createWebhookSystem, enqueueAll, event, openDb, outboxRows, quietLogger, sessionSecretFor, sessionWebhookSecret, webhookConfig } from './helpers.ts';
import type { DbKind } from './helpers.ts';

const logger = quietLogger();

for (const kind of ['postgres', 'pglite'] as DbKind[]) {
  describe(`outbox on ${kind}`, () => {
    test('one row per endpoint, re-enqueue is a no-op, a rolled-back transaction writes nothing, no secret in payloads', async (t) => {
      const db = await openDb(kind, t, logger);
      const config = webhookConfig({ BACKEND_URL: 'http://127.0.0.1:9/base/', BACKEND_API_KEY: 'backend-key-123' });
      const system = createWebhookSystem({ sql: db, config, logger });
      const e = event('session-status', 's1', 1, { status: 'qr', qr: '2@abc' });
      await db.transaction((tx) => system.outbox.enqueue(tx, e, 'http://hooks.example/s1'));
      await db.transaction((tx) => system.outbox.enqueue(tx, e, 'http://hooks.example/s1'));
      await assert.rejects(
        db.transaction(async (tx) => {
          await system.outbox.enqueue(tx, event('messages', 's1', 2), null);
          throw new Error('the state write failed');
        }),
        /state write failed/,
      );
      const rows = await outboxRows(db);
      assert.deepEqual(
        rows.map((r) => r.endpoint),
        ['http://127.0.0.1:9/base/api/webhooks/session-status', 'http://hooks.example/s1'],
      );
      assert.ok(rows.every((r) => r.event_id === e.id && r.status === 'pending' && r.attempts === 0));
      assert.deepEqual(rows[0]?.payload, { id: e.id, type: 'session-status', sessionId: 's1', timestamp: e.occurredAt, data: e.data });
      const all = JSON.stringify(rows);
      assert.ok(!all.includes(SECRET.slice(6)) && !all.includes('backend-key-123'), 'no secret or API key in the outbox');
    });

    test('without WEBHOOK_SECRET nothing is written and session URLs are refused', async (t) => {
      const db = await openDb(kind, t, logger);
      const system = createWebhookSystem({ sql: db, config: webhookConfig({ WEBHOOK_SECRET: undefined }), logger });
      await db.transaction((tx) => system.outbox.enqueue(tx, event('messages', 's1', 1), 'http://hooks.example/x'));
      assert.equal((await outboxRows(db)).length, 0);
      assert.equal(system.dispatcher.enabled, false);
      assert.throws(() => system.validateWebhookUrl('https://hooks.example/x'), { code: 'VALIDATION_FAILED' });
    });

    test('delivered once, signed (verified by the library), de-duplicated by event id; a session URL has its own secret', async (t) => {
      const db = await openDb(kind, t, logger);
      const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
      const config = webhookConfig({ BACKEND_URL: backend.url, BACKEND_API_KEY: 'k-1' });
      const system = createWebhookSystem({ sql: db, config, logger });
      system.dispatcher.start();
      t.after(() => system.dispatcher.stop());
      const events = [event('session-status', 's1', 1), event('messages', 's1', 2), event('message-status', 's1', 3, { messageId: 'm1', status: 'read' })];
      await enqueueAll(db, system.outbox, events, `${backend.url}/own/s1`);
      await enqueueAll(db, system.outbox, events, `${backend.url}/own/s1`); // the same facts again
      await waitFor(() => backend.accepted.length >= 6, { what: '6 deliveries', timeoutMs: 10_000 });
      await waitFor(async () => (await outboxRows(db)).every((r) => r.status === 'delivered'), { what: 'rows marked delivered' });
      assert.equal(backend.accepted.length, 6, 'each event once per endpoint');
      assert.equal(backend.rejected.length, 0);
      const verifier = new Webhook(SECRET);
      const sessionVerifier = new Webhook(sessionWebhookSecret(SECRET, 's1', `${backend.url}/own/s1`));
      for (const w of backend.accepted) {
        assert.ok(w.verified);
        const headers = { 'webhook-id': w.id, 'webhook-timestamp': w.timestamp, 'webhook-signature': String(w.headers['webhook-signature']) };
        const body = w.json as { id: string; type: string };
        assert.equal(body.id, w.id, 'webhook-id is the event id');
        if (w.path.startsWith('/api/webhooks/')) {
          verifier.verify(w.body, headers);
          assert.throws(() => sessionVerifier.verify(w.body, headers), 'the session secret does not verify the backend\'s deliveries');
          assert.equal(w.path, `/api/webhooks/${body.type}`);
          assert.equal(w.headers['authorization'], 'Bearer k-1');
        } else {
          // Issue #10 item 12: the session's receiver gets its own secret; WEBHOOK_SECRET does not verify it.
          sessionVerifier.verify(w.body, headers);
          assert.throws(() => verifier.verify(w.body, headers), 'a session URL is not signed with WEBHOOK_SECRET');
          assert.equal(w.path, '/own/s1');
          assert.equal(w.headers['authorization'], undefined, 'the backend key never goes to a session URL');
        }
      }
      assert.deepEqual(new Set(backend.accepted.map((w) => w.id)), new Set(events.map((e) => e.id)));
      const stats = await system.admin.stats();
      assert.equal(stats.pending, 0);
    });
  });
}
