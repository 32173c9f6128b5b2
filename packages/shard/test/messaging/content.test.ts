import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { generateWAMessage, generateWAMessageContent, proto } from '@whiskeysockets/baileys';
import type { AnyMessageContent, WAMediaUploadFunction, WAMessage } from '@whiskeysockets/baileys';
import { createMessageSchemas, mapLidResolver, parseOrThrow } from '@wagw/shared';
import type { SendMessageInput } from '@wagw/shared';
import { applyPollMentions, buildEditContent, buildRevokeContent, buildSendContent, buildVCard, normalizeInbound, type ContentDeps } from '../../src/messaging/content.ts';

const schemas = createMessageSchemas({ defaultCountry: 'ID' });
const ME = '6281111111111@s.whatsapp.net';
const PEER = '6287733760363@s.whatsapp.net';
const BYTES = Buffer.from('not really a jpeg, but bytes are bytes '.repeat(20));

/** No network: Baileys encrypts to a temp file and we pretend to upload it. */
const uploads: string[] = [];
const upload: WAMediaUploadFunction = (_path, { mediaType }) => {
  uploads.push(mediaType);
  return Promise.resolve({ mediaUrl: `https://mmg.example.net/${mediaType}/1`, directPath: `/v/t62/${mediaType}/1` });
};

const stored = new Map<string, WAMessage>();
const deps: ContentDeps = {
  resolveMedia: (source) => {
    if ('upload' in source && source.upload === 'stream') return Promise.resolve({ data: { stream: Readable.from([BYTES]) }, mimetype: 'video/mp4' });
    if ('upload' in source) return Promise.resolve({ data: BYTES, mimetype: 'application/pdf', fileName: 'report.pdf' });
    return Promise.resolve({ data: BYTES });
  },
  findMessage: ({ id }) => Promise.resolve(stored.get(id)),
};

const send = (body: Record<string, unknown>) => buildSendContent(parseOrThrow(schemas.sendMessage, { to: '087733760363', ...body } as SendMessageInput), deps);

async function toWire(content: AnyMessageContent, options: { quoted?: WAMessage; messageId?: string } = {}): Promise<WAMessage> {
  const msg = await generateWAMessage(PEER, content, { upload, userJid: ME, ...options });
  // what arrives at the other side: the same content, encoded and decoded
  return { ...msg, message: proto.Message.decode(proto.Message.encode(msg.message ?? {}).finish()) };
}

test('text with mentions and a quoted message: content, options, and back', async () => {
  const quoted = await toWire({ text: 'original' }, { messageId: 'QUOTED1' });
  stored.set('QUOTED1', quoted);
  const built = await send({ type: 'text', text: 'hi @6281234567890', mentions: ['081234567890'], quotedId: 'QUOTED1' });
  assert.deepEqual(built.content, { text: 'hi @6281234567890', mentions: ['6281234567890@s.whatsapp.net'] });
  assert.equal(built.options.quoted?.key.id, 'QUOTED1');
  const wire = await toWire(built.content, built.options);
  const n = await normalizeInbound(wire);
  assert.equal(n?.type, 'text');
  assert.equal(n?.text, 'hi @6281234567890');
  assert.equal(n?.quotedId, 'QUOTED1');
  assert.deepEqual(n?.mentions, ['6281234567890@s.whatsapp.net']);
  assert.equal(n?.chat, PEER);
  assert.equal(n?.chatPhone, '+6287733760363');
  assert.equal(n?.fromMe, true);
});

