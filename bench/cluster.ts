/**
 * Cluster: failover time of a killed host's sessions and rebalancing time to a new host. Real router processes
 * (each its own loopback address 127.0.0.x, HOST_ID, PUBLIC_URL and process group, one shard each) on Redis +
 * PostgreSQL + S3 (s3rver), real Baileys sockets against the WhatsApp simulator in this process. The cluster
 * harness is the one of test/cluster (test/cluster/helpers.ts): LEASE_TTL_MS=4000, LEASE_RENEW_INTERVAL_MS=1000,
 * HOST_DEAD_AFTER_MS=3000.
 *
 *   node bench/cluster.ts                  # 100 sessions; writes docs/benchmarks.md ## cluster
 *   node bench/cluster.ts --sizes 50 --no-write
 *
 * Failover: three hosts, N sessions paired on the first, which is then SIGKILLed (router and shards); the
 * clock runs until 95% and 100% of the sessions are `connected` on the survivors (connected_at after the kill).
 * Rebalancing: one host with N connected sessions (capacity N), REBALANCE_INTERVAL_MS=1000,
 * REBALANCE_MAX_MOVES_PER_INTERVAL=20, REBALANCE_TOLERANCE=0.05; a second, empty host starts and the clock runs
 * until both loads are within the tolerance of the mean with every session connected.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBenchSection } from './report.ts';
import { listHosts, sessionRows, startCluster } from '../test/cluster/helpers.ts';
import { mapLimit, pairByQr } from '../test/sessions/helpers.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (arg('sizes') ?? '100').split(',').map(Number);
const write = !args.includes('--no-write');

/** The harness's cleanup hook, run in reverse order at the end of each measurement. */
function scope(): { t: { after(fn: () => Promise<void>): void }; close(): Promise<void> } {
  const fns: (() => Promise<void>)[] = [];
  return {
    t: { after: (fn) => fns.push(fn) },
    async close() {
      for (const fn of fns.reverse()) await fn().catch(() => undefined);
    },
  };
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function failover(n: number): Promise<{ pairSeconds: number; p95Ms: number; allMs: number; spread: string }> {
  const s = scope();
  try {
    const c = await startCluster(s.t, 3, { SESSION_LOGIN_CONCURRENCY: '8' });
    const a = c.hosts[0]!;
    const ids = Array.from({ length: n }, (_, i) => `bf-${i}`);
    const phones = ids.map((id) => c.sim.createPhone({ name: id }));
    const p0 = Date.now();
    await mapLimit(ids, 8, (id, i) => pairByQr(a.api, c.sim, phones[i]!, id, 180_000));
    const pairSeconds = (Date.now() - p0) / 1000;
    const t0 = Date.now();
    a.signal('SIGKILL');
    let p95Ms = 0;
    await until(
      'all sessions connected on the survivors',
      async () => {
        const rows = await sessionRows(c.sql, ids);
        const ok = [...rows.values()].filter((r) => r.status === 'connected' && r.host !== a.id && (r.connectedAt?.getTime() ?? 0) > t0).length;
        if (p95Ms === 0 && ok >= Math.ceil(n * 0.95)) p95Ms = Date.now() - t0;
        return ok === n;
      },
      180_000,
    );
    const allMs = Date.now() - t0;
    const spread = new Map<string, number>();
    for (const r of (await sessionRows(c.sql, ids)).values()) spread.set(r.host ?? '?', (spread.get(r.host ?? '?') ?? 0) + 1);
    const snap = c.sim.snapshot();
    if (snap.concurrentLoginViolations !== 0 || snap.supersededFrames !== 0) throw new Error(`violations: ${snap.concurrentLoginViolations} / ${snap.supersededFrames}`);
    return { pairSeconds, p95Ms, allMs, spread: [...spread.values()].join(' + ') };
  } finally {
    await s.close();
  }
}

async function rebalance(n: number): Promise<{ ms: number; moved: number }> {
  const s = scope();
  try {
    const settings = {
      SESSION_LOGIN_CONCURRENCY: '8',
      SHARD_MAX_SESSIONS: String(n),
      REBALANCE_ENABLED: 'true',
      REBALANCE_INTERVAL_MS: '1000',
      REBALANCE_MAX_MOVES_PER_INTERVAL: '20',
      REBALANCE_TOLERANCE: '0.05',
    };
    const c = await startCluster(s.t, 1, settings);
    const a = c.hosts[0]!;
    const ids = Array.from({ length: n }, (_, i) => `br-${i}`);
    const phones = ids.map((id) => c.sim.createPhone({ name: id }));
    await mapLimit(ids, 8, (id, i) => pairByQr(a.api, c.sim, phones[i]!, id, 180_000));
    const t0 = Date.now();
    const b = await c.addHost();
    let moved = 0;
    await until(
      'loads within the tolerance',
      async () => {
        const hosts = await listHosts(b.api);
        const la = hosts.find((h) => h.hostId === a.id)?.sessions ?? 0;
        const rows = await sessionRows(c.sql, ids);
        const onB = [...rows.values()].filter((r) => r.host === b.id && r.status === 'connected').length;
        moved = onB;
        return Math.abs(la / n - 0.5) <= 0.05 && la + onB === n;
      },
      180_000,
    );
    return { ms: Date.now() - t0, moved };
  } finally {
    await s.close();
  }
}

const lines: string[] = [];
for (const n of sizes) {
  const f = await failover(n);
  console.log(`failover ${n}: paired in ${f.pairSeconds.toFixed(1)} s; 95% connected ${f.p95Ms} ms, 100% ${f.allMs} ms after the SIGKILL (spread ${f.spread})`);
  const r = await rebalance(n);
  console.log(`rebalance ${n}: ${r.moved} sessions moved to the new host in ${r.ms} ms`);
  lines.push(`| ${n} | ${f.p95Ms} | ${f.allMs} | ${f.spread} | ${r.moved} | ${r.ms} |`);
}
if (write) {
  const file = writeBenchSection(
    'cluster',
    `\`node bench/cluster.ts\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), shared with other work; three router processes on
127.0.0.2-4, one shard each, Redis + PostgreSQL + s3rver, the simulator in the bench process. LEASE_TTL_MS=4000,
LEASE_RENEW_INTERVAL_MS=1000, HOST_DEAD_AFTER_MS=3000. Failover: the host holding every session is SIGKILLed
(router and shards); time until 95% / 100% are connected on the two survivors (no QR; zero violations checked).
Rebalancing: a new empty host next to one with N sessions (capacity N each, tolerance 0.05, at most 20 moves a
second); time until both are within the tolerance.

| sessions | failover 95% (ms) | failover 100% (ms) | spread on survivors | moved by rebalancing | rebalance (ms) |
|---|---|---|---|---|---|
${lines.join('\n')}

The floor of failover is HOST_DEAD_AFTER_MS / the lease TTL (whichever ends later) plus one renewal tick;
the rest is logins (SESSION_LOGIN_CONCURRENCY per shard). Not measured here: 500 sessions and calls per second
through a load balancer (the load-balancer setup is docs/deployment.md's).`,
  );
  console.log(`wrote ${file}`);
}
