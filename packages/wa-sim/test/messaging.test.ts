import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { proto } from '@whiskeysockets/baileys';
import type { SimPhone, WaSimulator } from '../src/index.ts';
import { pairWithQr, startSim, waitFor } from './helpers.ts';
import type { TestClient } from './helpers.ts';

describe('messaging', () => {
  let sim: WaSimulator;
  let business: SimPhone;
  let customer: SimPhone;
  let gw: TestClient;
  before(async () => {
    sim = await startSim();
    business = sim.createPhone({ name: 'Business' });
    customer = sim.createPhone({ name: 'Customer' });
    gw = await pairWithQr(sim, business);
  });
  after(async () => {
    await gw.end();
    await sim.close();
  });

  it('phone -> companion text arrives decrypted, and the companion sees who sent it', async () => {
    const sent = await customer.sendText(business.number, 'hello gateway');
    const got = await waitFor('upsert', () => gw.received(m => m.key.id === sent.id));
    assert.equal(got.message?.conversation, 'hello gateway');
    assert.equal(got.key.remoteJid, customer.jid);
    assert.equal(got.pushName, 'Customer');
    // the business phone got the same message (it is a device of the recipient account)
    await business.waitForMessage(m => m.id === sent.id);
    // delivered receipt from the companion reaches the sending phone
    await customer.waitForStatus(sent.id, 'delivered');
  });

  it('resend: the same message id again, newly encrypted; the companion decrypts both copies', async () => {
    const sent = await customer.sendText(business.number, 'once more');
    const first = await waitFor('first upsert', () => gw.received(m => m.key.id === sent.id));
    assert.equal(first.message?.conversation, 'once more');
    await customer.waitForStatus(sent.id, 'delivered');
    const again = await customer.resend(sent.id);
    assert.equal(again.id, sent.id);
    assert.equal(again.status, 'sent', 'receipts start over');
    const copies = await waitFor('second upsert', () => {
      const all = gw.upserts.filter(m => m.key.id === sent.id);
      return all.length >= 2 ? all : undefined;
    });
    for (const c of copies) assert.equal(c.message?.conversation, 'once more');
    await customer.waitForStatus(sent.id, 'delivered');
    assert.throws(() => customer.resend('NOPE'), /no sent message NOPE/);
  });

  it('companion -> phone text, server ack, delivered and read receipts', async () => {
    const sock = gw.sock;
    assert.ok(sock);
    const msg = await sock.sendMessage(customer.jid, { text: 'hello customer' });
    const id = msg?.key.id;
    assert.ok(id);
    const got = await customer.waitForMessage(m => m.id === id);
    assert.equal(got.message?.conversation ?? got.message?.extendedTextMessage?.text, 'hello customer');
    assert.equal(got.chat, business.jid);
    // a copy (deviceSentMessage) went to the business phone
    const copy = await business.waitForMessage(m => m.id === id);
    assert.equal(copy.fromMe, true);
    assert.equal(copy.chat, customer.jid);
    await waitFor('delivered status', () => (gw.statusOf(id) ?? 0) >= proto.WebMessageInfo.Status.DELIVERY_ACK);
    customer.markRead(id);
    await waitFor('read status', () => (gw.statusOf(id) ?? 0) >= proto.WebMessageInfo.Status.READ);
  });

  it('companion -> another account\'s companion', async () => {
    const gw2 = await pairWithQr(sim, customer);
    try {
      const sock = gw.sock;
      assert.ok(sock);
      const msg = await sock.sendMessage(customer.jid, { text: 'companion to companion' });
      const got = await waitFor('upsert on the other companion', () => gw2.received(m => m.key.id === msg?.key.id));
      assert.equal(got.message?.conversation ?? got.message?.extendedTextMessage?.text, 'companion to companion');
      const reply = await gw2.sock?.sendMessage(business.jid, { text: 'and back' });
      await waitFor('reply', () => gw.received(m => m.key.id === reply?.key.id));
    } finally {
      await gw2.end();
    }
  });

  it('a companion that lost its Signal session sends retry receipts; the phone encrypts again and the message arrives', async () => {
    const warm = await customer.sendText(business.number, 'before the loss');
    await waitFor('warm-up upsert', () => gw.received(m => m.key.id === warm.id));
    // What a gateway shard killed after its ratchet advanced looks like from the wire: no usable session.
    for (const key of [...gw.store.data.keys()]) if (key.startsWith('session:')) gw.store.data.delete(key);
    const retriesBefore = sim.stats.retriesToPhones;
    const sent = await customer.sendText(business.number, 'after the loss');
    // the failed decryption is upserted first as a CIPHERTEXT stub without content; the re-sent copy follows
    const got = await waitFor('upsert after retry receipts', () => gw.received(m => m.key.id === sent.id && m.message?.conversation !== undefined));
    assert.equal(got.message?.conversation, 'after the loss');
    // count 1 (no keys: the phone re-encrypts on its session) still fails; count 2 carries keys for a new one
    assert.ok(sim.stats.retriesToPhones - retriesBefore >= 1, `retries answered: ${sim.stats.retriesToPhones - retriesBefore}`);
    await customer.waitForStatus(sent.id, 'delivered');
  });

  it('is-on-WhatsApp contact queries', async () => {
    const res = await gw.sock?.onWhatsApp(customer.number, '19999999999');
    assert.deepEqual(res, [{ jid: customer.jid, exists: true }]);
  });
});
