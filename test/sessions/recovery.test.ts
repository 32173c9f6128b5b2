// A shard SIGKILLed while it holds 20 connected sessions: all 20 connected again from their stored auth state,
// without a QR, and the simulator never saw two live sockets for one device.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('crash recovery', () => {
  test('SIGKILL a shard holding 20 connected sessions: all 20 connected again, no QR, never two sockets', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    // One shard while pairing (so it holds all 20), then a second one to take them over.
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', SESSION_LOGIN_CONCURRENCY: '3' }) });
    const ids = Array.from({ length: 20 }, (_, i) => `crash-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 4, (id, i) => pairByQr(gw.api, sim, phones[i]!, id));
    const grown = await gw.api.call('PUT', '/api/v1/admin/shards', { count: 2 });
    assert.equal(grown.status, 200, grown.raw.toString());

    const before = sim.snapshot();
    const victim = gw.router.supervisor.info(0)?.pid;
    assert.ok(victim);
    const shards = await gw.api.get<{ shards: { index: number; sessions: number }[] }>('/api/v1/admin/shards');
    assert.equal(shards.body.shards.find((s) => s.index === 0)?.sessions, 20);
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');

    await waitFor(
      async () => {
        const list = await gw.api.get<{ data: { id: string; status: string; connectedAt: string | null }[] }>('/api/v1/sessions?limit=100');
        const connected = list.body.data.filter((s) => s.status === 'connected' && ids.includes(s.id) && Date.parse(s.connectedAt ?? '') > t0);
        // Every one back and recorded with a live owner again.
        return connected.length === 20 && gw.router.sessions?.localCount === 20;
      },
      { what: 'all 20 sessions connected again', timeoutMs: 60_000, intervalMs: 100 },
    );
    const recoveredMs = Date.now() - t0;
    t.diagnostic(`20 sessions connected again ${recoveredMs} ms after the SIGKILL`);
    for (const [i, id] of ids.entries()) assert.equal((await gw.api.session(id)).me?.jid, phones[i]!.jid);
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no session paired again (no QR scan)');
    t.diagnostic(`violations before the kill ${before.concurrentLoginViolations}, after ${after.concurrentLoginViolations}`);
    assert.equal(after.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    // Live sockets: exactly one per session device.
    await waitFor(() => sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === 20, { what: 'one live socket per device', timeoutMs: 10_000 });
    assert.ok(sim.devices().every((d) => d.live <= 1));
  });
});
