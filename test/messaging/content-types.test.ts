// Every content type both ways, end to end through real Baileys and the WhatsApp simulator.
// Gateway -> phone: video, voice note, sticker, contact, reaction and a text with mentions arrive at the simulated
// phone as the right proto.Message fields, media bytes equal after download.
// Phone -> gateway: video, voice note, document, sticker, location, contact, reaction and poll are stored with
// their type and fields, pushed once on SSE and once on the signed `messages` webhook, media served by
// GET .../media with the exact bytes and Content-Type. A re-delivered message id is stored and emitted once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import type { SimPhone } from '@wagw/wa-sim';
import { waitFor } from '../harness/index.ts';
import type { Gateway, SseEvent } from '../sessions/helpers.ts';
import { messagingSuite } from './fixture.ts';
import type { Hit, StoredMessage } from './fixture.ts';

const SESSION = 'ct';

interface Sent {
  id: string;
  status: string;
  chat: string;
  type: string;
  error?: { code: string; message: string };
}

interface StoredMedia {
  kind: string;
  mimetype?: string;
  fileName?: string;
  size?: number;
  sha256?: string;
  seconds?: number;
  ptt?: boolean;
  gifPlayback?: boolean;
}

interface Stored extends StoredMessage {
  media?: StoredMedia;
  location?: { latitude: number; longitude: number; name?: string; address?: string };
  contacts?: { name: string; vcard: string; phone?: string }[];
  reaction?: { messageId: string; emoji: string; removed: boolean };
  reactions?: { from: string; emoji: string; at: string }[];
  poll?: { name: string; options: string[]; selectableCount: number };
  mentions?: string[];
  quotedId?: string;
}

