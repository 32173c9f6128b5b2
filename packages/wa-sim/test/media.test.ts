import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { downloadMediaMessage } from '@whiskeysockets/baileys';
import type { WAMessage } from '@whiskeysockets/baileys';
import type { SimPhone, WaSimulator } from '../src/index.ts';
import { logger, pairWithQr, startSim, waitFor } from './helpers.ts';
import type { TestClient } from './helpers.ts';

// a 1x1 PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

describe('media', () => {
  let sim: WaSimulator;
  let business: SimPhone;
  let customer: SimPhone;
  let gw: TestClient;
  before(async () => {
    sim = await startSim();
    sim.trustMediaCertificate();
    business = sim.createPhone({ name: 'Business' });
    customer = sim.createPhone({ name: 'Customer' });
    gw = await pairWithQr(sim, business);
  });
  after(async () => {
    await gw.end();
    await sim.close();
  });

  const download = async (m: WAMessage): Promise<Buffer> => downloadMediaMessage(m, 'buffer', {}) as Promise<Buffer>;

  it('companion uploads an image and a document; the phone decrypts the same bytes', async () => {
    const sock = gw.sock;
    assert.ok(sock);
    const img = await sock.sendMessage(customer.jid, { image: PNG, caption: 'a pixel' });
    const got = await customer.waitForMessage(m => m.id === img?.key.id);
    assert.equal(got.message?.imageMessage?.caption, 'a pixel');
    assert.ok(got.message?.imageMessage?.url?.startsWith(sim.urls.media));
    assert.deepEqual(await customer.downloadMedia(got.message ?? {}), PNG);

    const doc = randomBytes(50_000);
    const d = await sock.sendMessage(customer.jid, { document: doc, mimetype: 'application/pdf', fileName: 'report.pdf' });
    const gotDoc = await customer.waitForMessage(m => m.id === d?.key.id);
    assert.equal(gotDoc.message?.documentMessage?.fileName, 'report.pdf');
    assert.deepEqual(await customer.downloadMedia(gotDoc.message ?? {}), doc);
  });

  it('phone sends an image and a document; the companion downloads them with downloadMediaMessage', async () => {
    const sentImg = await customer.sendContent(business.number, { image: PNG, caption: 'from phone' });
    const img = await waitFor('image upsert', () => gw.received(m => m.key.id === sentImg.id));
    assert.equal(img.message?.imageMessage?.caption, 'from phone');
    assert.deepEqual(await download(img), PNG);

    const bytes = randomBytes(123_457);
    const sentDoc = await customer.sendContent(business.number, { document: bytes, mimetype: 'application/octet-stream', fileName: 'blob.bin' });
    const doc = await waitFor('document upsert', () => gw.received(m => m.key.id === sentDoc.id));
    assert.deepEqual(await download(doc), bytes);
  });

  it('location, contact, reaction, poll, edit and revoke arrive as real proto messages', async () => {
    const sock = gw.sock;
    assert.ok(sock);
    const loc = await sock.sendMessage(customer.jid, { location: { degreesLatitude: 52.5, degreesLongitude: 13.4 } });
    const vcard = 'BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL;type=CELL;waid=15551234567:+1 555 123 4567\nEND:VCARD';
    const contact = await sock.sendMessage(customer.jid, { contacts: { displayName: 'Bob', contacts: [{ vcard }] } });
    const poll = await sock.sendMessage(customer.jid, { poll: { name: 'Lunch?', values: ['yes', 'no'], selectableCount: 1 } });
    const text = await sock.sendMessage(customer.jid, { text: 'typo' });
    assert.ok(loc && contact && poll && text);
    const textId = text.key.id;
    await customer.waitForMessage(m => m.id === textId);
    const edit = await sock.sendMessage(customer.jid, { text: 'fixed', edit: { ...text.key } });
    const reaction = await sock.sendMessage(customer.jid, { react: { text: '👍', key: { ...text.key } } });
    const revoke = await sock.sendMessage(customer.jid, { delete: { ...text.key } });
    const byId = (id: string | null | undefined) => customer.waitForMessage(m => m.id === id);
    assert.equal((await byId(loc.key.id)).message?.locationMessage?.degreesLatitude, 52.5);
    assert.match((await byId(contact.key.id)).message?.contactMessage?.vcard ?? '', /FN:Bob/);
    const p = (await byId(poll.key.id)).message;
    assert.equal((p?.pollCreationMessage ?? p?.pollCreationMessageV3 ?? p?.pollCreationMessageV2)?.name, 'Lunch?');
    const edited = (await byId(edit?.key.id)).message?.protocolMessage?.editedMessage;
    assert.equal(edited?.conversation ?? edited?.extendedTextMessage?.text, 'fixed');
    assert.equal((await byId(reaction?.key.id)).message?.reactionMessage?.text, '👍');
    // (Baileys rewrites the id of the key object passed to { delete }, so compare with the saved id)
    assert.equal((await byId(revoke?.key.id)).message?.protocolMessage?.key?.id, textId);

    // and the other way: a phone reaction and a sticker-less location reach the companion
    const r = await customer.sendMessage(business.number, { reactionMessage: { key: { id: textId, remoteJid: business.jid, fromMe: false }, text: '❤️' } });
    await waitFor('reaction upsert', () => gw.received(m => m.key.id === r.id && m.message?.reactionMessage?.text === '❤️'));
    void logger;
  });
});
