// The worker registry end to end: a real router process (packages/router/src/main.ts, real shards, Redis +
// PostgreSQL + S3) with BACKEND_URL pointing at the test backend and a short HEARTBEAT_INTERVAL_MS. The backend
// sees the registration and heartbeats carrying the real session count; after a restart, a session the backend
// lists as assigned (and that the gateway itself would not restore: its desired state is stopped) is restored
// from its stored auth state, connected again without a new QR.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { waitFor } from '../harness/index.ts';
import { Api, pairByQr, startRouterProcess } from '../sessions/helpers.ts';
import { startBackendCluster } from './helpers.ts';

interface Heartbeat {
  status: string;
  sessions: number;
  load: number;
}

test('register, heartbeats with real session counts, and assigned sessions restored after a restart', { timeout: 58_000 }, async (t) => {
  const { sim, backend, env, databaseUrl } = await startBackendCluster(t, { SHARD_MAX_SESSIONS: '50', HEARTBEAT_INTERVAL_MS: '200' });

  const first = await startRouterProcess(t, env);
  await waitFor(() => backend.registrations.length >= 1 && backend.heartbeats.length >= 2, { what: 'register and two heartbeats', timeoutMs: 10_000, intervalMs: 50 });
  const reg = backend.registrations[0] as Record<string, unknown>;
  assert.deepEqual({ id: reg['id'], endpoint: reg['endpoint'], shards: reg['shards'], capacity: reg['capacity'] }, { id: 'test-host', endpoint: first.url, shards: 1, capacity: 50 });
  assert.equal(typeof reg['version'], 'string');
  assert.ok(backend.heartbeats.every((h) => h.workerId === 'test-host'));
  // Heartbeats keep coming at about the interval.
  const before = backend.heartbeats.length;
  await new Promise((r) => setTimeout(r, 1000));
  const during = backend.heartbeats.length - before;
  assert.ok(during >= 2 && during <= 8, `heartbeats in 1 s at 200 ms: ${during}`);

  const api1 = new Api(first.url);
  const phone = sim.createPhone({ name: 'assigned' });
  await pairByQr(api1, sim, phone, 'assigned-1');
  const beat = await waitFor(
    () => {
      const last = backend.heartbeats.at(-1)?.body as Heartbeat | undefined;
      return last !== undefined && last.sessions === 1 ? last : null;
    },
    { what: 'a heartbeat counting the connected session', timeoutMs: 5000, intervalMs: 50 },
  );
  assert.equal(beat.status, 'ready');
  assert.equal(beat.load, 1 / 50);
  const pairings = sim.snapshot().pairings;

  assert.equal(await first.stop('SIGTERM'), 0, first.stderr());
  await waitFor(() => sim.devices().every((d) => d.live === 0), { what: 'the socket closed after SIGTERM', timeoutMs: 10_000 });
  // The gateway alone would not run it again: only the backend's assignment brings it back.
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => undefined);
  await db.connect();
  try {
    const res = await db.query(`UPDATE sessions SET desired = 'stopped' WHERE id = 'assigned-1'`);
    assert.equal(res.rowCount, 1);
  } finally {
    await db.end();
  }
  backend.assignedSessions = [{ sessionId: 'assigned-1', status: 'connected', extra: 'kept' }, 'unknown-card'];
  const registered = backend.registrations.length;

  const t0 = Date.now();
  const second = await startRouterProcess(t, env);
  const api2 = new Api(second.url);
  await waitFor(() => backend.registrations.length > registered && backend.assignedCalls >= 1, { what: 'register again and fetch the assignment', timeoutMs: 10_000, intervalMs: 50 });
  const s = await waitFor(
    async () => {
      const r = await api2.session('assigned-1');
      const connectedAt = (r as unknown as { connectedAt: string | null }).connectedAt;
      return r.status === 'connected' && connectedAt !== null && Date.parse(connectedAt) >= t0 ? r : null;
    },
    { what: 'the assigned session connected again', timeoutMs: 20_000, intervalMs: 100 },
  );
  assert.equal(s.me?.jid, phone.jid);
  assert.equal(sim.snapshot().pairings, pairings, 'no new pairing (no QR scanned)');
  t.diagnostic(`assigned session connected ${Date.now() - t0} ms after the second start`);
  await waitFor(() => (backend.heartbeats.at(-1)?.body as Heartbeat | undefined)?.sessions === 1, { what: 'heartbeat counts the restored session', timeoutMs: 5000, intervalMs: 50 });
  assert.equal(await second.stop('SIGTERM'), 0, second.stderr());
});
