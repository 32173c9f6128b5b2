// The worker-registry client against the real test backend: register retried until the backend is up,
// heartbeats every interval, assigned sessions fetched, parsed and handed over; standalone calls nothing.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { startTestBackend, waitFor } from '../harness/index.ts';
import { SECRET, createBackendClient, createWebhookSystem, event, openDb, quietLogger, webhookConfig } from './helpers.ts';

const logger = quietLogger();
const registration = () => ({ endpoint: 'http://10.0.0.5:8080', shards: 4, capacity: 4000, version: '0.1.0' });

test('registration is retried until the backend comes up, then assigned sessions are restored and heartbeats run every interval', async (t) => {
  const backend = await startTestBackend(
    {
      secret: SECRET,
      apiKey: 'reg-key',
      assignedSessions: [{ id: 'card-1', webhookUrl: 'https://hooks.example/1', extra: { x: 1 } }, { sessionId: 'card-2', status: 'connected' }, 'card-3'],
    },
    t,
  );
  await backend.setMode('down');
  const config = webhookConfig({ BACKEND_URL: backend.url, BACKEND_API_KEY: 'reg-key', WORKER_ID: 'worker-a', HEARTBEAT_INTERVAL_MS: '150' });
  const restored: string[][] = [];
  let sessions = 0;
  const client = createBackendClient({
    backend: config.backend,
    logger,
    registration,
    getLoad: () => ({ status: 'ready', sessions: ++sessions, load: sessions / 4000 }),
    onAssigned: (list) => {
      restored.push(list.map((s) => s.id));
    },
    registerBackoff: { initialMs: 50, maxMs: 200 },
  });
  const t0 = performance.now();
  client.start();
  t.after(() => client.stop());
  assert.ok(performance.now() - t0 < 500, 'start() returns at once (the backend is down: it would take retries)');
  await sleep(600);
  assert.equal(client.registered, false);
  await backend.setMode('error');
  // A fixed sleep here failed under load: one failed registration can be followed by the policy's inner retry
  // delay (200 ms and up, jittered), the client's own backoff (up to 250 ms) and an open breaker, more than the
  // 400 ms it waited. What matters is that a retry reaches the backend while it answers 500, and is not taken
  // for a registration.
  await waitFor(() => backend.requests.some((r) => r.path === '/api/admin/workers/register'), { what: 'registration retried during the 500s', timeoutMs: 5000 });
  await sleep(300);
  assert.equal(backend.registrations.length, 0);
  assert.equal(client.registered, false);
  await backend.setMode('ok');
  await waitFor(() => client.registered, { what: 'registration', timeoutMs: 5000 });
  assert.deepEqual(backend.registrations, [{ id: 'worker-a', ...registration() }]);
  await waitFor(() => restored.length === 1, { what: 'assigned sessions restored', timeoutMs: 5000 });
  assert.deepEqual(restored[0], ['card-1', 'card-2', 'card-3']);
  assert.ok(backend.requests.every((r) => r.headers['authorization'] === 'Bearer reg-key'));

  await waitFor(() => backend.heartbeats.length >= 4, { what: '4 heartbeats', timeoutMs: 5000 });
  const beats = backend.heartbeats.slice(0, 4);
  for (let i = 1; i < beats.length; i++) {
    const gap = (beats[i]?.at ?? 0) - (beats[i - 1]?.at ?? 0);
    assert.ok(gap >= 120 && gap < 2000, `heartbeat gap ${gap} ms near HEARTBEAT_INTERVAL_MS=150`);
  }
  assert.equal(beats[0]?.workerId, 'worker-a');
  assert.deepEqual(Object.keys(beats[0]?.body as object).sort(), ['load', 'sessions', 'status']);

  // fetchAssignedSessions on demand, tolerating extra fields; a malformed answer is an error, not a crash.
  const list = await client.fetchAssignedSessions();
  assert.equal(list[0]?.id, 'card-1');
  assert.equal(list[0]?.webhookUrl, 'https://hooks.example/1');
  assert.deepEqual(list[0]?.['extra'], { x: 1 });
  backend.assignedSessions = [{ nope: true }];
  await assert.rejects(client.fetchAssignedSessions(), /unexpected response/);
});

test('a backend that forgets the worker (heartbeat 404) is registered with again', async (t) => {
  const backend = await startTestBackend({ secret: SECRET }, t);
  const config = webhookConfig({ BACKEND_URL: backend.url, HEARTBEAT_INTERVAL_MS: '100' });
  const client = createBackendClient({ backend: { ...config.backend!, workerId: 'w/odd id' }, logger, registration, getLoad: () => ({ status: 'ready', sessions: 0, load: 0 }) });
  client.start();
  t.after(() => client.stop());
  await waitFor(() => backend.heartbeats.length >= 1, { what: 'a heartbeat', timeoutMs: 5000 });
  assert.equal(backend.heartbeats[0]?.workerId, 'w/odd id', 'the worker id is URL-encoded in the path');
  assert.equal(backend.registrations.length, 1);
  backend.forgetWorkers();
  await waitFor(() => backend.registrations.length === 2, { what: 'a second registration after the 404', timeoutMs: 5000 });
  const beats = backend.heartbeats.length;
  await waitFor(() => backend.heartbeats.length > beats, { what: 'heartbeats accepted again', timeoutMs: 5000 });
});

test('a hanging backend never blocks: calls time out and stop() returns promptly', async (t) => {
  const backend = await startTestBackend({ secret: SECRET }, t);
  await backend.setMode('hang');
  const config = webhookConfig({ BACKEND_URL: backend.url, BACKEND_TIMEOUT_MS: '200' });
  const client = createBackendClient({ backend: config.backend, logger, registration, getLoad: () => ({ status: 'ready', sessions: 0, load: 0 }) });
  client.start();
  const t0 = performance.now();
  await assert.rejects(client.fetchAssignedSessions());
  assert.ok(performance.now() - t0 < 3000, 'bounded by timeout x retries');
  const t1 = performance.now();
  await client.stop();
  assert.ok(performance.now() - t1 < 1000, 'stop() does not wait for the backend');
  assert.equal(client.registered, false);
});

test('standalone (no BACKEND_URL): the registry and webhooks call nothing', async (t) => {
  const backend = await startTestBackend({ secret: SECRET }, t);
  const config = webhookConfig({ BACKEND_URL: undefined });
  assert.equal(config.backend, undefined);
  const client = createBackendClient({ backend: config.backend, logger, registration, getLoad: () => ({ status: 'ready', sessions: 0, load: 0 }) });
  assert.equal(client.enabled, false);
  client.start();
  assert.deepEqual(await client.fetchAssignedSessions(), []);
  await client.heartbeat();
  const db = await openDb('postgres', t, logger);
  const system = createWebhookSystem({ sql: db, config, logger });
  system.dispatcher.start();
  t.after(() => system.dispatcher.stop());
  await db.transaction((tx) => system.outbox.enqueue(tx, event('messages', 'x', 1), null));
  await sleep(300);
  await client.stop();
  assert.equal(backend.requests.length, 0);
  assert.equal((await db.query('SELECT 1 FROM webhook_outbox')).rowCount, 0, 'no endpoint, no row');
});
