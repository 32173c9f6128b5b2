/**
 * Where an idle session's memory goes (issue #17), separate from `npm test`:
 *
 *   node bench/shard-memory.ts --sessions 1000 [--shards 1] [--snapshot] [--no-bare] [--idle-seconds 20]
 *
 * Provisions N linked sessions (bench/provision.ts), starts a real router process with --shards shards, and
 * reads every process through bench/mem-probe.ts (preloaded with NODE_OPTIONS; SIGUSR2 makes it write
 * process.memoryUsage(), V8 heap spaces and /proc figures): once with no session, once with all N connected
 * and idle. The same for bench/scale-bare.ts (N plain Baileys sockets in one process). With --snapshot, a heap
 * snapshot of the first shard and of the bare process, summarised per session by constructor and retainer
 * (bench/heap-summary.ts). Prints the figures; writes nothing to docs. Loopback only.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { WaSimulator } from '@wagw/wa-sim';
import { BufferJSON } from '@whiskeysockets/baileys';
import type { AuthenticationCreds } from '@whiskeysockets/baileys';
import { createTestDatabase, startPrivateRedis, tempDir } from '../test/harness/index.ts';
import { Api, sessionTestEnv, startRouterProcess } from '../test/sessions/helpers.ts';
import { provisionSessions } from './provision.ts';
import { formatSummary, summarizeHeap } from './heap-summary.ts';
import { PROBE_DIR } from './mem-probe.ts';
import { MANY_SESSIONS_ENV } from './many-sessions-env.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const n = Number(arg('sessions') ?? '1000');
const shards = Number(arg('shards') ?? '1');
const idleSeconds = Number(arg('idle-seconds') ?? '20');
const snapshot = args.includes('--snapshot');
const bare = !args.includes('--no-bare');
/** Extra variables for the router (and, through shardEnvironment, whichever it passes on), e.g. MALLOC_ARENA_MAX=2. */
const extraEnv = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--env' ? [a.split('=') as [string, string]] : [])));
const PROBE = fileURLToPath(new URL('./mem-probe.ts', import.meta.url));
const NODE_OPTIONS = `${process.env['NODE_OPTIONS'] ?? ''} --import ${PROBE} --expose-gc`.trim();

const cleanups: (() => Promise<void>)[] = [];
const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
const log = (s: string): void => void process.stderr.write(`${s}\n`);

interface Probe {
  pid: number;
  memory: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  proc: Record<string, number>;
  handles: Record<string, number>;
}

