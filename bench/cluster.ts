/**
 * Cluster: failover time of a killed host's sessions and rebalancing time to a new host. Real router processes
 * (each its own loopback address 127.0.0.x, HOST_ID, PUBLIC_URL and process group, one shard each) on Redis +
 * PostgreSQL + S3 (s3rver), real Baileys sockets against the WhatsApp simulator in this process. The cluster
 * harness is the one of test/cluster (test/cluster/helpers.ts): LEASE_TTL_MS=4000, LEASE_RENEW_INTERVAL_MS=1000,
 * HOST_DEAD_AFTER_MS=3000. Sessions are provisioned (bench/provision.ts: linked devices and auth state written
 * directly, no QR scan each), so 500 sessions take seconds to set up, not a pairing each.
 *
 *   node bench/cluster.ts                          # failover 100 and 500, rebalance 100, LB calls/s; writes docs/benchmarks.md ## cluster
 *   node bench/cluster.ts --sizes 20 --rebalance 20 --lb-seconds 5 --no-write
 *
 * Failover (each of --sizes): the first host claims N provisioned sessions alone (capacity N), two more hosts
 * join, then the first is SIGKILLed (router and shards); the clock runs until 95% and 100% of the sessions are
 * `connected` on the survivors (connected_at after the kill). Before the kill, HAProxy (deploy/haproxy/haproxy.cfg,
 * the reference setup) is started in front of the three routers and a closed loop of --lb-concurrency clients
 * (default 16) calls through it for --lb-seconds (default 10): GET /api/v1/sessions/:id and a text send between
 * two of the sessions (forwarded to the owner by the two other routers); calls/s and non-2xx are printed.
 * Rebalancing (--rebalance, default 100; 0 skips): one host with that many connected sessions (capacity N),
 * REBALANCE_INTERVAL_MS=1000, REBALANCE_MAX_MOVES_PER_INTERVAL=20, REBALANCE_TOLERANCE=0.05; a second, empty
 * host starts and the clock runs until both loads are within the tolerance of the mean, every session connected.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { provisionSessions } from './provision.ts';
import { writeBenchSection } from './report.ts';
import { listHosts, sessionRows, startCluster } from '../test/cluster/helpers.ts';
import type { Cluster } from '../test/cluster/helpers.ts';
import { tempDir } from '../test/harness/index.ts';
import { startHaproxy } from '../test/deploy/haproxy.ts';
import { Api, sessionTestEnv } from '../test/sessions/helpers.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (arg('sizes') ?? '100,500').split(',').map(Number);
const rebalanceSize = Number(arg('rebalance') ?? '100');
const lbSeconds = Number(arg('lb-seconds') ?? '10');
const lbConcurrency = Number(arg('lb-concurrency') ?? '16');
/** SESSION_LOGIN_RATE_PER_SECOND of every host (the gateway's default when not given). */
const loginRate = arg('login-rate');
/** SESSION_LOGIN_CONCURRENCY of every host (8 when not given). */
const loginConcurrency = arg('login-concurrency') ?? '8';
/** SESSION_PLACE_CONCURRENCY of every host (the gateway's default when not given). */
const placeConcurrency = arg('place-concurrency');
const write = !args.includes('--no-write');
for (const n of [...sizes, rebalanceSize, lbSeconds, lbConcurrency, Number(loginRate ?? '1'), Number(loginConcurrency)]) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`bench/cluster: sizes, --rebalance, --lb-seconds and --lb-concurrency take whole numbers >= 0 (got ${n})`);
}
if (sizes.some((n) => n < 2)) throw new Error('bench/cluster: --sizes needs at least 2 sessions each (the LB load sends between two)');
/** A host id that never announces itself: rows placed on it are orphans, claimed by the live hosts. */
const NOBODY = 'bench-provisioned';
/** The harness's lease TTL (test/cluster/helpers.ts), part of the failover goal. */
const LEASE_TTL_MS = 4000;

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) spent so far by the live processes of the process groups `pgids` (each host is
 * its own group: the router and every shard it forked), read from /proc.
 */
