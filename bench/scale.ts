/**
 * Sessions on one host (issue #17), separate from `npm test`:
 *
 *   npm run bench:scale -- --sessions 10000            # one size
 *   npm run bench:scale -- --sizes 1000,2500,5000,10000 --shards 8
 *   npm run bench:scale -- --sessions 200 --no-write   # smoke
 *   npm run bench:scale -- --sessions 5000 --no-bare --env SESSION_PLACE_CONCURRENCY=32   # a router setting
 *   npm run bench:scale -- --sessions 1000 --no-bare --no-write --cpu-prof /tmp/prof
 *       # then: node bench/messages-profile.ts /tmp/prof --phase idle-1000   (where the idle CPU goes)
 *
 * Provisions max(sizes) linked sessions once (bench/provision.ts in --provision-workers threads: no QR; plus as
 * many for the bare baseline), desired = 'stopped'; per size N the first N are set to 'running'. Per size: starts a real router process with
 * --shards shards on PostgreSQL + a private redis-server + a local DATA_DIR, waits until all N are connected,
 * then measures RSS summed over router + shards (from /proc) against the same processes' RSS before any
 * session, idle CPU over --idle-seconds, control-plane timings (GET /api/v1/sessions page, /metrics, /health),
 * a shard SIGKILL (time until its sessions are connected again), and a full restart (SIGTERM the router,
 * start it again, time to all connected) next to the login-CPU bound (CPU the processes spent logging in /
 * cores). The same run opens N bare Baileys sockets (bench/scale-bare.ts, one process) for the baseline.
 * The simulator runs in its own process (bench/wa-sim-server.ts): a busy bench event loop (polling, /proc
 * reads) would otherwise delay its answers; its RSS and CPU per live socket are printed next to the gateway's.
 * Memory: the gateway's sessions are stopped (router SIGTERM) before the bare process starts, so at most one
 * side's N sockets are alive at a time (10,000 x ~1.3 MB gateway, or x ~0.8 MB bare, plus the simulator).
 * Every process opens about one descriptor per socket: the bench checks `ulimit -n` first. Loopback only.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { BufferJSON } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, KeyPair } from '@whiskeysockets/baileys';
import { createTestDatabase, startPrivateRedis, tempDir } from '../test/harness/index.ts';
import { Api, sessionTestEnv, startRouterProcess } from '../test/sessions/helpers.ts';
import type { RouterProcess } from '../test/sessions/helpers.ts';
import { provisionInWorkers } from './provision-worker.ts';
import { writeBenchSection } from './report.ts';
import { MANY_SESSIONS_ENV } from './many-sessions-env.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (arg('sizes') ?? arg('sessions') ?? '1000').split(',').map(Number);
const shards = Number(arg('shards') ?? String(Math.max(2, Math.ceil(Math.max(...sizes) / 1250))));
const idleSeconds = Number(arg('idle-seconds') ?? '20');
const write = !args.includes('--no-write');
const bare = !args.includes('--no-bare');
const PAGE = 100;
/** --cpu-prof DIR: router and shards run with --cpu-prof (NODE_OPTIONS reaches the shards); DIR/phases.json holds
 * each size's idle window (monotonic µs, the profiles' clock) for bench/messages-profile.ts. */
const cpuProfDir = arg('cpu-prof');
/** --env KEY=VALUE (repeatable): router settings over bench/many-sessions-env.ts, e.g. SESSION_PLACE_CONCURRENCY=32. */
const envOverrides = Object.fromEntries(
  args.flatMap((a, i) => (a === '--env' && args[i + 1]?.includes('=') ? [args[i + 1] as string] : [])).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const phases: { name: string; startUs: number; endUs: number; count: number }[] = [];
let profiledPids: { router: number; shards: number[] } | undefined;
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
const provisionWorkers = Number(arg('provision-workers') ?? String(Math.min(os.availableParallelism(), 4)));
const maxN = Math.max(...sizes);
if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--sizes/--sessions: positive integers, got ${sizes.join(',')}`);
/** Waits scale with N (a login is ~40 ms of CPU; 2 cores shared): 2 min + 100 ms per session. */
const waitLimitMs = (n: number): number => 120_000 + n * 100;

// Each socket is a descriptor in the client process (a shard, or the bare process) and one in the simulator.
{
  const soft = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '0';
  const need = maxN + 2048;
  if (soft !== 'unlimited' && Number(soft) < need) {
    throw new Error(`ulimit -n is ${soft}; ${maxN} sessions need at least ${need} descriptors per process (the simulator holds one per socket). Raise it first, e.g. \`ulimit -n ${Math.max(need, 65536)}\` (hard limit: \`ulimit -Hn\`).`);
  }
}

