import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startSim } from './helpers.ts';

describe('presence fan-out', () => {
  it("an account's presence reaches the phones subscribed to it, not every phone of the simulator", async (t) => {
    const sim = await startSim();
    t.after(() => sim.close());
    const ana = sim.createPhone({ name: 'Ana' });
    const budi = sim.createPhone({ name: 'Budi' });
    const others = Array.from({ length: 20 }, (_, i) => sim.createPhone({ name: `other ${i}` }));
    const anaAccount = sim.registry.resolve(ana.jid)?.account;
    assert.ok(anaAccount, "ana's account");
    sim.subscribePresence(budi, ana.jid);

    sim.setPresence(anaAccount, 'available');
    sim.setPresence(anaAccount, 'unavailable');

    assert.deepEqual(budi.presences().map((p) => `${p.from}:${p.type}`), [`${ana.jid}:available`, `${ana.jid}:unavailable`]);
    // Before: every phone recorded every account's presence, N x N records over N logins (the simulator of
    // bench/scale ran out of heap at 2,500 sessions).
    for (const p of [ana, ...others]) assert.deepEqual(p.presences(), [], `${p.name} did not subscribe`);
  });

  it("a phone's presence log keeps the newest records only", async (t) => {
    const sim = await startSim();
    t.after(() => sim.close());
    const ana = sim.createPhone({ name: 'Ana' });
    const budi = sim.createPhone({ name: 'Budi' });
    const anaAccount = sim.registry.resolve(ana.jid)?.account;
    assert.ok(anaAccount);
    sim.subscribePresence(budi, ana.jid);
    for (let i = 0; i < 1500; i++) sim.setPresence(anaAccount, i % 2 === 0 ? 'available' : 'unavailable');
    assert.equal(budi.presences().length, 1000);
    assert.equal(budi.presences().at(-1)?.type, 'unavailable', 'the newest is kept');
  });
});
