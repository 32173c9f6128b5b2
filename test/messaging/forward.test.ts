// Multi-host messaging: two routers (hosts) on one Redis + PostgreSQL + S3. Host A owns the session; every
// message call made through host B that needs the socket is forwarded to A (send, presence, read), with the
// Idempotency-Key holding across hosts, while history, single messages and uploads are served by B itself from
// the shared PostgreSQL and blob store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { tempDir } from '../harness/index.ts';
import { pairByQr, productionStores, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

interface Sent {
  id: string;
  status: string;
  chat: string;
}

describe('messaging: forwarding to the owning host', () => {
  test('a send through the non-owning host arrives at the phone, answers 201 with Location, and keeps its Idempotency-Key', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const base = { ...env, ...prod.env, SHARD_COUNT: '1', CLUSTER_SECRET: 'forward-test-cluster-secret-0123456789abcdef', SEND_RATE_PER_SEC: '50', SEND_BURST: '50', SEND_PER_RECIPIENT_INTERVAL_MS: '0' };
    const a = await startGateway(t, { env: sessionTestEnv(dir.path, { ...base, HOST_ID: 'host-a' }), redisPrefix: prod.redisPrefix });
    const b = await startGateway(t, { env: sessionTestEnv(dir.path, { ...base, HOST_ID: 'host-b' }), redisPrefix: prod.redisPrefix });
    const ana = sim.createPhone({ number: '6281234567811', name: 'Ana' });
    const budi = sim.createPhone({ number: '6281234567812', name: 'Budi' });
    const s = await pairByQr(a.api, sim, ana, 'fw');
    assert.equal(s.host, 'host-a');

    // Plain send through B: forwarded to A, which sends and answers 201 with Location.
    const r = await b.api.call<Sent>('POST', '/api/v1/sessions/fw/messages', { to: '081234567812', type: 'text', text: 'via B' });
    assert.equal(r.status, 201, r.raw.toString());
    assert.equal(r.headers.get('x-wagw-served-by'), 'host-a');
    assert.equal(r.headers.get('location'), `/api/v1/sessions/fw/messages/${r.body.id}`);
    assert.equal(r.body.chat, budi.jid);
    const got = await budi.waitForMessage((m) => m.id === r.body.id, 10_000);
    assert.equal(got.message?.conversation ?? got.message?.extendedTextMessage?.text, 'via B');
    // B reads the stored row from the shared PostgreSQL itself (not forwarded).
    const stored = await b.api.get<{ status: string; text?: string }>(r.headers.get('location') ?? '');
    assert.equal(stored.status, 200, stored.raw.toString());
    assert.equal(stored.headers.get('x-wagw-served-by'), null);
    assert.equal(stored.body.text, 'via B');

    // Idempotency-Key through B: the first call sends, the retries (through B, then through A) replay.
    const key = { 'idempotency-key': `fw-${randomBytes(6).toString('hex')}` };
    const body = { to: budi.jid, type: 'text', text: 'once only' };
    const first = await b.api.call<Sent>('POST', '/api/v1/sessions/fw/messages', body, key);
    assert.equal(first.status, 201, first.raw.toString());
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const again = await b.api.call<Sent>('POST', '/api/v1/sessions/fw/messages', body, key);
    assert.equal(again.status, 201, again.raw.toString());
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('x-wagw-served-by'), 'host-a');
    assert.equal(again.headers.get('location'), `/api/v1/sessions/fw/messages/${first.body.id}`);
    assert.deepEqual(again.body, first.body);
    const direct = await a.api.call<Sent>('POST', '/api/v1/sessions/fw/messages', body, key);
    assert.equal(direct.headers.get('idempotent-replayed'), 'true');
    assert.equal(direct.body.id, first.body.id);
    // The key with another body is refused (the fingerprint of the forwarded body is the client's).
    const reused = await b.api.call('POST', '/api/v1/sessions/fw/messages', { ...body, text: 'other' }, key);
    assert.equal(reused.status, 422, reused.raw.toString());
    await budi.waitForMessage((m) => m.id === first.body.id, 10_000);
    assert.equal(budi.received().filter((m) => (m.message?.conversation ?? m.message?.extendedTextMessage?.text) === 'once only').length, 1);

    // An upload made on B is usable by a send through B (forwarded to A): both hosts share the blob store.
    const bytes = randomBytes(8_000);
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/pdf' }), 'r.pdf');
    const res = await fetch(`${b.url}/api/v1/sessions/fw/uploads`, { method: 'POST', body: form });
    const up = (await res.json()) as { upload: string };
    assert.equal(res.status, 201, JSON.stringify(up));
    const doc = await b.api.call<Sent>('POST', '/api/v1/sessions/fw/messages', { to: budi.jid, type: 'document', media: { upload: up.upload } });
    assert.equal(doc.status, 201, doc.raw.toString());
    const gotDoc = await budi.waitForMessage((m) => m.id === doc.body.id, 10_000);
    assert.ok(gotDoc.message !== undefined);
    assert.deepEqual(await budi.downloadMedia(gotDoc.message), bytes);

    // Socket actions through B run on A: presence, number lookup, read receipt of a received message.
    const presence = await b.api.post('/api/v1/sessions/fw/presence', { state: 'composing', to: budi.jid });
    assert.equal(presence.status, 200, presence.raw.toString());
    assert.equal(presence.headers.get('x-wagw-served-by'), 'host-a');
    const exists = await b.api.get<{ exists: boolean }>(`/api/v1/sessions/fw/contacts/${budi.number}/exists`);
    assert.equal(exists.status, 200, exists.raw.toString());
    assert.equal(exists.body.exists, true);
    assert.equal(b.router.sessions?.localCount, 0);
  });
});