test('mentions reach the contextInfo of every type that accepts them (polls through applyPollMentions)', async () => {
  const media = { upload: 'u1' };
  const bodies: Record<string, unknown>[] = [
    { type: 'text', text: 'hi' },
    { type: 'image', media },
    { type: 'video', media },
    { type: 'audio', media },
    { type: 'document', media, caption: 'cc' },
    { type: 'sticker', media },
    { type: 'location', latitude: 1, longitude: 2 },
    { type: 'contact', contacts: [{ name: 'A', phone: '+14155552671' }] },
    { type: 'contact', contacts: [{ name: 'A', phone: '+14155552671' }, { name: 'B', phone: '087733760363' }] },
    { type: 'poll', name: 'q', options: ['a', 'b'] },
  ];
  for (const body of bodies) {
    const built = await send({ ...body, mentions: ['081234567890'] });
    const wire = await toWire(built.content, built.options);
    if (built.pollMentions !== undefined) assert.equal(applyPollMentions(wire.message ?? {}, built.pollMentions), true);
    const n = await normalizeInbound(wire);
    assert.equal(n?.type, body['type']);
    assert.deepEqual(n?.mentions, ['6281234567890@s.whatsapp.net'], `mentions of ${String(body['type'])}`);
  }
});

test('a quotedId or reaction target that is not stored is MESSAGE_NOT_FOUND', async () => {
  await assert.rejects(send({ type: 'text', text: 'x', quotedId: 'NOPE' }), { code: 'MESSAGE_NOT_FOUND', status: 404 });
  await assert.rejects(send({ type: 'reaction', messageId: 'NOPE', emoji: '👍' }), { code: 'MESSAGE_NOT_FOUND' });
});

test('every media type: built from resolved bytes, encrypted by Baileys, normalized back with size and sha256', async () => {
  const sha = createHash('sha256').update(BYTES).digest('hex');
  const cases: [Record<string, unknown>, string, Record<string, unknown>][] = [
    [{ type: 'image', media: { url: 'https://example.com/a.jpg' }, caption: 'a cat' }, 'image', { mimetype: 'image/jpeg' }],
    [{ type: 'video', media: { upload: 'stream' }, caption: 'clip', gifPlayback: true }, 'video', { mimetype: 'video/mp4', gifPlayback: true }],
    [{ type: 'audio', media: { base64: 'AAAA' }, seconds: 3 }, 'audio', { mimetype: 'audio/ogg; codecs=opus', ptt: true, seconds: 3 }],
    [{ type: 'audio', media: { base64: 'AAAA' }, ptt: false, mimetype: 'audio/mpeg', seconds: 4 }, 'audio', { mimetype: 'audio/mpeg', ptt: false }],
    [{ type: 'document', media: { upload: 'u1' } }, 'document', { mimetype: 'application/pdf', fileName: 'report.pdf' }],
    [{ type: 'document', media: { url: 'https://example.com/x' }, fileName: 'a.txt', mimetype: 'text/plain', caption: 'see' }, 'document', { mimetype: 'text/plain', fileName: 'a.txt' }],
    [{ type: 'sticker', media: { upload: 'u2' }, mimetype: 'image/webp' }, 'sticker', { mimetype: 'image/webp' }],
  ];
  for (const [body, kind, expected] of cases) {
    const built = await send(body);
    assert.ok(kind in built.content, `${kind} key in content`);
    const wire = await toWire(built.content);
    const n = await normalizeInbound(wire);
    assert.equal(n?.type, kind, JSON.stringify(body));
    assert.equal(n?.media?.kind, kind);
    assert.equal(n?.media?.size, BYTES.length);
    assert.equal(n?.media?.sha256, sha);
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(n?.media?.[k as keyof typeof n.media], v, `${kind}.${k}`);
    if (typeof body['caption'] === 'string') assert.equal(n?.caption, body['caption']);
  }
  assert.ok(uploads.length >= cases.length);
});

