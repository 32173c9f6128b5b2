// Redis (the lease directory) unreachable for longer than the lease TTL, then back; and Redis losing all its
// data. Sessions either keep running within their lease or stop and come back: after recovery every session is
// connected, none ran twice (the simulator counts overlapping sockets of a device), none was paired again, and
// every message phones sent meanwhile is stored once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createTestDatabase, redisNamespace, startS3, tempDir, waitFor } from '../harness/index.ts';
import { startTcpProxy } from '../harness/tcp-proxy.ts';
import type { TcpProxy } from '../harness/tcp-proxy.ts';
import { mapLimit, pairByQr, sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';
import type { SimPhone, WaSimulator } from '@wagw/wa-sim';
import type { Cleanup } from '../harness/index.ts';

const OUTAGE_MS = Number(process.env['WAGW_TEST_OUTAGE_MS'] ?? 30_000);

interface Setup {
  sim: WaSimulator;
  gw: Gateway;
  proxy: TcpProxy;
  redisUrl: string;
  prefix: string;
  ids: string[];
  phones: SimPhone[];
  friend: SimPhone;
}

async function setup(t: Cleanup, sessions: number): Promise<Setup> {
  const dir = await tempDir(t);
  const { sim, env } = await startSim(t, dir.path);
  sim.receiptDelayMs = 0;
  const [ns, db, s3] = await Promise.all([redisNamespace(t), createTestDatabase(t), startS3(t)]);
  const target = new URL(ns.url);
  const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port || 6379) });
  const proxied = new URL(ns.url);
  proxied.port = String(proxy.port);
  const gw = await startGateway(t, {
    env: sessionTestEnv(dir.path, {
      ...env,
      SHARD_COUNT: '2',
      REDIS_URL: proxied.toString(),
      DATABASE_URL: db.url,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: s3.bucket,
    }),
    redisPrefix: ns.prefix,
  });
  const ids = Array.from({ length: sessions }, (_, i) => `r${i}`);
  const phones = ids.map((id) => sim.createPhone({ name: id }));
  await mapLimit(ids, 3, (id, i) => pairByQr(gw.api, sim, phones[i]!, id));
  return { sim, gw, proxy, redisUrl: ns.url, prefix: ns.prefix, ids, phones, friend: sim.createPhone({ name: 'friend' }) };
}

async function allBack(s: Setup, pairings: number, inbound: { session: string; id: string }[]): Promise<void> {
  await waitFor(
    async () => {
      for (const id of s.ids) if ((await s.gw.api.session(id)).status !== 'connected') return false;
      return s.gw.router.sessions?.localCount === s.ids.length;
    },
    { what: 'every session connected again', timeoutMs: 90_000, intervalMs: 250 },
  );
  await waitFor(
    async () => {
      for (const m of inbound) if ((await s.gw.api.get(`/api/v1/sessions/${m.session}/messages/${m.id}`)).status !== 200) return false;
      return true;
    },
    { what: 'every message sent meanwhile stored', timeoutMs: 90_000, intervalMs: 500 },
  );
  for (const id of s.ids) {
    const history = await s.gw.api.get<{ data: { id: string }[] }>(`/api/v1/sessions/${id}/messages?limit=100`);
    const seen = history.body.data.map((m) => m.id);
    for (const m of inbound.filter((x) => x.session === id)) assert.equal(seen.filter((x) => x === m.id).length, 1, `${m.id} stored once`);
  }
  const snap = s.sim.snapshot();
  assert.equal(snap.pairings, pairings, 'no session paired again');
  assert.equal(snap.concurrentLoginViolations, 0, JSON.stringify(snap.violationsByDevice));
  await waitFor(() => s.sim.devices().filter((d) => d.kind === 'companion' && d.live === 1).length === s.ids.length, { what: 'one live socket per session', timeoutMs: 15_000 });
}

async function sendDuring(s: Setup, ms: number): Promise<{ session: string; id: string }[]> {
  const out: { session: string; id: string }[] = [];
  const until = Date.now() + ms;
  let i = 0;
  while (Date.now() < until) {
    const k = i % s.ids.length;
    out.push({ session: s.ids[k]!, id: (await s.friend.sendText(s.phones[k]!.jid, `during ${i}`)).id });
    i++;
    await sleep(Math.min(1_000, Math.max(0, until - Date.now())));
  }
  return out;
}

describe('Redis faults', () => {
  test('unreachable for longer than the lease TTL, then back: all connected again, none twice, none re-paired, nothing lost', async (t) => {
    const s = await setup(t, 4);
    const pairings = s.sim.snapshot().pairings;
    s.proxy.set('blackhole');
    const inbound = await sendDuring(s, OUTAGE_MS);
    // Cut off from the directory past the TTL, the sessions must have stopped: nobody can prove they own them.
    assert.equal(s.sim.devices().filter((d) => d.kind === 'companion' && d.live > 0).length, 0, 'no socket outlives its lease');
    s.proxy.set('pass');
    await allBack(s, pairings, inbound);
  });

  test('restarted with its data lost: leases re-claimed at a higher epoch, all connected, none twice, none re-paired', async (t) => {
    const s = await setup(t, 4);
    const pairings = s.sim.snapshot().pairings;
    const epochsBefore = new Map<string, number>();
    const admin = new Redis(s.redisUrl, { lazyConnect: true });
    await admin.connect();
    t.after(async () => void admin.disconnect());
    const leaseKeys = await admin.keys(`${s.prefix}*`);
    assert.ok(leaseKeys.length > 0, 'the gateway keeps state in Redis');
    for (const id of s.ids) epochsBefore.set(id, (s.gw.router.sessions?.leaseOf(id)?.epoch ?? -1));
    const sending = sendDuring(s, 5_000);
    await admin.del(...leaseKeys); // all of it, as a restart without persistence loses it
    const inbound = await sending;
    await allBack(s, pairings, inbound);
    for (const id of s.ids) {
      const now = s.gw.router.sessions?.leaseOf(id)?.epoch ?? -1;
      assert.ok(now > (epochsBefore.get(id) ?? Infinity), `${id}: epoch ${epochsBefore.get(id)} -> ${now}`);
    }
  });
});
