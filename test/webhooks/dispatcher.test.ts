// The dispatcher against a real HTTP backend that fails on demand, on PostgreSQL: outage and recovery,
// ordering, dead letters and replay, sharing between routers, crashed claims, the breaker, private targets.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { WebhookEvent } from '@wagw/shared';
import { startTestBackend, waitFor } from '../harness/index.ts';
import type { TestBackend } from '../harness/index.ts';
import {
  SECRET,
  createWebhookSystem,
  enqueueAll,
  event,
  metricValue,
  openDb,
  outboxRows,
  quietLogger,
  registry,
  secondPool,
  sessionSecretFor,
  webhookConfig,
} from './helpers.ts';

const logger = quietLogger();

/** Every enqueued id arrived, each validly signed; duplicates only ever repeat the same id with the same body. */
function assertAllArrived(backend: TestBackend, events: readonly WebhookEvent[]): void {
  assert.equal(backend.rejected.length, 0, 'every signature verifies');
  const byId = new Map<string, string>();
  for (const w of backend.accepted) {
    assert.ok(w.verified);
    const seen = byId.get(w.id);
    if (seen !== undefined) assert.equal(w.body, seen, 'a duplicate carries the same webhook-id and body');
    byId.set(w.id, w.body);
  }
  for (const e of events) assert.ok(byId.has(e.id), `event ${e.id} arrived`);
  assert.equal(byId.size, events.length, 'nothing else arrived');
}

test('backend refuses connections, then answers 500, then hangs: after recovery every event arrives, signed, none lost; the API path never waits', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const reg = registry();
  const system = createWebhookSystem({ sql: db, config: webhookConfig({ BACKEND_URL: backend.url }), logger, metrics: reg });
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());

  const events: WebhookEvent[] = [];
  let n = 0;
  const traffic = async (count: number): Promise<void> => {
    const batch = Array.from({ length: count }, () => {
      n++;
      return n % 3 === 0 ? event('session-status', `s${n % 7}`, n) : event('messages', `s${n % 7}`, n);
    });
    events.push(...batch);
    // Enqueueing is a local INSERT (no HTTP): it completes whatever the backend does, even while deliveries hang.
    await enqueueAll(db, system.outbox, batch);
  };

  await backend.setMode('down');
  await traffic(60);
  await sleep(400);
  await backend.setMode('error');
  await traffic(60);
  await sleep(400);
  await backend.setMode('hang');
  await traffic(30);
  await waitFor(() => backend.requests.some((r) => r.mode === 'hang'), { what: 'a delivery to hang', timeoutMs: 10_000, intervalMs: 20 });
  await traffic(30);
  await sleep(800); // past WEBHOOK_TIMEOUT_MS (300)
  assert.ok(backend.requests.some((r) => r.mode === 'hang'), 'deliveries were attempted while hanging');
  assert.ok(backend.requests.some((r) => r.mode === 'error'), 'deliveries were attempted during the 500s');
  assert.equal(backend.accepted.length, 0);
  await backend.setMode('ok');
  await traffic(30);
  await waitFor(async () => (await system.admin.stats()).pending === 0, { what: 'the backlog to drain', timeoutMs: 20_000, intervalMs: 100 });
  assertAllArrived(backend, events);
  assert.ok((await metricValue(reg, 'webhook_deliveries_total', { outcome: 'retry' })) > 0);
  assert.equal(await metricValue(reg, 'webhook_deliveries_total', { outcome: 'delivered' }), events.length);
  const text = await reg.metrics();
  for (const name of ['webhook_outbox_depth', 'webhook_outbox_oldest_pending_seconds', 'webhook_breaker_state', 'webhook_delivery_duration_seconds']) {
    assert.ok(text.includes(name), `${name} is exported`);
  }
});

test('an open breaker keeps the dead backend quiet; a probe after the half-open delay closes it', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const system = createWebhookSystem({
    sql: db,
    config: webhookConfig({ BACKEND_URL: backend.url, WEBHOOK_BREAKER_HALF_OPEN_MS: '1000', WEBHOOK_BREAKER_THRESHOLD: '3' }),
    logger,
  });
  await backend.setMode('error');
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  const events = Array.from({ length: 200 }, (_, i) => event('messages', 'b1', i));
  await enqueueAll(db, system.outbox, events);
  await sleep(300);
  const before = backend.requests.length;
  await sleep(500); // the breaker is open: nothing is claimed for the backend
  const during = backend.requests.length - before;
  assert.ok(before < 100, `the breaker opened early (${before} attempts for 200 rows)`);
  assert.ok(during <= 1, `at most a probe while open (saw ${during})`);
  await backend.setMode('ok');
  await waitFor(async () => (await system.admin.stats()).pending === 0, { what: 'drain after the probe', timeoutMs: 10_000, intervalMs: 100 });
  assertAllArrived(backend, events);
});

