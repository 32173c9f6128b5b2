// A transaction on PostgreSQL pipelines (pg's `pipeline`): its BEGIN goes out with its first statement and its
// `write`s with its COMMIT, so a group-committed batch (BEGIN, the rows, the outbox rows, COMMIT) costs two round
// trips instead of four. Counted on the wire by a proxy between the pool and the server: it parses both streams and
// numbers each message the client sends by the count of ReadyForQuery ('Z') the server had answered before it. The
// server's answers are forwarded 30 ms late, so messages the client writes in one turn are all read before any
// answer to them reaches it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import { createTestDatabase } from '../../../test/harness/index.ts';
import { PostgresDatabase } from '../src/sql/postgres.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

/** Splits a PostgreSQL message stream into message types; `untyped` leading messages have no type byte (the client's startup). */
function messageReader(untyped: number, onMessage: (type: string) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  let skip = untyped;
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (skip > 0) {
        if (buf.length < 4) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        buf = buf.subarray(len);
        skip--;
        continue;
      }
      if (buf.length < 5) return;
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) return;
      onMessage(String.fromCharCode(buf[0] ?? 0));
      buf = buf.subarray(1 + len);
    }
  };
}

/** A proxy to PostgreSQL that records the client's messages with the number of ReadyForQuery forwarded before each. */
async function countingProxy(t: TestContext, target: URL): Promise<{ port: number; sent: { type: string; answered: number }[] }> {
  const sent: { type: string; answered: number }[] = [];
  let answered = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    const fromClient = messageReader(1, (type) => sent.push({ type, answered }));
    client.on('data', (chunk) => {
      fromClient(chunk);
      upstream.write(chunk);
    });
    // Answers are counted when forwarded, after the delay, in order; one reader per connection, so an answer split
    // across two chunks is still read whole.
    const fromServer = messageReader(0, (type) => {
      if (type === 'Z') answered++;
    });
    upstream.on('data', (chunk) => {
      setTimeout(() => {
        fromServer(chunk);
        client.write(chunk);
      }, 30);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    upstream.on('close', () => setTimeout(() => client.end(), 40));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, sent };
}

/** One transaction as a group-committed batch writes it: a statement whose rows it reads, then the outbox rows (a write). */
async function batch(db: PostgresDatabase, k: string): Promise<void> {
  await db.transaction(async (tx) => {
    const r = await tx.query<{ k: string }>('INSERT INTO rows (k) VALUES ($1) RETURNING k', [k]);
    tx.write('INSERT INTO outbox (k) VALUES ($1)', [r.rows[0]?.k]);
  });
}

/** The round trips of the transaction: distinct counts of answers the client had when it sent its messages. */
function flights(sent: { type: string; answered: number }[]): { types: string; at: number }[] {
  const out: { types: string; at: number }[] = [];
  for (const m of sent) {
    const last = out.at(-1);
    if (last?.at === m.answered) last.types += m.type;
    else out.push({ types: m.type, at: m.answered });
  }
  return out;
}

for (const pipeline of [true, false]) {
  test(`a transaction of a read statement and a write: ${pipeline ? 'two round trips pipelined' : 'four without pipelining'}`, async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const setup = await PostgresDatabase.connect(database.url, { logger, poolMax: 1 });
    await setup.query('CREATE TABLE rows (k text PRIMARY KEY)');
    await setup.query('CREATE TABLE outbox (k text PRIMARY KEY)');
    await setup.close();

    const target = new URL(database.url);
    const proxy = await countingProxy(t, target);
    const url = new URL(database.url);
    url.port = String(proxy.port);
    const db = await PostgresDatabase.connect(url.toString(), { logger, poolMax: 1, pipeline });
    t.after(() => db.close());
    await batch(db, 'warm'); // the pool's one connection is open and idle

    proxy.sent.length = 0;
    await batch(db, 'a');
    const trips = flights(proxy.sent);
    // 'Q' is a simple query (BEGIN, COMMIT); P/B/D/E/S a statement with parameters (parse, bind, describe, execute, sync).
    const statements = trips.map((f) => f.types.replace(/P?BD?ES/g, '(statement)'));
    if (pipeline) assert.deepEqual(statements, ['Q(statement)', '(statement)Q'], 'BEGIN with the INSERT, then the write with COMMIT');
    else assert.deepEqual(statements, ['Q', '(statement)', '(statement)', 'Q'], 'BEGIN, INSERT, the write, COMMIT: one round trip each');

    const rows = await db.query<{ k: string }>("SELECT k FROM rows UNION ALL SELECT 'outbox:' || k FROM outbox ORDER BY 1");
    assert.deepEqual(rows.rows.map((r) => r.k), ['a', 'outbox:a', 'outbox:warm', 'warm']);
  });
}
