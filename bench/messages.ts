/**
 * Messages: end-to-end sends/s and inbound messages/s through the gateway, beside the same figures for bare
 * Baileys sockets driven in one process against the same simulator (the physical limit on this machine).
 * Over 500 lines: one reproducible script (set-up, the phases, the report) meant to be read top to bottom.
 *
 *   node bench/messages.ts                         # 100 sessions; writes docs/benchmarks.md ## messages
 *   node bench/messages.ts --quick --no-write      # 4 sessions, small phases (smoke test, < 1 min)
 *   node bench/messages.ts --sessions 50 --messages 3000 --concurrency 64 --shards 1 --low-rate-fraction 0.5
 *   node bench/messages.ts --only gateway          # or --only bare
 *   node bench/messages.ts --only gateway --no-write --quick --cpu-prof /tmp/prof   # then bench/messages-profile.ts /tmp/prof
 *
 * Processes: the simulator and its phones run in a child (bench/messages-sim.ts), so the phones' Signal work
 * (the inbound load generator and the recipients' decryption) is the same for both sides and never shares the
 * measured event loop.
 * - bare: N Baileys sockets in this process (in-memory keys), paired by QR. Send: `sendMessage` to the session's
 *   customer, timed until the simulator's `<ack class="message">` (what the gateway waits for too), closed loop
 *   with --concurrency sends in flight over all sockets. Inbound: every customer phone sends to its business
 *   account, counted at `messages.upsert` on the sockets.
 * - gateway: the real router process (packages/router/src/main.ts, governor off: SEND_RATE_PER_SEC=0) with its
 *   shards, PostgreSQL (a fresh database; --pglite for the embedded one). Send: `POST /api/v1/sessions/:id/messages`
 *   (201 after the ack and the stored row), same closed loop over keep-alive HTTP. Then an open loop at
 *   --low-rate-fraction of the measured saturation rate (or at --low-rate N per second) for the "below saturation"
 *   latency. Inbound: the same phone blast, counted as rows in `messages` (from_me = false) per second.
 */
import { writeBenchSection } from './report.ts';
import type { SimCall, SimInfo, SimPair, SimReply } from './messages-sim.ts';
import { procCpuMs } from './proc.ts';
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { addTransactionCapability, initAuthCreds, makeWASocket, WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import type { ConnectionState, WASocket } from '@whiskeysockets/baileys';
import { createRootLogger } from '@wagw/shared';
import { PostgresDatabase } from '@wagw/stores';
import { makeMemoryKeyStore } from '@wagw/wa-sim';

// Baileys rc14 leaves 30 s / 60 s timers behind (see packages/wa-sim/test/helpers.ts); do not let them hold the process.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  const t = realSetTimeout(fn, ms, ...rest);
  if (ms === 30_000 || ms === 60_000) t.unref();
  return t;
}) as typeof setTimeout;

// libsignal logs every replaced session ("Closing session: ...") to the console; the figures go to stdout.
console.log = () => undefined;
console.info = () => undefined;
console.warn = () => undefined;

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const num = (name: string, env: string, fallback: number, quickValue: number): number => Number(arg(name) ?? process.env[env] ?? (quick ? quickValue : fallback));
const SESSIONS = num('sessions', 'BENCH_MESSAGES_SESSIONS', 100, 4);
const MESSAGES = num('messages', 'BENCH_MESSAGES_COUNT', 3000, 200);
const CONCURRENCY = num('concurrency', 'BENCH_MESSAGES_CONCURRENCY', 64, 16);
const LOW_FRACTION = num('low-rate-fraction', 'BENCH_MESSAGES_LOW_FRACTION', 0.5, 0.5);
/** `--low-rate N`: the open loop at N sends/s instead of a fraction of this run's saturation rate (A/B runs on a noisy box: the same rate for both builds). */
const LOW_RATE = arg('low-rate') === undefined ? undefined : Number(arg('low-rate'));
if (LOW_RATE !== undefined && !(LOW_RATE > 0)) throw new Error('--low-rate must be a positive number of sends per second');
const LOW_SECONDS = num('low-seconds', 'BENCH_MESSAGES_LOW_SECONDS', 10, 3);
const SHARDS = num('shards', 'BENCH_MESSAGES_SHARDS', 1, 1);
const PAIR_CONCURRENCY = num('pair-concurrency', 'BENCH_MESSAGES_PAIR_CONCURRENCY', 8, 4);
const INBOUND_WINDOW = num('inbound-window', 'BENCH_MESSAGES_INBOUND_WINDOW', 4, 2);
const only = arg('only');
const usePglite = args.includes('--pglite');
const write = !args.includes('--no-write');
/**
 * --cpu-prof DIR: the router and its shards run with `--cpu-prof` (NODE_OPTIONS, which the shards' allow-listed
 * environment keeps) and write their profiles into DIR when they exit; the phases' windows (monotonic clock, as
 * the profiles' timestamps) and counts go to DIR/phases.json for bench/messages-profile.ts.
 */
