// Issue #10 item 19: Baileys' Noise certificate check was a no-op (libsignal's verifySignature returns false for
// a wrong signature and Baileys ignored the result). The patch (patches/) verifies the chain for real and binds
// the leaf to the server's static key; here the simulator presents broken chains and the client must refuse
// each before it logs in, while the valid chain still connects.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NoiseCertFault, WaSimulator } from '../src/index.ts';
import { startSim, TestClient, waitFor } from './helpers.ts';

describe('Noise certificate chain (issue #10 item 19)', () => {
  let sim: WaSimulator;
  before(async () => {
    sim = await startSim();
  });
  after(async () => {
    await sim.close();
  });

  for (const fault of ['bad-leaf-signature', 'bad-intermediate-signature', 'foreign-leaf'] as NoiseCertFault[]) {
    it(`a chain with a ${fault} is refused before login`, async () => {
      sim.noiseCertFault = fault;
      const client = new TestClient(sim);
      try {
        client.connect();
        await client.waitClose(20_000);
        assert.equal(client.qr, undefined, 'the client went on to pairing with a server it could not authenticate');
        assert.notEqual(client.state.connection, 'open');
        assert.equal(sim.snapshot().liveByDevice[client.jid] ?? 0, 0);
      } finally {
        await client.end();
        sim.noiseCertFault = undefined;
      }
    });
  }

  it('the valid chain still connects (a QR is offered)', async () => {
    const client = new TestClient(sim);
    try {
      client.connect();
      await waitFor('first QR', () => client.qr);
    } finally {
      await client.end();
    }
  });
});
