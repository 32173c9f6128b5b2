/**
 * Webhook outbox throughput and outage recovery, through the real dispatcher, to a local HTTP receiver running
 * in a worker thread (so it does not share the dispatcher's event loop).
 *
 *   node bench/webhooks.ts                      # PostgreSQL + PGlite; 20,000 events; a 60 s outage; writes docs/benchmarks.md ## webhooks
 *   node bench/webhooks.ts --outage-seconds 10  # a shorter outage
 *   node bench/webhooks.ts --n 5000 --no-write --skip-pglite
 *
 * Throughput: N events are written to the outbox (500 per transaction) with the dispatcher stopped, then it
 * starts and the clock runs until the receiver has every one and the outbox has no pending row.
 * Outage: the receiver closes its listener (connection refused) for the outage while events keep being written
 * at --rate per second; then it listens again and the clock measures until the backlog is delivered.
 * Default WEBHOOK_* settings except the ones printed with the results.
 */
import { writeBenchSection } from './report.ts';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { SqlDatabase, WebhookEvent } from '@wagw/shared';
import { PgliteDatabase, PostgresDatabase, migrate } from '@wagw/stores';
import { createWebhookSystem } from '../packages/router/src/webhooks/index.ts';

type ReceiverCommand = { cmd: 'count' } | { cmd: 'down' } | { cmd: 'up' } | { cmd: 'reset' };

// ---------------- receiver (worker thread) ----------------
if (!isMainThread) {
  const port = parentPort;
  if (port === null) throw new Error('no parent port');
  const ids = new Set<string>();
  let received = 0;
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      received++;
      const id = req.headers['webhook-id'];
      if (typeof id === 'string') ids.add(id);
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 10_000;
  let listenPort = 0;
  const listen = (): Promise<void> => new Promise((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve()));
  await listen();
  listenPort = (server.address() as AddressInfo).port;
  port.postMessage({ port: listenPort });
  port.on('message', (m: ReceiverCommand) => {
    switch (m.cmd) {
      case 'count':
        port.postMessage({ received, unique: ids.size });
        break;
      case 'down':
        server.close();
        server.closeAllConnections();
        port.postMessage({ ok: true });
        break;
      case 'up':
        void listen().then(() => port.postMessage({ ok: true }));
        break;
      case 'reset':
        ids.clear();
        received = 0;
        port.postMessage({ ok: true });
        break;
    }
  });
} else {
  await main();
}

interface Receiver {
  url: string;
  ask<T>(cmd: ReceiverCommand): Promise<T>;
  stop(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const worker = new Worker(new URL(import.meta.url));
  const first = await new Promise<{ port: number }>((resolve) => worker.once('message', resolve));
  return {
    url: `http://127.0.0.1:${first.port}`,
    ask<T>(cmd: ReceiverCommand): Promise<T> {
      return new Promise<T>((resolve) => {
        worker.once('message', (m: T) => resolve(m));
        worker.postMessage(cmd);
      });
    },
    async stop() {
      await worker.terminate();
    },
  };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) ? v : fallback;
}

interface Row {
  db: string;
  scenario: string;
  events: number;
  seconds: number;
  perSec: number;
  note: string;
}

function makeEvent(i: number, runId: string): WebhookEvent {
  const session = `bench-${i % 200}`;
  return i % 10 === 0
    ? { id: `${runId}-${i}`, topic: 'session-status', sessionId: session, occurredAt: new Date().toISOString(), data: { status: 'connected' } }
    : { id: `${runId}-${i}`, topic: 'messages', sessionId: session, occurredAt: new Date().toISOString(), data: { id: `m${i}`, from: '6281234567890@s.whatsapp.net', type: 'text', text: 'hello from the bench, a short message' } };
}

async function enqueueMany(db: SqlDatabase, outbox: { enqueue: (tx: Parameters<Parameters<SqlDatabase['transaction']>[0]>[0], e: WebhookEvent) => Promise<void> }, events: WebhookEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    const chunk = events.slice(i, i + 500);
    await db.transaction(async (tx) => {
      for (const e of chunk) await outbox.enqueue(tx, e);
    });
  }
}