test('a session\'s status events reach each endpoint in order across retries and outages', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const system = createWebhookSystem({ sql: db, config: webhookConfig({ BACKEND_URL: backend.url }), logger });
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  const sessions = ['o1', 'o2', 'o3', 'o4'];
  const events = sessions.flatMap((s) => Array.from({ length: 15 }, (_, i) => event('session-status', s, i)));
  const flapping = (async () => {
    for (let i = 0; i < 8; i++) {
      await backend.setMode(i % 2 === 0 ? 'error' : 'ok');
      await sleep(70);
    }
    await backend.setMode('ok');
  })();
  await enqueueAll(db, system.outbox, events, `${backend.url}/own`);
  await flapping;
  await waitFor(async () => (await system.admin.stats()).pending === 0, { what: 'drain', timeoutMs: 15_000, intervalMs: 100 });
  for (const s of sessions) {
    for (const path of ['/api/webhooks/session-status', '/own']) {
      const got = backend.accepted.filter((w) => w.path === path && (w.json as { sessionId: string }).sessionId === s).map((w) => (w.json as { data: { n: number } }).data.n);
      assert.deepEqual(got, Array.from({ length: 15 }, (_, i) => i), `${s} at ${path} in order, once each`);
    }
  }
});

test('dead after WEBHOOK_MAX_AGE_MS, listed with filters and paging, replayed one and then many', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const system = createWebhookSystem({ sql: db, config: webhookConfig({ BACKEND_URL: backend.url, WEBHOOK_MAX_AGE_MS: '1000' }), logger });
  await backend.setMode('error');
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  const events = Array.from({ length: 12 }, (_, i) => event('messages', 'd1', i));
  await enqueueAll(db, system.outbox, events);
  await waitFor(async () => (await system.admin.stats()).dead === 12, { what: '12 dead rows', timeoutMs: 10_000, intervalMs: 100 });
  const page1 = await system.admin.list({ status: 'dead', limit: '5' });
  assert.equal(page1.data.length, 5);
  assert.ok(page1.nextCursor !== null);
  assert.ok(page1.data.every((d) => d.status === 'dead' && d.attempts >= 1 && d.lastStatus === 500 && d.lastError === 'HTTP 500'));
  const page2 = await system.admin.list({ status: 'dead', limit: '5', cursor: String(page1.nextCursor) });
  assert.ok(page2.data.every((d) => d.id < (page1.data.at(-1)?.id ?? 0)));
  assert.equal((await system.admin.list({ status: 'dead', topic: 'session-status' })).data.length, 0);
  await assert.rejects(system.admin.list({ status: 'nope' }), { code: 'VALIDATION_FAILED' });
  await assert.rejects(system.admin.replayOne({ id: '999999' }), { code: 'NOT_FOUND' });

  await backend.setMode('ok');
  const one = page1.data[0];
  assert.ok(one !== undefined);
  assert.deepEqual(await system.admin.replayOne({ id: String(one.id) }), { replayed: 1 });
  await waitFor(() => backend.accepted.length === 1, { what: 'the replayed row', timeoutMs: 5000 });
  assert.equal(backend.accepted[0]?.id, one.eventId);
  assert.deepEqual(await system.admin.replayMany({ status: 'dead', before: new Date(Date.now() + 1000).toISOString() }), { replayed: 11 });
  await waitFor(async () => (await system.admin.stats()).pending === 0 && backend.accepted.length >= 12, { what: 'replayed rows delivered', timeoutMs: 5000 });
  assertAllArrived(backend, events);
  assert.equal((await system.admin.stats()).dead, 0);
});

