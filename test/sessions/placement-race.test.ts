// Regression: "two live sockets" after a shard SIGKILL under load (recovery.test.ts failed 2-3 runs in 10 on a
// loaded box). Cause: #place claimed the lease and recorded the session as local, then awaited the SQL write of
// the placement; a lease renewal in that window sent `leases.extend` for a session the shard had not been told
// to start, the shard answered "unknown", the router released the lease and queued the session again; then the
// first `session.start` still went out, and the re-placement (new epoch, a lease nobody held any more) started a
// second socket on another shard. The slow SQL write is injected here instead of hoping for load.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('placement race', () => {
  test('a lease renewal while a placement is slow to reach its shard starts no second socket', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '2', LEASE_TTL_MS: '6000', LEASE_RENEW_INTERVAL_MS: '500' }) });
    const phone = sim.createPhone({ name: 'slow-place' });
    const s0 = await pairByQr(gw.api, sim, phone, 'slow');
    const to = s0.shard === 0 ? 1 : 0;

    // Hold the placement's SQL write for several renewal rounds (as a loaded PostgreSQL or event loop would).
    const manager = gw.router.sessions;
    assert.ok(manager);
    const store = manager.store;
    const placed = store.placed.bind(store);
    let held = 0;
    store.placed = async (...args: Parameters<typeof store.placed>) => {
      held++;
      await sleep(2_500);
      return await placed(...args);
    };
    const before = sim.snapshot();
    const moved = await gw.api.post<{ shard: number }>('/api/v1/sessions/slow/migrate', { shard: to });
    assert.equal(moved.status, 200, moved.raw.toString());
    assert.ok(held >= 1, 'the injected delay was hit');

    // Give a wrongly queued re-placement every chance to happen: several renewal and reconcile rounds.
    await sleep(4_000);
    await gw.api.waitStatus('slow', 'connected');
    const after = sim.snapshot();
    assert.equal(after.concurrentLoginViolations - before.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    assert.equal(after.pairings, before.pairings, 'no new pairing');
    const live = sim.devices().filter((d) => d.kind === 'companion' && d.jid.startsWith(phone.jid.split('@')[0]!.split(':')[0]!));
    assert.ok(live.every((d) => d.live <= 1), JSON.stringify(live));
    // The session runs exactly once, where the migration put it, at the epoch of that placement.
    const session = await gw.api.session('slow');
    assert.equal(session.shard, to);
    const shards = await gw.api.get<{ shards: { index: number; sessions: number }[] }>('/api/v1/admin/shards');
    assert.deepEqual(shards.body.shards.map((s) => s.sessions).sort(), [0, 1]);
    await waitFor(() => sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === 1, { what: 'one live socket', timeoutMs: 10_000 });
  });
});