test('location, contact (vCard), reaction and poll: content and back', async () => {
  const loc = await send({ type: 'location', latitude: -6.175392, longitude: 106.827153, name: 'Monas', address: 'Jakarta' });
  const nLoc = await normalizeInbound(await toWire(loc.content));
  assert.deepEqual(nLoc?.location, { latitude: -6.175392, longitude: 106.827153, name: 'Monas', address: 'Jakarta' });

  const one = await send({ type: 'contact', contacts: [{ name: 'Budi; Santoso', phone: '0812-3456-7890', organization: 'ACME' }] });
  const nOne = await normalizeInbound(await toWire(one.content));
  assert.equal(nOne?.type, 'contact');
  assert.equal(nOne?.contacts?.[0]?.name, 'Budi; Santoso');
  assert.equal(nOne?.contacts?.[0]?.phone, '+6281234567890');
  assert.match(nOne?.contacts?.[0]?.vcard ?? '', /FN:Budi\\; Santoso\nN:;Budi\\; Santoso;;;\nORG:ACME\nTEL;type=CELL;type=VOICE;waid=6281234567890:\+6281234567890/);
  const two = await send({ type: 'contact', contacts: [{ name: 'A', phone: '+14155552671' }, { name: 'B', phone: '087733760363' }] });
  const nTwo = await normalizeInbound(await toWire(two.content));
  assert.deepEqual(nTwo?.contacts?.map((c) => [c.name, c.phone]), [['A', '+14155552671'], ['B', '+6287733760363']]);

  const target = await toWire({ text: 'react to me' }, { messageId: 'TARGET1' });
  stored.set('TARGET1', target);
  const react = await send({ type: 'reaction', messageId: 'TARGET1', emoji: '👍' });
  assert.deepEqual(react.content, { react: { text: '👍', key: target.key } });
  assert.deepEqual((await normalizeInbound(await toWire(react.content)))?.reaction, { messageId: 'TARGET1', emoji: '👍', removed: false });
  const unreact = await send({ type: 'reaction', messageId: 'TARGET1', emoji: '' });
  assert.deepEqual((await normalizeInbound(await toWire(unreact.content)))?.reaction, { messageId: 'TARGET1', emoji: '', removed: true });

  for (const selectableCount of [1, 0, 2]) {
    const poll = await send({ type: 'poll', name: 'Lunch?', options: ['Rice', 'Noodles', 'Soup'], selectableCount });
    const nPoll = await normalizeInbound(await toWire(poll.content));
    assert.deepEqual(nPoll?.poll, { name: 'Lunch?', options: ['Rice', 'Noodles', 'Soup'], selectableCount });
  }
});

test('edit and revoke: built from the stored key, normalized back as markers', async () => {
  const mine = await toWire({ text: 'typo' }, { messageId: 'MINE1' });
  stored.set('MINE1', mine);
  const theirs: WAMessage = { key: { remoteJid: PEER, id: 'THEIRS1', fromMe: false }, message: { conversation: 'hello' }, messageTimestamp: 1_700_000_000 };
  stored.set('THEIRS1', theirs);

  const edit = await buildEditContent('MINE1', 'fixed', deps);
  assert.equal(edit.jid, PEER);
  assert.deepEqual(edit.content, { text: 'fixed', edit: mine.key });
  assert.deepEqual((await normalizeInbound(await toWire(edit.content)))?.edit, { messageId: 'MINE1', text: 'fixed' });
  await assert.rejects(buildEditContent('THEIRS1', 'x', deps), { code: 'CONFLICT' });
  await assert.rejects(buildEditContent('NOPE', 'x', deps), { code: 'MESSAGE_NOT_FOUND' });

  const revoke = await buildRevokeContent('MINE1', deps);
  assert.deepEqual(revoke.content, { delete: mine.key });
  const nRevoke = await normalizeInbound(await toWire(revoke.content));
  assert.equal(nRevoke?.type, 'revoke');
  assert.deepEqual(nRevoke?.revoke, { messageId: 'MINE1' });
});

