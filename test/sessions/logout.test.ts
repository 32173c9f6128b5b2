// logout (unlinked at the simulator, stored state gone), unlink on the phone (401: logged_out, wiped, no
// reconnect loop), DELETE (every stored byte gone).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('logout, unlink and delete', () => {
  test('logout unlinks the device at the simulator and wipes the stored state; 401 on the phone does the same without a reconnect loop; DELETE removes everything', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, env) });
    const [pa, pb, pc] = [sim.createPhone({ name: 'A' }), sim.createPhone({ name: 'B' }), sim.createPhone({ name: 'C' })];
    await Promise.all([pairByQr(gw.api, sim, pa, 'lo-a'), pairByQr(gw.api, sim, pb, 'lo-b'), pairByQr(gw.api, sim, pc, 'lo-c')]);
    assert.ok((await gw.stores.blobs.list('sessions/lo-a/')).length > 0);
    const jidOf = (phone: typeof pa) => sim.devices().find((d) => d.number === phone.number && d.kind === 'companion');

    // 1. logout through the API
    const out = await gw.api.post<{ status: string }>('/api/v1/sessions/lo-a/logout');
    assert.equal(out.status, 200, out.raw.toString());
    assert.equal(out.body.status, 'logged_out');
    await waitFor(() => jidOf(pa)?.removed === true, { what: 'the simulator to see the device unlinked', timeoutMs: 10_000 });
    assert.deepEqual(await gw.stores.blobs.list('sessions/lo-a/'), []);
    const s = await gw.api.session('lo-a');
    assert.equal(s.status, 'logged_out');
    assert.equal(s.me, undefined);
    assert.equal((await gw.api.get('/api/v1/sessions/lo-a/qr')).status, 404);

    // 2. unlinked on the phone: WhatsApp answers 401
    const failuresBefore = sim.snapshot().loginFailures;
    const loginsBefore = sim.snapshot().logins;
    const dev = jidOf(pb);
    assert.ok(dev);
    sim.kickDevice(dev.jid, 'unlink');
    const b = await gw.api.waitStatus('lo-b', 'logged_out', 15_000);
    assert.match(b.reason ?? '', /401/);
    await waitFor(async () => (await gw.stores.blobs.list('sessions/lo-b/')).length === 0, { what: 'lo-b state wiped', timeoutMs: 10_000 });
    await sleep(1500); // several reconnect periods of the test settings
    assert.equal(sim.snapshot().loginFailures, failuresBefore, 'no login attempt after the 401');
    assert.equal(sim.snapshot().logins, loginsBefore, 'no reconnect');
    assert.equal((await gw.api.session('lo-b')).status, 'logged_out');

    // 3. DELETE: stop, logout, delete every stored byte
    const del = await gw.api.call('DELETE', '/api/v1/sessions/lo-c');
    assert.equal(del.status, 204);
    await waitFor(() => jidOf(pc)?.removed === true, { what: 'lo-c unlinked', timeoutMs: 10_000 });
    assert.deepEqual(await gw.stores.blobs.list('sessions/lo-c/'), []);
    assert.equal((await gw.api.get('/api/v1/sessions/lo-c')).status, 404);
    assert.equal((await gw.stores.sql.query('SELECT 1 FROM sessions WHERE id = $1', ['lo-c'])).rowCount, 0);
    assert.equal(await gw.stores.qr.get('lo-c'), null);
    assert.equal((await gw.api.call('DELETE', '/api/v1/sessions/lo-c')).status, 404);
    assert.equal(sim.devices().filter((d) => d.kind === 'companion' && d.live > 0).length, 0, 'no socket left');
  });
});