function groupCpuSeconds(pgids: readonly number[]): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read
    }
    // Fields after the parenthesised command: state ppid pgrp ... utime(14) stime(15), counted from pid = 1.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!pgids.includes(Number(f[2]))) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds the whole machine was busy (every process, all cores) since boot, from /proc/stat. */
function machineBusySeconds(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (f[3] ?? 0) - (f[4] ?? 0)) / TICKS_PER_SECOND;
}

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

/**
 * N linked sessions on the cluster's only host so far: provisioned (auth state in S3, rows desired=running on a
 * host that never announces), claimed by that host as orphans; resolves when all are connected on it.
 */
async function provisionOnFirstHost(c: Cluster, t: { after(fn: () => Promise<void>): void }, prefix: string, n: number): Promise<{ ids: string[]; jids: string[]; seconds: number }> {
  const p0 = Date.now();
  const dir = await tempDir(t);
  const config = loadConfig(sessionTestEnv(dir.path, { ...c.storesEnv, LOG_LEVEL: 'error' }));
  const logger = createRootLogger({ proc: 'bench', level: 'error' });
  const stores = await openStores(config, logger);
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  let made: { jid: string }[];
  try {
    made = await provisionSessions({ adminUrl: c.sim.urls.admin, blobs: stores.blobs, sql: stores.sql, logger, ids, batch: 250 });
    // Only rows the running host has not claimed yet (it may pick up the first batch while the second is written):
    // overwriting a claimed row's host would leave a connected session the wait below never counts.
    await stores.sql.query(`UPDATE sessions SET host_id = $2 WHERE id = ANY($1::text[]) AND host_id IS NULL`, [ids, NOBODY]);
  } finally {
    await stores.close();
  }
  const a = c.hosts[0]!;
  await until(
    `${n} provisioned sessions connected on the first host`,
    async () => [...(await sessionRows(c.sql, ids)).values()].filter((r) => r.status === 'connected' && r.host === a.id).length === n,
    Math.max(300_000, n * 1000),
  );
  return { ids, jids: made.map((m) => m.jid), seconds: (Date.now() - p0) / 1000 };
}

/** Closed-loop clients through HAProxy in front of the three routers for `seconds`: calls per second. */
async function lbCalls(c: Cluster, t: { after(fn: () => Promise<void>): void }, ids: string[], jids: string[], seconds: number): Promise<{ perSecond: number; calls: number; reads: number; sends: number; non2xx: number; sample: string }> {
  const binds = c.hosts.slice(0, 3).map((h) => new URL(h.url).host) as unknown as [string, string, string];
  const lb = await startHaproxy(t, binds);
  await until('haproxy to see three routers UP', async () => (await lb.stats()).every((x) => x.status === 'UP'), 15_000);
  const api = new Api(lb.url);
  let calls = 0;
  let sends = 0;
  let non2xx = 0;
  let sample = '';
  let n = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: lbConcurrency }, async (_, k) => {
      // Even clients only read, odd clients only send: a slow send does not hold reads back.
      const sender = k % 2 === 1;
      while (Date.now() < end) {
        const i = n++;
        const from = ids[i % ids.length]!;
        const r = !sender
          ? await api.call('GET', `/api/v1/sessions/${from}`).catch((e: unknown) => ({ status: 0, raw: Buffer.from(String(e)) }))
          : await api.call('POST', `/api/v1/sessions/${from}/messages`, { to: jids[(i + 1) % jids.length], type: 'text', text: `lb ${i}` }).catch((e: unknown) => ({ status: 0, raw: Buffer.from(String(e)) }));
        calls++;
        if (sender) sends++;
        if (r.status < 200 || r.status >= 300) {
          non2xx++;
          sample ||= `${r.status} ${r.raw.toString('utf8').slice(0, 160)}`;
        }
      }
    }),
  );
  const perSecond = Math.round(calls / ((Date.now() - t0) / 1000));
  await lb.stop();
  return { perSecond, calls, reads: calls - sends, sends, non2xx, sample };
}

