// Regression: "blob-2 sent once: 2 !== 1" (test/faults/blob-outage.test.ts, with the shard's IPC outbox). A send
// under an Idempotency-Key was relayed to WhatsApp, then its answer could not reach the router in time: the
// shard's channel to the router was backed up (its `message.received` row write and the `message.send` reply
// held), the router's call passed its deadline and answered 504, which releases the key (the outcome is
// unknown), and the backend's retry under the same key relayed the same message a second time. The backup is
// injected here (fixtures/shard-ipc-backup.ts stalls `process.send` as a full pipe would) instead of hoping
// for load. On the way the lease lapses in the shard (the renewal round waits for the held `leases.extend`
// reply) and the session is re-placed on the same shard, so the retry reaches a new run of the session. Fixed in
// the shard: a keyed message id a session relayed is never relayed again by that shard process; a retry joins
// the first attempt (or, when only its row write failed, stores the row again) and answers with it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

const SHARD_ENTRY = fileURLToPath(new URL('./fixtures/shard-ipc-backup.ts', import.meta.url));
type Text = { message?: { conversation?: string | null; extendedTextMessage?: { text?: string | null } | null } | null | undefined };
const textOf = (m: Text) => m.message?.conversation ?? m.message?.extendedTextMessage?.text;

describe('messaging: IPC backup', () => {
  test('a keyed send answered 504 while the shard channel was backed up is relayed once: the retry answers with the same message', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    // The router's deadline for message.send is SEND_QUEUE_TIMEOUT_MS + SEND_REPLY_MARGIN_MS: 3.1 s here.
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', SEND_QUEUE_TIMEOUT_MS: '100', SEND_REPLY_MARGIN_MS: '3000', SEND_PER_RECIPIENT_INTERVAL_MS: '0' }),
      shardEntry: SHARD_ENTRY,
    });
    const owner = sim.createPhone({ number: '6281234567871', name: 'Owner' });
    const friend = sim.createPhone({ number: '6281234567872', name: 'Friend' });
    await pairByQr(gw.api, sim, owner, 'held');
    const post = (body: unknown, key: string) => gw.api.call<{ id?: string; error?: { code: string } }>('POST', '/api/v1/sessions/held/messages', body, { 'idempotency-key': key });
    const warm = await post({ to: friend.jid, type: 'text', text: 'before the backup' }, 'warm');
    assert.equal(warm.status, 201, JSON.stringify(warm.body));

    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGUSR2'); // the channel to the router backs up from here
    let backedUp = true;
    t.after(() => {
      if (backedUp) process.kill(pid, 'SIGUSR2');
    });
    const body = { to: friend.jid, type: 'text', text: 'held once' };
    const first = await post(body, 'held-1');
    t.diagnostic(`first attempt: ${first.status} ${first.body.error?.code ?? ''}`);
    assert.equal(first.status, 504, 'the router gave up on the held answer');
    // It did leave: the phone has it.
    await friend.waitForMessage((m) => textOf(m) === 'held once', 10_000);
    // An inbound message meanwhile: its `message.received` request waits in the shard's outbox beside the reply.
    const inbound = await friend.sendText(owner.jid, 'inbound while backed up');
    // The backend retries under the same key while the channel is still backed up.
    const retry = post(body, 'held-1');
    await sleep(2_000);
    process.kill(pid, 'SIGUSR2');
    backedUp = false;
    let final = await retry;
    for (let i = 0; i < 30 && final.status !== 201; i++) {
      await sleep(500);
      final = await post(body, 'held-1');
    }
    assert.equal(final.status, 201, JSON.stringify(final.body));
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/held/messages/${final.body.id}`)).status === 200, { what: 'the row stored', timeoutMs: 10_000 });
    await sleep(1_000);
    const copies = friend.received().filter((m) => textOf(m) === 'held once');
    assert.equal(copies.length, 1, `relayed ${copies.length} times: ${JSON.stringify(copies.map((m) => m.id))}`);
    assert.equal(copies[0]?.id, final.body.id);
    const stored = await waitFor(async () => {
      const r = await gw.api.get<{ text?: string }>(`/api/v1/sessions/held/messages/${inbound.id}`);
      return r.status === 200 ? r.body : null;
    }, { what: 'the inbound message held in the outbox, stored', timeoutMs: 10_000 });
    assert.equal(stored.text, 'inbound while backed up');
    // The outbox held the shard's messages meanwhile and reports it (router-side /metrics, one stats round).
    const metrics = (await gw.api.get('/metrics')).raw.toString('utf8');
    const highWater = /^wagw_shard_ipc_outbox_high_water\{shard="0"\} (\d+)/m.exec(metrics);
    // The first write of the backup sits in the stalled pipe (the fixture); behind it the outbox held the inbound
    // message's request (the send's own answer waits for its row write, which is that first write).
    assert.ok(highWater !== null && Number(highWater[1]) >= 1, metrics.split('\n').filter((l) => l.includes('outbox')).join('\n'));
    assert.match(metrics, /^wagw_shard_ipc_outbox_capacity\{shard="0"\} 1000$/m);
    assert.match(metrics, /^wagw_shard_ipc_outbox_depth\{shard="0"\} 0$/m);
    assert.match(metrics, /^wagw_login_gate_running\{shard="0"\} \d+$/m);
  });
});
