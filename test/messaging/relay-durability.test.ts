// Issue #14: sends acknowledged but never delivered (chaos campaign). Baileys' `relayMessage` encrypted and sent the
// stanza inside one key transaction whose mutations (the advanced Signal sessions and sender keys) were committed
// only after the stanza had left, and with write-behind stored later still. A shard SIGKILLed in that window came
// back with a sender state behind the one the recipients had seen, and its next send re-used a message key they
// had consumed: an acknowledged (201) message they could not decrypt.
//
// Reproduced with a group send: the session's sender key for the group is restored as it was, while a 1:1 Signal
// session is replaced on a new socket's first send to a contact (Baileys' device lookup force-refreshes the
// sessions of the LIDs it learns), so the 1:1 path hides the loss in this Baileys version. A retry receipt may
// heal an undecryptable message while the session lives; the members' retry receipts are held here, as a chaos
// run's next fault would cut them off. Deterministic: a shard fixture holds every auth state log write once a flag
// is set (the store "has not answered yet"), and the shard is SIGKILLed there.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { ApiResponse } from '../sessions/helpers.ts';
import { holdAuthWriteFlag } from './fixtures/hold-auth-write-flag.ts';

const SHARD_ENTRY = fileURLToPath(new URL('./fixtures/shard-hold-auth-write.ts', import.meta.url));

type SendAnswer = ApiResponse<{ id?: string; error?: { code: string } }>;

describe('messaging: the ratchet step of a send is durable before the stanza leaves', () => {
  test('a group send whose key write had not landed when the shard was SIGKILLed: every acknowledged message decrypts at every member', async (t) => {
    const dir = await tempDir(t);
    const flag = holdAuthWriteFlag(process.pid);
    const held = `${flag}.held`;
    const clearFlag = async (): Promise<void> => {
      await rm(flag, { force: true });
      await rm(held, { force: true });
    };
    await clearFlag();
    t.after(clearFlag);
    const { sim, env } = await startSim(t, dir.path);
    // Write-behind on (the default), the governor out of the way.
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', SESSION_KEY_WRITE_BEHIND: 'true', SEND_RATE_PER_SEC: '0' }),
      shardEntry: SHARD_ENTRY,
    });
    const owner = sim.createPhone({ number: '6281234567881', name: 'Owner' });
    const members = [sim.createPhone({ number: '6281234567882', name: 'Rani' }), sim.createPhone({ number: '6281234567883', name: 'Sari' })];
    await pairByQr(gw.api, sim, owner, 'relay');
    const created = await gw.api.post<{ id: string }>('/api/v1/sessions/relay/groups', { subject: 'Durable', participants: members.map((m) => m.jid) });
    assert.equal(created.status, 201, created.raw.toString());
    const group = created.body.id;
    const post = (text: string, key: string): Promise<SendAnswer> =>
      gw.api.call('POST', '/api/v1/sessions/relay/messages', { to: group, type: 'text', text }, { 'idempotency-key': key });
    const sendUntilAcked = async (text: string, key: string): Promise<SendAnswer> => {
      let res = await post(text, key);
      for (let i = 0; i < 40 && res.status !== 201; i++) {
        await new Promise((r) => setTimeout(r, 300));
        res = await post(text, key);
      }
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res;
    };
    const decrypted = (id: string): boolean => members.every((m) => m.received().some((r) => r.id === id && r.error === undefined));
    const acked: string[] = [];

    // The group's sender key reaches both members, its steps stored before the flag is set.
    for (const n of [1, 2]) {
      const warm = await sendUntilAcked(`warm-up ${n}`, `warm-${n}`);
      const id = warm.body.id ?? '';
      acked.push(id);
      await waitFor(() => decrypted(id), { what: `the members to decrypt warm-up ${n}`, timeoutMs: 15_000, intervalMs: 50 });
    }
    await new Promise((r) => setTimeout(r, 1_000)); // the write-behind batch of those steps lands (not the point here)
    // From here a message a member cannot decrypt stays undelivered (no retry receipt heals it).
    for (const m of members) m.holdRetries = true;

    // 1. A send whose key write is held by the store. Before the fix the stanza left first (and with write-behind
    //    the 201 did not wait for the write either); with it, the stanza waits for the write.
    await writeFile(flag, '');
    const first = post('sent before the crash', 'first');
    await waitFor(async () => (await readFile(held, 'utf8').catch(() => '')).length > 0, { what: 'an auth state write to be held', timeoutMs: 20_000, intervalMs: 20 });
    // Give an acknowledgement that is coming the time to come (none does with the fix: the stanza is held).
    const settled = await Promise.race([first, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3_000))]);
    t.diagnostic(`first send before the kill: ${settled === undefined ? 'pending' : String(settled.status)}`);
    if (settled?.status === 201) acked.push(settled.body.id ?? '');
    // The new shard must not hold its writes; the held write dies with the shard.
    await rm(flag, { force: true });
    const pid = gw.router.supervisor.info(0)?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => gw.router.supervisor.info(0)?.pid !== pid, { what: 'the shard to restart', timeoutMs: 20_000 });
    const firstAnswer = await first;
    t.diagnostic(`first send answered: ${firstAnswer.status} ${firstAnswer.body.error?.code ?? ''}`);
    await gw.api.waitStatus('relay', 'connected', 30_000);

    // 2. After recovery: the first send retried with its key (a replay when it was acknowledged), then more sends
    //    to the same group, from the restored sender key.
    const retried = await sendUntilAcked('sent before the crash', 'first');
    if (settled?.status === 201) assert.equal(retried.body.id, settled.body.id);
    else acked.push(retried.body.id ?? '');
    for (const n of [1, 2, 3]) {
      const res = await sendUntilAcked(`sent after the crash ${n}`, `after-${n}`);
      acked.push(res.body.id ?? '');
    }

    // 3. Every member decrypted every acknowledged message. Before the fix the first send after the crash re-used
    //    the sender key iteration of the one acknowledged before it, and no member could decrypt it.
    await waitFor(() => acked.every(decrypted), { what: 'the members to decrypt every acknowledged message', timeoutMs: 15_000, intervalMs: 50 }).catch(() => undefined);
    const report = members.map((m) => ({
      member: m.number,
      missing: acked.filter((id) => !m.received().some((r) => r.id === id && r.error === undefined)),
      failed: m.received().filter((r) => r.group === group && r.error !== undefined).map((r) => `${r.id}: ${r.error}`),
    }));
    assert.deepEqual(report, members.map((m) => ({ member: m.number, missing: [], failed: [] })));
  });
});
