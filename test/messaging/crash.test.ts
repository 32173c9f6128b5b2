// Idempotency across a shard SIGKILL (the inbound-messages-under-SIGKILL scenario is a chaos run: test/chaos/).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('messaging: shard SIGKILL', () => {
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
    // Kill only once the keyed send waits in the shard's governor (filler 2 and it: 2 waiting), not after a fixed
    // delay: on a loaded box the POST could still be on its way, and would then meet a session being re-placed.
    await waitFor(
      async () => {
        const text = (await gw.api.get('/metrics')).raw.toString('utf8');
        const waiting = /^wagw_send_queue_depth\{[^}]*state="waiting"[^}]*\} (\d+)/m.exec(text);
        return waiting !== null && Number(waiting[1]) >= 2;
      },
      { what: 'the keyed send to wait in the governor', timeoutMs: 20_000, intervalMs: 50 },
    );
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