async function failover(n: number): Promise<{ pairSeconds: number; p95Ms: number; allMs: number; spread: string; loginCpuS: number; boundMs: number; machineBusyPct: number; lb: Awaited<ReturnType<typeof lbCalls>> | null }> {
  const s = scope();
  try {
    const settings = {
      SESSION_LOGIN_CONCURRENCY: loginConcurrency,
      SHARD_MAX_SESSIONS: String(Math.max(n, 100)),
      LOG_LEVEL: 'error',
      ...(loginRate === undefined ? {} : { SESSION_LOGIN_RATE_PER_SECOND: loginRate }),
      ...(placeConcurrency === undefined ? {} : { SESSION_PLACE_CONCURRENCY: placeConcurrency }),
    };
    const c = await startCluster(s.t, 1, settings);
    const a = c.hosts[0]!;
    const { ids, jids, seconds: pairSeconds } = await provisionOnFirstHost(c, s.t, 'bf', n);
    await c.addHost();
    await c.addHost();
    await until('three hosts alive', async () => (await listHosts(a.api)).filter((h) => h.state === 'alive').length === 3, 30_000);
    const lb = lbSeconds > 0 ? await lbCalls(c, s.t, ids, jids, lbSeconds) : null;
    const survivors = c.hosts.slice(1).map((h) => h.child.pid as number);
    const cpu0 = groupCpuSeconds(survivors);
    const busy0 = machineBusySeconds();
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
      Math.max(180_000, n * 1000),
    );
    const allMs = Date.now() - t0;
    // What the survivors' routers and shards spent from the kill to the last login (claims, logins, status
    // writes, their idle work over that time), spread over the cores: the time the logins need at best.
    const loginCpuS = groupCpuSeconds(survivors) - cpu0;
    // How busy the whole box was meanwhile (the simulator, s3rver, PostgreSQL and Redis share the two cores).
    const machineBusyPct = Math.round((100 * (machineBusySeconds() - busy0)) / ((allMs / 1000) * os.cpus().length));
    const boundMs = Math.round((loginCpuS / os.cpus().length) * 1000);
    const spread = new Map<string, number>();
    for (const r of (await sessionRows(c.sql, ids)).values()) spread.set(r.host ?? '?', (spread.get(r.host ?? '?') ?? 0) + 1);
    const snap = c.sim.snapshot();
    if (snap.concurrentLoginViolations !== 0 || snap.supersededFrames !== 0) throw new Error(`violations: ${snap.concurrentLoginViolations} / ${snap.supersededFrames}`);
    return { pairSeconds, p95Ms, allMs, spread: [...spread.values()].join(' + '), loginCpuS, boundMs, machineBusyPct, lb };
  } finally {
    await s.close();
  }
}