const cpuProfDir = arg('cpu-prof');
const cpuProfInterval = arg('cpu-prof-interval') ?? '250';
interface PhaseMark {
  name: string;
  /** Monotonic µs (process.hrtime), the clock of a V8 profile's timestamps on Linux. */
  startUs: number;
  endUs: number;
  count: number;
}
const phases: PhaseMark[] = [];
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
/** Issue #18: sends at >= 0.7x bare, inbound messages stored at >= 0.85x bare. */
const GOAL_RATIO = 0.7;
const GOAL_INBOUND_RATIO = 0.85;
const GOAL_P99_MS = 50;

type BaileysLogger = NonNullable<Parameters<typeof makeWASocket>[0]['logger']>;
const baileysLogger: BaileysLogger = {
  level: 'silent',
  child: () => baileysLogger,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const log = (s: string): void => {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
};

// ---------------- simulator child ----------------

interface SimChild {
  call<T>(req: SimCall): Promise<T>;
  close(): Promise<void>;
  pid: number | undefined;
}

async function startSimChild(): Promise<SimChild> {
  const child = fork(fileURLToPath(new URL('./messages-sim.ts', import.meta.url)), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`simulator child exited (${String(code)})`)));
    child.on('message', (m: SimReply) => {
      if (m.seq === 0) {
        resolve();
        return;
      }
      const p = pending.get(m.seq);
      if (p === undefined) return;
      pending.delete(m.seq);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error ?? 'simulator call failed'));
    });
  });
  await ready;
  return {
    pid: child.pid,
    call<T>(req: SimCall): Promise<T> {
      const s = ++seq;
      return new Promise<T>((resolve, reject) => {
        pending.set(s, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...req, seq: s });
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

// ---------------- measurement helpers ----------------

function childPids(ppid: number | undefined): number[] {
  if (ppid === undefined) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * A process's main thread so far (Linux /proc/PID/task/PID/schedstat): ms on a core, and ms runnable but waiting
 * for one (the run queue). Over the open loop, the wait is how long the thread's work sat behind other processes
 * of this box (the simulator, PostgreSQL, this client), latency no code of that thread can remove.
 */
function schedMs(pid: number | undefined): { run: number; wait: number } {
  if (pid === undefined) return { run: 0, wait: 0 };
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { run: (run ?? 0) / 1e6, wait: (wait ?? 0) / 1e6 };
  } catch {
    return { run: 0, wait: 0 };
  }
}

/** Main threads' schedstat by name: `pids` as `cpuSnap`, the bench itself as `bench`. */
function schedSnap(pids: { router?: number | undefined }): Record<string, { run: number; wait: number }> {
  const snap: Record<string, { run: number; wait: number }> = { bench: schedMs(process.pid) };
  if (pids.router !== undefined) {
    snap['router'] = schedMs(pids.router);
    childPids(pids.router).forEach((p, i) => (snap[`shard ${i}`] = schedMs(p)));
  }
  return snap;
}

/** "shard 0 612 on a core + 85 waiting for one, ..." in ms per second between two snapshots. */
function schedText(a: ReturnType<typeof schedSnap>, b: ReturnType<typeof schedSnap>, seconds: number): string {
  return Object.keys(b)
    .filter((k) => a[k] !== undefined)
    .map((k) => `${k} ${((b[k]!.run - a[k]!.run) / seconds).toFixed(0)} + ${((b[k]!.wait - a[k]!.wait) / seconds).toFixed(0)}`)
    .join(', ');
}

/** CPU ms so far of named processes; `shards` are the router's children. */
type CpuSnap = Record<string, number>;
function cpuSnap(pids: { router?: number; sim?: number }): CpuSnap {
  const self = process.cpuUsage();
  const snap: CpuSnap = { bench: (self.user + self.system) / 1000, sim: procCpuMs(pids.sim) };
  if (pids.router !== undefined) {
    snap['router'] = procCpuMs(pids.router);
    snap['shards'] = childPids(pids.router).reduce((n, p) => n + procCpuMs(p), 0);
  }
  return snap;
}

interface CpuPer {
  /** CPU ms per message of every measured process together. */
  total: number;
  /** The same by process, e.g. "router 1.30, shards 2.93". */
  text: string;
}

/** CPU ms per message by process between two snapshots. */
function cpuPer(a: CpuSnap, b: CpuSnap, n: number): CpuPer {
  const per = Object.keys(b).map((k) => [k, ((b[k] ?? 0) - (a[k] ?? 0)) / n] as const);
  return { total: per.reduce((t, [, v]) => t + v, 0), text: per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') };
}

interface Latencies {
  count: number;
  seconds: number;
  perSec: number;
  p50: number;
  p99: number;
  errors: number;
}

function summarize(lat: number[], seconds: number, errors: number): Latencies {
  const s = [...lat].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? Number.NaN;
  return { count: s.length, seconds, perSec: s.length / seconds, p50: q(0.5), p99: q(0.99), errors };
}

/** Closed loop: `concurrency` workers, each starts the next send when its previous one finished. */
async function closedLoop(total: number, concurrency: number, send: (i: number) => Promise<void>): Promise<Latencies> {
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: unknown;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        try {
          await send(i);
          lat.push(performance.now() - s);
        } catch (err) {
          errors++;
          firstError ??= err;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (firstError !== undefined) process.stderr.write(`first send error: ${String(firstError)}\n`);
  return summarize(lat, seconds, errors);
}

/** Open loop: starts one send every 1/rate s for `seconds`, whatever the previous ones do. */
async function openLoop(rate: number, seconds: number, send: (i: number) => Promise<void>): Promise<Latencies> {
  const lat: number[] = [];
  const inflight: Promise<void>[] = [];
  let errors = 0;
  const total = Math.max(1, Math.round(rate * seconds));
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const s = performance.now();
    inflight.push(
      send(i).then(
        () => {
          lat.push(performance.now() - s);
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  return summarize(lat, (performance.now() - t0) / 1000, errors);
}

async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}

interface SideResult {
  pairSeconds: number;
  send: Latencies;
  low?: Latencies;
  inbound: { count: number; seconds: number; perSec: number };
  sendCpu: CpuPer;
  inboundCpu: CpuPer;
}

// ---------------- bare Baileys ----------------

class BareClient {
  readonly creds = initAuthCreds();
  readonly store = makeMemoryKeyStore();
  sock: WASocket | undefined;
  state: Partial<ConnectionState> = {};
  qr: string | undefined;
  closes: Array<number | undefined> = [];
  inbound = 0;
  readonly acks = new Map<string, (error: string | undefined) => void>();
  private readonly url: string;

  constructor(url: string) {
    this.url = url;
  }

  connect(): void {
    this.state = {};
    this.qr = undefined;
    const sock = makeWASocket({
      auth: { creds: this.creds, keys: addTransactionCapability(this.store, baileysLogger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 }) },
      waWebSocketUrl: this.url,
      logger: baileysLogger,
      markOnlineOnConnect: false,
      syncFullHistory: false,
      shouldSyncHistoryMessage: () => false,
    });
    sock.ev.on('connection.update', (u) => {
      if (sock !== this.sock) return;
      Object.assign(this.state, u);
      if (u.qr) this.qr = u.qr;
      if (u.connection === 'close') this.closes.push((u.lastDisconnect?.error as { output?: { statusCode?: number } } | undefined)?.output?.statusCode);
    });
    sock.ev.on('messages.upsert', ({ messages }) => {
      for (const m of messages) if (!m.key.fromMe && m.message) this.inbound++;
    });
    sock.ws.on('CB:ack,class:message', (node: { attrs?: Record<string, string> }) => {
      const id = node.attrs?.['id'];
      if (id === undefined) return;
      const done = this.acks.get(id);
      if (done === undefined) return;
      this.acks.delete(id);
      done(node.attrs?.['error']);
    });
    this.sock = sock;
  }

  /** sendMessage, resolved on the simulator's ack of this message id. */
  async send(to: string, text: string): Promise<void> {
    const sock = this.sock;
    if (sock === undefined) throw new Error('not connected');
    const id = `3EB0${randomBytes(9).toString('hex').toUpperCase()}`;
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error(`no ack for ${id}`));
      }, 20_000);
      this.acks.set(id, (error) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(new Error(`ack error ${error}`));
      });
    });
    await sock.sendMessage(to, { text }, { messageId: id });
    await acked;
  }

  async pair(sim: SimChild, index: number): Promise<void> {
    this.connect();
    await waitUntil('bare qr', () => this.qr !== undefined, 60_000, 20);
    await sim.call({ op: 'scan', index, qr: this.qr ?? '' });
    await waitUntil('515 after pairing', () => this.closes.length > 0, 30_000, 20);
    this.connect();
    await waitUntil('bare socket open', () => this.state.connection === 'open' && this.state.receivedPendingNotifications === true, 60_000, 20);
  }

  end(): void {
    const sock = this.sock;
    this.sock = undefined;
    void sock?.end(undefined);
  }
}

