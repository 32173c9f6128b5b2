// Load run, not part of `npm test`: `npm run test:heavy` (WA_SIM_HEAVY_SOCKETS=200 by default).
// Pairs N real Baileys sockets in this one process, keeps them all logged in, and sends one message each way
// on every one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SimPhone, WaSimulator } from '../src/index.ts';
import { pairWithQr, startSim, waitFor } from './helpers.ts';
import type { TestClient } from './helpers.ts';

const N = Number(process.env.WA_SIM_HEAVY_SOCKETS ?? 200);
const PAIR_CONCURRENCY = Number(process.env.WA_SIM_HEAVY_CONCURRENCY ?? 4);

describe(`heavy: ${N} Baileys sockets`, () => {
  let sim: WaSimulator;
  let customer: SimPhone;
  const clients: TestClient[] = [];
  const phones: SimPhone[] = [];
  before(async () => {
    sim = await startSim();
    customer = sim.createPhone({ name: 'Customer' });
    for (let i = 0; i < N; i++) phones.push(sim.createPhone({ name: `Business ${i}` }));
  });
  after(async () => {
    await Promise.all(clients.map(c => c.end()));
    await sim.close();
  });

  it('pairs and logs in every socket, and all stay live at once', { timeout: 30 * 60_000 }, async () => {
    const t0 = Date.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        const phone = phones[i];
        assert.ok(phone);
        clients[i] = await pairWithQr(sim, phone);
      }
    };
    await Promise.all(Array.from({ length: PAIR_CONCURRENCY }, worker));
    const pairedMs = Date.now() - t0;
    const s = sim.snapshot();
    assert.equal(s.socketsAuthenticated, N);
    assert.equal(s.linkedDevices, N);
    assert.equal(s.concurrentLoginViolations, 0);
    process.stdout.write(`# paired and logged in ${N} sockets in ${pairedMs} ms (${(pairedMs / N).toFixed(0)} ms each, concurrency ${PAIR_CONCURRENCY})\n`);
  });

  it('one message each way on every socket', { timeout: 10 * 60_000 }, async () => {
    const t0 = Date.now();
    const inbound = await Promise.all(phones.map(p => customer.sendText(p.number, `hi ${p.number}`)));
    await Promise.all(clients.map((c, i) => waitFor(`inbound on socket ${i}`, () => c.received(m => m.key.id === inbound[i]?.id), 120_000)));
    const inMs = Date.now() - t0;
    const t1 = Date.now();
    const replies = await Promise.all(clients.map(c => c.sock?.sendMessage(customer.jid, { text: `reply from ${c.jid}` })));
    await Promise.all(replies.map((r, i) => customer.waitForMessage(m => m.id === r?.key.id, 120_000).then(m => assert.equal(m.message?.conversation ?? m.message?.extendedTextMessage?.text, `reply from ${clients[i]?.jid ?? ''}`))));
    const outMs = Date.now() - t1;
    const s = sim.snapshot();
    assert.equal(s.socketsAuthenticated, N);
    assert.equal(s.concurrentLoginViolations, 0);
    process.stdout.write(`# ${N} phone->socket messages in ${inMs} ms, ${N} socket->phone messages in ${outMs} ms; sim stats: ${JSON.stringify({ relayed: s.messagesRelayed, receiptsForwarded: s.receiptsForwarded, peakSockets: s.peakSocketsOpen, cpuUserMs: Math.round(s.cpuUserMs) })}\n`);
  });
});