const cleanups: (() => Promise<void>)[] = [];
const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
const progress = (what: string, done: number, total: number, t0: number): void => {
  process.stderr.write(`  ${what}: ${done}/${total} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
};

interface ProcStat {
  rss: number;
  cpuMs: number;
}
const TICK_MS = 10; // USER_HZ = 100 on Linux
function procStat(pid: number): ProcStat {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? '0');
    return { rss: rssKb * 1024, cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return { rss: 0, cpuMs: 0 };
  }
}
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
/** The router and its shard processes (and their pool workers are threads: counted in the shard). */
function tree(pid: number): ProcStat & { pids: number[] } {
  const pids = [pid, ...children(pid)];
  let rss = 0;
  let cpuMs = 0;
  for (const p of pids) {
    const s = procStat(p);
    rss += s.rss;
    cpuMs += s.cpuMs;
  }
  return { rss, cpuMs, pids };
}

/**
 * CPU ms by thread kind over router + shards (/proc/<pid>/task/<tid>/stat; the name is the thread's comm): the
 * main JS thread is the process's own name, V8's GC and compiler threads "V8Worker", libuv's pool
 * "libuv-worker", a worker thread (piscina) its own. A CPU profile sees only the main thread's JS.
 */
function threadCpu(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = tid === String(pid) ? 'main JS thread' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(`${name} user`, (out.get(`${name} user`) ?? 0) + Number(f[11]) * TICK_MS);
        out.set(`${name} sys`, (out.get(`${name} sys`) ?? 0) + Number(f[12]) * TICK_MS);
      } catch {
        // the thread ended
      }
    }
  }
  return out;
}
/** "name user a%, name sys b%, ..." of one core, by thread kind, between two threadCpu() readings over `ms`. */
function threadCpuDelta(a: Map<string, number>, b: Map<string, number>, ms: number): string {
  return [...b.entries()]
    .map(([name, v]) => [name, ((v - (a.get(name) ?? 0)) / ms) * 100] as const)
    .filter(([, pct]) => pct >= 0.05)
    .sort((x, y) => y[1] - x[1])
    .map(([name, pct]) => `${name} ${pct.toFixed(1)}%`)
    .join(', ');
}

async function countConnected(api: Api, since = 0): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  for (;;) {
    const r = await api.get<{ data: { status: string; connectedAt?: string }[]; nextCursor?: string | null }>(
      `/api/v1/sessions?limit=500${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`,
    );
    if (r.status !== 200) throw new Error(`GET /api/v1/sessions: ${r.status} ${r.raw.toString().slice(0, 200)}`);
    for (const s of r.body.data) if (s.status === 'connected' && (since === 0 || Date.parse(s.connectedAt ?? '') >= since)) n++;
    if (!r.body.nextCursor) return n;
    cursor = r.body.nextCursor;
  }
}

async function waitAll(api: Api, n: number, what: string, since = 0, timeoutMs = waitLimitMs(n)): Promise<number> {
  const t0 = Date.now();
  let last = 0;
  for (;;) {
    const c = await countConnected(api, since).catch(() => -1);
    if (c >= n) return Date.now() - t0;
    if (Date.now() - last > 5000) {
      progress(what, Math.max(c, 0), n, t0);
      last = Date.now();
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: ${c}/${n} after ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function timed(fn: () => Promise<unknown>, runs = 5): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return Math.round((ms[Math.floor(ms.length / 2)] ?? 0) * 10) / 10;
}

/**
 * One control-plane histogram of the router's /metrics (prom-client text), summed over its label sets (or those
 * whose labels contain `match`): observations, mean, and the bucket bound under which 99% and all of them fell.
 */
interface HistSummary {
  count: number;
  meanMs: number;
  p99LeMs: number;
  maxLeMs: number;
}
function histogram(text: string, name: string, match = '', since = ''): HistSummary {
  const buckets = new Map<number, number>();
  // `since`: an earlier scrape of the same router; what it held is subtracted (this phase's observations only).
  const before = since === '' ? undefined : rawHistogram(since, name, match);
  const now = rawHistogram(text, name, match);
  for (const [le, c] of now.buckets) buckets.set(le, c - (before?.buckets.get(le) ?? 0));
  const sum = now.sum - (before?.sum ?? 0);
  const count = now.count - (before?.count ?? 0);
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const le = (q: number): number => (sorted.find(([, c]) => c >= q * count)?.[0] ?? NaN) * 1000;
  return { count, meanMs: count ? Math.round((sum / count) * 10000) / 10 : 0, p99LeMs: count ? le(0.99) : 0, maxLeMs: count ? le(1) : 0 };
}
function rawHistogram(text: string, name: string, match: string): { buckets: Map<number, number>; sum: number; count: number } {
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !line.includes(match)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(`${name}_bucket`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1] ?? '+Inf';
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    } else if (line.startsWith(`${name}_sum`)) sum += value;
    else if (line.startsWith(`${name}_count`)) count += value;
  }
  return { buckets, sum, count };
}
const fmtHist = (h: HistSummary): string => (h.count ? `${h.meanMs} (p99 ≤ ${h.p99LeMs}, max ≤ ${h.maxLeMs}; ${h.count})` : '-');
/** The control-plane histograms the issue asks to stay fast at 10,000 sessions, from the router's /metrics. */
async function controlPlane(api: Api): Promise<Record<'renew' | 'reconcile' | 'placement', HistSummary>> {
  const text = (await api.get('/metrics')).raw.toString();
  return {
    renew: histogram(text, 'wagw_lease_renew_round_seconds'),
    reconcile: histogram(text, 'wagw_reconcile_pass_seconds'),
    placement: histogram(text, 'wagw_session_placement_seconds', 'outcome="ok"'),
  };
}

interface Row {
  n: number;
  provisionS: number;
  connectS: number;
  baseMb: number;
  rssMb: number;
  perSessionKb: number;
  idleCpuPct: number;
  loginCpuS: number;
  restartS: number;
  boundS: number;
  killS: number;
  pageMs: number;
  metricsMs: number;
  healthMs: number;
  /** Router histograms over the connect + idle phase (renewal rounds, reconcile passes) and the restart (placements). */
  renew: HistSummary;
  reconcile: HistSummary;
  placement: HistSummary;
  /** The login-CPU bound of the shard SIGKILL's sessions, and their placements (reason "recover"). */
  killBoundS: number;
  killPlacement: HistSummary;
  bareConnectS?: number;
  barePerSessionKb?: number;
  bareIdleCpuPct?: number;
  /** The simulator's RSS per live socket and its idle CPU, while the gateway's N sessions were connected. */
  simPerSocketKb: number;
  simIdleCpuPct: number;
  /** The gateway's idle CPU by thread kind (threadCpuDelta). */
  idleThreads: string;
  bareIdleThreads?: string;
  /** Idle CPU of router + shards with no session. */
  baseIdleCpuPct: number;
}

interface SimChild {
  admin: string;
  ws: string;
  pid: number;
  rootPublicKey: string;
  mediaCaPem: string;
  mediaHostPort: string;
}

async function startSimProcess(): Promise<SimChild> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./wa-sim-server.ts', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(async () => {
    // Closing stdin stops it; SIGKILL after 2 s if not. (An unref'd timer here let the event loop empty before it
    // fired: the bench then exited 13, "unsettled top-level await", before printing its table.)
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) {
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2000)]);
    }
    child.kill('SIGKILL');
  });
  return new Promise<SimChild>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as SimChild);
    });
    child.on('exit', (code) => reject(new Error(`wa-sim-server exited ${String(code)}`)));
  });
}

interface Shared {
  dir: string;
  sim: SimChild;
  simBase: ProcStat;
  env: Record<string, string>;
  base: ProcStat;
  /** Idle CPU (% of a core) of router + shards with no session. */
  baseIdleCpuPct: number;
  ids: string[];
  bareCreds: { creds: AuthenticationCreds; preKeys: Record<string, KeyPair> }[];
  provisionS: number;
}

/** One simulator, database, redis and data directory for all sizes; max(sizes) sessions provisioned once. */
async function setup(): Promise<Shared> {
  const dir = await tempDir(t);
  const sim = await startSimProcess();
  const caFile = path.join(dir.path, 'wa-sim-ca.pem');
  writeFileSync(caFile, sim.mediaCaPem);
  const [db, redis] = await Promise.all([createTestDatabase(t), startPrivateRedis(t)]);
  const env = sessionTestEnv(dir.path, {
    WA_WEBSOCKET_URL: sim.ws,
    WA_ROOT_PUBLIC_KEY: sim.rootPublicKey,
    WA_EXTRA_CA_FILE: caFile,
    WA_MEDIA_HOST: sim.mediaHostPort,
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    SHARD_COUNT: String(shards),
    // Room for every session on the shards (the default 1,000 per shard left 500 of 2,500 unplaced on 2 shards).
    SHARD_MAX_SESSIONS: String(Math.max(1000, Math.ceil((maxN / shards) * 1.5))),
    ...MANY_SESSIONS_ENV,
    ...envOverrides,
    ...(cpuProfDir === undefined ? {} : { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${path.resolve(cpuProfDir)}`.trim() }),
  });

  // Baseline: a router with no session (it also creates the schema).
  const router = await startRouterProcess(t, env);
  await sleep(3000);
  const base = tree(router.child.pid as number);
  // The idle CPU of router + shards with no session (after 5 s more of settling: start-up's compiling and
  // first timers): what the gateway's processes cost before any socket.
  await sleep(5000);
  const settled = tree(router.child.pid as number);
  await sleep(10_000);
  const baseIdleCpuPct = Math.round(((tree(router.child.pid as number).cpuMs - settled.cpuMs) / 10_000) * 1000) / 10;
  await router.stop('SIGTERM');

  const ids = Array.from({ length: maxN }, (_, i) => `s${String(i).padStart(6, '0')}`);
  const t0 = Date.now();
  let last = 0;
  const tick = (what: string) => (d: number, tot: number): void => {
    if (Date.now() - last < 3000 && d < tot) return;
    last = Date.now();
    progress(what, d, tot, t0);
  };
  // Worker threads (bench/provision-worker.ts): the signature in each session's fresh creds is the cost.
  await provisionInWorkers({ env, adminUrl: sim.admin, ids, workers: provisionWorkers, desired: 'stopped', onProgress: tick('provision gateway') });
  const bareCreds: Shared['bareCreds'] = bare
    ? (await provisionInWorkers({ env, adminUrl: sim.admin, ids: ids.map((id) => `bare-${id}`), workers: provisionWorkers, insertRows: false, wantCreds: true, onProgress: tick('provision bare') })).creds
    : [];
  return { dir: dir.path, sim, simBase: procStat(sim.pid), env, base, baseIdleCpuPct, ids, bareCreds, provisionS: Math.round((Date.now() - t0) / 1000) };
}

