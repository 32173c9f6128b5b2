import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMessageSchemas, isSingleEmojiOrEmpty, parseOrThrow, validationError, type SendMessageRequest } from '../src/api/messages.ts';
import { GatewayError } from '../src/errors.ts';

const s = createMessageSchemas({ defaultCountry: 'ID', mediaMaxBytes: 1024 });
const send = (body: unknown): SendMessageRequest => parseOrThrow(s.sendMessage, body, 'message');
const fails = (body: unknown): GatewayError => {
  try {
    send(body);
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(body).slice(0, 80)}`);
};
const paths = (err: GatewayError) => (err.details?.['issues'] as { path: string }[]).map((i) => i.path);

test('every message type parses, to is normalized to a JID, defaults are applied', () => {
  const bodies = [
    { to: '087733760363', type: 'text', text: 'hi', mentions: ['+6281234567890', '123456789012345@lid'], quotedId: '3EB0C431C26A1916E1A0' },
    { to: '87733760363', type: 'image', media: { url: 'https://example.com/a.jpg' }, caption: 'c', mimetype: 'image/jpeg' },
    { to: '6287733760363', type: 'video', media: { upload: 'u_123' }, gifPlayback: true },
    { to: '+6287733760363', type: 'audio', media: { base64: 'T2dnUw==' } },
    { to: '6287733760363@s.whatsapp.net', type: 'document', media: { url: 'http://example.com/a.pdf' }, fileName: 'a.pdf', mimetype: 'application/pdf' },
    { to: '6287733760363@c.us', type: 'sticker', media: { upload: 'abc' } },
    { to: '120363025246125486@g.us', type: 'location', latitude: -6.2, longitude: 106.8, name: 'Monas' },
    { to: '087733760363', type: 'contact', contacts: [{ name: 'Budi', phone: '0812-3456-7890' }] },
    { to: '087733760363', type: 'reaction', messageId: 'ABC123', emoji: '👍' },
    { to: '087733760363', type: 'reaction', messageId: 'ABC123', emoji: '' },
    { to: '087733760363', type: 'poll', name: 'Lunch?', options: ['Rice', 'Noodles', 'Soup'] },
  ];
  const out = bodies.map(send);
  for (const m of out) assert.ok(m.to.jid.endsWith('@s.whatsapp.net') || m.to.jid.endsWith('@g.us'));
  const [textMsg, , , audioMsg, , , , contactMsg, , , pollMsg] = out;
  assert.equal(textMsg?.to.jid, '6287733760363@s.whatsapp.net');
  assert.equal(textMsg?.to.phone, '+6287733760363');
  assert.deepEqual(textMsg?.type === 'text' && textMsg.mentions, ['6281234567890@s.whatsapp.net', '123456789012345@lid']);
  assert.equal(audioMsg?.type === 'audio' && audioMsg.ptt, true, 'audio is a voice note unless told otherwise');
  assert.equal(contactMsg?.type === 'contact' && contactMsg.contacts[0]?.phone.jid, '6281234567890@s.whatsapp.net');
  assert.equal(pollMsg?.type === 'poll' && pollMsg.selectableCount, 1);
});

test('malformed send requests each give a 4xx naming the field', () => {
  const cases: [body: unknown, path: string, code?: string][] = [
    [null, ''],
    ['text', ''],
    [{ to: '087733760363', type: 'fax', text: 'x' }, 'type'],
    [{ to: '087733760363', text: 'x' }, 'type'],
    [{ to: '', type: 'text', text: 'x' }, 'to', 'INVALID_PHONE'],
    [{ to: 'bob', type: 'text', text: 'x' }, 'to', 'INVALID_PHONE'],
    [{ to: 6287733760363, type: 'text', text: 'x' }, 'to'],
    [{ to: '1@gmail.com', type: 'text', text: 'x' }, 'to', 'INVALID_PHONE'],
    [{ type: 'text', text: 'x' }, 'to'],
    [{ to: '087733760363', type: 'text', text: '' }, 'text'],
    [{ to: '087733760363', type: 'text', text: 'x'.repeat(65_537) }, 'text'],
    [{ to: '087733760363', type: 'text', text: 42 }, 'text'],
    [{ to: '087733760363', type: 'text', text: 'x', captoin: 'typo' }, ''],
    [{ to: '087733760363', type: 'text', text: 'x', mentions: ['nobody'] }, 'mentions.0'],
    [{ to: '087733760363', type: 'text', text: 'x', quotedId: 'not an id!' }, 'quotedId'],
    [{ to: '087733760363', type: 'image' }, 'media'],
    [{ to: '087733760363', type: 'image', media: {} }, 'media'],
    [{ to: '087733760363', type: 'image', media: { url: 'https://a.example/x', base64: 'AAAA' } }, 'media'],
    [{ to: '087733760363', type: 'image', media: { url: 'ftp://example.com/a.jpg' } }, 'media'],
    [{ to: '087733760363', type: 'image', media: { base64: 'A'.repeat(2000) } }, 'media'],
    [{ to: '087733760363', type: 'image', media: { base64: 'data:image/png;base64,AAAA' } }, 'media'],
    [{ to: '087733760363', type: 'image', media: { upload: '../../etc/passwd' } }, 'media'],
    [{ to: '087733760363', type: 'document', media: { upload: 'x' }, fileName: '../a.pdf' }, 'fileName'],
    [{ to: '087733760363', type: 'image', media: { upload: 'x' }, mimetype: 'jpeg' }, 'mimetype'],
    [{ to: '087733760363', type: 'location', latitude: 91, longitude: 0 }, 'latitude'],
    [{ to: '087733760363', type: 'location', latitude: 0, longitude: -181 }, 'longitude'],
    [{ to: '087733760363', type: 'contact', contacts: [] }, 'contacts'],
    [{ to: '087733760363', type: 'contact', contacts: [{ name: 'A', phone: 'abc' }] }, 'contacts.0.phone'],
    [{ to: '087733760363', type: 'contact', contacts: [{ name: ' ', phone: '087733760363' }] }, 'contacts.0.name'],
    [{ to: '087733760363', type: 'reaction', messageId: 'ABC', emoji: 'ok' }, 'emoji'],
    [{ to: '087733760363', type: 'reaction', messageId: 'ABC', emoji: '👍👍' }, 'emoji'],
    [{ to: '087733760363', type: 'poll', name: 'q', options: ['a'] }, 'options'],
    [{ to: '087733760363', type: 'poll', name: 'q', options: ['a', 'a'] }, 'options'],
    [{ to: '087733760363', type: 'poll', name: 'q', options: Array.from({ length: 13 }, (_, i) => `o${i}`) }, 'options'],
    [{ to: '087733760363', type: 'poll', name: 'q', options: ['a', 'b'], selectableCount: 3 }, 'selectableCount'],
  ];
  for (const [body, path, code] of cases) {
    const err = fails(body);
    assert.equal(err.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(err.code, code ?? err.code);
    assert.ok(paths(err).some((p) => p === path || p.startsWith(`${path}.`)), `${JSON.stringify(body).slice(0, 80)}: paths ${JSON.stringify(paths(err))} lack ${path}`);
    assert.ok(err.message.length < 2000);
  }
});

test('messages are clear: unknown type lists the types, a bad phone lists the formats, typos name the field', () => {
  assert.match(fails({ to: '087733760363', type: 'fax' }).message, /type: type must be one of text, image, video, audio, document, sticker, location, contact, reaction, poll/);
  const phone = fails({ to: 'bob', type: 'text', text: 'x' });
  assert.equal(phone.code, 'INVALID_PHONE');
  assert.equal(phone.message, 'Invalid message: to: "bob" is not a recipient: it contains letters.');
  assert.ok(Array.isArray(phone.details?.['accepted']) && (phone.details['accepted'] as string[]).includes('+6287733760363 (international, with +)'));
  assert.match(fails({ to: '087733760363', type: 'text', text: 'x', captoin: 'typo' }).message, /unknown field\(s\): captoin/);
  // a bad phone beside another problem is a plain validation failure that still names both
  const both = fails({ to: 'bob', type: 'text', text: '' });
  assert.equal(both.code, 'VALIDATION_FAILED');
  assert.deepEqual(paths(both).sort(), ['text', 'to']);
});

test('history query, message params, edit, mark read, presence and contact-exists schemas', () => {
  assert.deepEqual(parseOrThrow(s.listMessagesQuery, {}), { limit: 50 });
  const q = parseOrThrow(s.listMessagesQuery, { chat: '087733760363', before: 'c_abc', limit: '20' });
  assert.equal(q.chat?.jid, '6287733760363@s.whatsapp.net');
  assert.equal(q.limit, 20);
  assert.throws(() => parseOrThrow(s.listMessagesQuery, { limit: '1000' }), { code: 'VALIDATION_FAILED' });
  assert.throws(() => parseOrThrow(s.listMessagesQuery, { limit: 'ten' }), { code: 'VALIDATION_FAILED' });
  assert.throws(() => parseOrThrow(s.messageParams, { msgId: 'a b' }), { code: 'VALIDATION_FAILED' });
  assert.deepEqual(parseOrThrow(s.markRead, {}), {});
  assert.deepEqual(parseOrThrow(s.editMessage, { text: 'new' }), { text: 'new' });
  assert.throws(() => parseOrThrow(s.editMessage, { text: '' }), /text: must not be empty/);
  assert.equal(parseOrThrow(s.presence, { to: '087733760363', state: 'composing' }).to?.jid, '6287733760363@s.whatsapp.net');
  assert.deepEqual(parseOrThrow(s.presence, { state: 'available' }), { state: 'available' });
  assert.throws(() => parseOrThrow(s.presence, { state: 'composing' }), /to: is required for state composing/);
  assert.throws(() => parseOrThrow(s.presence, { to: '087733760363', state: 'typing' }), /state must be one of composing, paused, recording, available, unavailable/);
  assert.equal(parseOrThrow(s.contactExistsParams, { phone: '087733760363' }).phone.jid, '6287733760363@s.whatsapp.net');
  assert.throws(() => parseOrThrow(s.contactExistsParams, { phone: '120363025246125486@g.us' }), { code: 'INVALID_PHONE' });
});

test('validationError turns any ZodError into VALIDATION_FAILED with path and message per issue', () => {
  const r = s.editMessage.safeParse({ text: 5, extra: true });
  assert.equal(r.success, false);
  const err = validationError(r.error!, 'edit');
  assert.equal(err.code, 'VALIDATION_FAILED');
  assert.equal(err.status, 400);
  assert.deepEqual(err.details?.['issues'], [
    { path: 'text', message: 'Invalid input: expected string, received number' },
    { path: '', message: 'unknown field(s): extra' },
  ]);
  assert.equal(err.message, 'Invalid edit: text: Invalid input: expected string, received number; unknown field(s): extra');
});

test('isSingleEmojiOrEmpty', () => {
  for (const ok of ['', '👍', '❤️', '🇮🇩', '1️⃣', '👨‍👩‍👧', '👍🏽']) assert.ok(isSingleEmojiOrEmpty(ok), ok);
  for (const bad of ['a', 'ok', '👍👍', ' ', '1', '👍 ']) assert.ok(!isSingleEmojiOrEmpty(bad), bad);
});

test('the parsed request is plain JSON (it crosses IPC unchanged)', () => {
  const m = send({ to: '087733760363', type: 'poll', name: 'q', options: ['a', 'b'], mentions: ['087733760363'] });
  assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
});
