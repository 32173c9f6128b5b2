// Webhooks survive a router crash: a real router process (Redis + PostgreSQL + S3) delivers session-status
// events to the test backend, which hangs; the router is SIGKILLed while a delivery is in flight (a claimed row,
// its request open at the backend) and started again with the backend answering. Every session-status event the
// outbox holds, those from before the crash included, arrives signed (standardwebhooks-verified), none lost;
// repeats only carry the same webhook-id.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import pg from 'pg';
import { waitFor } from '../harness/index.ts';
import { Api, pairByQr, startRouterProcess } from '../sessions/helpers.ts';
import { startBackendCluster } from './helpers.ts';

interface Row {
  id: string;
  event_id: string;
  status: string;
  locked_by: string | null;
  attempts: number;
}

test('router SIGKILLed mid-delivery and restarted: every session-status webhook arrives, signed, none lost', { timeout: 58_000 }, async (t) => {
  const { sim, backend, env, databaseUrl } = await startBackendCluster(t, {
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_LOCK_TIMEOUT_MS: '2000',
    WEBHOOK_BACKOFF_BASE_MS: '100',
    WEBHOOK_BACKOFF_MAX_MS: '500',
    WEBHOOK_BREAKER_HALF_OPEN_MS: '300',
    WEBHOOK_POLL_INTERVAL_MS: '100',
    HEARTBEAT_INTERVAL_MS: '1000',
  });
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => undefined); // the test database is dropped (FORCE) at the end
  await db.connect();
  t.after(() => db.end().catch(() => undefined));
  const hook = `${backend.url}/api/webhooks/session-status`;
  const rows = async (): Promise<Row[]> =>
    (await db.query<Row>(`SELECT id::text, event_id, status, locked_by, attempts FROM webhook_outbox WHERE endpoint = $1 AND session_id = 'wh-1' ORDER BY id`, [hook])).rows;

  await backend.setMode('hang');
  const first = await startRouterProcess(t, env);
  const phone = sim.createPhone({ name: 'wh' });
  await pairByQr(new Api(first.url), sim, phone, 'wh-1');
  // Mid-delivery: a row is claimed by this router and its request is open at the (hanging) backend.
  await waitFor(
    async () => (await rows()).some((r) => r.locked_by !== null) && backend.requests.some((r) => r.path === '/api/webhooks/session-status' && r.mode === 'hang'),
    { what: 'a session-status delivery in flight', timeoutMs: 10_000, intervalMs: 20 },
  );
  const exit = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  await exit;
  const beforeCrash = await rows();
  assert.ok(beforeCrash.length >= 2, `status events written before the crash: ${beforeCrash.length}`);
  assert.equal(backend.accepted.length, 0, 'nothing was accepted while the backend hung');

  await backend.setMode('ok');
  const second = await startRouterProcess(t, env);
  const api2 = new Api(second.url);
  await api2.waitStatus('wh-1', 'connected', 20_000);
  const all = await waitFor(
    async () => {
      const list = await rows();
      return list.length >= beforeCrash.length && list.every((r) => r.status === 'delivered') ? list : null;
    },
    { what: 'every session-status row delivered', timeoutMs: 25_000, intervalMs: 100 },
  );
  const accepted = backend.accepted.filter((w) => w.path === '/api/webhooks/session-status');
  assert.ok(accepted.every((w) => w.verified), 'every webhook signed');
  assert.equal(backend.rejected.length, 0);
  const ids = new Set(accepted.map((w) => w.id));
  const missing = all.filter((r) => !ids.has(r.event_id)).map((r) => r.event_id);
  assert.deepEqual(missing, [], 'every outbox event arrived');
  for (const r of beforeCrash) assert.ok(ids.has(r.event_id), `event from before the crash arrived: ${r.event_id}`);
  // Duplicates only with the same webhook-id and the same body.
  const bodies = new Map<string, string>();
  for (const w of accepted) {
    const seen = bodies.get(w.id);
    if (seen !== undefined) assert.equal(w.body, seen, `a repeat of ${w.id} carries the same body`);
    bodies.set(w.id, w.body);
  }
  const statuses = accepted.map((w) => ((w.json as { data?: { status?: string } }).data?.status ?? ''));
  assert.ok(statuses.includes('qr') && statuses.includes('connected'), `statuses: ${statuses.join(',')}`);
  // The operator routes and /health see the same outbox.
  const listed = await api2.get<{ data: { eventId: string; status: string }[] }>('/api/v1/admin/webhooks?status=delivered&sessionId=wh-1&limit=500');
  assert.equal(listed.status, 200, listed.raw.toString());
  for (const r of all) assert.ok(listed.body.data.some((d) => d.eventId === r.event_id && d.status === 'delivered'), `listed: ${r.event_id}`);
  const replay = await api2.post<{ replayed: number }>(`/api/v1/admin/webhooks/${all[0]?.id ?? 0}/replay`);
  assert.deepEqual([replay.status, replay.body.replayed], [200, 1]);
  await waitFor(() => backend.accepted.filter((w) => w.id === all[0]?.event_id).length >= 2, { what: 'the replayed delivery', timeoutMs: 5000, intervalMs: 50 });
  const health = await api2.get<{ webhooks?: { ok: boolean } }>('/health');
  assert.equal(health.body.webhooks?.ok, true);
  t.diagnostic(`${beforeCrash.length} rows before the crash, ${all.length} after; ${accepted.length} accepted (${accepted.length - ids.size} repeats)`);
  assert.equal(await second.stop('SIGTERM'), 0, second.stderr());
});