async function runBare(lowRate: number | undefined): Promise<SideResult> {
  const sim = await startSimChild();
  const clients: BareClient[] = [];
  try {
    const info = await sim.call<SimInfo>({ op: 'info' });
    WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(info.rootPublicKey, 'base64');
    const pairs = await sim.call<SimPair[]>({ op: 'phones', n: SESSIONS });
    const t0 = performance.now();
    for (let i = 0; i < SESSIONS; i++) clients.push(new BareClient(info.ws));
    await mapLimit(clients, PAIR_CONCURRENCY, (c, i) => c.pair(sim, i));
    const pairSeconds = (performance.now() - t0) / 1000;
    log(`bare: ${SESSIONS} sockets paired in ${pairSeconds.toFixed(1)} s`);
    await sleep(quick ? 1000 : 3000);

    const target = (i: number): { c: BareClient; to: string } => {
      const k = i % SESSIONS;
      return { c: clients[k] as BareClient, to: (pairs[k] as SimPair).customerJid };
    };
    // Warm-up: one send per socket (Signal sessions with the customer and our own phone are set up here).
    await closedLoop(SESSIONS, Math.min(CONCURRENCY, SESSIONS), async (i) => {
      const { c, to } = target(i);
      await c.send(to, `warm-up ${i}`);
    });
    const pids = { sim: sim.pid };
    const c0 = cpuSnap(pids);
    const send = await closedLoop(MESSAGES, CONCURRENCY, async (i) => {
      const { c, to } = target(i);
      await c.send(to, `bench message ${i}`);
    });
    const sendCpu = cpuPer(c0, cpuSnap(pids), send.count);
    log(`bare send: ${fmtLat(send)}; CPU ms per send: ${sendCpu.text} (bench = the sockets)`);
    let low: Latencies | undefined;
    if (lowRate !== undefined) {
      const s0 = schedSnap({});
      const lowStart = performance.now();
      low = await openLoop(lowRate, LOW_SECONDS, async (i) => {
        const { c, to } = target(i);
        await c.send(to, `low ${i}`);
      });
      log(`bare open loop at ${lowRate.toFixed(0)}/s: ${fmtLat(low)}; main thread (the sockets), ms per s on a core + waiting for one: ${schedText(s0, schedSnap({}), (performance.now() - lowStart) / 1000)}`);
    }
    await sleep(1000);
    const c1 = cpuSnap(pids);
    const inbound = await measureInbound(sim, () => clients.reduce((n, c) => n + c.inbound, 0));
    const inboundCpu = cpuPer(c1, cpuSnap(pids), inbound.count);
    log(`bare inbound: ${inbound.count} in ${inbound.seconds.toFixed(2)} s = ${inbound.perSec.toFixed(0)}/s; CPU ms per message: ${inboundCpu.text}`);
    return { pairSeconds, send, ...(low === undefined ? {} : { low }), inbound, sendCpu, inboundCpu };
  } finally {
    for (const c of clients) c.end();
    await sim.close();
  }
}

