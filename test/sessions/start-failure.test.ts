// A session whose start fails for a reason of its own (here an auth state object that is whole but unreadable,
// which must stop the load: restoring without it would bring back an older identity or ratchet) is retried with
// backoff, not once per renewal tick for as long as it fails (seen in bench/cluster: a session looped
// "starting -> start failed" every second, each attempt a new epoch, a status change and two history rows);
// and once the cause is gone it starts again by itself.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { authPrefix } from '@wagw/shard/auth';
import { LocalBlobStore } from '@wagw/stores';
import { tempDir } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

/** Placements of reason `recover` that ended in an error, from the router's /metrics. */
async function failedRecoveries(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wagw_session_placement_seconds_count{reason="recover",outcome="error"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('start failures', () => {
  test('a session whose start keeps failing is retried with backoff, and starts once the cause is gone', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const renewMs = 250;
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '2', LEASE_TTL_MS: '3000', LEASE_RENEW_INTERVAL_MS: String(renewMs) }),
    });
    const phone = sim.createPhone({ name: 'broken-auth' });
    const s = await pairByQr(gw.api, sim, phone, 'broken');

    // A whole object that cannot be parsed (not an upload cut short): corruption, so the load must refuse it.
    // Named after the newest stored object (same epoch, a later seq), so it is read by the next owner.
    const blobs = await LocalBlobStore.create(path.join(dir.path, 'blobs'));
    const newest = (await blobs.list(authPrefix('broken'))).at(-1);
    assert.ok(newest, 'the paired session has stored auth state');
    const bad = newest.replace(/-\d{16}-(snap\.json|log\.json|journal\.jsonl)$/, '-0000000000999999-log.json');
    assert.notEqual(bad, newest);
    await blobs.put(bad, Buffer.from('{not json'));
    assert.ok(s.shard !== null);
    const victim = gw.router.supervisor.info(s.shard)?.pid;
    assert.ok(victim);
    process.kill(victim, 'SIGKILL');

    await gw.api.waitStatus('broken', 'disconnected');
    const first = await failedRecoveries(gw.url);
    const windowMs = 4_000;
    await sleep(windowMs);
    const attempts = (await failedRecoveries(gw.url)) - first;
    // One attempt per renewal tick would be ~16 in the window; doubling from one tick allows at most ~5.
    assert.ok(attempts >= 1, `the failing start is still retried (${attempts} attempts in ${windowMs} ms)`);
    assert.ok(attempts <= 6, `retries back off: ${attempts} attempts in ${windowMs} ms at a ${renewMs} ms renewal tick`);

    // The operator removes the corrupt object: the next attempt (within the backoff's current wait) starts it.
    await blobs.delete(bad);
    await gw.api.waitStatus('broken', 'connected', 30_000);
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });
});