async function waitDrained(db: SqlDatabase, receiver: Receiver, expectedUnique: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await receiver.ask<{ unique: number }>({ cmd: 'count' });
    if (c.unique >= expectedUnique) {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*) AS n FROM webhook_outbox WHERE status = 'pending'`);
      if ((rows[0]?.n ?? 1) === 0) return;
    }
    if (Date.now() > deadline) throw new Error(`not drained within ${timeoutMs} ms (${c.unique}/${expectedUnique})`);
    await sleep(20);
  }
}

async function runOn(kind: 'postgres' | 'pglite', n: number, outageSeconds: number, rate: number): Promise<Row[]> {
  const logger = createRootLogger({ proc: 'bench', level: 'warn' });
  let db: SqlDatabase;
  let cleanup: () => Promise<void>;
  if (kind === 'postgres') {
    const admin = process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const name = `wagw_bench_${randomBytes(4).toString('hex')}`;
    const adminDb = await PostgresDatabase.connect(admin, { logger, poolMax: 1 });
    await adminDb.query(`CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    db = await PostgresDatabase.connect(url.toString(), { logger, poolMax: 10 });
    cleanup = async () => {
      await db.close();
      await adminDb.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await adminDb.close();
    };
  } else {
    const dir = `${os.tmpdir()}/wagw-bench-pglite-${randomBytes(4).toString('hex')}`;
    const p = await PgliteDatabase.open({ dataDir: dir, port: 0, logger });
    db = p;
    cleanup = async () => {
      await p.close();
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    };
  }
  const receiver = await startReceiver();
  const rows: Row[] = [];
  try {
    await migrate(db, { logger });
    const config = loadConfig({ NODE_ENV: 'production', BACKEND_URL: receiver.url, WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`, WEBHOOK_BATCH_SIZE: '500', WEBHOOK_CONCURRENCY: '64' });
    // Throughput: a backlog of n rows, then the dispatcher starts.
    const sys = createWebhookSystem({ sql: db, config, logger });
    const runId = randomBytes(3).toString('hex');
    const events = Array.from({ length: n }, (_, i) => makeEvent(i, runId));
    const e0 = performance.now();
    await enqueueMany(db, sys.outbox, events);
    const enqueueSec = (performance.now() - e0) / 1000;
    const t0 = performance.now();
    sys.dispatcher.start();
    await waitDrained(db, receiver, n, 600_000);
    const sec = (performance.now() - t0) / 1000;
    rows.push({ db: kind, scenario: 'backlog drain', events: n, seconds: sec, perSec: n / sec, note: `enqueue ${Math.round(n / enqueueSec).toLocaleString('en-US')}/s (500 per tx)` });
    process.stdout.write(`${kind}: ${n} deliveries in ${sec.toFixed(2)} s = ${Math.round(n / sec)}/s\n`);

    // Outage: the receiver refuses connections while events keep coming at `rate`/s.
    if (outageSeconds > 0) {
      await receiver.ask({ cmd: 'reset' });
      const runId2 = randomBytes(3).toString('hex');
      await receiver.ask({ cmd: 'down' });
      const outageEvents: WebhookEvent[] = [];
      const outEnd = performance.now() + outageSeconds * 1000;
      let i = 0;
      while (performance.now() < outEnd) {
        const tick = performance.now();
        const batch = Array.from({ length: Math.max(1, Math.round(rate / 10)) }, () => makeEvent(i++, runId2));
        outageEvents.push(...batch);
        await enqueueMany(db, sys.outbox, batch);
        await sleep(Math.max(0, 100 - (performance.now() - tick)));
      }
      const r0 = performance.now();
      await receiver.ask({ cmd: 'up' });
      let firstAt = 0;
      for (;;) {
        const c = await receiver.ask<{ unique: number }>({ cmd: 'count' });
        if (c.unique > 0) {
          firstAt = performance.now();
          break;
        }
        await sleep(10);
      }
      await waitDrained(db, receiver, outageEvents.length, 900_000);
      const total = (performance.now() - r0) / 1000;
      const afterFirst = (performance.now() - firstAt) / 1000;
      rows.push({
        db: kind,
        scenario: `${outageSeconds} s outage, ${rate}/s written`,
        events: outageEvents.length,
        seconds: total,
        perSec: outageEvents.length / afterFirst,
        note: `first delivery ${((firstAt - r0) / 1000).toFixed(1)} s after recovery (breaker half-open probe, WEBHOOK_BREAKER_HALF_OPEN_MS=${config.webhooks.breakerHalfOpenMs} doubling up to ${config.webhooks.breakerHalfOpenMaxMs}); then drained in ${afterFirst.toFixed(2)} s`,
      });
      process.stdout.write(`${kind}: outage backlog ${outageEvents.length} drained ${total.toFixed(2)} s after recovery\n`);
    }
    await sys.dispatcher.stop();
  } finally {
    await receiver.stop();
    await cleanup();
  }
  return rows;
}

async function main(): Promise<void> {
  const n = arg('--n', 20_000);
  const outageSeconds = arg('--outage-seconds', 60);
  const rate = arg('--rate', 100);
  const write = !process.argv.includes('--no-write');
  const rows: Row[] = [];
  rows.push(...(await runOn('postgres', n, outageSeconds, rate)));
  if (!process.argv.includes('--skip-pglite')) rows.push(...(await runOn('pglite', n, outageSeconds > 0 ? Math.min(outageSeconds, 10) : 0, rate)));
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const header = `Last run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.availableParallelism()} cores (${cpu.trim()}).`;
  const table = [
    '| database | scenario | events | seconds | deliveries/s | notes |',
    '|---|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.db} | ${r.scenario} | ${r.events.toLocaleString('en-US')} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSec).toLocaleString('en-US')} | ${r.note} |`),
  ].join('\n');
  const best = rows.find((r) => r.db === 'postgres' && r.scenario === 'backlog drain');
  const goal = best === undefined ? '' : `Goal >= 2,000 deliveries/s on PostgreSQL: ${Math.round(best.perSec).toLocaleString('en-US')}/s, ${best.perSec >= 2000 ? 'met' : 'NOT met'}.`;
  process.stdout.write(`\n${header}\n\n${table}\n\n${goal}\n`);
  if (!write) return;
  const section = `## webhooks

\`node bench/webhooks.ts\` (\`--n\`, \`--outage-seconds\`, \`--rate\`, \`--skip-pglite\`, \`--no-write\`). The real dispatcher
(\`createWebhookSystem\`, WEBHOOK_BATCH_SIZE=500, WEBHOOK_CONCURRENCY=64, other settings default) delivers to a local
HTTP receiver in a worker thread (keep-alive, answers 204). Each delivery is a signed POST (standardwebhooks HMAC)
and its row is claimed and recorded in PostgreSQL. 10 % of the events are session-status (ordered per session over
200 sessions), the rest inbound messages. "backlog drain": N rows written first, then the dispatcher starts and the
clock runs until every event arrived and no row is pending. Outage: the receiver closes its listener (connection
refused) while events are written at the given rate; the clock starts when it listens again. PGlite runs the same
throughput scenario through its single connection and a shorter outage (at most 10 s).

${header}

${table}

${goal}
`;
  writeBenchSection('webhooks', section.replace(/^## webhooks\s*\n/, ''));
  process.stdout.write('wrote docs/benchmarks.md ## webhooks\n');
}
