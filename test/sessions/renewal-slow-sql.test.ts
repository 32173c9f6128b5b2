// Regression: leases expired on their shards while PostgreSQL was slow (chaos campaign, 2-minute runs on a loaded
// box: after a PostgreSQL black-hole every router's pool stayed saturated for minutes, "timeout exceeded when trying
// to connect", and the shards aborted their sessions one lease after another, "lease expired (not renewed in
// time)": sessions never connected again, inbound messages not stored). Cause: each renewal round ran the safety
// nets (reconcile, orphan claims: SQL) after renewing and before the next round could start, so slow SQL delayed
// every renewal. The slow SQL is injected here (the reconcile's read of the sessions to run takes longer than the
// lease), not hoped for.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('lease renewal with slow SQL', () => {
  test('a reconcile read slower than the lease does not delay renewals: the session stays connected', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    // A lease valid 2.5 s from each renewal (TTL 3 s minus the margin), renewed every 0.5 s.
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', LEASE_TTL_MS: '3000', LEASE_RENEW_INTERVAL_MS: '500' }) });
    const phone = sim.createPhone({ name: 'slow-sql' });
    const before = await pairByQr(gw.api, sim, phone, 'slow-sql');
    const connectedAt = (before as unknown as { connectedAt?: string }).connectedAt;
    assert.ok(connectedAt !== undefined);

    const manager = gw.router.sessions;
    assert.ok(manager);
    const store = manager.store;
    const idsToRestore = store.idsToRestore.bind(store);
    let held = 0;
    store.idsToRestore = async (...args: Parameters<typeof store.idsToRestore>) => {
      held++;
      await sleep(4_000);
      return await idsToRestore(...args);
    };
    const statuses = new Set<string>();
    const until = Date.now() + 9_000;
    while (Date.now() < until) {
      const s = await gw.api.session('slow-sql');
      statuses.add(`${s.status}${s.status === 'connected' ? '' : ` (${s.reason ?? ''})`}`);
      await sleep(250);
    }
    store.idsToRestore = idsToRestore;
    assert.ok(held >= 1, 'the injected delay was hit');
    const after = await gw.api.session('slow-sql');
    assert.deepEqual([...statuses], ['connected'], 'never left connected');
    assert.equal((after as unknown as { connectedAt?: string }).connectedAt, connectedAt, 'the same connection all along');
  });
});
