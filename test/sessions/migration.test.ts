// Migration and shard scaling with live sessions: a session migrated while a phone sends it 50 messages gets
// all 50 (none twice); shards grown 2 -> 4 and shrunk 4 -> 1 keep every session reachable, none re-paired.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { mapLimit, openSse, pairByQr, sessionTestEnv, startGateway, startSim } from './helpers.ts';

describe('migration and scaling', () => {
  test('migrate while the phone sends 50 messages: all 50 arrive, none twice, in the new owner after the move', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '2' }) });
    const me = sim.createPhone({ name: 'Gateway' });
    const friend = sim.createPhone({ name: 'Friend' });
    const s0 = await pairByQr(gw.api, sim, me, 'mig');
    const sse = openSse(t, `${gw.url}/api/v1/sessions/mig/events`);
    await waitFor(() => sse.events.some((e) => e.type === 'status'), { what: 'SSE open', timeoutMs: 5000 });
    const from = s0.shard;
    const to = from === 0 ? 1 : 0;

    const sent: string[] = [];
    const sending = (async () => {
      for (let i = 0; i < 50; i++) {
        sent.push((await friend.sendText(me.jid, `m${i}`)).id);
        await sleep(20);
      }
    })();
    await waitFor(() => sent.length >= 10, { what: '10 messages sent', timeoutMs: 20_000 });
    const moved = await gw.api.post<{ shard: number; epoch: number }>('/api/v1/sessions/mig/migrate', { shard: to });
    assert.equal(moved.status, 200, moved.raw.toString());
    assert.equal(moved.body.shard, to);
    await sending;

    const inbound = (): { id: string; shard: number }[] =>
      sse.events
        .filter((e) => e.type === 'message' && e.data['fromMe'] === false && typeof e.data['text'] === 'string')
        .map((e) => ({ id: String(e.data['id']), shard: Number(e.data['shard']) }));
    await waitFor(() => new Set(inbound().map((m) => m.id)).size >= 50, { what: 'all 50 messages received', timeoutMs: 45_000, intervalMs: 100 });
    const got = inbound();
    assert.deepEqual(new Set(got.map((m) => m.id)), new Set(sent));
    const counts = new Map<string, number>();
    for (const m of got) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
    assert.deepEqual([...counts].filter(([, n]) => n > 1), [], 'no message delivered twice');
    const onTarget = got.filter((m) => m.shard === to).length;
    t.diagnostic(`messages: ${got.length - onTarget} before the move on shard ${from}, ${onTarget} after on shard ${to}`);
    assert.ok(onTarget > 0, 'the new owner received the rest');
    assert.equal((await gw.api.session('mig')).shard, to);
    assert.equal((await gw.api.session('mig')).status, 'connected');
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });

  test('grow shards 2 -> 4 and shrink 4 -> 1 with sessions connected: all reachable, none re-paired', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const gw = await startGateway(t, { env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '2' }) });
    const ids = Array.from({ length: 6 }, (_, i) => `scale-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 3, (id, i) => pairByQr(gw.api, sim, phones[i]!, id));
    const pairings = sim.snapshot().pairings;

    const grown = await gw.api.call<{ count: number; shards: { index: number; state: string }[] }>('PUT', '/api/v1/admin/shards', { count: 4 });
    assert.equal(grown.status, 200, grown.raw.toString());
    assert.equal(grown.body.count, 4);
    assert.ok(grown.body.shards.every((s) => s.state === 'ready'));
    // New sessions go to the emptier new shards.
    const extra = sim.createPhone({ name: 'extra' });
    const e = await pairByQr(gw.api, sim, extra, 'scale-extra');
    assert.ok(e.shard === 2 || e.shard === 3, `placed on a new shard, got ${e.shard}`);
    ids.push('scale-extra');
    phones.push(extra);

    const shrunk = await gw.api.call<{ count: number; shards: { index: number; sessions: number }[] }>('PUT', '/api/v1/admin/shards', { count: 1 });
    assert.equal(shrunk.status, 200, shrunk.raw.toString());
    assert.equal(shrunk.body.count, 1);
    assert.equal(shrunk.body.shards[0]?.sessions, ids.length);
    for (const [i, id] of ids.entries()) {
      const s = await gw.api.waitStatus(id, 'connected', 30_000);
      assert.equal(s.shard, 0);
      assert.equal(s.me?.jid, phones[i]!.jid);
    }
    assert.equal(sim.snapshot().pairings, pairings + 1, 'only the extra session paired');
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
    await waitFor(() => sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === ids.length, { what: 'one live socket each', timeoutMs: 15_000 });
  });
});
