import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveJid } from '@wagw/shared';
import { createLidResolver } from '../../src/messaging/lid.ts';

test('createLidResolver strips the device and the hosted domain Baileys returns, and asks with the bare LID', async () => {
  const asked: string[] = [];
  const table: Record<string, string> = { '123456789012345@lid': '6287733760363:0@s.whatsapp.net', '222222222222222@lid': '14155552671:3@hosted' };
  const resolver = createLidResolver({
    getPNForLID: (lid) => {
      asked.push(lid);
      return Promise.resolve(table[lid] ?? null);
    },
  });
  assert.equal(await resolver.toPhoneJid('123456789012345:7@lid'), '6287733760363@s.whatsapp.net');
  assert.equal(await resolver.toPhoneJid('222222222222222@lid'), '14155552671@s.whatsapp.net');
  assert.equal(await resolver.toPhoneJid('333333333333333@lid'), undefined);
  assert.equal(await resolver.toPhoneJid('6287733760363@s.whatsapp.net'), undefined);
  assert.deepEqual(asked, ['123456789012345@lid', '222222222222222@lid', '333333333333333@lid']);
  assert.deepEqual(await resolveJid('123456789012345@lid', resolver), { jid: '6287733760363@s.whatsapp.net', phone: '+6287733760363', lid: '123456789012345@lid' });
});

test('a failing lookup is reported and treated as unknown', async () => {
  const errors: string[] = [];
  const resolver = createLidResolver({ getPNForLID: () => Promise.reject(new Error('keys store down')) }, (_e, lid) => errors.push(lid));
  assert.equal(await resolver.toPhoneJid('123456789012345@lid'), undefined);
  assert.deepEqual(errors, ['123456789012345@lid']);
});
