import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addTransactionCapability, makeWASocket } from '@whiskeysockets/baileys';
import type { SimPhone, WaSimulator } from '../src/index.ts';
import { logger, pairWithQr, startSim, waitFor } from './helpers.ts';
import type { TestClient } from './helpers.ts';

describe('offline queue and faults', () => {
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

  const device = () => sim.devices().find(d => d.jid === gw.jid);

  it('messages for a disconnected device are delivered at its next login, marked offline', async () => {
    await gw.end();
    const sent = await customer.sendText(business.number, 'while you were away');
    await waitFor('queued', () => device()?.pending === 1 && device()?.live === 0);
    gw.connect();
    const got = await waitFor('offline upsert', () => gw.received(m => m.key.id === sent.id));
    assert.equal(got.message?.conversation, 'while you were away');
    await waitFor('acked and dropped', () => device()?.pending === 0);
    await customer.waitForStatus(sent.id, 'delivered');
  });

  it('a socket killed before it acked gets the message again', async () => {
    await gw.waitOpen();
    // the client stops reading (it "crashes" with the frame in flight): nothing is processed or acked
    const ws = (gw.sock?.ws as unknown as { socket: { removeAllListeners(e: string): void } }).socket;
    ws.removeAllListeners('message');
    const sent = await customer.sendText(business.number, 'did you get this?');
    await waitFor('delivered once, not acked', () => device()?.pending === 1);
    assert.equal(sim.kickDevice(gw.jid, 'terminate'), 1);
    assert.equal(await gw.waitClose(), 428);
    assert.equal(gw.received(m => m.key.id === sent.id), undefined);
    gw.connect();
    const got = await waitFor('redelivered upsert', () => gw.received(m => m.key.id === sent.id));
    assert.equal(got.message?.conversation, 'did you get this?');
    await waitFor('acked and dropped', () => device()?.pending === 0);
  });

  it('conflict replaced -> 440, restart -> 515, both reconnect', async () => {
    await gw.waitOpen();
    sim.kickDevice(gw.jid, 'replaced');
    assert.equal(await gw.waitClose(), 440);
    gw.connect();
    await gw.waitOpen();
    sim.kickDevice(gw.jid, 'restart');
    assert.equal(await gw.waitClose(), 515);
    gw.connect();
    await gw.waitOpen();
  });

  it('a second live socket for one device is counted as a violation and replaces the first', async () => {
    await gw.waitOpen();
    const before = sim.snapshot().concurrentLoginViolations;
    const cfg = sim.baileysConfig();
    let closed = false;
    let open = false;
    const second = makeWASocket({
      auth: { creds: gw.creds, keys: addTransactionCapability(gw.store, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 }) },
      waWebSocketUrl: cfg.waWebSocketUrl,
      logger,
      markOnlineOnConnect: false,
    });
    second.ev.on('connection.update', u => {
      if (u.connection === 'open') open = true;
      if (u.connection === 'close') closed = true;
    });
    try {
      assert.equal(await gw.waitClose(), 440);
      await waitFor('second open', () => open);
      const s = sim.snapshot();
      assert.equal(s.concurrentLoginViolations, before + 1);
      assert.equal(s.violationsByDevice[gw.jid], 1);
      assert.equal(s.maxLivePerDevice, 2);
      assert.equal(s.liveByDevice[gw.jid], 1);
    } finally {
      void second.end(undefined);
      await waitFor('second closed', () => closed);
    }
    gw.connect();
    await gw.waitOpen();
  });

  it('rate-limited sends are refused with an ack error; later sends go through', async () => {
    await gw.waitOpen();
    sim.injectFault({ kind: 'rate-limit', target: gw.jid, code: 429, count: 1 });
    const refused = await gw.sock?.sendMessage(customer.jid, { text: 'too fast' });
    const id = refused?.key.id ?? '';
    assert.equal(await waitFor('error status', () => gw.sendErrorOf(id)), '429');
    assert.equal(customer.received().some(m => m.id === id), false);
    const ok = await gw.sock?.sendMessage(customer.jid, { text: 'now fine' });
    await customer.waitForMessage(m => m.id === ok?.key.id);
    sim.injectFault({ kind: 'rate-limit', target: business.number, code: 463 });
    const restricted = await gw.sock?.sendMessage(customer.jid, { text: 'restricted' });
    assert.equal(await waitFor('463', () => gw.sendErrorOf(restricted?.key.id ?? '')), '463');
    sim.clearFault();
  });

  it('added latency delays frames to the device', async () => {
    await gw.waitOpen();
    const id = sim.injectFault({ kind: 'latency', target: gw.jid, ms: 400 });
    try {
      const t0 = Date.now();
      const sent = await customer.sendText(business.number, 'slow');
      await waitFor('slow upsert', () => gw.received(m => m.key.id === sent.id));
      assert.ok(Date.now() - t0 >= 400);
    } finally {
      sim.clearFault(id);
    }
  });

  it('unlinking the device -> 401 device_removed, and its creds are refused afterwards', async () => {
    await gw.waitOpen();
    sim.kickDevice(gw.jid, 'unlink');
    assert.equal(await gw.waitClose(), 401);
    gw.connect();
    assert.equal(await gw.waitClose(), 401);
    assert.equal(business.linkedDevices().length, 0);
  });
});
