// Two routers (two hosts) on one Redis + PostgreSQL + S3: each announces itself in the host registry; a call
// for a session whose lease the other host holds is proxied to it, so the caller never needs to know.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { productionStores, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('multi-host', () => {
  test('host registry lists both routers; a pairing-code call on host B for a session of host A is forwarded', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const base = { ...env, ...prod.env, SHARD_COUNT: '1' };
    const a = await startGateway(t, { env: sessionTestEnv(dir.path, { ...base, HOST_ID: 'host-a' }), redisPrefix: prod.redisPrefix });
    const b = await startGateway(t, { env: sessionTestEnv(dir.path, { ...base, HOST_ID: 'host-b' }), redisPrefix: prod.redisPrefix });

    const hosts = await waitFor(
      async () => {
        const r = await b.api.get<{ hosts: { hostId: string; url: string }[] }>('/api/v1/admin/hosts');
        return r.body.hosts.length === 2 ? r.body.hosts : null;
      },
      { what: 'both hosts registered', timeoutMs: 10_000 },
    );
    assert.deepEqual(hosts.map((h) => h.hostId), ['host-a', 'host-b']);

    const created = await a.api.post('/api/v1/sessions', { id: 'mh' });
    assert.equal(created.status, 201);
    assert.equal(created.body['host'], 'host-a');
    assert.equal(created.headers.get('location'), '/api/v1/sessions/mh');
    // The QR comes from the shared cache; the pairing code needs the socket: host B forwards to host A.
    await b.api.waitQr('mh');
    const phone = sim.createPhone({ name: 'Multi' });
    const code = await b.api.post<{ code: string }>('/api/v1/sessions/mh/pairing-code', { phone: phone.number });
    assert.equal(code.status, 200, code.raw.toString());
    assert.equal(code.headers.get('x-wagw-served-by'), 'host-a');
    await sim.enterPairingCode(phone, code.body.code);
    const s = await b.api.waitStatus('mh', 'connected', 30_000);
    assert.equal(s.host, 'host-a');
    assert.equal(s.me?.jid, phone.jid);
    // A restart through host B runs on host A (forwarded), never a second socket on B.
    const restarted = await b.api.post<{ host: string }>('/api/v1/sessions/mh/restart');
    assert.equal(restarted.status, 200, restarted.raw.toString());
    assert.equal(restarted.body.host, 'host-a');
    await b.api.waitStatus('mh', 'connected', 30_000);
    assert.equal(b.router.sessions?.localCount, 0);
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);

    // A draining host takes no new session: the create is forwarded to the least-loaded live host.
    const drained = await b.api.post<{ moved: number; remaining: number }>('/api/v1/admin/hosts/host-a/drain');
    assert.equal(drained.status, 200, drained.raw.toString());
    const placed = await a.api.post<{ id: string; host: string }>('/api/v1/sessions', { id: 'mh-new' });
    assert.equal(placed.status, 201, placed.raw.toString());
    assert.equal(placed.body.host, 'host-b');
    assert.equal(placed.headers.get('x-wagw-served-by'), 'host-b');
    assert.equal(placed.headers.get('location'), '/api/v1/sessions/mh-new');
    assert.equal((await b.api.session('mh-new')).host, 'host-b');
    await b.api.waitStatus('mh', 'connected', 30_000);
    // No host left that takes sessions (both draining): 503 HOST_UNAVAILABLE with Retry-After, on either host.
    const drainedB = await a.api.post<{ hostId: string }>('/api/v1/admin/hosts/host-b/drain');
    assert.equal(drainedB.status, 200, drainedB.raw.toString());
    assert.equal(drainedB.body.hostId, 'host-b');
    for (const host of [a, b]) {
      const refused = await host.api.post<{ error: { code: string; message: string } }>('/api/v1/sessions', { id: 'mh-none' });
      assert.equal(refused.status, 503, refused.raw.toString());
      assert.equal(refused.body.error.code, 'HOST_UNAVAILABLE');
      assert.match(refused.body.error.message, /draining/);
      assert.equal(refused.headers.get('retry-after'), '5');
    }
    assert.equal((await b.api.get('/api/v1/sessions/mh-none')).status, 404, 'a refused create leaves no row');
  });
});
