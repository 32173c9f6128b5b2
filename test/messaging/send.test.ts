// POST /api/v1/sessions/:id/messages end to end: router -> IPC -> shard governor -> real Baileys -> the
// WhatsApp simulator's phone, which decrypts the proto.Message (media bytes downloaded and compared). Malformed
// inputs through the real route are 4xx; Idempotency-Key sent 5x concurrently sends once.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { SimPhone, WaSimulator } from '@wagw/wa-sim';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';

interface Sent {
  id: string;
  status: string;
  chat: string;
}

describe('messaging: send', () => {
  let gw: Gateway;
  let sim: WaSimulator;
  let ana: SimPhone;
  let budi: SimPhone;
  let fileUrl: string;
  let closedUrl: string;
  const file = randomBytes(20_000);
  const cleanups: (() => Promise<void>)[] = [];
  const t0 = { after: (fn: () => Promise<void>) => cleanups.push(fn) };

  before(async () => {
    const dir = await tempDir(t0);
    const s = await startSim(t0, dir.path);
    sim = s.sim;
    // MEDIA_URL_ALLOW_PRIVATE: the document by URL is served by a loopback server of this test.
    gw = await startGateway(t0, { env: sessionTestEnv(dir.path, { ...s.env, SHARD_COUNT: '1', SEND_RATE_PER_SEC: '50', SEND_BURST: '50', SEND_PER_RECIPIENT_INTERVAL_MS: '0', MEDIA_FETCH_TIMEOUT_MS: '3000', MEDIA_URL_ALLOW_PRIVATE: 'true' }) });
    ana = sim.createPhone({ number: '6281234567801', name: 'Ana' });
    budi = sim.createPhone({ number: '6281234567802', name: 'Budi' });
    await pairByQr(gw.api, sim, ana, 'ana');
    // A file server for media URLs, and a port with nothing listening.
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': String(file.length) }).end(file);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t0.after(() => new Promise<void>((r) => server.close(() => r())));
    fileUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/report.pdf`;
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    closedUrl = `http://127.0.0.1:${port}/x.jpg`;
  });

  after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });

  const send = (body: unknown, headers: Record<string, string> = {}) => gw.api.call<Sent & { error?: { code: string; message: string } }>('POST', '/api/v1/sessions/ana/messages', body, headers);

  test('text to a local number arrives at the phone as a conversation; stored as sent', async () => {
    const r = await send({ to: '081234567802', type: 'text', text: 'Halo Budi' });
    assert.equal(r.status, 201, r.raw.toString());
    assert.equal(r.body.status, 'sent');
    assert.equal(r.body.chat, budi.jid);
    assert.equal(r.headers.get('location'), `/api/v1/sessions/ana/messages/${r.body.id}`);
    const got = await budi.waitForMessage((m) => m.id === r.body.id, 10_000);
    const text = got.message?.conversation ?? got.message?.extendedTextMessage?.text;
    assert.equal(text, 'Halo Budi');
    assert.equal(got.from.split('@')[0]?.split(':')[0], ana.number);
    const stored = await gw.api.get<{ status: string; type: string; text?: string }>(`/api/v1/sessions/ana/messages/${r.body.id}`);
    assert.equal(stored.status, 200, stored.raw.toString());
    assert.equal(stored.body.status, 'sent');
    assert.equal(stored.body.type, 'text');
  });

  test('image as base64 and document by URL: the phone downloads the same bytes', async () => {
    const png = randomBytes(5000);
    const img = await send({ to: `+${budi.number}`, type: 'image', media: { base64: png.toString('base64') }, caption: 'a picture', mimetype: 'image/png' });
    assert.equal(img.status, 201, img.raw.toString());
    const gotImg = await budi.waitForMessage((m) => m.id === img.body.id, 10_000);
    assert.equal(gotImg.message?.imageMessage?.caption, 'a picture');
    assert.ok(gotImg.message !== undefined);
    assert.deepEqual(await budi.downloadMedia(gotImg.message), png);

    const doc = await send({ to: budi.jid, type: 'document', media: { url: fileUrl } });
    assert.equal(doc.status, 201, doc.raw.toString());
    const gotDoc = await budi.waitForMessage((m) => m.id === doc.body.id, 10_000);
    assert.equal(gotDoc.message?.documentMessage?.fileName, 'report.pdf');
    assert.equal(gotDoc.message?.documentMessage?.mimetype, 'application/pdf');
    assert.ok(gotDoc.message !== undefined);
    assert.deepEqual(await budi.downloadMedia(gotDoc.message), file);
  });

  test('multipart upload streamed to the blob store, then sent as a document by {upload}', async () => {
    const bytes = randomBytes(30_000);
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/zip' }), 'bundle.zip');
    const res = await fetch(`${gw.url}/api/v1/sessions/ana/uploads`, { method: 'POST', body: form });
    const up = (await res.json()) as { upload: string; size: number; mimetype: string; fileName: string };
    assert.equal(res.status, 201, JSON.stringify(up));
    assert.equal(up.size, bytes.length);
    assert.equal(up.fileName, 'bundle.zip');
    const doc = await send({ to: budi.jid, type: 'document', media: { upload: up.upload } });
    assert.equal(doc.status, 201, doc.raw.toString());
    const got = await budi.waitForMessage((m) => m.id === doc.body.id, 10_000);
    assert.equal(got.message?.documentMessage?.fileName, 'bundle.zip');
    assert.equal(got.message?.documentMessage?.mimetype, 'application/zip');
    assert.ok(got.message !== undefined);
    assert.deepEqual(await budi.downloadMedia(got.message), bytes);
    // Not multipart: 415; an unknown session: 404.
    assert.equal((await gw.api.post('/api/v1/sessions/ana/uploads', { file: 'x' })).status, 415);
    assert.equal((await fetch(`${gw.url}/api/v1/sessions/nobody/uploads`, { method: 'POST', body: form })).status, 404);
  });

  test('location, contact and poll arrive as their proto fields; a reply quotes the first message', async () => {
    const loc = await send({ to: budi.jid, type: 'location', latitude: -6.2, longitude: 106.816666, name: 'Monas' });
    assert.equal(loc.status, 201, loc.raw.toString());
    const gotLoc = await budi.waitForMessage((m) => m.id === loc.body.id, 10_000);
    assert.equal(gotLoc.message?.locationMessage?.name, 'Monas');
    const poll = await send({ to: budi.jid, type: 'poll', name: 'Lunch?', options: ['Rice', 'Noodles'] });
    assert.equal(poll.status, 201, poll.raw.toString());
    const gotPoll = await budi.waitForMessage((m) => m.id === poll.body.id, 10_000);
    const pm = gotPoll.message?.pollCreationMessageV3 ?? gotPoll.message?.pollCreationMessage;
    assert.equal(pm?.name, 'Lunch?');
    const reply = await send({ to: budi.jid, type: 'text', text: 'see above', quotedId: loc.body.id });
    assert.equal(reply.status, 201, reply.raw.toString());
    const gotReply = await budi.waitForMessage((m) => m.id === reply.body.id, 10_000);
    assert.equal(gotReply.message?.extendedTextMessage?.contextInfo?.stanzaId, loc.body.id);
  });

  test('the same Idempotency-Key 5x concurrently: one message at the phone, the others replay or 409', async () => {
    const before = budi.received().length;
    const key = `k-${randomBytes(6).toString('hex')}`;
    const body = { to: budi.jid, type: 'text', text: 'exactly once' };
    const results = await Promise.all(Array.from({ length: 5 }, () => send(body, { 'idempotency-key': key })));
    const statuses = results.map((r) => r.status).sort();
    assert.ok(statuses.includes(201), JSON.stringify(statuses));
    for (const r of results) assert.ok(r.status === 201 || (r.status === 409 && r.body.error?.code === 'IDEMPOTENCY_IN_PROGRESS'), r.raw.toString());
    const id = results.find((r) => r.status === 201)?.body.id;
    await budi.waitForMessage((m) => m.id === id, 10_000);
    // Once done, a retry replays the stored result; another body with the key is 422.
    const again = await send(body, { 'idempotency-key': key });
    assert.equal(again.status, 201);
    assert.equal(again.body.id, id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal((await send({ ...body, text: 'other' }, { 'idempotency-key': key })).status, 422);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(budi.received().filter((m) => (m.message?.conversation ?? m.message?.extendedTextMessage?.text) === 'exactly once').length, 1);
    assert.equal(budi.received().length - before, 1);
  });

  test('history pages, read receipt, edit, revoke, presence and the number lookup', async () => {
    // Budi writes to Ana; Ana's gateway marks it read.
    const inbound = await budi.sendText(ana.jid, 'are you there?');
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/ana/messages/${inbound.id}`)).status === 200, { what: 'inbound stored', timeoutMs: 10_000 });
    const read = await gw.api.post(`/api/v1/sessions/ana/messages/${inbound.id}/read`, {});
    assert.equal(read.status, 200, read.raw.toString());
    await budi.waitForStatus(inbound.id, 'read', 10_000);

    // History of the chat with Budi: newest first, pages chained by `next`, no overlap.
    const seen: string[] = [];
    let next: string | null = null;
    for (let page = 0; page < 20; page++) {
      const q: string = `/api/v1/sessions/ana/messages?chat=${encodeURIComponent(`+${budi.number}`)}&limit=3${next === null ? '' : `&before=${next}`}`;
      const r = await gw.api.get<{ data: { id: string; timestamp: string; chat: string }[]; next: string | null }>(q);
      assert.equal(r.status, 200, r.raw.toString());
      for (const m of r.body.data) assert.equal(m.chat, budi.jid);
      seen.push(...r.body.data.map((m) => m.id));
      next = r.body.next;
      if (next === null) break;
    }
    assert.equal(new Set(seen).size, seen.length, 'no message on two pages');
    assert.ok(seen.includes(inbound.id));
    assert.ok(seen.length >= 8, `history has ${seen.length}`);
    assert.equal((await gw.api.get('/api/v1/sessions/ana/messages?before=yesterday')).status, 400);

    // Edit and revoke one of Ana's messages: Budi gets the protocol messages.
    const mine = await send({ to: budi.jid, type: 'text', text: 'typo here' });
    assert.equal(mine.status, 201);
    const edit = await gw.api.call('PATCH', `/api/v1/sessions/ana/messages/${mine.body.id}`, { text: 'fixed here' });
    assert.equal(edit.status, 200, edit.raw.toString());
    await budi.waitForMessage((m) => {
      const pm = m.message?.protocolMessage ?? m.message?.editedMessage?.message?.protocolMessage;
      return pm?.key?.id === mine.body.id && pm.editedMessage !== undefined && pm.editedMessage !== null;
    }, 10_000);
    assert.equal((await gw.api.call('PATCH', `/api/v1/sessions/ana/messages/${inbound.id}`, { text: 'not mine' })).status, 409);
    const del = await gw.api.call('DELETE', `/api/v1/sessions/ana/messages/${mine.body.id}`);
    assert.equal(del.status, 200, del.raw.toString());
    await budi.waitForMessage((m) => m.message?.protocolMessage?.key?.id === mine.body.id && m.message.protocolMessage.type === 0, 10_000);
    assert.equal((await gw.api.call('DELETE', '/api/v1/sessions/ana/messages/NOPE1')).status, 404);

    // Presence and the number lookup.
    assert.equal((await gw.api.post('/api/v1/sessions/ana/presence', { to: budi.jid, state: 'composing' })).status, 200);
    assert.equal((await gw.api.post('/api/v1/sessions/ana/presence', { state: 'composing' })).status, 400);
    const yes = await gw.api.get<{ exists: boolean; jid?: string }>(`/api/v1/sessions/ana/contacts/${encodeURIComponent(`+${budi.number}`)}/exists`);
    assert.equal(yes.status, 200, yes.raw.toString());
    assert.equal(yes.body.exists, true);
    const no = await gw.api.get<{ exists: boolean }>('/api/v1/sessions/ana/contacts/6281234567899/exists');
    assert.equal(no.status, 200, no.raw.toString());
    assert.equal(no.body.exists, false);
    assert.equal((await gw.api.get('/api/v1/sessions/ana/contacts/abc/exists')).status, 400);
  });

  test('malformed inputs through the real route: each a 4xx, nothing sent', async () => {
    const before = budi.received().length;
    const bad: [string, unknown, Record<string, string>?][] = [
      ['empty body', {}],
      ['empty to', { to: '', type: 'text', text: 'x' }],
      ['letters', { to: 'budi', type: 'text', text: 'x' }],
      ['too short', { to: '123', type: 'text', text: 'x' }],
      ['too long', { to: '+62812345678901234567', type: 'text', text: 'x' }],
      ['bad JID domain', { to: '6281234567802@gmail.com', type: 'text', text: 'x' }],
      ['newsletter JID', { to: '123@newsletter', type: 'text', text: 'x' }],
      ['number as to', { to: 6281234567802, type: 'text', text: 'x' }],
      ['text not a string', { to: budi.jid, type: 'text', text: 42 }],
      ['empty text', { to: budi.jid, type: 'text', text: '' }],
      ['huge text', { to: budi.jid, type: 'text', text: 'x'.repeat(70_000) }],
      ['unsupported type', { to: budi.jid, type: 'hologram', text: 'x' }],
      ['unknown field', { to: budi.jid, type: 'text', text: 'x', captoin: 'y' }],
      ['media both url and base64', { to: budi.jid, type: 'image', media: { url: fileUrl, base64: 'AAAA' } }],
      ['media ftp url', { to: budi.jid, type: 'image', media: { url: 'ftp://example.com/a.jpg' } }],
      ['media bad base64', { to: budi.jid, type: 'image', media: { base64: 'not base64!' } }],
      ['media URL to a closed port', { to: budi.jid, type: 'image', media: { url: closedUrl } }],
      ['unknown upload', { to: budi.jid, type: 'image', media: { upload: 'nope' } }],
      ['latitude out of range', { to: budi.jid, type: 'location', latitude: 91, longitude: 0 }],
      ['poll with one option', { to: budi.jid, type: 'poll', name: 'q', options: ['a'] }],
      ['reaction with text', { to: budi.jid, type: 'reaction', messageId: 'ABC', emoji: 'hello' }],
      ['quote of an unknown message', { to: budi.jid, type: 'text', text: 'x', quotedId: 'NOPE123' }],
      ['bad idempotency key', { to: budi.jid, type: 'text', text: 'x' }, { 'idempotency-key': '' }],
      ['array body', [1, 2]],
    ];
    for (const [what, body, headers] of bad) {
      const r = await send(body, headers);
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.raw.toString().slice(0, 300)}`);
      assert.ok(typeof r.body.error?.code === 'string', `${what}: ${r.raw.toString().slice(0, 300)}`);
    }
    assert.equal((await gw.api.post('/api/v1/sessions/nobody/messages', { to: budi.jid, type: 'text', text: 'x' })).status, 404);
    assert.equal(budi.received().length, before);
  });
});
