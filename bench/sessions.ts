/**
 * Sessions: restore time after a shard SIGKILL, marginal memory per idle connected session, projected sessions
 * per host. Real Baileys sockets in real shard processes against the WhatsApp simulator (in this process).
 *
 *   node bench/sessions.ts                    # 100 and 500 sessions; writes docs/benchmarks.md ## sessions
 *   node bench/sessions.ts --sizes 50 --no-write
 *   node bench/sessions.ts --memory-limit-gb 8 --login-concurrency 4
 *
 * For each size N: one shard (run with --expose-gc) pairs N sessions by QR (bounded concurrency); its RSS is
 * read after a full GC before the first session and again with N idle connected sessions, which gives the
 * marginal RSS per session. A second shard is added, the first is SIGKILLed, and the clock runs until every
 * session is `connected` again (with a connectedAt after the kill) on the surviving or restarted shard.
 * Embedded stores (in-process directory, local blobs, PGlite) in a temporary DATA_DIR.
 */
import { writeBenchSection } from './report.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { composeGateway } from '@wagw/router';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import { WaSimulator } from '@wagw/wa-sim';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (arg('sizes') ?? '100,500').split(',').map(Number);
const memoryLimitGb = Number(arg('memory-limit-gb') ?? '4');
const loginConcurrency = arg('login-concurrency') ?? '4';
const write = !args.includes('--no-write');
const logLevel = arg('log') ?? 'fatal';

interface Row {
  n: number;
  pairSeconds: number;
  restoreMs: number;
  baseRssMb: number;
  rssMb: number;
  perSessionKb: number;
  heapPerSessionKb: number;
}

async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

async function runSize(n: number): Promise<Row> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-bench-sessions-'));
  const sim = await WaSimulator.create();
  const caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, sim.mediaCaPem);
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'fatal',
    PORT: '0',
    HOST_ID: 'bench',
    DATA_DIR: dir,
    SHARD_COUNT: '1',
    SHARD_MAX_SESSIONS: String(Math.max(1000, n)),
    WORKER_THREADS: '1',
    IPC_CALL_TIMEOUT_MS: '60000',
    SESSION_LOGIN_CONCURRENCY: loginConcurrency,
    WA_WEBSOCKET_URL: sim.urls.ws,
    WA_ROOT_PUBLIC_KEY: sim.rootPublicKey.toString('base64'),
    WA_EXTRA_CA_FILE: caFile,
  });
  const logger = createRootLogger({ proc: 'bench', level: logLevel, destination: process.stderr });
  const stores = await openStores(config, logger);
  const { router } = await composeGateway({
    config,
    logger,
    stores,
    shardEntry: fileURLToPath(import.meta.resolve('@wagw/shard/main')),
    webhooks: false,
    supervisor: { execArgv: ['--expose-gc'] },
    defaultMetrics: false,
  });
  const base = router.url;
  try {
    await sleep(1000);
    const before = await router.supervisor.call(0, { kind: 'stats', gc: true });

    const t0 = performance.now();
    let next = 0;
    const ids = Array.from({ length: n }, (_, i) => `bench-${i}`);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < ids.length) {
          const id = ids[next++] as string;
          const phone = sim.createPhone({ name: id });
          const created = await json(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) });
          if (created.status !== 201) throw new Error(`create ${id}: ${created.status}`);
          let qr = '';
          await waitUntil(`qr of ${id}`, async () => {
            const r = await json<{ qr?: string }>(`${base}/api/v1/sessions/${id}/qr?format=json`);
            qr = r.body.qr ?? '';
            return r.status === 200 && qr !== '';
          }, 120_000, 50);
          await sim.scanQr(phone, qr);
          await waitUntil(`${id} connected`, async () => (await json<{ status: string }>(`${base}/api/v1/sessions/${id}`)).body.status === 'connected', 120_000, 100);
        }
      }),
    );
    const pairSeconds = (performance.now() - t0) / 1000;

    // Idle: let prekey uploads and app-state syncs settle, then measure after GC.
    await sleep(5000);
    const after = await router.supervisor.call(0, { kind: 'stats', gc: true });
    if (after.sessions !== n) throw new Error(`shard 0 runs ${after.sessions} sessions, expected ${n}`);

    await router.supervisor.setCount(2);
    const victim = router.supervisor.info(0)?.pid;
    if (victim === undefined) throw new Error('no pid for shard 0');
    const killedAt = Date.now();
    const k0 = performance.now();
    process.kill(victim, 'SIGKILL');
    await waitUntil(
      'every session connected again',
      async () => {
        const r = await json<{ data: { status: string; connectedAt: string | null }[] }>(`${base}/api/v1/sessions?limit=500`);
        let ok = r.body.data.filter((s) => s.status === 'connected' && Date.parse(s.connectedAt ?? '') > killedAt).length;
        let after = r.body.data.at(-1);
        let cursor = r.body.data.length === 500 ? after : undefined;
        while (cursor) {
          const more = await json<{ data: { id: string; status: string; connectedAt: string | null }[] }>(`${base}/api/v1/sessions?limit=500&after=${(cursor as { id?: string }).id ?? ''}`);
          ok += more.body.data.filter((s) => s.status === 'connected' && Date.parse(s.connectedAt ?? '') > killedAt).length;
          after = more.body.data.at(-1);
          cursor = more.body.data.length === 500 ? after : undefined;
        }
        return ok === n;
      },
      300_000,
      100,
    ).catch(async (err: unknown) => {
      const r = await json<{ data: { status: string; reason?: string; connectedAt: string | null }[] }>(`${base}/api/v1/sessions?limit=500`);
      const counts: Record<string, number> = {};
      for (const s of r.body.data) {
        const key = `${s.status}${Date.parse(s.connectedAt ?? '') > killedAt ? '' : ' (old)'}${s.reason ? `: ${s.reason}` : ''}`;
        counts[key] = (counts[key] ?? 0) + 1;
      }
      process.stderr.write(`statuses at the timeout: ${JSON.stringify(counts)}\nshards: ${JSON.stringify(router.sessions?.shards())}\n`);
      throw err;
    });
    const restoreMs = performance.now() - k0;
    const snap = sim.snapshot();
    if (snap.concurrentLoginViolations !== 0) throw new Error(`simulator saw ${snap.concurrentLoginViolations} concurrent logins`);
    const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
    return {
      n,
      pairSeconds: Math.round(pairSeconds * 10) / 10,
      restoreMs: Math.round(restoreMs),
      baseRssMb: mb(before.memory.rss),
      rssMb: mb(after.memory.rss),
      perSessionKb: Math.round((after.memory.rss - before.memory.rss) / n / 1024),
      heapPerSessionKb: Math.round((after.memory.heapUsed - before.memory.heapUsed) / n / 1024),
    };
  } finally {
    await router.stop('bench done');
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const n of sizes) {
  process.stdout.write(`sessions: ${n}...\n`);
  rows.push(await runSize(n));
}

