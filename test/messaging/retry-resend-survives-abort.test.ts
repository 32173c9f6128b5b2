// Issue #14: a message that fails to decrypt right after a login from a lagging auth state is healed by a retry
// receipt and the phone's re-send. The gateway used to nack the undecryptable original (Baileys acks it with an
// error after the retry receipt), and WhatsApp forgot the message under that id, re-send included: when the
// session was then aborted before the re-send was stored, nothing was delivered again at the next login. With
// `beforeReceipt` set the patched Baileys no longer acknowledges the original; the re-send's delivery receipt,
// sent once it is stored, acknowledges the id. Deterministic: the store refuses the message (a trigger) both
// times, the shard is SIGKILLed once with the ratchet step saved and once after the re-send was refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, productionStores, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';

describe('messaging: a retry re-send survives an abort before it is stored', () => {
  test('a message that failed to decrypt is delivered again after the session dies before its re-send was stored', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const prod = await productionStores(t);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, ...prod.env, SHARD_COUNT: '1' }), redisPrefix: prod.redisPrefix });
    const owner = sim.createPhone({ number: '6281234567871', name: 'Owner' });
    const hadi = sim.createPhone({ number: '6281234567872', name: 'Hadi' });
    await pairByQr(gw.api, sim, owner, 'resend');
    const warm = await hadi.sendText(owner.jid, 'warm-up');
    await hadi.waitForStatus(warm.id, 'delivered', 20_000);
    const sql = gw.stores.sql;
    const stored = async (id: string): Promise<number> =>
      (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE session_id = 'resend' AND id = $1`, [id])).rows[0]?.n ?? 0;

    // The store refuses this message while the trigger exists; every refusal bumps a sequence (not rolled back).
    await sql.query(`CREATE SEQUENCE refusals`);
    await sql.query(`CREATE FUNCTION refuse_resend() RETURNS trigger AS $$ BEGIN PERFORM nextval('refusals'); RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql`);
    await sql.query(`CREATE TRIGGER refuse_resend BEFORE INSERT ON messages FOR EACH ROW WHEN (NEW.content->>'text' = 'decrypt fails next') EXECUTE FUNCTION refuse_resend()`);
    const refusals = async (): Promise<number> => {
      const r = await sql.query<{ n: string; called: boolean }>(`SELECT last_value AS n, is_called AS called FROM refusals`);
      const row = r.rows[0];
      return row?.called ? Number(row.n) : 0;
    };
    const companion = owner.linkedDevices()[0];
    assert.ok(companion);
    const queued = (id: string): boolean => companion.pending.has(`message:${id}`);
    const killShard = async (): Promise<void> => {
      const pid = gw.router.supervisor.info(0)?.pid;
      assert.ok(pid);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => gw.router.supervisor.info(0)?.pid !== pid, { what: 'the shard to restart', timeoutMs: 20_000 });
    };

    // 1. Decrypted (its ratchet step goes to the auth state), refused by the store, so not receipted; the shard
    //    dies. The stored state is now behind what the phone used: the re-delivery cannot be decrypted.
    const msg = await hadi.sendText(owner.jid, 'decrypt fails next');
    await waitFor(async () => (await refusals()) > 0, { what: 'the first refusal', timeoutMs: 20_000, intervalMs: 50 });
    await new Promise((r) => setTimeout(r, 1_500)); // the write-behind ratchet step reaches the blob store
    assert.ok(queued(msg.id), 'receipted although it was not stored');
    const retriesBefore = hadi.retriesAnswered;
    await killShard();
    const refusedBefore = await refusals();

    // 2. At the next login the re-delivery fails to decrypt: a retry receipt, the phone encrypts it again, the
    //    re-send is decrypted and refused by the store again. The session is aborted there (SIGKILL).
    await waitFor(() => hadi.retriesAnswered > retriesBefore, { what: 'the phone to answer a retry receipt', timeoutMs: 30_000, intervalMs: 50 });
    await waitFor(async () => (await refusals()) > refusedBefore, { what: 'the re-send to reach the store', timeoutMs: 20_000, intervalMs: 50 });
    // WhatsApp must still hold the message for the gateway: nothing acknowledged it as stored.
    const heldAfterResend = queued(msg.id);
    await killShard();
    await sql.query(`DROP TRIGGER refuse_resend ON messages`);

    // 3. After recovery it is delivered again and stored exactly once, and its receipt clears the queue.
    await waitFor(async () => (await stored(msg.id)) === 1, { what: 'the message stored after the second crash', timeoutMs: 30_000, intervalMs: 100 });
    assert.ok(heldAfterResend, 'the simulator had dropped the message before its re-send was stored');
    await waitFor(() => !queued(msg.id), { what: 'its receipt', timeoutMs: 10_000, intervalMs: 50 });
    assert.equal(await stored(msg.id), 1);
    const row = await gw.api.get(`/api/v1/sessions/resend/messages/${msg.id}`);
    assert.equal(row.status, 200);
  });
});
