// Host failover: three router processes (each its own loopback address, HOST_ID, PUBLIC_URL and process group)
// on one Redis + PostgreSQL + S3. SIGKILL one host (router and shards together) while it holds 20 connected
// sessions: the survivors claim them (spread by free room) with a higher epoch and log in from the stored auth
// state. 20, not the 60: the test box has 2 cores shared by several runs (bench/cluster.ts goes bigger).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr } from '../sessions/helpers.ts';
import { listHosts, sessionRows, startCluster } from './helpers.ts';

const LEASE_TTL_MS = 4000;

describe('cluster: host failover', () => {
  test('SIGKILL a host with 20 connected sessions: all connected on the survivors, no QR, no two sockets, inbound messages of the outage stored once', async (t) => {
    const c = await startCluster(t, 3);
    const [a, b, third] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[1]>, NonNullable<(typeof c.hosts)[2]>];
    const sim = c.sim;

    // Membership: every host lists all three with load, from any host.
    const listed = await waitFor(
      async () => {
        const hosts = await listHosts(third.api);
        return hosts.filter((h) => h.state === 'alive').length === 3 ? hosts : null;
      },
      { what: 'three live hosts', timeoutMs: 15_000 },
    );
    assert.deepEqual(listed.map((h) => h.hostId).sort(), [a.id, b.id, third.id].sort());
    for (const h of listed) {
      assert.equal(h.shardsReady, 1);
      assert.equal(h.capacity, 1000, 'capacity = SHARD_COUNT * SHARD_MAX_SESSIONS');
      assert.ok(Date.parse(h.lastHeartbeatAt) > Date.now() - 10_000);
    }

    const ids = Array.from({ length: 20 }, (_, i) => `fo-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 4, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    // A host's load travels in its heartbeat (one per renewal tick), so another host sees the 20th session at
    // the next beat, not the moment its pairing returns.
    await waitFor(async () => (await listHosts(b.api)).find((h) => h.hostId === a.id)?.sessions === 20, {
      what: "host b to list host a's 20 sessions",
      timeoutMs: 10_000,
    });
    const friend = sim.createPhone({ number: '6281234560077', name: 'friend' });
    // A send with an Idempotency-Key answered by the host about to die; the client retries it after the failover.
    const keyed = { to: friend.jid, type: 'text', text: 'keyed across the failover' };
    const first = await a.api.call<{ id: string }>('POST', `/api/v1/sessions/${ids[0]}/messages`, keyed, { 'idempotency-key': 'fo-key-1' });
    assert.equal(first.status, 201, first.raw.toString());

    const before = sim.snapshot();
    const t0 = Date.now();
    a.signal('SIGKILL');
    await a.exited();
    // Phones write to the sessions while no gateway runs them: WhatsApp (the simulator) keeps them offline.
    const sent = await mapLimit(ids, 4, async (_id, i) => await friend.sendText(phones[i]!.jid, `during the outage ${i}`));

    // Never "connected on the dead host" once its leases are gone (the stored row still says so).
    let staleConnected = 0;
    let ownerLostSeen = 0;
    await waitFor(
      async () => {
        const list = await b.api.get<{ data: { id: string; status: string; host: string; reason?: string; connectedAt: string | null }[] }>('/api/v1/sessions?limit=100');
        const mine = list.body.data.filter((s) => ids.includes(s.id));
        if (Date.now() > t0 + LEASE_TTL_MS + 300) staleConnected += mine.filter((s) => s.status === 'connected' && s.host === a.id).length;
        ownerLostSeen += mine.filter((s) => s.status === 'reconnecting' && s.reason === 'owner host lost').length;
        return mine.filter((s) => s.status === 'connected' && s.host !== a.id && Date.parse(s.connectedAt ?? '') > t0).length === 20;
      },
      { what: 'all 20 sessions connected on the survivors', timeoutMs: 60_000, intervalMs: 100 },
    );
    const recoveredMs = Date.now() - t0;
    t.diagnostic(`20 sessions of the killed host connected on the survivors ${recoveredMs} ms after the SIGKILL (lease TTL ${LEASE_TTL_MS} ms); "owner host lost" seen ${ownerLostSeen} times`);
    assert.equal(staleConnected, 0, 'a session was reported connected on the dead host after its lease lapsed');

    const rows = await sessionRows(c.sql, ids);
    const perHost = new Map<string, number>();
    for (const r of rows.values()) perHost.set(r.host ?? 'null', (perHost.get(r.host ?? 'null') ?? 0) + 1);
    t.diagnostic(`spread: ${JSON.stringify(Object.fromEntries(perHost))}`);
    assert.equal(perHost.get(a.id), undefined, 'sessions.host_id follows the owner');
    assert.ok((perHost.get(b.id) ?? 0) > 0 && (perHost.get(third.id) ?? 0) > 0, 'both survivors took a share');
    for (const [i, id] of ids.entries()) assert.equal((await third.api.session(id)).me?.jid, phones[i]!.jid);

    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no session paired again (no QR)');
    assert.equal(after.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    assert.equal(after.supersededFrames, 0);
    await waitFor(() => sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === 20, { what: 'one live socket per device', timeoutMs: 10_000 });

    // Every message of the outage stored, once, whichever host serves the call.
    await waitFor(
      async () => {
        const res = await c.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::text[])', [sent.map((m) => m.id)]);
        return res.rows[0]?.n === sent.length;
      },
      { what: 'the 20 messages of the outage stored', timeoutMs: 30_000, intervalMs: 200 },
    );
    const dup = await c.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::text[]) GROUP BY id HAVING count(*) > 1', [sent.map((m) => m.id)]);
    assert.equal(dup.rowCount, 0);
    const one = await b.api.get<{ id: string }>(`/api/v1/sessions/${ids[3]}/messages/${sent[3]!.id}`);
    assert.equal(one.status, 200, one.raw.toString());

    // The retried send is answered from the record on a survivor, not sent again.
    const retried = await third.api.call<{ id: string }>('POST', `/api/v1/sessions/${ids[0]}/messages`, keyed, { 'idempotency-key': 'fo-key-1' });
    assert.equal(retried.status, 201, retried.raw.toString());
    assert.equal(retried.body.id, first.body.id);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(friend.received().filter((m) => m.message?.conversation === keyed.text || m.message?.extendedTextMessage?.text === keyed.text).length, 1);

    // The dead host stays listed, as dead.
    const dead = await waitFor(async () => (await listHosts(b.api)).find((h) => h.hostId === a.id && h.state === 'dead'), { what: 'the killed host listed as dead', timeoutMs: 10_000 });
    assert.equal(dead.state, 'dead');
  });
});

describe('cluster: status reflects ownership', () => {
  test('a host killed while its heartbeat still counts as alive: its sessions are reported reconnecting ("owner host lost") on every host, never connected', async (t) => {
    const c = await startCluster(t, 1);
    const [b] = c.hosts as [NonNullable<(typeof c.hosts)[0]>];
    // Its heartbeat outlives the test: nobody fails its sessions over, so only the lease tells they are dead.
    const a = await c.addHost({ HOST_DEAD_AFTER_MS: '120000' });
    const phone = c.sim.createPhone({ name: 'owner' });
    await pairByQr(a.api, c.sim, phone, 'own-1', 60_000);
    assert.equal((await b.api.session('own-1')).status, 'connected');
    a.signal('SIGKILL');
    await a.exited();
    const seen = await waitFor(
      async () => {
        const s = await b.api.session('own-1');
        return s.status === 'reconnecting' ? s : null;
      },
      { what: 'the session reported reconnecting once its lease lapsed', timeoutMs: LEASE_TTL_MS + 5000, intervalMs: 100 },
    );
    assert.equal(seen.reason, 'owner host lost');
    const list = await b.api.get<{ data: { id: string; status: string; reason?: string }[] }>('/api/v1/sessions?limit=10');
    assert.deepEqual(
      list.body.data.filter((s) => s.id === 'own-1').map((s) => [s.status, s.reason]),
      [['reconnecting', 'owner host lost']],
    );
    // The stored row still says connected (the dead host cannot write): the API answer comes from the lease.
    assert.equal((await sessionRows(c.sql, ['own-1'])).get('own-1')?.status, 'connected');
    assert.equal((await listHosts(b.api)).find((h) => h.hostId === a.id)?.state, 'alive');
  });
});

describe('cluster: a host cut off from Redis', () => {
  test('its sessions stop on it before their leases lapse and run on the other hosts; back on Redis it starts none of them', async (t) => {
    const c = await startCluster(t, 2);
    const [b] = c.hosts as [NonNullable<(typeof c.hosts)[0]>];
    const a = await c.addHost({}, { redisProxy: true });
    const sim = c.sim;
    const ids = Array.from({ length: 6 }, (_, i) => `cut-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 3, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    const before = sim.snapshot();
    const friend = sim.createPhone({ number: '6281234560099', name: 'friend' });

    const t0 = Date.now();
    a.cutRedis(true);
    // The cut-off host's shards give up the sockets at their validUntil, before the leases lapse in Redis (no
    // overlap with the next owner): the simulator sees every device without a live socket for a moment.
    const offline = new Set<string>();
    await waitFor(
      () => {
        for (const d of sim.devices()) if (d.kind === 'companion' && d.live === 0) offline.add(d.jid);
        return offline.size >= ids.length;
      },
      { what: 'every socket of the cut-off host closed', timeoutMs: LEASE_TTL_MS + 5000, intervalMs: 20 },
    );
    t.diagnostic(`sockets of the cut-off host closed within ${Date.now() - t0} ms`);
    const sent = await mapLimit(ids, 3, async (_id, i) => await friend.sendText(phones[i]!.jid, `cut off ${i}`));
    await waitFor(
      async () => {
        const rows = await sessionRows(c.sql, ids);
        return [...rows.values()].filter((r) => r.status === 'connected' && r.host !== a.id && (r.connectedAt?.getTime() ?? 0) > t0).length === ids.length;
      },
      { what: 'the sessions connected on the other hosts', timeoutMs: 60_000, intervalMs: 100 },
    );
    t.diagnostic(`6 sessions of the cut-off host connected elsewhere ${Date.now() - t0} ms after the cut`);

    a.cutRedis(false);
    await waitFor(async () => (await listHosts(b.api)).find((h) => h.hostId === a.id && h.state === 'alive'), { what: 'the host back in the registry', timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 3000));
    const shards = await a.api.get<{ shards: { sessions: number }[] }>('/api/v1/admin/shards');
    assert.equal(shards.body.shards.reduce((n, s) => n + s.sessions, 0), 0, 'it starts none of the moved sessions');
    const after = sim.snapshot();
    assert.equal(after.pairings, before.pairings, 'no QR');
    assert.equal(after.concurrentLoginViolations, 0, JSON.stringify(after.violationsByDevice));
    assert.equal(after.supersededFrames, 0);
    await waitFor(
      async () => (await c.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::text[])', [sent.map((m) => m.id)])).rows[0]?.n === sent.length,
      { what: 'messages of the cut stored', timeoutMs: 30_000, intervalMs: 200 },
    );
  });
});