const largest = rows.at(-1);
const perSessionKb = largest?.perSessionKb ?? 0;
const baseMb = largest?.baseRssMb ?? 0;
const cores = os.availableParallelism();
// A host runs the router (~100 MB) and one shard per core, each with its idle base.
const budgetMb = memoryLimitGb * 1024 - 100 - cores * baseMb;
const projected = perSessionKb > 0 ? Math.floor((budgetMb * 1024) / perSessionKb) : 0;

const table = [
  '| sessions | pairing (s) | restore after SIGKILL (ms) | shard RSS empty (MB) | shard RSS idle (MB) | marginal RSS / session (KB) | marginal heap / session (KB) |',
  '|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.n} | ${r.pairSeconds} | ${r.restoreMs.toLocaleString('en-US')} | ${r.baseRssMb} | ${r.rssMb} | ${r.perSessionKb} | ${r.heapPerSessionKb} |`),
].join('\n');
const projection = `Projected sessions per host at ${memoryLimitGb} GB: ${projected.toLocaleString('en-US')} (limit - 100 MB router - ${cores} shards x ${baseMb} MB empty, / ${perSessionKb} KB per idle session at N=${largest?.n ?? 0}).`;
process.stdout.write(`\nNode ${process.version}, ${cores} cores (${os.cpus()[0]?.model ?? 'unknown'}), SESSION_LOGIN_CONCURRENCY=${loginConcurrency}\n${table}\n${projection}\n`);

if (write) {
  const section = [
    '`node bench/sessions.ts` (options: `--sizes 100,500`, `--memory-limit-gb 4`, `--login-concurrency 4`, `--no-write`).',
    'Real Baileys sockets in real shard processes against the WhatsApp simulator (same machine), embedded stores.',
    'One shard (started with `--expose-gc`) pairs N sessions by QR; its RSS after a full GC with no session and with',
    'N idle connected sessions gives the marginal RSS per session. Then a second shard is added, the first is',
    'SIGKILLed, and the clock runs until every session is `connected` again (new `connectedAt`), without a QR.',
    '',
    `Last run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cores} cores (${os.cpus()[0]?.model ?? 'unknown'}), SESSION_LOGIN_CONCURRENCY=${loginConcurrency} per shard.`,
    '',
    table,
    '',
    projection,
    'Restore time is dominated by logins per shard (SESSION_LOGIN_CONCURRENCY) and the simulator sharing the two',
    'cores; the simulator never counted two live sockets for one device.',
    '',
  ].join('\n');
  writeBenchSection('sessions', section);
  process.stdout.write('wrote docs/benchmarks.md ## sessions\n');
}
