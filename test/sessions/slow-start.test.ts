// Regression: sessions that never came back on a loaded box (chaos campaign, 30 minutes at load 6-8: sessions
// not connected 180 s after the last fault). A placement claims the lease, then `session.start` loads the auth
// state before it answers; renewals sent no `leases.extend` for a session still starting (placement-race fix),
// so a load longer than the lease's validity was cut by the shard's own lease timer ("lease expired (not renewed
// in time)") and the next attempt, with a fresh lease of the same length, again: while loads are that slow the
// session never starts. The slow load is injected here (each auth state read outlasts the lease on its own).
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { tempDir } from '../harness/index.ts';
import { slowAuthFlag } from './fixtures/slow-auth-flag.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

const SHARD_ENTRY = fileURLToPath(new URL('./fixtures/shard-slow-auth-load.ts', import.meta.url));

describe('slow session start', () => {
  test('a start whose auth state load outlasts the lease still connects (its lease is extended meanwhile)', async (t) => {
    const dir = await tempDir(t);
    const flag = slowAuthFlag(process.pid);
    t.after(() => rm(flag, { force: true }));
    const { sim, env } = await startSim(t, dir.path);
    // A lease valid 2.5 s from its claim (TTL 3 s minus the margin), renewed every 0.5 s.
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', LEASE_TTL_MS: '3000', LEASE_RENEW_INTERVAL_MS: '500', IPC_CALL_TIMEOUT_MS: '60000' }),
      shardEntry: SHARD_ENTRY,
    });
    const phone = sim.createPhone({ name: 'slow-start' });
    await pairByQr(gw.api, sim, phone, 'slow-start');
    const before = sim.snapshot();

    await writeFile(flag, '3000');
    const started = Date.now();
    const restarted = await gw.api.post('/api/v1/sessions/slow-start/restart');
    const tookMs = Date.now() - started;
    assert.ok(tookMs >= 3_000, `the injected delay was hit (restart answered in ${tookMs} ms)`);
    // Before the fix: the restart answered 409 STALE_EPOCH (its lease lapsed during the load) and every retry of
    // the placement (reconcile, backoff) was cut the same way: never connected while loads stayed slow.
    const s = await gw.api.waitStatus('slow-start', 'connected', 30_000);
    assert.equal(restarted.status, 200, restarted.raw.toString());
    assert.equal(s.shard, 0);
    await rm(flag, { force: true });

    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'not paired again');
    assert.equal(after.concurrentLoginViolations - before.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
  });
});
