// The breaker's half-open wait is adaptive (doubling per failed probe up to a cap), and a receiver that was
// down for a while gets its backlog within 5 s of coming back, with the production breaker and retry timings.
// What the operators' API shows of each breaker (`snapshot()`, GET /api/v1/admin/webhooks/breakers) follows it.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { webhooks } from '@wagw/router';
import { startTestBackend, waitFor } from '../harness/index.ts';
import { SECRET, createWebhookSystem, enqueueAll, event, openDb, quietLogger, sessionSecretFor, webhookConfig } from './helpers.ts';

const { EndpointBreakers, EndpointDownError } = webhooks;
const logger = quietLogger();

test('an open breaker probes after 500 ms, then doubles the wait per failed probe up to the cap; a good probe closes it', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const recovered: string[] = [];
  const breakers = new EndpointBreakers({ threshold: 2, halfOpenAfterMs: 500, halfOpenMaxMs: 3000, onRecovered: (o) => recovered.push(o) });
  const origin = 'http://receiver.test';
  const fail = (): Promise<never> => Promise.reject(new EndpointDownError('down'));
  await breakers.run(origin, fail).catch(() => undefined);
  assert.deepEqual(breakers.snapshot(), [
    { origin, state: 'closed', consecutiveFailures: 1, lastFailureAt: new Date(1_000_000).toISOString(), lastError: 'down', openedAt: null, nextTryAt: null, waitMs: null },
  ]);
  t.mock.timers.tick(10);
  await breakers.run(origin, fail).catch(() => undefined);
  assert.equal(breakers.halfOpenWait(origin), 500, 'opened with the first wait');
  assert.equal(breakers.gate(origin), 'blocked');
  assert.deepEqual(breakers.snapshot(), [
    {
      origin,
      state: 'open',
      consecutiveFailures: 2,
      lastFailureAt: new Date(1_000_010).toISOString(),
      lastError: 'down',
      openedAt: new Date(1_000_010).toISOString(),
      nextTryAt: new Date(1_000_510).toISOString(),
      waitMs: 500,
    },
  ]);

  const waits: number[] = [];
  for (let probe = 0; probe < 5; probe++) {
    const wait = breakers.halfOpenWait(origin) as number;
    waits.push(wait);
    t.mock.timers.tick(wait - 1);
    assert.equal(breakers.gate(origin), 'blocked', `still blocked 1 ms before the wait of ${wait} ms`);
    t.mock.timers.tick(1);
    assert.equal(breakers.gate(origin), 'probe', `a probe after ${wait} ms`);
    breakers.markProbing(origin);
    assert.equal(breakers.gate(origin), 'blocked', 'one probe at a time');
    await breakers.run(origin, fail).catch(() => undefined);
  }
  assert.deepEqual(waits, [500, 1000, 2000, 3000, 3000]);
  const open = breakers.snapshot()[0];
  assert.equal(open?.consecutiveFailures, 7, 'each failed probe counts');
  assert.equal(open?.waitMs, 3000);
  assert.equal(Date.parse(open?.nextTryAt ?? ''), Date.parse(open?.openedAt ?? '') + 3000, 'the next probe is one wait after the last reopening');

  t.mock.timers.tick(breakers.halfOpenWait(origin) as number);
  assert.equal(await breakers.run(origin, () => Promise.resolve('ok')), 'ok');
  assert.equal(breakers.gate(origin), 'closed');
  assert.deepEqual(recovered, [origin]);
  assert.deepEqual(
    breakers.snapshot().map((b) => [b.state, b.consecutiveFailures, b.lastError, b.openedAt, b.nextTryAt, b.waitMs]),
    [['closed', 0, 'down', null, null, null]],
    'closed again: no failure in a row, the last one still shown',
  );

  // Opened again later, the wait starts over from the first one.
  for (let i = 0; i < 2; i++) await breakers.run(origin, fail).catch(() => undefined);
  assert.equal(breakers.halfOpenWait(origin), 500);
});

test('a receiver answering 500 for 10 s, then up: deliveries resume within 5 s (production breaker and retry timings)', async (t) => {
  const db = await openDb('postgres', t, logger);
  const backend = await startTestBackend({ secret: SECRET, secretFor: sessionSecretFor(() => backend.url) }, t);
  const system = createWebhookSystem({
    sql: db,
    // The defaults that matter here: breaker threshold, half-open waits, retry backoff (1 s doubling to 10 min).
    config: webhookConfig({
      BACKEND_URL: backend.url,
      WEBHOOK_BREAKER_THRESHOLD: undefined,
      WEBHOOK_BREAKER_HALF_OPEN_MS: undefined,
      WEBHOOK_BREAKER_HALF_OPEN_MAX_MS: undefined,
      WEBHOOK_BACKOFF_BASE_MS: undefined,
      WEBHOOK_BACKOFF_MAX_MS: undefined,
      WEBHOOK_POLL_INTERVAL_MS: undefined,
    }),
    logger,
  });
  await backend.setMode('error'); // 500s are counted (a closed listener would leave no record of the attempts)
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());

  const events = Array.from({ length: 50 }, (_, i) => event('messages', 'r1', i));
  await enqueueAll(db, system.outbox, events.slice(0, 25));
  await sleep(5000);
  await enqueueAll(db, system.outbox, events.slice(25));
  await sleep(5000);
  const attemptsWhileDown = backend.requests.length;
  // 5 failures open the breaker; then one probe per wait (0.5 + 1 + 2 + 3 + 3 s ...): a handful, not 50 rows' retries.
  assert.ok(attemptsWhileDown <= 15, `the open breaker kept the dead receiver quiet (${attemptsWhileDown} attempts in 10 s)`);
  assert.equal(backend.accepted.length, 0);
  // The system's breakers (what GET /api/v1/admin/webhooks/breakers serves): the backend's origin, not closed.
  const down = system.breakers().find((b) => b.origin === new URL(backend.url).origin);
  assert.ok(down, JSON.stringify(system.breakers()));
  assert.notEqual(down.state, 'closed');
  assert.ok(down.consecutiveFailures >= 5, `${down.consecutiveFailures} failures in a row`);
  assert.equal(down.lastError, 'HTTP 500');
  assert.ok(down.openedAt !== null && down.waitMs !== null && down.waitMs >= 500);

  const upAt = Date.now();
  await backend.setMode('ok');
  await waitFor(() => backend.accepted.length > 0, { what: 'a delivery after the receiver came back', timeoutMs: 5000, intervalMs: 20 });
  const firstAfterMs = Date.now() - upAt;
  await waitFor(async () => (await system.admin.stats()).pending === 0, { what: 'the backlog to drain', timeoutMs: 5000 - firstAfterMs + 1000, intervalMs: 50 });
  const ids = new Set(backend.accepted.map((w) => w.id));
  for (const e of events) assert.ok(ids.has(e.id), `event ${e.id} arrived`);
  assert.ok(Date.now() - upAt < 6000, `the whole backlog arrived ${Date.now() - upAt} ms after recovery`);
  assert.deepEqual(
    system.breakers().map((b) => [b.state, b.consecutiveFailures]),
    [['closed', 0]],
  );
});