/** Customers send MESSAGES texts in all to their businesses; the clock stops when `count()` grew by that many. */
async function measureInbound(sim: SimChild, count: () => Promise<number> | number): Promise<{ count: number; seconds: number; perSec: number }> {
  const perPair = Math.max(1, Math.round(MESSAGES / SESSIONS));
  const total = perPair * SESSIONS;
  const base = await count();
  const t0 = performance.now();
  const blast = sim.call<{ ms: number }>({ op: 'inbound', perPair, window: INBOUND_WINDOW, tag: randomBytes(3).toString('hex') });
  let lastErr: unknown;
  blast.catch((err: unknown) => {
    lastErr = err;
  });
  await waitUntil(
    `${total} inbound messages`,
    async () => {
      if (lastErr !== undefined) throw lastErr;
      return (await count()) - base >= total;
    },
    300_000,
    20,
  );
  const seconds = (performance.now() - t0) / 1000;
  await blast;
  return { count: total, seconds, perSec: total / seconds };
}

// ---------------- gateway ----------------

interface HttpResult {
  status: number;
  body: string;
}

function request(agent: http.Agent, base: URL, method: string, p: string, body?: unknown): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { agent, host: base.hostname, port: base.port, method, path: p, headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

interface RouterChild {
  url: URL;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startRouter(env: Record<string, string>): Promise<RouterChild> {
  const main = fileURLToPath(import.meta.resolve('@wagw/router/main'));
  const execArgv = process.env['BENCH_ROUTER_NODE_OPTIONS']?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...execArgv, main], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (out.length < 100_000) out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 100_000) err = err.slice(-50_000);
  });
  let url = '';
  await waitUntil(
    'the router to listen',
    () => {
      if (child.exitCode !== null) throw new Error(`router exited ${child.exitCode}: ${err}`);
      url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
      return url !== '';
    },
    60_000,
  );
  return {
    url: new URL(url),
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

async function runGateway(): Promise<SideResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-bench-messages-'));
  const sim = await startSimChild();
  const logger = createRootLogger({ proc: 'bench', level: 'warn', destination: process.stderr });
  let admin: PostgresDatabase | undefined;
  let db: PostgresDatabase | undefined;
  const dbName = `wagw_bench_${randomBytes(4).toString('hex')}`;
  let router: RouterChild | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(CONCURRENCY, 64) });
  try {
    const info = await sim.call<SimInfo>({ op: 'info' });
    const caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, info.mediaCaPem);
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'warn',
      HOST: '127.0.0.1',
      PORT: '0',
      HOST_ID: 'bench',
      DATA_DIR: dir,
      SHARD_COUNT: String(SHARDS),
      SHARD_MAX_SESSIONS: String(Math.max(1000, SESSIONS)),
      WORKER_THREADS: '1',
      IPC_CALL_TIMEOUT_MS: '60000',
      SESSION_LOGIN_CONCURRENCY: '4',
      RATE_LIMITING_ENABLED: 'false',
      SEND_RATE_PER_SEC: '0',
      SEND_QUEUE_MAX: '100000',
      WA_WEBSOCKET_URL: info.ws,
      WA_ROOT_PUBLIC_KEY: info.rootPublicKey,
      WA_EXTRA_CA_FILE: caFile,
    };
    if (cpuProfDir !== undefined) await mkdir(cpuProfDir, { recursive: true });
    if (cpuProfDir !== undefined) env['NODE_OPTIONS'] = `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${path.resolve(cpuProfDir)} --cpu-prof-interval=${cpuProfInterval}`.trim();
    if (!usePglite) {
      const adminUrl = process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
      admin = await PostgresDatabase.connect(adminUrl, { logger, poolMax: 1 });
      await admin.query(`CREATE DATABASE ${dbName}`);
      const u = new URL(adminUrl);
      u.pathname = `/${dbName}`;
      env['DATABASE_URL'] = u.toString();
      db = await PostgresDatabase.connect(u.toString(), { logger, poolMax: 2 });
    }
    router = await startRouter(env);
    const base = router.url;
    const call = (method: string, p: string, body?: unknown): Promise<HttpResult> => request(agent, base, method, p, body);
    const pairs = await sim.call<SimPair[]>({ op: 'phones', n: SESSIONS });
    const ids = Array.from({ length: SESSIONS }, (_, i) => `bench-${i}`);

    const t0 = performance.now();
    await mapLimit(ids, PAIR_CONCURRENCY, async (id, i) => {
      const created = await call('POST', '/api/v1/sessions', { id });
      if (created.status !== 201) throw new Error(`create ${id}: ${created.status} ${created.body}`);
      let qr = '';
      await waitUntil(`qr of ${id}`, async () => {
        const r = await call('GET', `/api/v1/sessions/${id}/qr?format=json`);
        qr = r.status === 200 ? ((JSON.parse(r.body) as { qr?: string }).qr ?? '') : '';
        return qr !== '';
      }, 120_000);
      await sim.call({ op: 'scan', index: i, qr });
      await waitUntil(`${id} connected`, async () => (JSON.parse((await call('GET', `/api/v1/sessions/${id}`)).body) as { status?: string }).status === 'connected', 120_000, 100);
    });
    const pairSeconds = (performance.now() - t0) / 1000;
    log(`gateway: ${SESSIONS} sessions paired in ${pairSeconds.toFixed(1)} s`);
    await sleep(quick ? 1000 : 3000);

    const sendOne = async (i: number, text: string): Promise<void> => {
      const k = i % SESSIONS;
      const r = await call('POST', `/api/v1/sessions/${ids[k] ?? ''}/messages`, { to: (pairs[k] as SimPair).customerJid, type: 'text', text });
      if (r.status !== 201) throw new Error(`send: ${r.status} ${r.body.slice(0, 300)}`);
    };
    await closedLoop(SESSIONS, Math.min(CONCURRENCY, SESSIONS), (i) => sendOne(i, `warm-up ${i}`));
    const pids = { router: router.child.pid, sim: sim.pid };
    // PostgreSQL: the backends serving this database (the router's pool and the row counter here).
    const snap = async (): Promise<CpuSnap> => {
      const s = cpuSnap(pids);
      if (admin !== undefined) {
        const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1`, [dbName]);
        s['postgres'] = rows.reduce((n, r) => n + procCpuMs(Number(r.pid)), 0);
      }
      return s;
    };
    // Group commit: shard requests per committed transaction (wagw_message_write_batch_size), per phase.
    // Group commit: shard requests per committed transaction (wagw_message_write_batch_size) and each request's
    // wait from queued to committed (wagw_message_write_wait_seconds), per phase.
    interface BatchSnap {
      sum: number;
      count: number;
      /** The shards' waits for a durable auth write before a relay (wagw_shard_auth_durable_*), summed over shards. */
      durable: { waits: number; seconds: number; slow: number };
      /** Cumulative wait buckets: upper bound in seconds -> count. */
      wait: Map<number, number>;
    }
    const batches = async (): Promise<BatchSnap> => {
      const text = (await call('GET', '/metrics')).body;
      const read = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      const wait = new Map<number, number>();
      for (const m of text.matchAll(/^wagw_message_write_wait_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) wait.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
      const sumOf = (name: string): number => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((t, m) => t + Number(m[1]), 0);
      const durable = { waits: sumOf('wagw_shard_auth_durable_waits_total'), seconds: sumOf('wagw_shard_auth_durable_wait_seconds_total'), slow: sumOf('wagw_shard_auth_durable_slow_waits_total') };
      return { sum: read('wagw_message_write_batch_size_sum'), count: read('wagw_message_write_batch_size_count'), wait, durable };
    };
    /** The mean wait of a send for its durable auth write between two snapshots, and the share of 5 ms or more. */
    const durableWaits = (a: BatchSnap, b: BatchSnap): string => {
      const n = b.durable.waits - a.durable.waits;
      if (n <= 0) return 'no durable auth waits';
      return `durable auth wait mean ${(((b.durable.seconds - a.durable.seconds) / n) * 1000).toFixed(2)} ms, ${(((b.durable.slow - a.durable.slow) / n) * 100).toFixed(1)} % >= 5 ms (${n} waits)`;
    };
    const batchMean = (a: BatchSnap, b: BatchSnap): string =>
      b.count > a.count ? `${((b.sum - a.sum) / (b.count - a.count)).toFixed(1)} requests per write transaction (${b.count - a.count} transactions)` : 'no write transactions';
    /** The bucket bounds holding the p50 and p99 of the group-commit waits between two snapshots. */
    const waitQuantiles = (a: BatchSnap, b: BatchSnap): string => {
      const bounds = [...b.wait.keys()].sort((x, y) => x - y);
      const total = (b.wait.get(Infinity) ?? 0) - (a.wait.get(Infinity) ?? 0);
      if (total <= 0) return 'no group-commit waits';
      const at = (q: number): string => {
        const le = bounds.find((x) => (b.wait.get(x) ?? 0) - (a.wait.get(x) ?? 0) >= q * total) ?? Infinity;
        return le === Infinity ? '> 2.5 s' : `<= ${le * 1000} ms`;
      };
      return `group-commit wait p50 ${at(0.5)}, p99 ${at(0.99)} (${total} requests)`;
    };
    const b0 = await batches();
    const c0 = await snap();
    const sendStart = monoUs();
    const send = await closedLoop(MESSAGES, CONCURRENCY, (i) => sendOne(i, `bench message ${i}`));
    phases.push({ name: 'send', startUs: sendStart, endUs: monoUs(), count: send.count });
    const sendCpu = cpuPer(c0, await snap(), send.count);
    const bSent = await batches();
    log(`gateway send: ${fmtLat(send)}; CPU ms per send: ${sendCpu.text} (bench = the HTTP client); ${batchMean(b0, bSent)}`);
    const lowRate = LOW_RATE ?? Math.max(1, send.perSec * LOW_FRACTION);
    const s0 = schedSnap(pids);
    const lowStart = performance.now();
    const low = await openLoop(lowRate, LOW_SECONDS, (i) => sendOne(i, `low ${i}`));
    const sched = schedText(s0, schedSnap(pids), (performance.now() - lowStart) / 1000);
    const bLow = await batches();
    log(`gateway open loop at ${lowRate.toFixed(0)}/s: ${fmtLat(low)}; ${waitQuantiles(bSent, bLow)}; ${durableWaits(bSent, bLow)}; main threads, ms per s on a core + waiting for one: ${sched}`);
    await sleep(1000);

    const countRows = async (): Promise<number> => {
      if (db !== undefined) {
        const { rows } = await db.query<{ n: string | number }>(`SELECT count(*) AS n FROM messages WHERE from_me = false`);
        return Number(rows[0]?.n ?? 0);
      }
      // PGlite: no second connection from here; count through the history API instead (slower, coarse).
      let n = 0;
      for (const id of ids) {
        const r = await call('GET', `/api/v1/sessions/${id}/messages?limit=100`);
        n += ((JSON.parse(r.body) as { data?: { fromMe?: boolean }[] }).data ?? []).filter((m) => m.fromMe === false).length;
      }
      return n;
    };
    const b1 = await batches();
    const c1 = await snap();
    const inboundStart = monoUs();
    const inbound = await measureInbound(sim, countRows);
    phases.push({ name: 'inbound', startUs: inboundStart, endUs: monoUs(), count: inbound.count });
    const inboundCpu = cpuPer(c1, await snap(), inbound.count);
    if (cpuProfDir !== undefined) {
      const pidsNow = { router: router.child.pid, shards: childPids(router.child.pid) };
      await writeFile(path.join(cpuProfDir, 'phases.json'), `${JSON.stringify({ ...pidsNow, phases }, null, 2)}\n`);
    }
    log(`gateway inbound: ${inbound.count} rows in ${inbound.seconds.toFixed(2)} s = ${inbound.perSec.toFixed(0)}/s; CPU ms per message: ${inboundCpu.text}; ${batchMean(b1, await batches())}`);
    return { pairSeconds, send, low, inbound, sendCpu, inboundCpu };
  } finally {
    agent.destroy();
    await router?.stop();
    await sim.close();
    await db?.close();
    if (admin !== undefined) {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
      await admin.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function fmtLat(l: Latencies): string {
  return `${l.count} in ${l.seconds.toFixed(2)} s = ${l.perSec.toFixed(0)}/s, p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms${l.errors > 0 ? `, ${l.errors} errors` : ''}`;
}

// ---------------- main ----------------

const cores = os.availableParallelism();
const cpuModel = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
const params = `sessions ${SESSIONS}, ${MESSAGES} messages per phase, ${CONCURRENCY} sends in flight, below-saturation open loop at ${LOW_RATE === undefined ? `${LOW_FRACTION} x the gateway's rate` : `${LOW_RATE}/s`} for ${LOW_SECONDS} s, ${SHARDS} shard(s), inbound window ${INBOUND_WINDOW} per phone, ${usePglite ? 'PGlite' : 'PostgreSQL'}`;
log(`Node ${process.version}, ${cores} cores (${cpuModel}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
log(`parameters: ${params}`);

let gateway: SideResult | undefined;
let bare: SideResult | undefined;
if (only !== 'bare') gateway = await runGateway();
if (only !== 'gateway') bare = await runBare(gateway === undefined ? undefined : Math.max(1, gateway.send.perSec * LOW_FRACTION));

const f0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const ratio = (g: number | undefined, b: number | undefined): string => (g === undefined || b === undefined || b === 0 ? '-' : `${(g / b).toFixed(2)}x`);
const rows = [
  '| measure | gateway | bare Baileys | gateway / bare |',
  '|---|---:|---:|---:|',
  `| sends/s (closed loop, ${CONCURRENCY} in flight) | ${gateway ? f0(gateway.send.perSec) : '-'} | ${bare ? f0(bare.send.perSec) : '-'} | ${ratio(gateway?.send.perSec, bare?.send.perSec)} |`,
  `| send latency p50 / p99 at saturation (ms) | ${gateway ? `${f1(gateway.send.p50)} / ${f1(gateway.send.p99)}` : '-'} | ${bare ? `${f1(bare.send.p50)} / ${f1(bare.send.p99)}` : '-'} | |`,
  `| send latency p50 / p99 below saturation (ms), open loop at ${gateway?.low ? f0(gateway.low.count / LOW_SECONDS) : '-'}/s | ${gateway?.low ? `${f1(gateway.low.p50)} / ${f1(gateway.low.p99)}` : '-'} | ${bare?.low ? `${f1(bare.low.p50)} / ${f1(bare.low.p99)}` : '-'} | |`,
  `| inbound messages/s stored (gateway: rows in \`messages\`; bare: \`messages.upsert\`) | ${gateway ? f0(gateway.inbound.perSec) : '-'} | ${bare ? f0(bare.inbound.perSec) : '-'} | ${ratio(gateway?.inbound.perSec, bare?.inbound.perSec)} |`,
  `| pairing ${SESSIONS} sessions (s) | ${gateway ? f1(gateway.pairSeconds) : '-'} | ${bare ? f1(bare.pairSeconds) : '-'} | |`,
  `| CPU ms per send, by process | ${gateway?.sendCpu.text ?? '-'} | ${bare?.sendCpu.text ?? '-'} | |`,
  `| CPU ms per inbound message, by process | ${gateway?.inboundCpu.text ?? '-'} | ${bare?.inboundCpu.text ?? '-'} | |`,
  `| CPU-bound sends/s on ${cores} cores (${cores * 1000} / total CPU ms per send) | ${gateway ? f0((cores * 1000) / gateway.sendCpu.total) : '-'} | ${bare ? f0((cores * 1000) / bare.sendCpu.total) : '-'} | ${ratio(gateway ? 1 / gateway.sendCpu.total : undefined, bare ? 1 / bare.sendCpu.total : undefined)} |`,
  `| CPU-bound inbound messages/s on ${cores} cores | ${gateway ? f0((cores * 1000) / gateway.inboundCpu.total) : '-'} | ${bare ? f0((cores * 1000) / bare.inboundCpu.total) : '-'} | ${ratio(gateway ? 1 / gateway.inboundCpu.total : undefined, bare ? 1 / bare.inboundCpu.total : undefined)} |`,
  `| send errors | ${gateway ? gateway.send.errors + (gateway.low?.errors ?? 0) : '-'} | ${bare ? bare.send.errors + (bare.low?.errors ?? 0) : '-'} | |`,
].join('\n');
const goals: string[] = [];
if (gateway && bare) {
  const rs = gateway.send.perSec / bare.send.perSec;
  const ri = gateway.inbound.perSec / bare.inbound.perSec;
  goals.push(
    `Goal sends >= ${GOAL_RATIO}x bare: ${rs.toFixed(2)}x ${rs >= GOAL_RATIO ? 'met' : 'NOT met'}; inbound >= ${GOAL_INBOUND_RATIO}x bare: ${ri.toFixed(2)}x ${ri >= GOAL_INBOUND_RATIO ? 'met' : 'NOT met'}.`,
  );
}
if (gateway?.low) goals.push(`Goal p99 send latency < ${GOAL_P99_MS} ms below saturation: ${f1(gateway.low.p99)} ms, ${gateway.low.p99 < GOAL_P99_MS ? 'met' : 'NOT met'}.`);
const header = `Last run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cores} cores (${cpuModel}); ${params}.`;
process.stdout.write(`\n${header}\n\n${rows}\n\n${goals.join('\n')}\n`);

if (write && gateway && bare) {
  const cmd = `node bench/messages.ts${args.filter((a) => a !== '--no-write').length > 0 ? ` ${args.join(' ')}` : ''}`;
  const body = [
    `\`${cmd}\` (options: \`--sessions 100\`, \`--messages 3000\`, \`--concurrency 64\`, \`--low-rate-fraction 0.5\` or \`--low-rate N\`, \`--low-seconds 10\`, \`--shards 1\`, \`--pglite\`, \`--only gateway|bare\`, \`--quick\`, \`--no-write\`).`,
    'The simulator and its phones run in a child process (the same for both columns). **gateway**: the router process',
    '(`packages/router/src/main.ts`) with its shard(s), send governor off (`SEND_RATE_PER_SEC=0`), standalone (no',
    '`BACKEND_URL`, so no webhook rows), `LOG_LEVEL=warn` (no access-log line per request), messages in',
    'PostgreSQL; a send is `POST /api/v1/sessions/:id/messages` answered 201 (after the simulator\'s ack and the',
    'stored row), over keep-alive HTTP from this process to each session\'s own customer. **bare Baileys**: the same',
    'number of sockets in one process with in-memory keys; a send is `sendMessage` until the simulator\'s',
    '`<ack class="message">`. Inbound: every customer phone sends to its business account; the gateway counts rows',
    'in `messages` (from_me = false), bare sockets count `messages.upsert`. The below-saturation row is an open loop',
    'at a fraction of the gateway\'s closed-loop rate, the same rate for both columns. CPU per message is read from',
    '`/proc` for each process (this one, the simulator child, the router, its shards, and the PostgreSQL backends',
    'serving the bench database) over the phase; the "CPU-bound" rows divide the cores by it, which stays',
    'meaningful when other load on the machine depresses the measured rates.',
    '',
    header,
    '',
    rows,
    '',
    ...goals,
    '',
    'What a gateway message costs beyond Baileys (structural, from CPU profiles of router and shard, 2026-11-25):',
    '- **Durable receive.** The delivery receipt of an inbound message waits until the router committed the row',
    '  (Baileys `beforeReceipt` hook, docs/messaging.md), so each message of a session costs one IPC round trip and',
    '  one PostgreSQL commit before the next one of that session is decrypted; sessions run in parallel.',
    '- **Auth-state writes.** Every decrypt and every send moves a Signal ratchet. Until 2026-11-25 each change was',
    '  a log object Baileys waited for (local blobs: temp file, fsync, rename, directory fsync; S3: one PUT), so',
    '  inbound messages of a session went one write at a time: 313 rows/s = 0.29x bare, shard 1.90 ms CPU per',
    '  inbound message. With write-behind (`SESSION_KEY_WRITE_BEHIND`, default on) ratchet-only changes are',
    '  group-committed in the background: 760-815 rows/s = 0.64-0.83x in three runs, shard ~0.8 ms. A send still',
    '  costs about one background write, since 100 sessions sending ~3/s each rarely have two changes in one batch.',
    '- **Per send, two SQL transactions.** The shard\'s echo of the sent message (carrying the call\'s request id)',
    '  inserts the row, the route\'s own insert then writes nothing; the delivery receipt is the second',
    '  (`message.status`: UPDATE + status event). Each commit is a WAL fsync.',
    '- **Router HTTP path.** ~1 ms CPU per send: koa, auth and rate-limit middleware, zod validation, a child',
    '  logger per request, the IPC call, pg client work for the transactions above.',
    '- **So sends stay near 0.45x bare (0.43-0.47x in three runs).** Bare sockets spend ~1.6 ms CPU per send (encryption) and touch no disk;',
    '  the gateway adds ~3.5 ms across router, shard and PostgreSQL for the HTTP API, IPC, two durable SQL',
    '  transactions and a durable auth log. 0.7x would need that overhead under ~1.5 ms; not reached.',
    '- **Tail latency is the disk.** A send waits for a PostgreSQL commit; bare Baileys touches no disk. On this',
    '  shared VM a 3 KB write + fsync measured p50 3.7 ms, p99 137 ms, max 224 ms (300 sequential writes); two',
    '  runs of this bench within 7 minutes on the same build gave a below-saturation p99 of 30.4 ms (met),',
    '  243 ms and 130 ms (not met), so the p99 goal depends on the storage more than on CPU.',
    '',
  ].join('\n');
  writeBenchSection('messages', body);
  process.stdout.write('wrote docs/benchmarks.md ## messages\n');
}
process.exit(0);