async function setDesired(sh: Shared, n: number): Promise<void> {
  const config = loadConfig(sh.env);
  const stores = await openStores(config, createRootLogger({ proc: 'bench', level: 'error' }));
  try {
    await stores.sql.query(`UPDATE sessions SET desired = CASE WHEN id <= $1 THEN 'running' ELSE 'stopped' END`, [sh.ids[n - 1]]);
  } finally {
    await stores.close();
  }
}

async function runSize(sh: Shared, n: number): Promise<Row> {
  const { env, base, sim } = sh;
  await setDesired(sh, n);
  let router: RouterProcess;
  const startAt = Date.now();
  router = await startRouterProcess(t, env);
  const api = new Api(router.url);
  // connectedAt after this start: a row left 'connected' by the previous size's run does not count.
  const connectMs = await waitAll(api, n, 'connect', startAt);
  await sleep(5000);
  const loaded = tree(router.child.pid as number);
  const simLoaded = procStat(sim.pid);
  const idleStartUs = monoUs();
  const threads0 = threadCpu(loaded.pids);
  await sleep(idleSeconds * 1000);
  const idle = tree(router.child.pid as number);
  const idleThreads = threadCpuDelta(threads0, threadCpu(loaded.pids), idleSeconds * 1000);
  process.stderr.write(`  idle CPU by thread (% of a core, router + shards): ${idleThreads}\n`);
  phases.push({ name: `idle-${n}`, startUs: idleStartUs, endUs: monoUs(), count: n });
  profiledPids ??= { router: router.child.pid as number, shards: children(router.child.pid as number) };
  const simIdle = procStat(sim.pid);
  const idleCpuPct = Math.round(((idle.cpuMs - loaded.cpuMs) / (idleSeconds * 1000)) * 1000) / 10;

  const pageMs = await timed(() => api.get(`/api/v1/sessions?limit=${PAGE}`));
  const metricsMs = await timed(() => api.get('/metrics'));
  const healthMs = await timed(() => api.get('/health'));
  const steady = await controlPlane(api);
  process.stderr.write(`  control plane: page ${pageMs} ms, /metrics ${metricsMs} ms, /health ${healthMs} ms; renewal round ${fmtHist(steady.renew)} ms, reconcile pass ${fmtHist(steady.reconcile)} ms\n`);

  // Shard SIGKILL: the first shard holds about N / shards sessions. Its login-CPU bound: the CPU router and
  // shards spent until all were connected again (the survivors and the replacement; the victim's own CPU is
  // left out), less what they would have spent idle over that time, divided by the cores.
  const victim = children(router.child.pid as number)[0];
  const preKill = tree(router.child.pid as number);
  const preKillMetrics = (await api.get('/metrics')).raw.toString();
  const survivorsCpuMs = preKill.cpuMs - (victim === undefined ? 0 : procStat(victim).cpuMs);
  if (victim !== undefined) process.kill(victim, 'SIGKILL');
  await sleep(1000);
  const killMs = (await waitAll(api, n, 'after shard SIGKILL', 0, waitLimitMs(Math.ceil(n / shards)))) + 1000;
  const killCpuMs = tree(router.child.pid as number).cpuMs - survivorsCpuMs - (idleCpuPct / 100) * killMs;
  const recovered = histogram((await api.get('/metrics')).raw.toString(), 'wagw_session_placement_seconds', 'reason="recover",outcome="ok"', preKillMetrics);
  process.stderr.write(`  after shard SIGKILL: ${(killMs / 1000).toFixed(1)} s, login CPU ${(killCpuMs / 1000).toFixed(1)} s (bound ${(killCpuMs / os.cpus().length / 1000).toFixed(1)} s), placements ${fmtHist(recovered)} ms\n`);

  // Full restart: SIGTERM, start again, all connected (connectedAt after the new start).
  const beforeStop = tree(router.child.pid as number);
  await router.stop('SIGTERM');
  const restartAt = Date.now();
  router = await startRouterProcess(t, env);
  const api2 = new Api(router.url);
  const restartMs = await waitAll(api2, n, 'restart', restartAt);
  const after = tree(router.child.pid as number);
  // Placements of the restart (every session, in batches): the time each took until its shard answered.
  const restore = await controlPlane(api2);
  process.stderr.write(`  restart: placement ${fmtHist(restore.placement)} ms, renewal round ${fmtHist(restore.renew)} ms\n`);
  await router.stop('SIGTERM');
  void beforeStop;

  const row: Row = {
    n,
    provisionS: sh.provisionS,
    connectS: Math.round(connectMs / 100) / 10,
    baseMb: Math.round(base.rss / 1048576),
    rssMb: Math.round(loaded.rss / 1048576),
    perSessionKb: Math.round((loaded.rss - base.rss) / n / 1024),
    idleCpuPct,
    loginCpuS: Math.round(after.cpuMs / 100) / 10,
    restartS: Math.round(restartMs / 100) / 10,
    boundS: Math.round(after.cpuMs / os.cpus().length / 100) / 10,
    killS: Math.round(killMs / 100) / 10,
    killBoundS: Math.round(killCpuMs / os.cpus().length / 100) / 10,
    killPlacement: recovered,
    pageMs,
    metricsMs,
    healthMs,
    renew: steady.renew,
    reconcile: steady.reconcile,
    placement: restore.placement,
    idleThreads,
    baseIdleCpuPct: sh.baseIdleCpuPct,
    simPerSocketKb: Math.round((simLoaded.rss - sh.simBase.rss) / n / 1024),
    simIdleCpuPct: Math.round(((simIdle.cpuMs - simLoaded.cpuMs) / (idleSeconds * 1000)) * 1000) / 10,
  };

  if (bare) {
    // The gateway is stopped (router SIGTERM above): only the bare sockets are alive now.
    const credsFile = path.join(sh.dir, 'bare-creds.json');
    writeFileSync(credsFile, JSON.stringify(sh.bareCreds.slice(0, n), BufferJSON.replacer));
    const bareStart = Date.now();
    const child = spawn(process.execPath, [fileURLToPath(new URL('./scale-bare.ts', import.meta.url)), credsFile, sim.ws, sim.rootPublicKey], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(async () => void child.kill('SIGKILL'));
    const baseBare = await new Promise<ProcStat>((resolve) => setTimeout(() => resolve(procStat(child.pid as number)), 300));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        out = lines.pop() ?? '';
        for (const l of lines) {
          if (l.startsWith('ready')) resolve();
          else process.stderr.write(`  bare ${l}/${n}\n`);
        }
      });
      child.on('exit', (code) => reject(new Error(`scale-bare exited ${String(code)}`)));
      setTimeout(() => reject(new Error(`bare: not all ${n} open after ${waitLimitMs(n)} ms`)), waitLimitMs(n)).unref();
    });
    row.bareConnectS = Math.round((Date.now() - bareStart) / 100) / 10;
    await sleep(5000);
    const b1 = procStat(child.pid as number);
    const bt0 = threadCpu([child.pid as number]);
    await sleep(idleSeconds * 1000);
    const b2 = procStat(child.pid as number);
    row.bareIdleThreads = threadCpuDelta(bt0, threadCpu([child.pid as number]), idleSeconds * 1000);
    process.stderr.write(`  bare idle CPU by thread (% of a core): ${row.bareIdleThreads}\n`);
    row.barePerSessionKb = Math.round((b1.rss - baseBare.rss) / n / 1024);
    row.bareIdleCpuPct = Math.round(((b2.cpuMs - b1.cpuMs) / (idleSeconds * 1000)) * 1000) / 10;
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  }
  return row;
}

