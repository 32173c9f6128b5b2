// A normal QR pairing, seen by a backend: the session statuses on the webhook and on SSE are exactly
// `starting, qr, qr, connected` (the first `qr` is the state, the second the QR code itself) — WhatsApp's 515
// "restart required" right after pairing is part of connecting: no `reconnecting`, and no error-level log line
// anywhere (router or shard), only an info line. `reconnecting` stays for real drops (restart.test.ts and
// recovery.test.ts cover those).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { Api, openSse, sessionTestEnv, startReceiver, startRouterProcess, startSim } from './helpers.ts';

test('a QR pairing reports starting, qr, qr, connected and logs no error', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const { sim, env } = await startSim(t, dir.path);
  const receiver = await startReceiver(t);
  const proc = await startRouterProcess(
    t,
    sessionTestEnv(dir.path, {
      ...env,
      LOG_LEVEL: 'info',
      SHARD_COUNT: '1',
      WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_POLL_INTERVAL_MS: '100',
    }),
  );
  const api = new Api(proc.url);
  const owner = sim.createPhone({ number: '6281234567861', name: 'Owner' });
  const created = await api.post('/api/v1/sessions', { id: 'pair', webhookUrl: receiver.url });
  assert.equal(created.status, 201, created.raw.toString());
  const sse = openSse(t, `${proc.url}/api/v1/sessions/pair/events`);
  await sim.scanQr(owner, await api.waitQr('pair'));
  await api.waitStatus('pair', 'connected');

  const hookStatuses = (): string[] =>
    receiver.hits.filter((h) => h.body['type'] === 'session-status').map((h) => String((h.body['data'] as { status: string }).status));
  await waitFor(() => hookStatuses().includes('connected'), { what: 'the connected webhook', timeoutMs: 15_000, intervalMs: 100 });
  await waitFor(() => sse.events.some((e) => e.type === 'status' && e.data['status'] === 'connected'), { what: 'connected on SSE', timeoutMs: 10_000 });
  // A moment for anything that would follow a wrong restart (a late `reconnecting`) to arrive too.
  await new Promise((r) => setTimeout(r, 500));
  t.diagnostic(`webhook: ${hookStatuses().join(', ')}; sse: ${sse.events.map((e) => `${e.type}:${String(e.data['status'] ?? '')}`).join(', ')}`);
  assert.deepEqual(hookStatuses(), ['starting', 'qr', 'qr', 'connected']);
  const sseStatuses = sse.events.filter((e) => e.type === 'status').map((e) => String(e.data['status']));
  assert.ok(!sseStatuses.includes('reconnecting'), sseStatuses.join(','));
  assert.equal(sseStatuses.at(-1), 'connected');

  const lines = proc
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg?: string; statusCode?: number });
  const errors = lines.filter((l) => l.level >= 50);
  assert.deepEqual(errors, [], 'no error-level line');
  assert.ok(lines.some((l) => l.level === 30 && l.statusCode === 515), 'the restart is logged at info');
});
