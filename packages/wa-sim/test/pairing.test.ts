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