const rows: Row[] = [];
try {
  process.stderr.write(`provisioning ${maxN} sessions${bare ? ` + ${maxN} bare` : ''}\n`);
  const sh = await setup();
  for (const n of [...sizes].sort((a, b) => a - b)) {
    process.stderr.write(`size ${n} (${shards} shards)\n`);
    const row = await runSize(sh, n);
    process.stderr.write(`${JSON.stringify(row)}\n`);
    rows.push(row);
  }
} finally {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  // Only the processes of the first size's start are named: their profiles hold that size's idle window (the
  // shard SIGKILLed after it leaves none).
  if (cpuProfDir !== undefined) writeFileSync(path.join(cpuProfDir, 'phases.json'), `${JSON.stringify({ ...profiledPids, phases: phases.slice(0, 1) }, null, 2)}\n`);
}

const table = [
  '| sessions | connect s | router+shards RSS MB (0 sessions) | RSS MB | marginal KB/session | bare Baileys KB/session | idle CPU % (gateway / bare) | restart to all connected s | login-CPU bound s | shard SIGKILL to all connected s | sessions page / metrics / health ms | simulator KB/socket, idle CPU % |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.n} | ${r.connectS} | ${r.baseMb} | ${r.rssMb} | ${r.perSessionKb} | ${r.barePerSessionKb ?? '-'} | ${r.idleCpuPct} / ${r.bareIdleCpuPct ?? '-'} | ${r.restartS} | ${r.boundS} | ${r.killS} | ${r.pageMs} / ${r.metricsMs} / ${r.healthMs} | ${r.simPerSocketKb}, ${r.simIdleCpuPct} |`,
  ),
].join('\n');
// Marginal cost as the slope between consecutive sizes: what one more idle session adds. The per-session
// figures above divide by N the growth over a fresh, empty process (the router and shards measured 3 s after start,
// the bare process 0.3 s after spawn), so they also carry one-off growth (code compiled during the logins, heap
// and allocator reservations), spread over N: large at 1,000, small at 10,000.
const bareTotalKb = (r: Row): number | undefined => (r.barePerSessionKb === undefined ? undefined : r.barePerSessionKb * r.n);
const slopeTable = [
  '| sessions | gateway RSS KB per session added | bare RSS KB per session added | ratio | gateway idle CPU % per 1,000 added | bare idle CPU % per 1,000 added |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.slice(1).map((r, i) => {
    const p = rows[i] as Row;
    const dn = r.n - p.n;
    const gw = ((r.rssMb - p.rssMb) * 1024) / dn;
    const b1 = bareTotalKb(r);
    const b0 = bareTotalKb(p);
    const bare = b1 === undefined || b0 === undefined ? undefined : (b1 - b0) / dn;
    const cpu = ((r.idleCpuPct - p.idleCpuPct) / dn) * 1000;
    const bareCpu = r.bareIdleCpuPct === undefined || p.bareIdleCpuPct === undefined ? undefined : ((r.bareIdleCpuPct - p.bareIdleCpuPct) / dn) * 1000;
    return `| ${p.n} to ${r.n} | ${gw.toFixed(0)} | ${bare?.toFixed(0) ?? '-'} | ${bare ? (gw / bare).toFixed(2) : '-'} | ${cpu.toFixed(2)} | ${bareCpu?.toFixed(2) ?? '-'} |`;
  }),
].join('\n');
const threadTable = [
  '| sessions | gateway idle CPU % with no session | gateway idle CPU by thread (% of a core, router + shards) | bare idle CPU by thread |',
  '|---:|---:|---|---|',
  ...rows.map((r) => `| ${r.n} | ${r.baseIdleCpuPct} | ${r.idleThreads} | ${r.bareIdleThreads ?? '-'} |`),
].join('\n');
const controlTable = [
  '| sessions | lease renewal round ms: mean (p99, max; rounds) | reconcile pass ms | placement at the restart ms (every session) | shard SIGKILL: to all connected s / its login-CPU bound s / placements ms |',
  '|---:|---|---|---|---|',
  ...rows.map((r) => `| ${r.n} | ${fmtHist(r.renew)} | ${fmtHist(r.reconcile)} | ${fmtHist(r.placement)} | ${r.killS} / ${r.killBoundS} / ${fmtHist(r.killPlacement)} |`),
].join('\n');
console.log(table);
console.log(controlTable);
console.log(slopeTable);
console.log(threadTable);
if (write) {
  writeBenchSection(
    'scale',
    [
      `\`npm run bench:scale -- --sizes ${sizes.join(',')} --shards ${shards}${Object.entries(envOverrides).map(([k, v]) => ` --env ${k}=${v}`).join('')}\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), load average ${os.loadavg()[0]?.toFixed(1)} at the end (the box is shared with other engineers' work), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM.`,
      `Sessions provisioned by bench/provision.ts (no QR); a real router process on PostgreSQL + a private redis-server + local auth blobs; the simulator in its own process. Sessions provisioned once for the largest size (provisioning took ${rows[0] ? rows[0].provisionS : '-'} s for all of them, gateway and bare), the first N of them per size; gateway and bare sockets are never alive at the same time. RSS summed over router + shards from /proc; the bare baseline is one process of plain Baileys sockets with in-memory keys. The login-CPU bound is the CPU router + shards spent until all were connected after the restart, divided by the cores.`,
      '',
      table,
      '',
      'Marginal cost, as the slope between consecutive sizes (what one more idle session adds; the per-session columns above also carry one-off growth over a fresh process, spread over N):',
      '',
      slopeTable,
      '',
      'Control plane, from the router\'s histograms (`wagw_lease_renew_round_seconds`, `wagw_reconcile_pass_seconds` over the connect and idle phase; `wagw_session_placement_seconds` over the restart, one placement: lease claim, row write and the shard\'s answer to `session.start` once it loaded the auth state, not the login); p99 and max are bucket bounds:',
      '',
      controlTable,
      '',
      'Idle CPU by thread kind (from /proc/<pid>/task: the main JS thread, V8\'s GC/compiler threads "V8Worker", libuv\'s pool, worker threads):',
      '',
      threadTable,
    ].join('\n'),
  );
}
