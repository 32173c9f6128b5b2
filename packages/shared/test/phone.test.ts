import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import { acceptedFormats, bareJid, jidToPhone, mapLidResolver, normalizeRecipient, resolveJid } from '../src/phone.ts';

const ID = { defaultCountry: 'ID' };

// The phone-formats table of issue #5 / the brief, plus the separators people type.
const ACCEPTED: readonly [input: string, jid: string, kind: string, phone?: string][] = [
  ['+6287733760363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['6287733760363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['087733760363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['87733760363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['  +62 877-3376-0363 ', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['(0877) 3376.0363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['0062877 3376 0363', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['+1 (415) 555-2671', '14155552671@s.whatsapp.net', 'user', '+14155552671'],
  ['14155552671', '14155552671@s.whatsapp.net', 'user', '+14155552671'],
  ['+447911123456', '447911123456@s.whatsapp.net', 'user', '+447911123456'],
  ['+49 1512 3456789', '4915123456789@s.whatsapp.net', 'user', '+4915123456789'],
  ['(021) 5551234', '62215551234@s.whatsapp.net', 'user', '+62215551234'],
  ['6287733760363@s.whatsapp.net', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['6287733760363:12@s.whatsapp.net', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['6287733760363@c.us', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['6287733760363@S.WhatsApp.Net', '6287733760363@s.whatsapp.net', 'user', '+6287733760363'],
  ['120363025246125486@g.us', '120363025246125486@g.us', 'group'],
  ['6287733760363-1612345678@g.us', '6287733760363-1612345678@g.us', 'group'],
  ['123456789012345@lid', '123456789012345@lid', 'lid'],
  ['123456789012345:7@lid', '123456789012345@lid', 'lid'],
];

test('the phone-formats table: every accepted form gives the expected JID', () => {
  for (const [input, jid, kind, phone] of ACCEPTED) {
    const r = normalizeRecipient(input, ID);
    assert.equal(r.jid, jid, input);
    assert.equal(r.kind, kind, input);
    assert.equal(r.phone, phone, input);
  }
});

test('another default country reads national numbers in that country', () => {
  assert.equal(normalizeRecipient('(415) 555-2671', { defaultCountry: 'US' }).jid, '14155552671@s.whatsapp.net');
  assert.equal(normalizeRecipient('07911 123456', { defaultCountry: 'GB' }).jid, '447911123456@s.whatsapp.net');
  // the same national digits mean something else with ID as default
  assert.throws(() => normalizeRecipient('07911 123456', ID), { code: 'INVALID_PHONE' });
});

const MALFORMED: readonly unknown[] = [
  '',
  '   ',
  '+',
  'abc',
  '0812-CALL-NOW',
  '1-800-FLOWERS',
  '12345',
  '+62 123',
  '628773376036312345678',
  '+99912345678',
  '++6287733760363',
  '62877#33760363',
  '6287733760363 ext 12',
  '6287733760363@gmail.com',
  '6287733760363@whatsapp.net',
  '@s.whatsapp.net',
  'abc@s.whatsapp.net',
  '123@s.whatsapp.net',
  '6287733760363@newsletter',
  '12345678901234567890123@s.whatsapp.net',
  'foo@g.us',
  'status@broadcast',
  '6287733760363@s.whatsapp.net@g.us',
  'x'.repeat(10_000),
  6287733760363,
  null,
  undefined,
  ['6287733760363'],
  { phone: '6287733760363' },
];

test('malformed inputs are each rejected with INVALID_PHONE: one short sentence, the accepted formats in details', () => {
  for (const input of MALFORMED) {
    assert.throws(
      () => normalizeRecipient(input, ID),
      (err: unknown) => {
        assert.ok(err instanceof GatewayError, String(input));
        assert.equal(err.code, 'INVALID_PHONE');
        assert.equal(err.status, 400);
        assert.doesNotMatch(err.message, /Accepted formats|\+6287733760363 \(international/, 'the list is not repeated in the message');
        assert.match(err.message, /is not a recipient: [^;]+\.$/);
        assert.deepEqual(err.details?.['accepted'], acceptedFormats());
        assert.ok(err.message.length < 160, `one short sentence even for huge input: ${err.message}`);
        return true;
      },
      JSON.stringify(input)?.slice(0, 40),
    );
  }
});

test('the reason names what is wrong', () => {
  const reason = (input: unknown) => {
    try {
      normalizeRecipient(input, ID);
    } catch (err) {
      return (err as GatewayError).details?.['reason'];
    }
    return undefined;
  };
  assert.match(String(reason('0812abc')), /letters/);
  assert.match(String(reason('123')), /too short/);
  assert.match(String(reason('1234567890123456789')), /too long/);
  assert.match(String(reason('1@gmail.com')), /@gmail\.com is not an accepted JID domain/);
  assert.match(String(reason(62877)), /must be a string/);
});

test('allow restricts the kinds and the listed formats', () => {
  const onlyUsers = { defaultCountry: 'ID', allow: ['user'] as const };
  assert.throws(() => normalizeRecipient('120363025246125486@g.us', onlyUsers), /a group JID is not accepted here/);
  assert.equal(normalizeRecipient('087733760363', onlyUsers).kind, 'user');
  const noPhones = { defaultCountry: 'ID', allow: ['group'] as const };
  assert.throws(() => normalizeRecipient('087733760363', noPhones), /a phone number is not accepted here/);
  const withBroadcast = { defaultCountry: 'ID', allow: ['user', 'broadcast'] as const };
  assert.deepEqual(normalizeRecipient('status@broadcast', withBroadcast), { jid: 'status@broadcast', kind: 'broadcast' });
});

test('jidToPhone and bareJid', () => {
  assert.equal(jidToPhone('6287733760363@s.whatsapp.net'), '+6287733760363');
  assert.equal(jidToPhone('6287733760363:3@s.whatsapp.net'), '+6287733760363');
  assert.equal(jidToPhone('6287733760363@c.us'), '+6287733760363');
  assert.equal(jidToPhone('123456789012345@lid'), undefined);
  assert.equal(jidToPhone('120363025246125486@g.us'), undefined);
  assert.equal(bareJid('6287733760363:3@s.whatsapp.net'), '6287733760363@s.whatsapp.net');
  assert.equal(bareJid('123456789012345:3@lid'), '123456789012345@lid');
  assert.equal(bareJid('120363025246125486@g.us'), '120363025246125486@g.us');
});

test('resolveJid reports the phone behind a LID when the mapping is known, and keeps the LID', async () => {
  const resolver = mapLidResolver([['123456789012345@lid', '6287733760363:0@s.whatsapp.net']]);
  assert.deepEqual(await resolveJid('123456789012345:4@lid', resolver), {
    jid: '6287733760363@s.whatsapp.net',
    phone: '+6287733760363',
    lid: '123456789012345@lid',
  });
  assert.deepEqual(await resolveJid('999999999999999@lid', resolver), { jid: '999999999999999@lid', lid: '999999999999999@lid' });
  assert.deepEqual(await resolveJid('999999999999999@lid', undefined), { jid: '999999999999999@lid', lid: '999999999999999@lid' });
  assert.deepEqual(await resolveJid('6287733760363:2@s.whatsapp.net', resolver), { jid: '6287733760363@s.whatsapp.net', phone: '+6287733760363' });
  assert.deepEqual(await resolveJid('120363025246125486@g.us', resolver), { jid: '120363025246125486@g.us' });
});
