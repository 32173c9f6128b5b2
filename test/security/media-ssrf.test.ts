// Issue #10 "Done when": nothing the gateway fetches is chosen by a caller or a WhatsApp contact without a check.
// A loopback "internal" server of this test stands for the network behind the gateway. A simulated contact sends
// an image whose `url` points at it: the server is never contacted, the message is still stored and its media
// is unavailable (404). A send whose media.url points at it directly, by a name that resolves there (the shard
// runs with a DNS table, fixtures/shard-test-dns.ts), or by an IPv4-mapped literal gets one uniform 400. An
// image whose declared size is smaller than its file is not downloaded past the declared size.
// Redirects to it are covered hop by hop in packages/shard/test/messaging/media-fetch.test.ts: a redirect needs
// a first hop the policy calls public, and every server a test may open is on loopback.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateWAMessageContent } from '@whiskeysockets/baileys';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

const SHARD_ENTRY = fileURLToPath(new URL('./fixtures/shard-test-dns.ts', import.meta.url));

describe('security: media URLs reach no internal host', () => {
  test('an inbound image pointing inside is stored without contacting it; sends pointing inside get one uniform 400', async (t) => {
    let connections = 0;
    const internal = http.createServer((_req, res) => res.end('internal secret'));
    internal.on('connection', () => connections++);
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => internal.close(() => resolve())));
    const port = (internal.address() as AddressInfo).port;

    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    // MEDIA_URL_ALLOW_PRIVATE is left at its default (false): the point of this test.
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', INBOUND_MEDIA_DOWNLOAD: 'eager', MEDIA_FETCH_TIMEOUT_MS: '3000' }), shardEntry: SHARD_ENTRY });
    const owner = sim.createPhone({ number: '6281234567891', name: 'Owner' });
    const eve = sim.createPhone({ number: '6281234567892', name: 'Eve' });
    await pairByQr(gw.api, sim, owner, 'ssrf');

    // The contact's image: a real media key, a WhatsApp-looking path, a url on the internal server, 10 bytes declared.
    const sent = await eve.sendMessage(owner.jid, {
      imageMessage: {
        url: `https://127.0.0.1:${port}/v/t62.7118-24/internal.enc`,
        directPath: '/v/t62.7118-24/internal.enc',
        mediaKey: randomBytes(32),
        fileLength: 10,
        mimetype: 'image/jpeg',
        caption: 'look',
      },
    });
    const stored = await waitFor(
      async () => {
        const r = await gw.api.get<{ type: string; caption?: string; media?: unknown }>(`/api/v1/sessions/ssrf/messages/${sent.id}`);
        return r.status === 200 ? r.body : null;
      },
      { what: 'the image stored', timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(stored.type, 'image');
    assert.equal(stored.caption, 'look');
    const media = await gw.api.get<{ error: { code: string } }>(`/api/v1/sessions/ssrf/messages/${sent.id}/media`);
    assert.equal(media.status, 404, media.raw.toString());
    assert.equal(media.body.error.code, 'MESSAGE_NOT_FOUND');

    // A real image from the simulator's media host still arrives (the allow-list is not a block-all).
    const real = randomBytes(2000);
    const ok = await eve.sendContent(owner.jid, { image: real, mimetype: 'image/png' });
    await waitFor(
      async () => {
        const r = await gw.api.get(`/api/v1/sessions/ssrf/messages/${ok.id}/media`);
        return r.status === 200 && Buffer.compare(r.raw, real) === 0;
      },
      { what: 'the real image served', timeoutMs: 20_000, intervalMs: 200 },
    );

    // A real file on the simulator's host whose message declares 10 bytes: the download stops at the declared
    // size (plus padding and MAC) instead of buffering whatever the server sends; stored, media unavailable.
    const big = await generateWAMessageContent({ image: randomBytes(64 * 1024), mimetype: 'image/png' }, { upload: sim.media.upload } as Parameters<typeof generateWAMessageContent>[1]);
    assert.ok(big.imageMessage);
    big.imageMessage.fileLength = 10;
    const liar = await eve.sendMessage(owner.jid, big);
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/ssrf/messages/${liar.id}`)).status === 200, { what: 'the liar stored', timeoutMs: 20_000, intervalMs: 100 });
    assert.equal((await gw.api.get(`/api/v1/sessions/ssrf/messages/${liar.id}/media`)).status, 404);

    const answers = new Set<string>();
    for (const url of [`http://127.0.0.1:${port}/report.pdf`, `http://internal.test:${port}/report.pdf`, `http://mapped.test:${port}/report.pdf`, `http://[::ffff:7f00:1]:${port}/report.pdf`, `http://[::7f00:1]:${port}/report.pdf`]) {
      const r = await gw.api.post<{ error: { code: string; message: string; details?: unknown } }>('/api/v1/sessions/ssrf/messages', { to: eve.jid, type: 'document', media: { url } });
      assert.equal(r.status, 400, `${url}: ${r.raw.toString()}`);
      answers.add(JSON.stringify(r.body.error));
    }
    // A closed port answers exactly the same: the API tells nothing about what is listening inside.
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await gw.api.post<{ error: unknown }>('/api/v1/sessions/ssrf/messages', { to: eve.jid, type: 'document', media: { url: `http://127.0.0.1:${closedPort}/x.pdf` } });
    answers.add(JSON.stringify(r.body.error));
    assert.equal(answers.size, 1, [...answers].join('\n'));
    assert.match([...answers][0] ?? '', /"code":"VALIDATION_FAILED"/);
    assert.equal(connections, 0, 'the internal server was contacted');
  });
});
