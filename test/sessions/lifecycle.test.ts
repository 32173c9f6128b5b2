// Create -> QR (PNG and JSON) -> the simulated phone scans -> connected, seen on GET, SSE; the same by pairing
// code. Real Baileys sockets in real shard processes against the WhatsApp simulator.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { openSse, sessionTestEnv, startGateway, startReceiver, startSim } from './helpers.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('session lifecycle (embedded stores)', () => {
  test('create -> QR as PNG and JSON -> scan -> connected with me on GET, SSE and the signed status webhook', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const receiver = await startReceiver(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_POLL_INTERVAL_MS: '200' }),
      webhooks: true,
    });
    const phone = sim.createPhone({ name: 'Ana' });

    const created = await gw.api.post('/api/v1/sessions', { id: 'ana', metadata: { card: 7 }, webhookUrl: receiver.url });
    assert.equal(created.status, 201, created.raw.toString());
    assert.equal(created.body['id'], 'ana');
    assert.equal(created.body['host'], 'test-host');
    assert.equal(typeof created.body['shard'], 'number');
    // The webhookUrl's own secret, returned once (issue #10 item 12); never WEBHOOK_SECRET itself.
    const webhookSecret = String(created.body['webhookSecret']);
    assert.match(webhookSecret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(webhookSecret, SECRET);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    assert.equal((await gw.api.get('/api/v1/sessions/ana')).body['webhookSecret'], undefined, 'only the create response carries it');

    const sse = openSse(t, `${gw.url}/api/v1/sessions/ana/events`);
    const qr = await gw.api.waitQr('ana');
    const png = await gw.api.get('/api/v1/sessions/ana/qr?format=png');
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    assert.deepEqual([...png.raw.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const svg = await gw.api.get('/api/v1/sessions/ana/qr?format=svg');
    assert.match(svg.raw.toString(), /<svg/);

    await waitFor(() => sse.events.some((e) => e.type === 'qr'), { what: 'a qr event on SSE', timeoutMs: 10_000 });
    await sim.scanQr(phone, qr);
    const s = await gw.api.waitStatus('ana', 'connected', 30_000);
    assert.equal(s.me?.phone, `+${phone.number}`);
    assert.equal(s.me?.jid, phone.jid);
    assert.equal(s.host, 'test-host');
    const statusEvents = await waitFor(
      () => {
        const ev = sse.events.filter((e) => e.type === 'status');
        return ev.some((e) => e.data['status'] === 'connected') ? ev : null;
      },
      { what: 'connected on SSE', timeoutMs: 10_000 },
    );
    const connected = statusEvents.find((e) => e.data['status'] === 'connected');
    assert.deepEqual((connected?.data['me'] as { jid: string }).jid, phone.jid);

    // The session's webhook got the QR and the connected status, signed (Standard Webhooks).
    const hooks = await waitFor(
      () => {
        const got = receiver.hits.filter((h) => (h.body['data'] as { status?: string } | undefined)?.status === 'connected');
        return got.length > 0 && receiver.hits.some((h) => (h.body['data'] as { status?: string }).status === 'qr') ? receiver.hits : null;
      },
      { what: 'qr and connected webhooks', timeoutMs: 20_000, intervalMs: 100 },
    );
    const hit = hooks.find((h) => (h.body['data'] as { status?: string }).status === 'connected');
    assert.ok(hit);
    assert.equal(hit.body['sessionId'], 'ana');
    assert.equal((hit.body['data'] as { me: { jid: string } }).me.jid, phone.jid);
    const signed = {
      'webhook-id': String(hit.headers['webhook-id']),
      'webhook-timestamp': String(hit.headers['webhook-timestamp']),
      'webhook-signature': String(hit.headers['webhook-signature']),
    };
    assert.ok(new Webhook(webhookSecret).verify(hit.raw, signed));
    assert.throws(() => new Webhook(SECRET).verify(hit.raw, signed), 'the backend\'s WEBHOOK_SECRET does not verify a session receiver\'s deliveries');

    // Connected: no QR any more.
    const after = await gw.api.get('/api/v1/sessions/ana/qr?format=json');
    assert.equal(after.status, 409);
    assert.equal((after.body['error'] as { code: string }).code, 'SESSION_ALREADY_CONNECTED');
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });

  test('create -> pairing code -> the phone enters it -> connected', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, env) });
    const phone = sim.createPhone({ name: 'Budi' });
    assert.equal((await gw.api.post('/api/v1/sessions', { id: 'budi' })).status, 201);
    const res = await gw.api.post<{ code: string }>('/api/v1/sessions/budi/pairing-code', { phone: `+${phone.number}` });
    assert.equal(res.status, 200, res.raw.toString());
    assert.match(res.body.code, /^[A-Z0-9]{8}$/);
    await sim.enterPairingCode(phone, res.body.code);
    const s = await gw.api.waitStatus('budi', 'connected', 30_000);
    assert.equal(s.me?.jid, phone.jid);
  });
});
