// Phone -> gateway: text and image sent by a simulated phone are stored once (PostgreSQL/PGlite), pushed on
// SSE and on the signed `messages` webhook, the image retrievable from .../media. Session A messages session B
// on the same gateway and B replies quoting A's message.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { openSse, pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import { startWebhookGateway } from './fixture.ts';

describe('messaging: receive', () => {
  test('text + image from a phone: stored once, on SSE and the messages webhook, media via the API', async (t) => {
    const { sim, gw, receiver } = await startWebhookGateway(t);
    const owner = sim.createPhone({ number: '6281234567811', name: 'Owner' });
    const citra = sim.createPhone({ number: '6281234567812', name: 'Citra' });
    const created = await gw.api.post('/api/v1/sessions', { id: 'rx', webhookUrl: receiver.url });
    assert.equal(created.status, 201, created.raw.toString());
    await sim.scanQr(owner, await gw.api.waitQr('rx'));
    await gw.api.waitStatus('rx', 'connected');
    const sse = openSse(t, `${gw.url}/api/v1/sessions/rx/events`);
    await waitFor(() => sse.events.length > 0, { what: 'the SSE stream to open', timeoutMs: 5000 });

    const text = await citra.sendText(owner.jid, 'Halo dari Citra');
    const png = randomBytes(3000);
    const image = await citra.sendContent(owner.jid, { image: png, mimetype: 'image/png', caption: 'foto' });

    const stored = await waitFor(
      async () => {
        const r = await gw.api.get<{ id: string; type: string; text?: string; caption?: string; status: string; fromMe: boolean; chat: string }>(`/api/v1/sessions/rx/messages/${image.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: 'the image stored', timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(stored.type, 'image');
    assert.equal(stored.caption, 'foto');
    assert.equal(stored.fromMe, false);
    assert.equal(stored.status, 'received');
    assert.equal(stored.chat, citra.jid);
    const txt = await gw.api.get<{ text?: string; type: string }>(`/api/v1/sessions/rx/messages/${text.id}`);
    assert.equal(txt.status, 200);
    assert.equal(txt.body.text, 'Halo dari Citra');

    const media = await gw.api.get(`/api/v1/sessions/rx/messages/${image.id}/media`);
    assert.equal(media.status, 200, media.raw.toString());
    assert.equal(media.headers.get('content-type'), 'image/png');
    assert.deepEqual(media.raw, png);
    assert.equal((await gw.api.get(`/api/v1/sessions/rx/messages/${text.id}/media`)).status, 404);

    await waitFor(() => [text.id, image.id].every((id) => sse.events.some((e) => e.type === 'message' && e.data['id'] === id)), { what: 'both on SSE', timeoutMs: 10_000 });
    const hooks = await waitFor(
      () => {
        const got = receiver.hits.filter((h) => h.body['type'] === 'messages' || (h.body['data'] as { id?: string } | undefined)?.id === image.id);
        return [text.id, image.id].every((id) => receiver.hits.some((h) => (h.body['data'] as { id?: string } | undefined)?.id === id)) ? got : null;
      },
      { what: 'both messages webhooks', timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.ok(hooks.length >= 2);
    // Exactly once in the store, on SSE and on the webhook.
    await new Promise((r) => setTimeout(r, 500));
    const rows = await gw.stores.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = 'rx' AND from_me = false`);
    assert.equal(rows.rows[0]?.n, 2);
    for (const id of [text.id, image.id]) {
      assert.equal(sse.events.filter((e) => e.type === 'message' && e.data['id'] === id).length, 1);
      assert.equal(receiver.hits.filter((h) => (h.body['data'] as { id?: string } | undefined)?.id === id).length, 1);
    }
  });

  test('session A messages session B on the same gateway; B replies quoting it', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '2', INBOUND_MEDIA_DOWNLOAD: 'lazy' }) });
    const pa = sim.createPhone({ number: '6281234567821', name: 'A' });
    const pb = sim.createPhone({ number: '6281234567822', name: 'B' });
    await pairByQr(gw.api, sim, pa, 'sa');
    await pairByQr(gw.api, sim, pb, 'sb');
    const first = await gw.api.post<{ id: string }>('/api/v1/sessions/sa/messages', { to: `+${pb.number}`, type: 'text', text: 'ping from A' });
    assert.equal(first.status, 201, first.raw.toString());
    const atB = await waitFor(
      async () => {
        const r = await gw.api.get<{ text?: string; chat: string }>(`/api/v1/sessions/sb/messages/${first.body.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: "A's message stored for B", timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(atB.text, 'ping from A');
    assert.equal(atB.chat, pa.jid);
    const reply = await gw.api.post<{ id: string }>('/api/v1/sessions/sb/messages', { to: pa.jid, type: 'text', text: 'pong from B', quotedId: first.body.id });
    assert.equal(reply.status, 201, reply.raw.toString());
    const atA = await waitFor(
      async () => {
        const r = await gw.api.get<{ text?: string; quotedId?: string }>(`/api/v1/sessions/sa/messages/${reply.body.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: "B's reply stored for A", timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(atA.text, 'pong from B');
    assert.equal(atA.quotedId, first.body.id);

    // INBOUND_MEDIA_DOWNLOAD=lazy: B's copy of A's image is fetched by B's shard on the first GET of …/media.
    const pic = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const img = await gw.api.post<{ id: string }>('/api/v1/sessions/sa/messages', { to: pb.jid, type: 'image', media: { base64: pic.toString('base64') }, mimetype: 'image/png' });
    assert.equal(img.status, 201, img.raw.toString());
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/sb/messages/${img.body.id}`)).status === 200, { what: 'image stored for B', timeoutMs: 20_000, intervalMs: 100 });
    const media = await gw.api.get(`/api/v1/sessions/sb/messages/${img.body.id}/media`);
    assert.equal(media.status, 200, media.raw.toString());
    assert.equal(media.headers.get('content-type'), 'image/png');
    assert.deepEqual(media.raw, pic);
  });
});