test('inbound from a LID: the phone number is reported when key.remoteJidAlt or the resolver knows it', async () => {
  const base = { message: { conversation: 'hi' }, messageTimestamp: 1_700_000_000, pushName: 'Budi' };
  const viaAlt = await normalizeInbound({ ...base, key: { remoteJid: '123456789012345@lid', remoteJidAlt: '6287733760363@s.whatsapp.net', id: 'A1', fromMe: false } });
  assert.deepEqual([viaAlt?.chat, viaAlt?.chatPhone, viaAlt?.chatLid, viaAlt?.from], [PEER, '+6287733760363', '123456789012345@lid', PEER]);
  assert.equal(viaAlt?.timestamp, '2023-11-14T22:13:20.000Z');
  assert.equal(viaAlt?.pushName, 'Budi');

  const resolver = mapLidResolver([['123456789012345@lid', '6287733760363:0@s.whatsapp.net']]);
  const viaResolver = await normalizeInbound({ ...base, key: { remoteJid: '123456789012345@lid', id: 'A2', fromMe: false } }, resolver);
  assert.deepEqual([viaResolver?.chat, viaResolver?.chatPhone], [PEER, '+6287733760363']);

  const unknown = await normalizeInbound({ ...base, key: { remoteJid: '999999999999999@lid', id: 'A3', fromMe: false } }, resolver);
  assert.deepEqual([unknown?.chat, unknown?.chatPhone, unknown?.chatLid], ['999999999999999@lid', undefined, '999999999999999@lid']);

  const group = await normalizeInbound(
    { ...base, key: { remoteJid: '120363025246125486@g.us', participant: '123456789012345:3@lid', participantAlt: '6287733760363@s.whatsapp.net', id: 'G1', fromMe: false } },
    resolver,
  );
  assert.deepEqual([group?.chat, group?.chatPhone, group?.from, group?.fromPhone, group?.fromLid], ['120363025246125486@g.us', undefined, PEER, '+6287733760363', '123456789012345@lid']);
});

test('wrapped content (ephemeral, view once) is unwrapped; stubs and key distribution are not messages', async () => {
  const image = await generateWAMessageContent({ image: BYTES, caption: 'once' }, { upload });
  const key = { remoteJid: PEER, id: 'W1', fromMe: false };
  const viewOnce = await normalizeInbound({ key, message: { viewOnceMessage: { message: image } }, messageTimestamp: 1 });
  assert.deepEqual([viewOnce?.type, viewOnce?.caption, viewOnce?.viewOnce], ['image', 'once', true]);
  const ephemeral = await normalizeInbound({ key, message: { ephemeralMessage: { message: { extendedTextMessage: { text: 'vanishing' } } } }, messageTimestamp: 1 });
  assert.deepEqual([ephemeral?.type, ephemeral?.text], ['text', 'vanishing']);
  assert.equal(await normalizeInbound({ key, messageStubType: 20, messageTimestamp: 1 }), undefined);
  assert.equal(await normalizeInbound({ key, message: { senderKeyDistributionMessage: { groupId: 'x' } }, messageTimestamp: 1 }), undefined);
  const other = await normalizeInbound({ key, message: { groupInviteMessage: { groupJid: '120363025246125486@g.us' } }, messageTimestamp: 1 });
  assert.deepEqual([other?.type, other?.contentType], ['unsupported', 'groupInviteMessage']);
});

test('buildVCard escapes and links the WhatsApp id', () => {
  assert.equal(
    buildVCard({ name: 'A,B', phone: { jid: '14155552671@s.whatsapp.net', phone: '+14155552671' }, email: 'a@b.co' }),
    'BEGIN:VCARD\nVERSION:3.0\nFN:A\\,B\nN:;A\\,B;;;\nEMAIL;type=INTERNET:a@b.co\nTEL;type=CELL;type=VOICE;waid=14155552671:+14155552671\nEND:VCARD',
  );
});

test('the idempotent message id is passed to Baileys', async () => {
  const built = await buildSendContent(parseOrThrow(schemas.sendMessage, { to: '087733760363', type: 'text', text: 'x' }), deps, { messageId: '3EB0ABCDEF0123456789AB' });
  assert.equal(built.options.messageId, '3EB0ABCDEF0123456789AB');
  assert.equal((await toWire(built.content, built.options)).key.id, '3EB0ABCDEF0123456789AB');
});