test('two routers (two pools, one database) share the work and never deliver a row twice', async (t) => {
  const db = await openDb('postgres', t, logger);
  const db2 = await secondPool(db.url ?? '', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  // A generous request timeout: with no failed attempt, at-least-once must come out as exactly once (a delivery
  // that times out on a loaded machine is legitimately retried, which is not what this test is about).
  const config = webhookConfig({ BACKEND_URL: backend.url, WEBHOOK_TIMEOUT_MS: '10000', WEBHOOK_LOCK_TIMEOUT_MS: '30000', WEBHOOK_BATCH_SIZE: '50' });
  const events = Array.from({ length: 1500 }, (_, i) => event(i % 5 === 0 ? 'session-status' : 'messages', `t${i % 40}`, i));
  const a = createWebhookSystem({ sql: db, config, logger, metrics: registry(), name: 'router-a' });
  await enqueueAll(db, a.outbox, events);
  const regA = registry();
  const regB = registry();
  const sysA = createWebhookSystem({ sql: db, config, logger, metrics: regA, name: 'router-a' });
  const sysB = createWebhookSystem({ sql: db2, config, logger, metrics: regB, name: 'router-b' });
  await backend.setMode('slow', { delayMs: 2 });
  sysA.dispatcher.start();
  sysB.dispatcher.start();
  t.after(() => sysA.dispatcher.stop());
  t.after(() => sysB.dispatcher.stop());
  await waitFor(async () => (await sysA.admin.stats()).pending === 0, { what: 'drain', timeoutMs: 30_000, intervalMs: 100 });
  assert.equal(backend.accepted.length, events.length, 'each row delivered exactly once');
  assertAllArrived(backend, events);
  const byA = await metricValue(regA, 'webhook_deliveries_total', { outcome: 'delivered' });
  const byB = await metricValue(regB, 'webhook_deliveries_total', { outcome: 'delivered' });
  assert.equal(byA + byB, events.length);
  assert.ok(byA > 0 && byB > 0, `both routers delivered (a ${byA}, b ${byB})`);
});

test('a dispatcher that dies mid-delivery: its claimed rows are due again after the lock timeout and delivered', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const config = webhookConfig({ BACKEND_URL: backend.url, WEBHOOK_LOCK_TIMEOUT_MS: '1500', WEBHOOK_BREAKER_THRESHOLD: '1000' });
  const crashing = createWebhookSystem({ sql: db, config, logger });
  const events = Array.from({ length: 20 }, (_, i) => event('messages', 'k1', i));
  await backend.setMode('hang');
  await enqueueAll(db, crashing.outbox, events);
  crashing.dispatcher.start();
  await waitFor(() => backend.requests.length >= 20, { what: 'all rows in flight', timeoutMs: 5000 });
  // "kill -9": stop claiming and record nothing; the claims stay in the table until they lapse.
  const abandonedAt = Date.now();
  await crashing.dispatcher.stop({ abandon: true });
  const locked = await db.query<{ n: number }>(`SELECT count(*) AS n FROM webhook_outbox WHERE locked_by IS NOT NULL AND status = 'pending'`);
  assert.equal(locked.rows[0]?.n, 20, 'the dead dispatcher\'s claims remain');
  await backend.setMode('ok');
  const survivor = createWebhookSystem({ sql: db, config, logger });
  survivor.dispatcher.start();
  t.after(() => survivor.dispatcher.stop());
  await waitFor(async () => (await survivor.admin.stats()).pending === 0, { what: 'rows delivered by the survivor', timeoutMs: 10_000, intervalMs: 50 });
  const firstAccepted = Math.min(...backend.accepted.map((w) => w.at));
  assert.ok(firstAccepted - abandonedAt >= 1000, `not before the lease lapsed (${firstAccepted - abandonedAt} ms)`);
  assertAllArrived(backend, events);
});

test('a session webhookUrl on a private address is refused at delivery unless allowed: dead at once, never sent', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const system = createWebhookSystem({ sql: db, config: webhookConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'false' }), logger });
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  assert.throws(() => system.validateWebhookUrl(`${backend.url}/own`), { code: 'VALIDATION_FAILED' });
  assert.throws(() => system.validateWebhookUrl('https://user:pw@hooks.example/x'), { code: 'VALIDATION_FAILED' });
  assert.throws(() => system.validateWebhookUrl('ftp://hooks.example/x'), { code: 'VALIDATION_FAILED' });
  assert.equal(system.validateWebhookUrl('https://hooks.example/x'), 'https://hooks.example/x');
  await enqueueAll(db, system.outbox, [event('messages', 'p1', 1)], `${backend.url}/own`);
  await waitFor(async () => (await system.admin.stats()).dead === 1, { what: 'the row dead', timeoutMs: 5000 });
  const [row] = (await system.admin.list({ status: 'dead' })).data;
  assert.match(row?.lastError ?? '', /private address/);
  assert.equal(backend.requests.length, 0);
  assert.equal((await outboxRows(db)).length, 1);
});
