/**
 * The floor under the gateway's CPU per message (issue #18): what the hops every send and every inbound message must
 * take cost on this machine when they do nothing else, measured as bench/messages measures the gateway (CPU per
 * message of each process: this one from `process.cpuUsage`, the others from /proc), so the figures can be set
 * beside its own. Per round:
 *
 * - **HTTP**: a koa app with @koa/router (the router's own libraries) answering `POST /api/v1/sessions/:id/messages`
 *   (the JSON body read and parsed, a 201 with a JSON body) in a child process; the client is this process with
 *   node's http client and a keep-alive agent, as bench/messages' client.
 * - **send skeleton**, one row per structure: the same, and before its 201 the handler calls a child of its own (the
 *   shard's place) over node's IPC channel (JSON serialization, as router -> shard) and has the send's row written
 *   through the router's `GroupCommit` (two writers, one bulk INSERT per op and batch, PostgreSQL at 127.0.0.1:5432 or
 *   `BENCH_PG_URL`). `one-write`: the child answers at once, then the handler writes the row. `row-in-reply`: the same,
 *   and after answering the child calls the router with the send's receipt, whose status row is group-committed too.
 *   `gateway`: today's hops, the child first calls the router to store the row, then answers, then the receipt. No
 *   validation, no WhatsApp, no auth state, no webhooks: less than a send needs.
 * - **IPC**: a request and its reply over node's child_process channel, 300 and 200 bytes.
 * - **inbound skeleton**: an IPC call whose callee group-commits its rows before it answers (shard -> router ->
 *   PostgreSQL), `--inbound-batch` messages per call (default 1); its figures are per message.
 *
 * Calls are started `--rate` per second in an open loop (the gateway's own rates: 250-600 sends/s, 800-1,300
 * inbound/s on this machine), or without it as fast as 64 in flight go. At a low rate each call wakes each process on
 * its way, and those wake-ups, not the code, are most of the cost.
 *
 * With `--burn-send MS` and `--burn-inbound MS` (bare Baileys' and the simulator's CPU per message, from bench/messages'
 * bare column) the shard's place spends that much CPU per message, so the skeletons run at the gateway's own rate and
 * concurrency (64 in flight: the cores saturated by the WhatsApp work, as in bench/messages' closed loop), and the
 * last lines give each skeleton's CPU per message beyond the burn and the ratio it leaves: the most a gateway of this
 * shape could reach against bare Baileys on this machine.
 *
 * `--structures one-write,row-in-reply,gateway` picks the send skeleton's layouts of hops (all three by default).
 *
 *   node bench/floor.ts [--rate 500] [--requests N] [--rounds 3] [--burn-send 2.0 --burn-inbound 1.1] [--inbound-batch 4]
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import Router from '@koa/router';
import Koa from 'koa';
import { createRootLogger } from '@wagw/shared';
import { PostgresDatabase } from '@wagw/stores';
import { GroupCommit } from '../packages/router/src/messages/group-commit.ts';
import type { BulkWrite } from '../packages/router/src/messages/group-commit.ts';
import { createBenchDatabase } from './pg-database.ts';
import type { BenchDatabase } from './pg-database.ts';
import { procCpuMs } from './proc.ts';

/** The word after `name` on the command line, if `name` is there. */
function argText(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function arg(name: string, fallback: number): number {
  const v = Number(argText(name) ?? NaN);
  return Number.isFinite(v) ? v : fallback;
}

/** Calls per second in an open loop (as bench/messages' gateway runs, 250-600/s); 0: as fast as 64 in flight go. */
const RATE = arg('--rate', 0);
const REQUESTS = arg('--requests', RATE > 0 ? RATE * 10 : 20_000);
/**
 * CPU ms the shard's place burns per send / per inbound message before it answers (send skeleton) or calls
 * (inbound skeleton): what bare Baileys and the simulator spend per message (bench/messages' bare column), so the
 * skeleton runs at the gateway's rate and concurrency, with the cores as busy. 0: nothing burnt.
 */
const BURN_SEND = arg('--burn-send', 0);
const BURN_INBOUND = arg('--burn-inbound', 0);
/** Inbound messages per IPC call (the gateway merges a session's queued messages into one `message.received`). */
const INBOUND_BATCH = arg('--inbound-batch', 1);

/** The send skeleton's structures: how its hops are laid out. */
const STRUCTURE_TEXT = {
  'one-write': 'HTTP, IPC call, the row group-committed, 201',
  'row-in-reply': 'HTTP, IPC call answered with the row, the row group-committed, 201; then the receipt: an IPC call from the shard, its status group-committed',
  gateway: "HTTP, IPC call; the shard's own IPC call to store the row (group-committed), then its answer, 201; then the receipt as above (the gateway's hops today)",
} as const;
type Structure = keyof typeof STRUCTURE_TEXT;
const STRUCTURES = (argText('--structures') ?? 'one-write,row-in-reply,gateway').split(',').filter((x): x is Structure => {
  if (!(x in STRUCTURE_TEXT)) throw new Error(`--structures: unknown structure ${x} (${Object.keys(STRUCTURE_TEXT).join(', ')})`);
  return true;
});
const ROUNDS = arg('--rounds', 3);
const IN_FLIGHT = 64;
const WARMUP = RATE > 0 ? RATE : 2_000;

/** Spends `ms` of this process's CPU (user + system), however long that takes on a shared machine. */
function burn(ms: number): void {
  if (ms <= 0) return;
  const t0 = ownCpuMs();
  while (ownCpuMs() - t0 < ms) {
    // spin
  }
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs `total` calls of `one`: IN_FLIGHT at a time, or with `--rate`, started at that rate whatever is in flight. */
async function drive(total: number, one: (i: number) => Promise<void>): Promise<void> {
  if (RATE > 0) {
    const inflight: Promise<void>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = t0 + (i * 1000) / RATE - performance.now();
      if (wait > 1) await sleep(wait);
      inflight.push(one(i));
    }
    await Promise.all(inflight);
    return;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) await one(next++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

interface Figures {
  perSec: number;
  clientUs: number;
  serverUs: number;
  /** The skeleton's IPC child and PostgreSQL backends. */
  shardUs?: number;
  pgUs?: number;
}

/**
 * Measures `total` calls after a warm-up: calls per second and CPU µs per call of this process, of `child`, of the
 * `extra` processes (the skeleton's IPC child) and of the database's backends.
 */
async function measure(child: ChildProcess, one: (i: number) => Promise<void>, extra: number[] = [], pg?: BenchDatabase): Promise<Figures> {
  await drive(WARMUP, one);
  const sum = (pids: number[]): number => pids.reduce((n, pid) => n + procCpuMs(pid), 0);
  const c0 = ownCpuMs();
  const s0 = procCpuMs(child.pid);
  const e0 = sum(extra);
  const p0 = pg === undefined ? 0 : await pg.backendCpu();
  const t0 = performance.now();
  await drive(REQUESTS, one);
  const seconds = (performance.now() - t0) / 1000;
  const per = (ms: number): number => (ms * 1000) / REQUESTS;
  const f: Figures = { perSec: REQUESTS / seconds, clientUs: per(ownCpuMs() - c0), serverUs: per(procCpuMs(child.pid) - s0) };
  if (extra.length > 0) f.shardUs = per(sum(extra) - e0);
  if (pg !== undefined) f.pgUs = per(((await pg.backendCpu()) - p0) * 1000);
  return f;
}

/**
 * `row` writes one row per call, `status` one status row, both group-committed as the router's message writes are
 * (one `GroupCommit` with two writers, one bulk INSERT per op and batch).
 */
async function rowWriter(dbUrl: string): Promise<{ row: (id: string, text: string) => Promise<void>; status: (id: string) => Promise<void> }> {
  const db = await PostgresDatabase.connect(dbUrl, { logger: createRootLogger({ proc: 'bench', level: 'warn' }), poolMax: 4 });
  const writer = new GroupCommit(db, { writers: 2 });
  const insert: BulkWrite<{ id: string; text: string }, null> = {
    order: 0,
    async run(tx, inputs) {
      await tx.query('INSERT INTO floor_rows (id, body) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [inputs.map((i) => i.id), inputs.map((i) => i.text)], { name: 'floor_insert' });
      return inputs.map(() => null);
    },
  };
  const status: BulkWrite<string, null> = {
    order: 1,
    async run(tx, ids) {
      await tx.query(`INSERT INTO floor_status (id, status) SELECT id, 'delivered' FROM unnest($1::text[]) AS id`, [ids], { name: 'floor_status' });
      return ids.map(() => null);
    },
  };
  return {
    row: async (id, text) => {
      await writer.submit(insert, { id, text });
    },
    status: async (id) => {
      await writer.submit(status, id);
    },
  };
}

const body = JSON.stringify({ to: '6281200000002', type: 'text', text: 'bench message 0000000001 with a few more words in it' });
const reply = JSON.stringify({ id: '3EB0A1B2C3D4E5F6A7B8', status: 'sent', chat: '6281200000002@s.whatsapp.net', timestamp: new Date().toISOString() });

if (process.argv[2] === '--child-http') {
  // With a database URL: the router of the send skeleton in its `--structure` (the IPC child is the shard's place, the
  // rows go through a GroupCommit), else the HTTP hop alone.
  const dbUrl = process.argv[3];
  let hop: ((text: string) => Promise<void>) | undefined;
  let shardPid = 0;
  if (dbUrl !== undefined) {
    const structure = argText('--structure') ?? 'one-write';
    const shard = fork(import.meta.filename, ['--child-ipc', '', String(BURN_SEND), structure], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    shardPid = shard.pid ?? 0;
    const waiting = new Map<number, () => void>();
    const store = await rowWriter(dbUrl);
    // The shard's requests (`received`: store this row; `status`: store this receipt), answered once committed.
    shard.on('message', (m: { kind: string; id: number; request?: { kind: string; id: string; text?: string } }) => {
      if (m.kind === 'reply') {
        waiting.get(m.id)?.();
        waiting.delete(m.id);
        return;
      }
      const r = m.request;
      const done = r?.kind === 'received' ? store.row(r.id, r.text ?? '') : store.status(r?.id ?? '');
      void done.then(() => shard.send({ kind: 'reply', id: m.id, ok: true, value: null }));
    });
    let id = 0;
    hop = async (text) => {
      const n = ++id;
      await new Promise<void>((resolve) => {
        waiting.set(n, resolve);
        shard.send({ kind: 'request', id: n, request: { kind: 'message.send', id: `${process.pid}-${n}`, text } });
      });
      // 'gateway': the shard stored the row itself before it answered; otherwise the row came with the answer.
      if (structure !== 'gateway') await store.row(`${process.pid}-${n}`, text);
    };
  }
  const app = new Koa();
  const router = new Router();
  router.post('/api/v1/sessions/:id/messages', async (ctx) => {
    const chunks: Buffer[] = [];
    for await (const c of ctx.req) chunks.push(c as Buffer);
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { to?: unknown; text?: unknown };
    const text = parsed.text;
    if (typeof parsed.to !== 'string' || typeof text !== 'string') return ctx.throw(400, 'to and text must be strings');
    if (hop !== undefined) await hop(text);
    ctx.status = 201;
    ctx.type = 'application/json';
    ctx.body = reply;
  });
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port, shardPid }));
  process.on('disconnect', () => process.exit(0));
} else if (process.argv[2] === '--child-ipc') {
  // As the send skeleton's shard (argv 5, the structure): burns, may call its router, answers. With a database URL:
  // the router's side of an inbound message (its rows group-committed, then the reply).
  const dbUrl = process.argv[3] || undefined;
  const burnMs = Number(process.argv[4] ?? 0);
  const structure = process.argv[5];
  const store = dbUrl === undefined ? undefined : await rowWriter(dbUrl);
  let n = 0;
  let calls = 0;
  const waiting = new Map<number, () => void>();
  const call = (request: object): Promise<void> =>
    new Promise((resolve) => {
      const id = ++calls;
      waiting.set(id, resolve);
      process.send?.({ kind: 'request', id, request });
    });
  process.on('message', (msg: { kind: string; id: number; count?: number; request?: { id: string; text: string } }) => {
    if (msg.kind === 'reply') {
      waiting.get(msg.id)?.();
      waiting.delete(msg.id);
      return;
    }
    burn(burnMs);
    const r = msg.request;
    if (store !== undefined) {
      const rows = Array.from({ length: msg.count ?? 1 }, () => store.row(`${process.pid}-${++n}`, reply));
      void Promise.all(rows).then(() => process.send?.({ kind: 'reply', id: msg.id, ok: true, value: null }));
      return;
    }
    const answer = (): void => {
      process.send?.({ kind: 'reply', id: msg.id, ok: true, value: reply });
      // The delivery receipt that follows every send: its status stored through the router.
      if (structure === 'gateway' || structure === 'row-in-reply') void call({ kind: 'status', id: r?.id });
    };
    if (structure === 'gateway') void call({ kind: 'received', id: r?.id, text: r?.text }).then(answer);
    else answer();
  });
  process.on('disconnect', () => process.exit(0));
} else {
  const results: { hop: string; round: number; f: Figures }[] = [];
  const db = await createBenchDatabase('wagw_bench_floor', createRootLogger({ proc: 'bench', level: 'warn' }));
  {
    const setup = await PostgresDatabase.connect(db.url, { logger: createRootLogger({ proc: 'bench', level: 'warn' }), poolMax: 1 });
    await setup.query('CREATE TABLE floor_rows (id text PRIMARY KEY, body text NOT NULL, at timestamptz NOT NULL DEFAULT now())');
    await setup.query('CREATE TABLE floor_status (id text NOT NULL, status text NOT NULL, at timestamptz NOT NULL DEFAULT now())');
    await setup.close();
  }
  for (let round = 1; round <= ROUNDS; round++) {
    // HTTP, then the skeleton of a send in each structure
    for (const skeleton of [undefined, ...STRUCTURES]) {
      const child = fork(import.meta.filename, skeleton !== undefined ? ['--child-http', db.url, '--burn-send', String(BURN_SEND), '--structure', skeleton] : ['--child-http'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const { port, shardPid } = await new Promise<{ port: number; shardPid: number }>((resolve) => child.once('message', (p) => resolve(p as { port: number; shardPid: number })));
      const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
      const one = (): Promise<void> =>
        new Promise((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/sessions/s1/messages', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
          });
          req.on('error', reject);
          req.end(body);
        });
      const f = skeleton === undefined ? await measure(child, one) : await measure(child, one, [shardPid], db);
      results.push({ hop: skeleton === undefined ? 'HTTP (koa + @koa/router, node http client, keep-alive)' : `send skeleton, ${skeleton}: ${STRUCTURE_TEXT[skeleton]}`, round, f });
      agent.destroy();
      child.disconnect();
    }
    // IPC, then an inbound message's skeleton (an IPC call the callee answers once the row committed)
    for (const skeleton of [false, true]) {
      const child = fork(import.meta.filename, skeleton ? ['--child-ipc', db.url] : ['--child-ipc'], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      if (skeleton) await sleep(1000); // its database connection
      const waiting = new Map<number, () => void>();
      child.on('message', (m: { id: number }) => {
        waiting.get(m.id)?.();
        waiting.delete(m.id);
      });
      let id = 0;
      const request = { kind: 'request', request: { kind: 'message.send', sessionId: 'bench-session-001', to: '6281200000002@s.whatsapp.net', content: { type: 'text', text: 'bench message 0000000001 with a few more words in it' }, messageId: '3EB0A1B2C3D4E5F6A7B8' } };
      const one = (): Promise<void> =>
        new Promise((resolve) => {
          if (skeleton) burn(BURN_INBOUND * INBOUND_BATCH);
          const n = ++id;
          waiting.set(n, resolve);
          child.send(skeleton ? { ...request, id: n, count: INBOUND_BATCH } : { ...request, id: n });
        });
      const f = await measure(child, one, [], skeleton ? db : undefined);
      if (skeleton) {
        // Per message, not per call.
        f.perSec *= INBOUND_BATCH;
        f.clientUs /= INBOUND_BATCH;
        f.serverUs /= INBOUND_BATCH;
        if (f.pgUs !== undefined) f.pgUs /= INBOUND_BATCH;
      }
      results.push({ hop: skeleton ? `inbound skeleton: IPC call of ${INBOUND_BATCH} message(s), rows group-committed, reply` : 'IPC request + reply (child_process, JSON)', round, f });
      child.disconnect();
    }
  }
  console.log(`Node ${process.version}, ${os.cpus().length} cores, ${REQUESTS} calls per round after ${WARMUP} warm-up, ${RATE > 0 ? `${RATE} started per second` : `${IN_FLIGHT} in flight`}`);
  console.log('| hop | round | calls/s | caller CPU µs per call | callee CPU µs per call | IPC child (send skeleton) / PostgreSQL µs per call |');
  console.log('|---|---:|---:|---:|---:|---|');
  const us = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(0));
  for (const r of results) console.log(`| ${r.hop} | ${r.round} | ${r.f.perSec.toFixed(0)} | ${us(r.f.clientUs)} | ${us(r.f.serverUs)} | ${r.f.pgUs === undefined ? '-' : `${us(r.f.shardUs)} / ${us(r.f.pgUs)}`} |`);
  // The skeletons' overhead: every process's CPU per message but the burn, and what it leaves of the burn's rate.
  for (const r of results) {
    if (r.f.pgUs === undefined) continue;
    const burnt = (r.f.shardUs === undefined ? BURN_INBOUND : BURN_SEND) * 1000;
    const total = r.f.clientUs + r.f.serverUs + (r.f.shardUs ?? 0) + r.f.pgUs;
    const overhead = total - burnt;
    const bound = burnt > 0 ? `; CPU-bound against the burn alone: ${(burnt / total).toFixed(2)}x` : '';
    console.log(`${r.hop}, round ${r.round}: ${(overhead / 1000).toFixed(3)} CPU ms per message beyond ${(burnt / 1000).toFixed(2)} ms burnt${bound}`);
  }
  await db.drop();
}
