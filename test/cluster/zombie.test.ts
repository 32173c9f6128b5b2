// Zombie safety: a host paused (SIGSTOP of its router and shards) for longer than the lease TTL. Its sessions
// log in on the other hosts meanwhile (the simulator, like WhatsApp, replaces the paused host's sockets with
// conflict/replaced). When it wakes (SIGCONT) it must not act on any of them: no frame on a superseded socket
// (the simulator counts them: supersededFrames), none of the moved sessions started again, and calls to it are
// served by forwarding to the new owners.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../harness/index.ts';
import { mapLimit, pairByQr } from '../sessions/helpers.ts';
import { listHosts, sessionRows, startCluster } from './helpers.ts';

const LEASE_TTL_MS = 4000;

describe('cluster: zombie safety', () => {
  test('SIGSTOP a host past its lease TTL, then SIGCONT: it sends no frame on a superseded socket and starts none of its moved sessions', async (t) => {
    const c = await startCluster(t, 3);
    const [a, b] = c.hosts as [NonNullable<(typeof c.hosts)[0]>, NonNullable<(typeof c.hosts)[1]>];
    const sim = c.sim;
    const ids = Array.from({ length: 8 }, (_, i) => `zs-${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    await mapLimit(ids, 4, (id, i) => pairByQr(a.api, sim, phones[i]!, id, 90_000));
    const friend = sim.createPhone({ number: '6281234567890', name: 'friend' });
    const before = sim.snapshot();

    const t0 = Date.now();
    a.signal('SIGSTOP');
    await waitFor(
      async () => {
        const rows = await sessionRows(c.sql, ids);
        return [...rows.values()].filter((r) => r.status === 'connected' && r.host !== a.id && (r.connectedAt?.getTime() ?? 0) > t0).length === ids.length;
      },
      { what: 'the paused host\'s sessions connected elsewhere', timeoutMs: 60_000, intervalMs: 100 },
    );
    t.diagnostic(`8 sessions of the paused host connected elsewhere after ${Date.now() - t0} ms`);
    assert.ok(Date.now() - t0 > LEASE_TTL_MS, 'nobody took a session before its lease could lapse');
    // Traffic on the new owners while the old sockets of the paused processes still exist (frozen).
    const sent = await mapLimit(ids, 4, async (_id, i) => await friend.sendText(phones[i]!.jid, `while paused ${i}`));

    a.signal('SIGCONT');
    // Several renewal ticks of the woken router (LEASE_RENEW_INTERVAL_MS=1000): it finds every lease lost.
    await waitFor(async () => (await listHosts(b.api)).find((h) => h.hostId === a.id && h.state === 'alive' && h.sessions === 0), {
      what: 'the woken host alive again with no session',
      timeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 3000));
    const shards = await a.api.get<{ shards: { sessions: number }[] }>('/api/v1/admin/shards');
    assert.equal(shards.status, 200);
    assert.equal(shards.body.shards.reduce((n, s) => n + s.sessions, 0), 0, 'the woken host runs none of the moved sessions');
    const rows = await sessionRows(c.sql, ids);
    assert.ok([...rows.values()].every((r) => r.host !== a.id && r.status === 'connected'), JSON.stringify([...rows]));

    const after = sim.snapshot();
    t.diagnostic(`superseded frames ${after.supersededFrames}; logins while a paused socket was still open: ${after.concurrentLoginViolations - before.concurrentLoginViolations} (expected: a frozen process cannot close its sockets; WhatsApp replaces them)`);
    assert.equal(after.supersededFrames, 0, JSON.stringify(after.supersededFramesByDevice));
    assert.equal(after.pairings, before.pairings, 'no QR');
    await waitFor(() => sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === ids.length, { what: 'one live socket per device', timeoutMs: 15_000 });

    // Messages sent while it was paused are stored (by the new owners), once.
    await waitFor(
      async () => (await c.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::text[])', [sent.map((m) => m.id)])).rows[0]?.n === sent.length,
      { what: 'messages of the pause stored', timeoutMs: 30_000, intervalMs: 200 },
    );
    // The woken host serves calls again, by forwarding to the owner.
    const viaA = await a.api.get(`/api/v1/sessions/${ids[0]}/contacts/${friend.number}/exists`);
    assert.equal(viaA.status, 200, viaA.raw.toString());
    assert.notEqual(viaA.headers.get('x-wagw-served-by'), null);
    assert.notEqual(viaA.headers.get('x-wagw-served-by'), a.id);
  });
});
