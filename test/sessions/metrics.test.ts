// /metrics of a real gateway: sessions by state come from the registry, dependency gauges from the store probes,
// control-plane histograms from the session manager's passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

function sample(text: string, name: string, labels: string): number | undefined {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}}`;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('/metrics reports sessions by state and the up/latency of Redis, SQL and storage', async (t) => {
  const dir = await tempDir(t);
  const { sim, env } = await startSim(t, dir.path);
  const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1' }) });
  await pairByQr(gw.api, sim, sim.createPhone({ name: 'Metrics' }), 'm1');
  const created = await gw.api.post('/api/v1/sessions', { id: 'm2' });
  assert.equal(created.status, 201);
  await gw.api.waitQr('m2');
  // Three sends: each stanza waited for its ratchet write to be durable before it left (beforeRelay).
  const friend = sim.createPhone({ name: 'Friend' });
  for (let i = 0; i < 3; i++) {
    const sent = await gw.api.post('/api/v1/sessions/m1/messages', { to: friend.jid, type: 'text', text: `durable ${i}` });
    assert.equal(sent.status, 201, sent.raw.toString());
  }

  const res = await fetch(`${gw.url}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.equal(sample(text, 'wagw_sessions', 'state="connected"'), 1, text.split('\n').filter((l) => l.startsWith('wagw_sessions')).join('\n'));
  assert.equal(sample(text, 'wagw_sessions', 'state="qr"'), 1);
  // The SQL pool (embedded: one connection) and its bounded queue of waiters.
  assert.equal(sample(text, 'wagw_db_pool_clients', 'state="total"'), 1, text.split('\n').filter((l) => l.startsWith('wagw_db_pool')).join('\n'));
  // The scrape's own reads (session counts, the SQL probe) may wait for that one connection right now.
  assert.ok((sample(text, 'wagw_db_pool_clients', 'state="waiting"') ?? -1) >= 0, 'waiting reported');
  assert.equal(sample(text, 'wagw_db_pool_rejected_total', ''), 0);
  const durable = text.split('\n').filter((l) => l.startsWith('wagw_shard_auth_durable')).join('\n');
  assert.ok((sample(text, 'wagw_shard_auth_durable_waits_total', 'shard="0"') ?? 0) >= 3, durable);
  assert.ok((sample(text, 'wagw_shard_auth_durable_wait_seconds_total', 'shard="0"') ?? 0) > 0, durable);
  assert.ok((sample(text, 'wagw_shard_auth_durable_slow_waits_total', 'shard="0"') ?? -1) >= 0, durable);
  for (const [dependency, kind] of [['redis', 'memory'], ['postgres', 'pglite'], ['storage', 'local']] as const) {
    assert.equal(sample(text, 'wagw_dependency_up', `dependency="${dependency}",kind="${kind}"`), 1, dependency);
    const latency = sample(text, 'wagw_dependency_latency_seconds', `dependency="${dependency}",kind="${kind}"`);
    assert.ok(latency !== undefined && latency >= 0 && latency < 5, `${dependency} latency ${latency}`);
  }

  // Control plane: both creations were placements; renewal rounds and reconcile passes run every
  // LEASE_RENEW_INTERVAL_MS (1.5 s here); the orphan scan is multi-host only, so it is listed with no sample.
  assert.equal(sample(text, 'wagw_session_placement_seconds_count', 'reason="create",outcome="ok"'), 2);
  const rounds = await waitFor(
    async () => {
      const now = await (await fetch(`${gw.url}/metrics`)).text();
      return (sample(now, 'wagw_lease_renew_round_seconds_count', '') ?? 0) >= 1 && (sample(now, 'wagw_reconcile_pass_seconds_count', '') ?? 0) >= 1 ? now : null;
    },
    { what: 'a renewal round and a reconcile pass in /metrics', timeoutMs: 15_000, intervalMs: 250 },
  );
  assert.equal(sample(rounds, 'wagw_orphan_claim_pass_seconds_count', ''), 0);
});