describe('messaging: content types both ways', () => {
  let gw: Gateway;
  let owner: SimPhone;
  let dewi: SimPhone;
  const suite = messagingSuite(SESSION, [{ number: '6281234567841', name: 'Owner' }, { number: '6281234567842', name: 'Dewi' }]);
  before(() => {
    gw = suite.gw;
    [owner, dewi] = suite.phones as [SimPhone, SimPhone];
  });

  const send = (body: Record<string, unknown>) => gw.api.call<Sent>('POST', `/api/v1/sessions/${SESSION}/messages`, { to: dewi.jid, ...body });
  const get = (id: string) => gw.api.get<Stored>(`/api/v1/sessions/${SESSION}/messages/${id}`);
  const stored = (id: string): Promise<Stored> => suite.stored<Stored>(id);
  const sseOf = (id: string) => suite.sseOf(id);
  const hooksOf = (id: string) => suite.hooksOf(id);
  /** The SSE event and the webhook of an inbound message (waited for), each checked to carry its type. */
  const emitted = async (id: string, type: string): Promise<{ event: SseEvent; hook: Hit }> => {
    await waitFor(() => sseOf(id).length > 0 && hooksOf(id).length > 0, { what: `SSE + webhook of ${id}`, timeoutMs: 20_000, intervalMs: 50 });
    const event = sseOf(id)[0] as SseEvent;
    const hook = hooksOf(id)[0] as Hit;
    assert.equal(event.data['type'], type);
    assert.equal((hook.body['data'] as { type?: string }).type, type);
    assert.ok(typeof hook.headers['webhook-signature'] === 'string', 'the webhook is signed');
    return { event, hook };
  };
  const mediaOf = async (id: string, bytes: Buffer, mimetype: string): Promise<void> => {
    const r = await gw.api.get(`/api/v1/sessions/${SESSION}/messages/${id}/media`);
    assert.equal(r.status, 200, r.raw.toString().slice(0, 300));
    assert.equal(r.headers.get('content-type'), mimetype);
    assert.deepEqual(r.raw, bytes);
  };

  test('gateway -> phone: video, voice note and sticker arrive as their proto messages with the same bytes; quotes and mentions on media', async () => {
    const video = randomBytes(12_000);
    const v = await send({ type: 'video', media: { base64: video.toString('base64') }, caption: 'a clip' });
    assert.equal(v.status, 201, v.raw.toString());
    assert.equal(v.body.type, 'video');
    const voice = randomBytes(4_000);
    const a = await send({ type: 'audio', media: { base64: voice.toString('base64') }, seconds: 3 });
    assert.equal(a.status, 201, a.raw.toString());
    const sticker = randomBytes(2_500);
    const s = await send({ type: 'sticker', media: { base64: sticker.toString('base64') } });
    assert.equal(s.status, 201, s.raw.toString());

    const gotV = (await dewi.waitForMessage((m) => m.id === v.body.id, 10_000)).message;
    assert.ok(gotV?.videoMessage, JSON.stringify(gotV));
    assert.equal(gotV.videoMessage.caption, 'a clip');
    assert.equal(gotV.videoMessage.mimetype, 'video/mp4');
    assert.deepEqual(await dewi.downloadMedia(gotV), video);

    const gotA = (await dewi.waitForMessage((m) => m.id === a.body.id, 10_000)).message;
    assert.ok(gotA?.audioMessage, JSON.stringify(gotA));
    assert.equal(gotA.audioMessage.ptt, true, 'audio is a voice note by default');
    assert.equal(gotA.audioMessage.mimetype, 'audio/ogg; codecs=opus');
    assert.equal(gotA.audioMessage.seconds, 3);
    assert.deepEqual(await dewi.downloadMedia(gotA), voice);

    const gotS = (await dewi.waitForMessage((m) => m.id === s.body.id, 10_000)).message;
    assert.ok(gotS?.stickerMessage, JSON.stringify(gotS));
    assert.equal(gotS.stickerMessage.mimetype, 'image/webp');
    assert.deepEqual(await dewi.downloadMedia(gotS), sticker);

    // A voice note quoting the video, a video whose caption mentions the phone.
    const q = await send({ type: 'audio', media: { base64: voice.toString('base64') }, ptt: false, mimetype: 'audio/mpeg', quotedId: v.body.id });
    assert.equal(q.status, 201, q.raw.toString());
    const gotQ = (await dewi.waitForMessage((m) => m.id === q.body.id, 10_000)).message;
    assert.equal(gotQ?.audioMessage?.ptt, false);
    assert.equal(gotQ?.audioMessage?.mimetype, 'audio/mpeg');
    assert.equal(gotQ?.audioMessage?.contextInfo?.stanzaId, v.body.id);
    assert.equal((await get(q.body.id)).body.quotedId, v.body.id);
    const mv = await send({ type: 'video', media: { base64: video.toString('base64') }, caption: `for @${dewi.number}`, mentions: [dewi.jid], gifPlayback: true });
    assert.equal(mv.status, 201, mv.raw.toString());
    const gotMv = (await dewi.waitForMessage((m) => m.id === mv.body.id, 10_000)).message;
    assert.equal(gotMv?.videoMessage?.gifPlayback, true);
    assert.deepEqual(gotMv?.videoMessage?.contextInfo?.mentionedJid, [dewi.jid]);

    // Mentions and quotes on the other types (the API accepts them on every type but reactions).
    const md = await send({ type: 'document', media: { base64: sticker.toString('base64') }, fileName: 'memo.txt', mimetype: 'text/plain', caption: `cc @${dewi.number}`, mentions: [dewi.jid], quotedId: s.body.id });
    assert.equal(md.status, 201, md.raw.toString());
    const gotMd = (await dewi.waitForMessage((m) => m.id === md.body.id, 10_000)).message;
    assert.deepEqual(gotMd?.documentMessage?.contextInfo?.mentionedJid, [dewi.jid]);
    assert.equal(gotMd?.documentMessage?.contextInfo?.stanzaId, s.body.id);
    assert.deepEqual((await get(md.body.id)).body.mentions, [dewi.jid]);
    const ml = await send({ type: 'location', latitude: 1.5, longitude: 2.5, mentions: [dewi.jid] });
    assert.equal(ml.status, 201, ml.raw.toString());
    const gotMl = (await dewi.waitForMessage((m) => m.id === ml.body.id, 10_000)).message;
    assert.deepEqual(gotMl?.locationMessage?.contextInfo?.mentionedJid, [dewi.jid]);

    // Stored as sent with the media described.
    const sv = await get(v.body.id);
    assert.equal(sv.body.type, 'video');
    assert.ok(['sent', 'delivered'].includes(sv.body.status), sv.body.status);
    const sa = await get(a.body.id);
    assert.equal(sa.body.type, 'audio');
    assert.equal(sa.body.media?.ptt, true);
    // The media of a sent message is served too (downloaded back by the owning shard on the first GET).
    await mediaOf(v.body.id, video, 'video/mp4');
    await mediaOf(s.body.id, sticker, 'image/webp');
  });

  test('gateway -> phone: contact cards, text and poll with mentions, and a reaction to an earlier message', async () => {
    const c = await send({ type: 'contact', contacts: [{ name: 'Budi Santoso', phone: '+6281234567890', organization: 'Toko Budi' }] });
    assert.equal(c.status, 201, c.raw.toString());
    const gotC = (await dewi.waitForMessage((m) => m.id === c.body.id, 10_000)).message;
    assert.ok(gotC?.contactMessage, JSON.stringify(gotC));
    assert.equal(gotC.contactMessage.displayName, 'Budi Santoso');
    const vcard = gotC.contactMessage.vcard ?? '';
    assert.match(vcard, /^BEGIN:VCARD\nVERSION:3\.0\n/);
    assert.match(vcard, /\nFN:Budi Santoso\n/);
    assert.match(vcard, /\nORG:Toko Budi\n/);
    assert.match(vcard, /\nTEL;type=CELL;type=VOICE;waid=6281234567890:\+6281234567890\n/);

    const two = await send({ type: 'contact', contacts: [{ name: 'Ani', phone: '081234567891' }, { name: 'Eko; Jr.', phone: '+14155552671', email: 'eko@example.com' }] });
    assert.equal(two.status, 201, two.raw.toString());
    const gotTwo = (await dewi.waitForMessage((x) => x.id === two.body.id, 10_000)).message;
    assert.equal(gotTwo?.contactsArrayMessage?.displayName, '2 contacts');
    const cards = gotTwo?.contactsArrayMessage?.contacts ?? [];
    assert.deepEqual(
      cards.map((x) => x.displayName),
      ['Ani', 'Eko; Jr.'],
    );
    assert.match(cards[0]?.vcard ?? '', /waid=6281234567891:\+6281234567891\n/);
    assert.match(cards[1]?.vcard ?? '', /\nFN:Eko\\; Jr\.\n[\s\S]*\nEMAIL;type=INTERNET:eko@example\.com\n[\s\S]*waid=14155552671:\+14155552671\n/);
    assert.deepEqual(
      (await get(two.body.id)).body.contacts?.map((x) => [x.name, x.phone]),
      [
        ['Ani', '+6281234567891'],
        ['Eko; Jr.', '+14155552671'],
      ],
    );

    const m = await send({ type: 'text', text: `Hi @${dewi.number} and @${owner.number}`, mentions: [`0${dewi.number.slice(2)}`, owner.jid] });
    assert.equal(m.status, 201, m.raw.toString());
    const gotM = (await dewi.waitForMessage((x) => x.id === m.body.id, 10_000)).message;
    assert.equal(gotM?.extendedTextMessage?.text, `Hi @${dewi.number} and @${owner.number}`);
    assert.deepEqual(gotM?.extendedTextMessage?.contextInfo?.mentionedJid, [dewi.jid, owner.jid]);
    assert.deepEqual((await get(m.body.id)).body.mentions, [dewi.jid, owner.jid]);

    // A poll with mentions, quoting the text (Baileys alone would drop a poll's mentions).
    const poll = await send({ type: 'poll', name: `Lunch, @${dewi.number}?`, options: ['Rice', 'Noodles'], mentions: [dewi.jid], quotedId: m.body.id });
    assert.equal(poll.status, 201, poll.raw.toString());
    const gotP = (await dewi.waitForMessage((x) => x.id === poll.body.id, 10_000)).message;
    assert.equal(gotP?.pollCreationMessageV3?.name, `Lunch, @${dewi.number}?`);
    assert.deepEqual(gotP?.pollCreationMessageV3?.contextInfo?.mentionedJid, [dewi.jid]);
    assert.equal(gotP?.pollCreationMessageV3?.contextInfo?.stanzaId, m.body.id);
    assert.ok((gotP?.messageContextInfo?.messageSecret?.length ?? 0) > 0, 'the poll keeps its messageSecret');
    const storedPoll = (await get(poll.body.id)).body;
    assert.deepEqual(storedPoll.mentions, [dewi.jid]);
    assert.equal(storedPoll.quotedId, m.body.id);

    const r = await send({ type: 'reaction', messageId: c.body.id, emoji: '👍' });
    assert.equal(r.status, 201, r.raw.toString());
    const gotR = (await dewi.waitForMessage((x) => x.id === r.body.id, 10_000)).message;
    assert.equal(gotR?.reactionMessage?.text, '👍');
    assert.equal(gotR?.reactionMessage?.key?.id, c.body.id);
    assert.equal(gotR?.reactionMessage?.key?.remoteJid, dewi.jid);
    assert.equal(gotR?.reactionMessage?.key?.fromMe, true);
    // The reaction is stored as its own row, and on the target message.
    const sr = await get(r.body.id);
    assert.equal(sr.body.type, 'reaction');
    assert.deepEqual(sr.body.reaction, { messageId: c.body.id, emoji: '👍', removed: false });
    const target = await waitFor(
      async () => {
        const t = await get(c.body.id);
        return t.body.reactions !== undefined && t.body.reactions.length > 0 ? t.body : null;
      },
      { what: 'the reaction on its target', timeoutMs: 5000, intervalMs: 50 },
    );
    assert.deepEqual(
      target.reactions?.map((x) => [x.from, x.emoji]),
      [[owner.jid, '👍']],
    );
  });

  test('phone -> gateway: video, voice note, document and sticker stored, on SSE and webhook, media bytes served', async () => {
    const video = randomBytes(9_000);
    const voice = randomBytes(3_000);
    const doc = randomBytes(7_000);
    const sticker = randomBytes(1_500);
    const sv = await dewi.sendContent(owner.jid, { video, mimetype: 'video/mp4', caption: 'lihat ini' });
    const sa = await dewi.sendContent(owner.jid, { audio: voice, mimetype: 'audio/ogg; codecs=opus', ptt: true, seconds: 4 });
    const sd = await dewi.sendContent(owner.jid, { document: doc, mimetype: 'application/pdf', fileName: 'nota.pdf', caption: 'nota' });
    const ss = await dewi.sendContent(owner.jid, { sticker, mimetype: 'image/webp' });

    const v = await stored(sv.id);
    assert.equal(v.type, 'video');
    assert.equal(v.fromMe, false);
    assert.equal(v.status, 'received');
    assert.equal(v.chat, dewi.jid);
    assert.equal(v.caption, 'lihat ini');
    assert.equal(v.media?.kind, 'video');
    assert.equal(v.media?.mimetype, 'video/mp4');
    assert.equal(v.media?.size, video.length);

    const a = await stored(sa.id);
    assert.equal(a.type, 'audio');
    assert.equal(a.media?.ptt, true);
    assert.equal(a.media?.seconds, 4);
    assert.equal(a.media?.mimetype, 'audio/ogg; codecs=opus');

    const d = await stored(sd.id);
    assert.equal(d.type, 'document');
    assert.equal(d.caption, 'nota');
    assert.equal(d.media?.fileName, 'nota.pdf');
    assert.equal(d.media?.mimetype, 'application/pdf');

    const s = await stored(ss.id);
    assert.equal(s.type, 'sticker');
    assert.equal(s.media?.mimetype, 'image/webp');

    for (const [msg, type] of [
      [sv, 'video'],
      [sa, 'audio'],
      [sd, 'document'],
      [ss, 'sticker'],
    ] as const) {
      const { event } = await emitted(msg.id, type);
      assert.equal((event.data['media'] as StoredMedia | undefined)?.kind, type);
    }
    await mediaOf(sv.id, video, 'video/mp4');
    await mediaOf(sa.id, voice, 'audio/ogg; codecs=opus');
    await mediaOf(sd.id, doc, 'application/pdf');
    await mediaOf(ss.id, sticker, 'image/webp');
  });

  test('phone -> gateway: location, contact, poll and a reaction stored with their fields, on SSE and webhook', async () => {
    const target = await send({ type: 'text', text: 'react to me' });
    assert.equal(target.status, 201, target.raw.toString());
    await dewi.waitForMessage((m) => m.id === target.body.id, 10_000);

    const sl = await dewi.sendMessage(owner.jid, { locationMessage: { degreesLatitude: -6.175392, degreesLongitude: 106.827153, name: 'Monas', address: 'Gambir, Jakarta' } });
    const vcard = ['BEGIN:VCARD', 'VERSION:3.0', 'FN:Sari', 'TEL;type=CELL;waid=6281234567899:+62 812-3456-7899', 'END:VCARD'].join('\n');
    const sc = await dewi.sendContent(owner.jid, { contacts: { displayName: 'Sari', contacts: [{ displayName: 'Sari', vcard }] } });
    const sp = await dewi.sendContent(owner.jid, { poll: { name: 'Makan siang?', values: ['Nasi', 'Mie', 'Sate'], selectableCount: 1 } });
    const sp2 = await dewi.sendContent(owner.jid, { poll: { name: 'Warna?', values: ['Merah', 'Biru'], selectableCount: 0 } });
    const sr = await dewi.sendContent(owner.jid, { react: { text: '❤️', key: { remoteJid: owner.jid, id: target.body.id, fromMe: false } } });

    const l = await stored(sl.id);
    assert.equal(l.type, 'location');
    assert.deepEqual(l.location, { latitude: -6.175392, longitude: 106.827153, name: 'Monas', address: 'Gambir, Jakarta' });
    const c = await stored(sc.id);
    assert.equal(c.type, 'contact');
    assert.deepEqual(c.contacts, [{ name: 'Sari', vcard, phone: '+6281234567899' }]);
    const p = await stored(sp.id);
    assert.equal(p.type, 'poll');
    assert.deepEqual(p.poll, { name: 'Makan siang?', options: ['Nasi', 'Mie', 'Sate'], selectableCount: 1 });
    assert.ok(sp.message.pollCreationMessageV3 && sp2.message.pollCreationMessage, 'single-select polls are V3, multi-select V1');
    const p2 = await stored(sp2.id);
    assert.equal(p2.type, 'poll');
    assert.deepEqual(p2.poll, { name: 'Warna?', options: ['Merah', 'Biru'], selectableCount: 0 });
    const r = await stored(sr.id);
    assert.equal(r.type, 'reaction');
    assert.deepEqual(r.reaction, { messageId: target.body.id, emoji: '❤️', removed: false });

    for (const [msg, type] of [
      [sl, 'location'],
      [sc, 'contact'],
      [sp, 'poll'],
      [sp2, 'poll'],
      [sr, 'reaction'],
    ] as const) {
      const { hook } = await emitted(msg.id, type);
      assert.equal((hook.body['data'] as { chat?: string }).chat, dewi.jid);
    }
    assert.equal((await gw.api.get(`/api/v1/sessions/${SESSION}/messages/${sl.id}/media`)).status, 404);

    // The target message lists the reaction; removing it ('' emoji) takes it off again.
    const withReaction = await waitFor(
      async () => {
        const t = await get(target.body.id);
        return t.body.reactions !== undefined && t.body.reactions.length > 0 ? t.body : null;
      },
      { what: 'the reaction on its target', timeoutMs: 5000, intervalMs: 50 },
    );
    assert.deepEqual(
      withReaction.reactions?.map((x) => [x.from, x.emoji]),
      [[dewi.jid, '❤️']],
    );
    const removed = await dewi.sendContent(owner.jid, { react: { text: '', key: { remoteJid: owner.jid, id: target.body.id, fromMe: false } } });
    const rr = await stored(removed.id);
    assert.deepEqual(rr.reaction, { messageId: target.body.id, emoji: '', removed: true });
    await waitFor(async () => (await get(target.body.id)).body.reactions?.length === 0, { what: 'the reaction removed from its target', timeoutMs: 5000, intervalMs: 50 });
  });

  test('a message re-delivered with the same id is stored once and emitted once on SSE and the webhook', async () => {
    const bytes = randomBytes(2_000);
    const first = await dewi.sendContent(owner.jid, { image: bytes, mimetype: 'image/png', caption: 'sekali' });
    await stored(first.id);
    await emitted(first.id, 'image');
    await dewi.waitForStatus(first.id, 'delivered', 10_000);
    // The phone sends the same message id again (a retry after a lost ack), newly encrypted: the gateway's
    // socket decrypts it and receipts it (the resent copy's receipts start over), and it reaches the router.
    const again = await dewi.resend(first.id);
    assert.equal(again.id, first.id);
    await dewi.waitForStatus(first.id, 'delivered', 10_000);
    // A later message from the same chat proves the re-delivery was processed before it.
    const marker = await dewi.sendText(owner.jid, 'after the re-delivery');
    await stored(marker.id);
    await emitted(marker.id, 'text');
    await new Promise((r) => setTimeout(r, 500));
    const rows = await gw.stores.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = $1 AND id = $2`, [SESSION, first.id]);
    assert.equal(rows.rows[0]?.n, 1);
    assert.equal(sseOf(first.id).length, 1);
    assert.equal(hooksOf(first.id).length, 1);
    assert.equal((await get(first.id)).body.caption, 'sekali');
    await mediaOf(first.id, bytes, 'image/png');
  });
});
