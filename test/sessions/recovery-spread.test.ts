// A crashed shard's sessions are logged in again on every ready shard, not all on its replacement. Placement
// picks the least-loaded shard, and by session count alone the replacement (ready within seconds, empty) took
// every recovered session and ran their logins on its one event loop: bench/scale measured 1.2 of 2 cores busy
// and 1.67x the login-CPU bound after a shard SIGKILL at 5,000 sessions (docs/benchmarks.md, "scale"). Here the
// recovery pass is held until the replacement is ready (the window that decides), then where each recovered
// session went is read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('crash recovery spreads the logins', () => {
  test("a SIGKILLed shard's sessions go one per ready shard in a placement pass, the replacement included", async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '3' }) });
    const ids = Array.from({ length: 9 }, (_, i) => `spread-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    // One at a time: the least-loaded shard of each placement is then certain (3 per shard).
    await mapLimit(ids, 1, (id, i) => pairByQr(gw.api, sim, phones[i]!, id));
    const shardOf = async (id: string): Promise<number | undefined> => (await gw.api.session(id)).shard ?? undefined;
    const victims: string[] = [];
    for (const id of ids) if ((await shardOf(id)) === 0) victims.push(id);
    assert.equal(victims.length, 3, 'least-loaded placement put 3 sessions on each of the 3 shards');

    // Hold the recovery pass (it reads the sessions' desired state first) until the replacement shard is ready.
    const manager = gw.router.sessions;
    assert.ok(manager);
    const store = manager.store;
    const desiredOf = store.desiredOf.bind(store);
    let held = 0;
    store.desiredOf = async (...args: Parameters<typeof store.desiredOf>) => {
      held++;
      await waitFor(() => gw.router.supervisor.info(0)?.state === 'ready', { what: 'the replacement shard ready', timeoutMs: 30_000, intervalMs: 50 });
      return await desiredOf(...args);
    };
    const victim = gw.router.supervisor.info(0)?.pid;
    assert.ok(victim);
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    await waitFor(
      async () => {
        const list = await gw.api.get<{ data: { id: string; status: string; connectedAt: string | null }[] }>('/api/v1/sessions?limit=100');
        return list.body.data.filter((s) => victims.includes(s.id) && s.status === 'connected' && Date.parse(s.connectedAt ?? '') > t0).length === victims.length;
      },
      { what: 'the 3 sessions connected again', timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.ok(held >= 1, 'the recovery pass was held until the replacement was ready');
    // One per shard: by session count alone all three went to the empty replacement, shard 0.
    const where = await Promise.all(victims.map(shardOf));
    assert.deepEqual([...where].sort(), [0, 1, 2], `recovered sessions on shards ${JSON.stringify(where)}`);
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });
});
