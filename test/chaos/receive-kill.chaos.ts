// Chaos run (`npm run test:chaos`, not part of `npm test`): a phone sends 200 messages while the shard owning
// the session is SIGKILLed; after the session is back, all 200 must be in the store, none twice (offline
// re-delivery lands on ON CONFLICT DO NOTHING).
//
// Two mechanisms make it hold (docs/messaging.md, "Receive durability"): the shard's delivery receipt waits until
// the router committed the message (Baileys' `beforeReceipt` hook, patches/), so WhatsApp keeps every message the
// store does not have and delivers it again at the next login; and a re-delivered message whose ratchet step the
// killed shard had already persisted fails to decrypt, so Baileys sends a retry receipt and the phone encrypts it
// again (the simulator's phones answer retry receipts as real phones do).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('chaos: shard SIGKILL while receiving', () => {
  test('SIGKILL the owning shard during 200 inbound messages: all 200 stored exactly once', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1' }) });
    const owner = sim.createPhone({ number: '6281234567851', name: 'Owner' });
    const fajar = sim.createPhone({ number: '6281234567852', name: 'Fajar' });
    await pairByQr(gw.api, sim, owner, 'crash');
    const ids: string[] = [];
    let killed = false;
    for (let i = 0; i < 200; i++) {
      ids.push((await fajar.sendText(owner.jid, `message ${i}`)).id);
      if (i === 60) {
        const pid = gw.router.supervisor.info(0)?.pid;
        assert.ok(pid);
        process.kill(pid, 'SIGKILL');
        killed = true;
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(killed);
    const count = async (): Promise<number> => {
      const r = await gw.stores.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = 'crash' AND from_me = false`);
      return r.rows[0]?.n ?? 0;
    };
    const t0 = Date.now();
    try {
      await waitFor(async () => (await count()) >= 200, { what: 'all 200 stored', timeoutMs: 45_000, intervalMs: 200 });
    } finally {
      const rows = await gw.stores.sql.query<{ id: string }>(`SELECT id FROM messages WHERE session_id = 'crash' AND from_me = false`);
      const got = new Set(rows.rows.map((r) => r.id));
      t.diagnostic(`retry receipts answered by the phone: ${sim.stats.retriesToPhones}`);
      t.diagnostic(`stored ${got.size}/200 (${Date.now() - t0} ms after the last send); missing ${ids.filter((id) => !got.has(id)).length}: ${ids.map((id, i) => (got.has(id) ? -1 : i)).filter((i) => i >= 0).join(",")}`);
    }
    const rows = await gw.stores.sql.query<{ id: string }>(`SELECT id FROM messages WHERE session_id = 'crash' AND from_me = false`);
    assert.deepEqual(new Set(rows.rows.map((r) => r.id)), new Set(ids));
    assert.equal(rows.rows.length, 200);
  });
});
