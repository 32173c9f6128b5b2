import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WaSimulator } from '../src/index.ts';
import { pairWithQr, startSim, TestClient, waitFor } from './helpers.ts';

describe('pairing', () => {
  let sim: WaSimulator;
  before(async () => {
    sim = await startSim();
  });
  after(async () => {
    await sim.close();
  });

  it('QR pairing, 515 restart and re-login with saved creds', async () => {
    const phone = sim.createPhone({ name: 'Alice' });
    const client = await pairWithQr(sim, phone);
    try {
      assert.match(client.jid, new RegExp(`^${phone.number}:\\d+@s\\.whatsapp\\.net$`));
      assert.equal(client.creds.me?.lid?.endsWith('@lid'), true);
      assert.equal(sim.snapshot().liveByDevice[client.jid], 1);
      // the history-sync bootstrap is acknowledged, the account sync counter moves
      await waitFor('account sync', () => (client.creds.accountSyncCounter ?? 0) > 0);
    } finally {
      await client.end();
    }
  });
});

describe('pairing code', () => {
  let sim: WaSimulator;
  before(async () => {
    sim = await startSim();
  });
  after(async () => {
    await sim.close();
  });

  it('links with the 8-character code, then 515 and login', async () => {
    const phone = sim.createPhone({ name: 'Carol' });
    const client = new TestClient(sim);
    client.connect();
    try {
      await waitFor('first qr (socket ready)', () => client.qr);
      const code = await client.sock?.requestPairingCode(phone.number);
      assert.ok(code && code.length === 8);
      const linked = await sim.enterPairingCode(phone, code);
      assert.equal(await client.waitClose(), 515);
      client.connect();
      await client.waitOpen();
      assert.equal(client.jid, linked.jid);
    } finally {
      await client.end();
    }
  });

  it('a wrong code is refused', async () => {
    const phone = sim.createPhone({ name: 'Dave' });
    const client = new TestClient(sim);
    client.connect();
    try {
      await waitFor('first qr (socket ready)', () => client.qr);
      const code = await client.sock?.requestPairingCode(phone.number);
      assert.ok(code);
      const wrong = code.startsWith('A') ? `B${code.slice(1)}` : `A${code.slice(1)}`;
      await assert.rejects(sim.enterPairingCode(phone, wrong), /pairing code mismatch|did not decrypt|identities/);
      assert.equal(phone.linkedDevices().length, 0);
    } finally {
      await client.end();
    }
  });

  it('unknown or stale credentials get 401', async () => {
    const client = new TestClient(sim);
    client.creds.me = { id: '15559990000:7@s.whatsapp.net', name: 'ghost' };
    client.connect();
    try {
      assert.equal(await client.waitClose(), 401);
    } finally {
      await client.end();
    }
  });
});