async function probe(pid: number, timeoutMs = 600_000): Promise<Probe> {
  const file = path.join(PROBE_DIR, `${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  const t0 = Date.now();
  while (!existsSync(file)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`no probe answer from ${pid}`);
    await sleep(200);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Probe;
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function countConnected(api: Api): Promise<number> {
  let c = 0;
  let cursor: string | undefined;
  for (;;) {
    const r = await api.get<{ data: { status: string }[]; nextCursor?: string | null }>(`/api/v1/sessions?limit=500${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /api/v1/sessions: ${r.status}`);
    for (const s of r.body.data) if (s.status === 'connected') c++;
    if (!r.body.nextCursor) return c;
    cursor = r.body.nextCursor;
  }
}

const FIELDS = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const;
const kb = (b: number): string => String(Math.round(b / 1024));
function row(label: string, before: Probe[], after: Probe[], per: number): string {
  const sum = (ps: Probe[], f: (typeof FIELDS)[number]): number => ps.reduce((a, p) => a + p.memory[f], 0);
  const anon = (ps: Probe[]): number => ps.reduce((a, p) => a + (p.proc['RssAnon'] ?? 0) * 1024, 0);
  const cells = FIELDS.map((f) => `${kb(sum(after, f))} (${((sum(after, f) - sum(before, f)) / per / 1024).toFixed(1)})`);
  return `| ${label} | ${cells.join(' | ')} | ${((anon(after) - anon(before)) / per / 1024).toFixed(1)} |`;
}

async function snapshotOf(pid: number, label: string, per: number): Promise<void> {
  mkdirSync(PROBE_DIR, { recursive: true });
  writeFileSync(path.join(PROBE_DIR, `snapshot-${pid}`), '');
  try {
    await probe(pid);
  } finally {
    rmSync(path.join(PROBE_DIR, `snapshot-${pid}`), { force: true });
  }
  const file = path.join(PROBE_DIR, `${pid}.heapsnapshot`);
  log(`${label}: heap snapshot ${(statSync(file).size / 2 ** 20).toFixed(0)} MB`);
  console.log(`\n### ${label}: heap per session (self size by constructor, then first retainers)\n\`\`\`\n${formatSummary(summarizeHeap(file, { top: 30, retainers: 5 }), per)}\n\`\`\``);
  rmSync(file, { force: true });
}

try {
  const dir = await tempDir(t);
  const sim = await WaSimulator.create();
  t.after(() => sim.close());
  const caFile = path.join(dir.path, 'wa-sim-ca.pem');
  writeFileSync(caFile, sim.mediaCaPem);
  const [db, redis] = await Promise.all([createTestDatabase(t), startPrivateRedis(t)]);
  const env = sessionTestEnv(dir.path, {
    WA_WEBSOCKET_URL: sim.urls.ws,
    WA_ROOT_PUBLIC_KEY: sim.rootPublicKey.toString('base64'),
    WA_EXTRA_CA_FILE: caFile,
    WA_MEDIA_HOST: sim.media.hostPort,
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    SHARD_COUNT: String(shards),
    ...MANY_SESSIONS_ENV,
    NODE_OPTIONS,
    ...extraEnv,
  });
  const logger = createRootLogger({ proc: 'bench', level: 'error' });

  let router = await startRouterProcess(t, env);
  await sleep(3000);
  const pids0 = [router.child.pid as number, ...children(router.child.pid as number)];
  const base = await Promise.all(pids0.map((p) => probe(p)));
  await router.stop('SIGTERM');

  const stores = await openStores(loadConfig(env), logger);
  const ids = Array.from({ length: n }, (_, i) => `s${String(i).padStart(6, '0')}`);
  let t0 = Date.now();
  await provisionSessions({ adminUrl: sim.urls.admin, blobs: stores.blobs, sql: stores.sql, logger, ids, batch: 250, onProgress: (d, tot) => log(`  provision ${d}/${tot}`) });
  const bareCreds: AuthenticationCreds[] = [];
  if (bare) await provisionSessions({ adminUrl: sim.urls.admin, blobs: stores.blobs, sql: stores.sql, logger, ids: ids.map((id) => `bare-${id}`), batch: 250, insertRows: false, onCreds: (_id, c) => bareCreds.push(c) });
  await stores.close();
  log(`provisioned in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  t0 = Date.now();
  router = await startRouterProcess(t, env);
  const api = new Api(router.url);
  for (let last = 0; ; ) {
    const c = await countConnected(api).catch(() => 0);
    if (c >= n) break;
    if (Date.now() - last > 10_000) {
      log(`  connected ${c}/${n} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      last = Date.now();
    }
    await sleep(1000);
  }
  log(`all ${n} connected in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await sleep(10_000);
  const pids = [router.child.pid as number, ...children(router.child.pid as number)];
  const c0 = pids.reduce((a, p) => a + cpuMs(p), 0);
  await sleep(idleSeconds * 1000);
  const idleCpu = (pids.reduce((a, p) => a + cpuMs(p), 0) - c0) / (idleSeconds * 10);
  const loaded = await Promise.all(pids.map((p) => probe(p)));
  const [routerBase, ...shardBase] = base as [Probe, ...Probe[]];
  const [routerNow, ...shardNow] = loaded as [Probe, ...Probe[]];

  const lines = [
    `N = ${n}, ${shards} shard(s), idle CPU of router + shards ${idleCpu.toFixed(1)} % of a core over ${idleSeconds} s, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    '',
    '| process | rss KB (per session) | heapTotal | heapUsed | external | arrayBuffers | RssAnon per session KB |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('router', [routerBase], [routerNow], n),
    row(`shards (${shards})`, shardBase, shardNow, n),
  ];
  const handles = shardNow[0]?.handles ?? {};
  lines.push('', `active resources in shard 0: ${JSON.stringify(handles)}`);
  console.log(lines.join('\n'));
  if (snapshot && shardNow[0]) await snapshotOf(shardNow[0].pid, `shard 0 (per session: divided by N / shards = ${Math.round(n / shards)})`, Math.round(n / shards));
  await router.stop('SIGTERM');

  if (bare) {
    const run = async (creds: AuthenticationCreds[]): Promise<{ pid: number; stop: () => void }> => {
      const file = path.join(dir.path, `bare-${creds.length}.json`);
      writeFileSync(file, JSON.stringify(creds, BufferJSON.replacer));
      const child = spawn(process.execPath, [fileURLToPath(new URL('./scale-bare.ts', import.meta.url)), file, sim.urls.ws, sim.rootPublicKey.toString('base64')], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, NODE_OPTIONS, ...extraEnv },
      });
      t.after(async () => void child.kill('SIGKILL'));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`scale-bare exited ${String(code)}`)));
      });
      return { pid: child.pid as number, stop: () => child.kill('SIGKILL') };
    };
    const empty = await run([]);
    await sleep(2000);
    const b0 = await probe(empty.pid);
    empty.stop();
    const full = await run(bareCreds);
    await sleep(10_000);
    const bc0 = cpuMs(full.pid);
    await sleep(idleSeconds * 1000);
    const bareCpu = (cpuMs(full.pid) - bc0) / (idleSeconds * 10);
    const b1 = await probe(full.pid);
    console.log([`\nbare Baileys, ${n} sockets in one process: idle CPU ${bareCpu.toFixed(1)} %`, '', '| process | rss KB (per session) | heapTotal | heapUsed | external | arrayBuffers | RssAnon per session KB |', '|---|---:|---:|---:|---:|---:|---:|', row('bare', [b0], [b1], n)].join('\n'));
    if (snapshot) await snapshotOf(full.pid, 'bare Baileys', n);
    full.stop();
  }
} finally {
  for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log(`cleanup: ${String(err)}`));
}
