// Cross-host migration and drain, on three router processes (one Redis + PostgreSQL + S3); the all-sessions event
// stream of a host that runs none of them relays the other hosts' status events (Redis pub/sub).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr } from '../sessions/helpers.ts';
import { listHosts, openEventStream, sessionRows, startCluster } from './helpers.ts';

describe('cluster: migration and drain', () => {
  test('POST /:id/migrate {host} on a third host while a phone sends 50 messages: the session runs on the target, all 50 stored once; the third host streams its status live', async (t) => {
    const c = await startCluster(t, 3);
    const [a, b, third] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[1]>, NonNullable<(typeof c.hosts)[2]>];
    const sim = c.sim;
    const owner = sim.createPhone({ number: '6281234560001', name: 'Owner' });
    const friend = sim.createPhone({ number: '6281234560002', name: 'Friend' });
    await pairByQr(a.api, sim, owner, 'mig', 60_000);
    const before = sim.snapshot();
    // The console's one stream, opened on the host that never runs the session: what it gets comes from a and b.
    const stream = openEventStream(`${third.url}/api/v1/events`);
    t.after(() => stream.close());

    const sending = (async () => {
      const out: string[] = [];
      for (let i = 0; i < 50; i++) {
        out.push((await friend.sendText(owner.jid, `burst ${i}`)).id);
        await new Promise((r) => setTimeout(r, 40));
      }
      return out;
    })();
    await new Promise((r) => setTimeout(r, 500));
    // Called on a host that neither owns nor receives the session: forwarded to the owner, which hands off.
    const moved = await third.api.post<{ host: string; epoch: number }>('/api/v1/sessions/mig/migrate', { host: b.id });
    assert.equal(moved.status, 200, moved.raw.toString());
    assert.equal(moved.body.host, b.id);
    const ids = await sending;

    const s = await third.api.waitStatus('mig', 'connected', 30_000);
    assert.equal(s.host, b.id);
    const connectedOnB = new RegExp(String.raw`event: status\nid: ${b.id}\.[0-9a-f]{8}\.\d+\ndata: \{"id":"mig","status":"connected","host":"${b.id}"`);
    await waitFor(() => connectedOnB.test(stream.text()), { what: "b's connected status relayed to the third host's stream", timeoutMs: 10_000, intervalMs: 50 });
    const eventIds = [...stream.text().matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    assert.equal(new Set(eventIds).size, eventIds.length, `each relayed event once: ${eventIds.join(', ')}`);
    assert.doesNotMatch(stream.text(), /^event: message/m, 'message events stay on the host that stored them');
    assert.equal((await sessionRows(c.sql, ['mig'])).get('mig')?.host, b.id);
    await waitFor(
      async () => (await c.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM messages WHERE session_id = 'mig' AND id = ANY($1::text[])", [ids])).rows[0]?.n === 50,
      { what: 'all 50 messages stored', timeoutMs: 30_000, intervalMs: 200 },
    );
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no QR');
    assert.equal(after.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    assert.equal(after.supersededFrames, 0);
    const shardsA = await a.api.get<{ shards: { sessions: number }[] }>('/api/v1/admin/shards');
    assert.equal(shardsA.body.shards[0]?.sessions, 0);

    // Bad input: an unknown target host is a 503 naming it, never a 5xx crash of the session.
    const bad = await a.api.post<{ error: { code: string; message: string } }>('/api/v1/sessions/mig/migrate', { host: 'no-such-host' });
    assert.equal(bad.status, 503);
    assert.equal(bad.body.error.code, 'HOST_UNAVAILABLE');
    assert.match(bad.body.error.message, /no-such-host/);
    await third.api.waitStatus('mig', 'connected', 10_000);
  });

  test('drain a host (called on another host): /ready 503, every session connected on the others, then SIGTERM exits 0', async (t) => {
    const c = await startCluster(t, 3);
    const [a, b, third] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[1]>, NonNullable<(typeof c.hosts)[2]>];
    const sim = c.sim;
    const ids = Array.from({ length: 6 }, (_, i) => `dr-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 3, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    const before = sim.snapshot();
    assert.equal((await a.api.get('/ready')).status, 200);

    const t0 = Date.now();
    const drained = await b.api.post<{ hostId: string; moved: number; remaining: number }>(`/api/v1/admin/hosts/${a.id}/drain`);
    assert.equal(drained.status, 200, drained.raw.toString());
    assert.deepEqual(drained.body, { hostId: a.id, moved: 6, remaining: 0 });
    assert.equal((await a.api.get('/ready')).status, 503, 'a draining host is not ready (the load balancer stops sending)');
    assert.equal((await listHosts(third.api)).find((h) => h.hostId === a.id)?.state, 'draining');
    await waitFor(
      async () => {
        const rows = await sessionRows(c.sql, ids);
        return [...rows.values()].filter((r) => r.status === 'connected' && r.host !== a.id && (r.connectedAt?.getTime() ?? 0) > t0).length === ids.length;
      },
      { what: 'every drained session connected on the other hosts', timeoutMs: 30_000, intervalMs: 100 },
    );
    t.diagnostic(`6 sessions drained and connected elsewhere in ${Date.now() - t0} ms`);
    const hosts = new Set([...(await sessionRows(c.sql, ids)).values()].map((r) => r.host));
    assert.deepEqual([...hosts].sort(), [b.id, third.id].sort(), 'spread over both other hosts');
    // Unknown host id: 404 naming it.
    const unknown = await b.api.post<{ error: { code: string } }>('/api/v1/admin/hosts/nope/drain');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'HOST_NOT_FOUND');

    a.signal('SIGTERM');
    assert.equal(await a.exited(), 0);
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no QR');
    assert.equal(after.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    assert.equal(after.supersededFrames, 0);
    for (const id of ids) assert.equal((await b.api.session(id)).status, 'connected');
  });

  test('SIGTERM with DRAIN_ON_SHUTDOWN=true hands every session to the other hosts before exiting 0', async (t) => {
    const c = await startCluster(t, 2, {});
    const [, b] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[1]>];
    const a = await c.addHost({ DRAIN_ON_SHUTDOWN: 'true', LOG_LEVEL: 'info' });
    const sim = c.sim;
    const ids = Array.from({ length: 4 }, (_, i) => `ds-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 2, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    const before = sim.snapshot();
    const t0 = Date.now();
    a.signal('SIGTERM');
    assert.equal(await a.exited(), 0);
    const drainLine = a.stdout().split('\n').find((l) => l.includes('drained before shutdown'));
    assert.ok(drainLine, 'the router logged its drain');
    assert.match(drainLine, /"moved":4,"remaining":0/, 'the drain handed off all four sessions before the exit');
    // Handed off, not orphaned: the rows named the other host before this one exited.
    assert.ok([...(await sessionRows(c.sql, ids)).values()].every((r) => r.host !== null && r.host !== a.id));
    await waitFor(
      async () => {
        const rows = await sessionRows(c.sql, ids);
        return [...rows.values()].filter((r) => r.status === 'connected' && r.host !== a.id && (r.connectedAt?.getTime() ?? 0) > t0).length === ids.length;
      },
      { what: 'sessions connected on the other hosts', timeoutMs: 30_000, intervalMs: 100 },
    );
    t.diagnostic(`4 sessions running elsewhere ${Date.now() - t0} ms after SIGTERM`);
    for (const id of ids) assert.equal((await b.api.session(id)).status, 'connected');
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings);
    assert.equal(after.concurrentLoginViolations, 0);
  });
});

describe('cluster: rebalancing', () => {
  test('a new empty host: connected sessions move to it until loads are within the tolerance; a pairing session stays; no QR', async (t) => {
    const settings = { REBALANCE_ENABLED: 'true', REBALANCE_INTERVAL_MS: '2000', REBALANCE_MAX_MOVES_PER_INTERVAL: '2', REBALANCE_TOLERANCE: '0.1', SHARD_MAX_SESSIONS: '8' };
    const c = await startCluster(t, 1, settings);
    const [a] = c.hosts as [NonNullable<(typeof c.hosts)[0]>];
    const sim = c.sim;
    const ids = Array.from({ length: 6 }, (_, i) => `rb-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 3, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    // A session waiting for its QR scan: never moved (its QR would change under the user).
    assert.equal((await a.api.post('/api/v1/sessions', { id: 'rb-pairing' })).status, 201);
    await a.api.waitQr('rb-pairing');
    const before = sim.snapshot();

    const t0 = Date.now();
    const b = await c.addHost();
    let last = '';
    t.after(() => t.diagnostic(`last seen: ${last}`));
    // 7 sessions on 16 places: mean 0.4375; within the tolerance means 3 or 4 sessions per host (|s/8 - 0.4375| <= 0.1).
    const settled = await waitFor(
      async () => {
        const hosts = await listHosts(b.api);
        const la = hosts.find((h) => h.hostId === a.id)?.sessions ?? -1;
        const lb = hosts.find((h) => h.hostId === b.id)?.sessions ?? -1;
        const rows = await sessionRows(c.sql, ids);
        const onB = [...rows.values()].filter((r) => r.host === b.id && r.status === 'connected').length;
        last = JSON.stringify({ a: la, b: lb, onB, rows: [...rows.values()].map((r) => `${r.host}:${r.status}`) });
        const within = (n: number): boolean => Math.abs(n / 8 - 7 / 16) <= 0.1;
        return la + lb === 7 && within(la) && within(lb) && onB === lb ? { la, lb } : null;
      },
      { what: 'loads within the tolerance', timeoutMs: 45_000, intervalMs: 200 },
    );
    t.diagnostic(`rebalanced ${settled.lb} sessions to the new host in ${Date.now() - t0} ms (${settled.la}/${settled.lb})`);
    // Stays settled: nothing oscillates back.
    await new Promise((r) => setTimeout(r, 5000));
    const rows = await sessionRows(c.sql, [...ids, 'rb-pairing']);
    assert.equal([...rows.values()].filter((r) => r.host === b.id).length, settled.lb, 'no further moves once within the tolerance');
    assert.equal(rows.get('rb-pairing')?.host, a.id, 'the pairing session was not moved');
    assert.equal((await a.api.session('rb-pairing')).status, 'qr');
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no session re-paired');
    assert.equal(after.concurrentLoginViolations, 0);
    // Messages keep flowing to a moved session.
    const moved = ids.find((id) => rows.get(id)?.host === b.id)!;
    const friend = sim.createPhone({ name: 'friend' });
    const m = await friend.sendText(phones[ids.indexOf(moved)]!.jid, 'after the move');
    await waitFor(async () => (await a.api.get(`/api/v1/sessions/${moved}/messages/${m.id}`)).status === 200, { what: 'the message stored', timeoutMs: 20_000 });
  });
});
