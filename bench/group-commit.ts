/**
 * The group commit's transaction alone, pipelined against not (issue #18): batches of B messages, each written as
 * the router's group-commit writer writes a batch of sends (`storeMessages`: the rows with their `sent` history in
 * one statement, the webhook outbox rows in another, between BEGIN and COMMIT), one batch after another on one
 * connection, against PostgreSQL at 127.0.0.1:5432 (`BENCH_PG_URL` for its admin database). Rounds alternate
 * between a pool with pg's `pipeline` on (BEGIN goes with the rows' statement, the outbox rows with COMMIT: two
 * round trips) and off (four), so a drift of the machine falls on both.
 *
 *   node bench/group-commit.ts [--batch 4] [--batches 1500] [--rounds 3]
 *
 * Prints, per round: batches per second, a batch's p50 and p99 (ms), and CPU per message of this process
 * (node-postgres and the writes' JavaScript) and of the PostgreSQL backend serving it (its /proc entry).
 */
import { randomBytes } from 'node:crypto';
import { createRootLogger } from '@wagw/shared';
import type { StoredContent } from '@wagw/shared';
import { PostgresDatabase, migrate } from '@wagw/stores';
import { MessageStore } from '../packages/router/src/messages/store.ts';
import { storeMessages } from '../packages/router/src/messages/ingest.ts';
import type { MessageWrite } from '../packages/router/src/messages/ingest.ts';
import { OutboxWriter } from '../packages/router/src/webhooks/outbox.ts';
import { createBenchDatabase } from './pg-database.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) ? v : fallback;
}

const logger = createRootLogger({ proc: 'bench', level: 'warn' });
const batchSize = arg('--batch', 4);
const batches = arg('--batches', 1500);
const rounds = arg('--rounds', 3);

function message(n: number, run: string): MessageWrite {
  const id = `3EB0${run}${String(n).padStart(10, '0')}`;
  const content: StoredContent = { id, chat: '6281200000002@s.whatsapp.net', from: '6281200000001@s.whatsapp.net', fromMe: true, timestamp: new Date().toISOString(), type: 'text', text: `bench message ${n}` } as StoredContent;
  return { sessionId: 'bench', message: content, raw: Buffer.from(`raw proto of ${id}`).toString('base64'), requestId: `req_${run}_${n}` };
}

const bench = await createBenchDatabase('wagw_bench_gc', logger);
const url = new URL(bench.url);
const outbox = new OutboxWriter({ backendUrl: 'http://127.0.0.1:9/backend', signingConfigured: true, logger });
let seq = 0;
try {
  const setup = await PostgresDatabase.connect(url.toString(), { logger, poolMax: 1 });
  await migrate(setup, { logger });
  await setup.close();
  console.log(`batches of ${batchSize} messages (rows + sent history + outbox rows), ${batches} batches per round, one connection, PostgreSQL at ${url.host}`);
  console.log('| round | pipeline | batches/s | batch p50 / p99 (ms) | client CPU ms per message | PostgreSQL CPU ms per message |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (let round = 1; round <= rounds; round++) {
    for (const pipeline of [false, true]) {
      const db = await PostgresDatabase.connect(url.toString(), { logger, poolMax: 1, pipeline });
      const store = new MessageStore(db);
      const run = randomBytes(3).toString('hex');
      const write = async (): Promise<void> => {
        const writes = Array.from({ length: batchSize }, () => message(seq++, run));
        await db.transaction((tx) => storeMessages(tx, { store, outbox }, writes));
      };
      for (let i = 0; i < 50; i++) await write(); // warm: the connection, the prepared statements' generic plans
      const pg0 = await bench.backendCpu();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const times: number[] = [];
      for (let i = 0; i < batches; i++) {
        const s = performance.now();
        await write();
        times.push(performance.now() - s);
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const pg = (await bench.backendCpu()) - pg0;
      times.sort((a, b) => a - b);
      const q = (p: number): string => (times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0).toFixed(2);
      const messages = batches * batchSize;
      console.log(`| ${round} | ${pipeline ? 'on' : 'off'} | ${(batches / seconds).toFixed(0)} | ${q(0.5)} / ${q(0.99)} | ${((cpu.user + cpu.system) / 1000 / messages).toFixed(3)} | ${((pg * 1000) / messages).toFixed(3)} |`);
      await db.close();
    }
  }
} finally {
  await bench.drop();
}