async function rebalance(n: number): Promise<{ ms: number; moved: number }> {
  const s = scope();
  try {
    const settings = {
      SESSION_LOGIN_CONCURRENCY: loginConcurrency,
      SHARD_MAX_SESSIONS: String(n),
      REBALANCE_ENABLED: 'true',
      REBALANCE_INTERVAL_MS: '1000',
      REBALANCE_MAX_MOVES_PER_INTERVAL: '20',
      REBALANCE_TOLERANCE: '0.05',
      ...(loginRate === undefined ? {} : { SESSION_LOGIN_RATE_PER_SECOND: loginRate }),
    };
    const c = await startCluster(s.t, 1, settings);
    const a = c.hosts[0]!;
    const { ids } = await provisionOnFirstHost(c, s.t, 'br', n);
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

const load = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
const failLines: string[] = [];
const lbLines: string[] = [];
for (const n of sizes) {
  const f = await failover(n);
  const goalMs = LEASE_TTL_MS + Math.round(1.5 * f.boundMs);
  const met = f.allMs <= goalMs ? 'met' : 'NOT met';
  console.log(`failover ${n}: provisioned and connected in ${f.pairSeconds.toFixed(1)} s; 95% connected ${f.p95Ms} ms, 100% ${f.allMs} ms after the SIGKILL (spread ${f.spread}); survivors' CPU ${f.loginCpuS.toFixed(1)} s, login-CPU bound ${f.boundMs} ms, machine busy ${f.machineBusyPct}%, goal (TTL + 1.5x bound) ${goalMs} ms: ${met}`);
  failLines.push(`| ${n} | ${f.p95Ms} | ${f.allMs} | ${f.spread} | ${f.loginCpuS.toFixed(1)} | ${f.boundMs} | ${f.machineBusyPct}% | ${goalMs} (${met}) |`);
  if (f.lb !== null) {
    console.log(`haproxy + 3 routers (${n} sessions): ${f.lb.perSecond} calls/s (${f.lb.calls} calls: ${f.lb.reads} reads, ${f.lb.sends} sends; ${lbConcurrency} clients, ${lbSeconds} s), ${f.lb.non2xx} non-2xx${f.lb.sample ? ` (first: ${f.lb.sample})` : ''}`);
    lbLines.push(`| ${n} | ${lbConcurrency} | ${f.lb.perSecond} | ${f.lb.reads} / ${f.lb.sends} | ${f.lb.non2xx} |`);
  }
}
let rebalanceLine = 'not run';
if (rebalanceSize > 0) {
  const r = await rebalance(rebalanceSize);
  console.log(`rebalance ${rebalanceSize}: ${r.moved} sessions moved to the new host in ${r.ms} ms`);
  rebalanceLine = `${rebalanceSize} sessions on one host, a second empty host joins: ${r.moved} moved, loads within the tolerance after **${r.ms} ms**`;
}
const loadAfter = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
const command = ['node bench/cluster.ts', ...args].join(' ');
if (write) {
  const file = writeBenchSection(
    'cluster',
    `\`${command}\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}); load average (1/5/15 min)
${load} at the start, ${loadAfter} at the end (a load above the core count means the figures are inflated by other
work on the box). Router processes on 127.0.0.2-4, one shard each, Redis + PostgreSQL + s3rver, the simulator in
the bench process; sessions provisioned (bench/provision.ts), not paired. LEASE_TTL_MS=4000,
LEASE_RENEW_INTERVAL_MS=1000, HOST_DEAD_AFTER_MS=3000, SESSION_LOGIN_CONCURRENCY=${loginConcurrency}, SESSION_LOGIN_RATE_PER_SECOND=${loginRate ?? "10 (the default)"} per shard, which spaces logins only while a shard sees trouble (a failed login or a dropped socket in the last 30 s, docs/sessions.md); logins that succeed are bounded by SESSION_LOGIN_CONCURRENCY and the CPU.

Failover: the host holding every session is SIGKILLed (router and shards); time until 95% / 100% are connected
on the two survivors (no QR; zero simulator violations checked).

The login-CPU bound is the CPU the survivors' routers and shards spent from the kill until the last session was
connected, divided by the ${os.cpus().length} cores; the goal (issue #13) is 100% connected within the lease TTL plus 1.5x that bound.

| sessions | failover 95% (ms) | failover 100% (ms) | spread on survivors | survivors' CPU (s) | login-CPU bound (ms) | machine busy | goal: TTL + 1.5x bound (ms) |
|---|---|---|---|---|---|---|---|
${failLines.join('\n')}

Rebalancing (capacity N each, tolerance 0.05, at most 20 moves a second): ${rebalanceLine}.

Calls through HAProxy (deploy/haproxy/haproxy.cfg) in front of the three routers, before the kill: closed-loop
clients, half of them reading (GET /api/v1/sessions/:id), half sending texts between the sessions (two sends in three reach a router that
does not own the session and are forwarded to the owner). Each client waits for its call; a send returns after
the server ack, paced by the per-session send governor (docs/messaging.md): the sends are a cluster round-trip
figure, not HAProxy's ceiling; the reads show what the LB and the routers answer.

| sessions | clients | calls/s | reads / sends | non-2xx |
|---|---|---|---|---|
${lbLines.join('\n')}

The floor of failover is HOST_DEAD_AFTER_MS / the lease TTL (whichever ends later) plus one renewal tick;
the rest is logins (SESSION_LOGIN_CONCURRENCY per shard). The full run (failover 100 and 500 to 95%/100%, rebalance 100, 10 s
through HAProxy) is \`node bench/cluster.ts\` with no arguments, on a quiet box.`,
  );
  console.log(`wrote ${file}`);
}
