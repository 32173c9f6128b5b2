// Regression (chaos campaign, "Redis restarted, data lost": 2 overlapping sockets): a lease reported lost was
// re-placed at once while the abort of the old socket was still on its way to the old shard; the new placement
// went to another shard, whose IPC channel is not ordered with the old one's, so the new login could reach
// WhatsApp while the old socket was open. The old shard is frozen here (SIGSTOP) to hold its abort back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr, productionStores, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('lease lost', () => {
  test('a lost lease is re-placed only after the old shard aborted its socket: never two live sockets', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, ...prod.env, SHARD_COUNT: '2', LEASE_TTL_MS: '8000', LEASE_RENEW_INTERVAL_MS: '500' }),
      redisPrefix: prod.redisPrefix,
    });
    const ids = ['ll-0', 'll-1', 'll-2'];
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 3, (id, i) => pairByQr(gw.api, sim, phones[i]!, id));
    // All three on shard 0, so a re-placement picks the empty shard 1.
    for (const id of ids) {
      if (gw.router.sessions?.leaseOf(id)?.shard !== 0) assert.equal((await gw.api.post(`/api/v1/sessions/${id}/migrate`, { shard: 0 })).status, 200);
    }
    const lease = gw.router.sessions?.leaseOf('ll-0');
    assert.equal(lease?.shard, 0);
    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    const before = sim.snapshot().concurrentLoginViolations;

    process.kill(pid, 'SIGSTOP');
    try {
      // The lease vanishes from the directory (as when Redis loses its data): the next renewal reports it lost.
      assert.ok(await gw.stores.directory.release('ll-0', `test-host/0`, lease?.epoch ?? -1));
      await sleep(3_000); // several renewal rounds while shard 0 cannot answer
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await gw.api.waitStatus('ll-0', 'connected', 30_000);
    await waitFor(() => gw.router.sessions?.leaseOf('ll-0') !== undefined, { what: 'll-0 placed again', timeoutMs: 20_000 });
    assert.ok((gw.router.sessions?.leaseOf('ll-0')?.epoch ?? 0) > (lease?.epoch ?? 0), 'a higher epoch');
    const snap = sim.snapshot();
    assert.equal(snap.concurrentLoginViolations - before, 0, JSON.stringify(snap.violationsByDevice));
    assert.equal(snap.pairings, 3, 'no new pairing');
  });
});
