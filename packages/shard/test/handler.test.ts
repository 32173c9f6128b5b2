import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { PROTOCOL_VERSION, fromErrorBody } from '@wagw/shared';
import type { CpuPoolStats, InitMessage, IpcReply, IpcRequestBody, RouterToShard, ShardToRouter } from '@wagw/shared';
import { createShardHandler } from '../src/handler.ts';
import type { CpuPoolLike, ShardHandlerOptions } from '../src/handler.ts';

class FakePool implements CpuPoolLike {
  closed = 0;
  stats(): CpuPoolStats {
    return { threads: 1, queued: 0, completed: 7, utilization: 0.5 };
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

function initMessage(overrides: Partial<InitMessage> = {}): InitMessage {
  return {
    kind: 'init',
    protocolVersion: PROTOCOL_VERSION,
    shardIndex: 3,
    hostId: 'host-a',
    config: { nodeEnv: 'test', logLevel: 'debug', dataDir: '/tmp/x', maxSessions: 10, workerThreads: 1, callTimeoutMs: 1000, stopTimeoutMs: 600 },
    ...overrides,
  };
}

/** Runs the handler in-process with a recording transport. */
function harness(extra: Partial<ShardHandlerOptions> = {}) {
  const sent: ShardToRouter[] = [];
  const logLines: Record<string, unknown>[] = [];
  const exits: number[] = [];
  const pool = new FakePool();
  let listener: ((msg: unknown) => void) | undefined;
  const waiters: (() => void)[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const handler = createShardHandler({
    pid: 4242,
    send: (msg, onSent) => {
      sent.push(msg);
      for (const w of waiters.splice(0)) w();
      onSent?.();
    },
    receive: (l) => {
      listener = l;
    },
    exit: (code) => exits.push(code),
    createLogger: (init) => pino({ level: init.config.logLevel, base: { proc: 'shard', shard: init.shardIndex } }, logStream),
    createCpuPool: async () => pool,
    ...extra,
  });
  const deliver = (msg: RouterToShard | unknown): void => {
    assert.ok(listener, 'handler registered a listener');
    listener(msg);
  };
  /** Waits for the first sent message matching `pred`. */
  const next = async <T extends ShardToRouter>(pred: (m: ShardToRouter) => m is T): Promise<T> => {
    for (;;) {
      const found = sent.find(pred);
      if (found) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const replies = (): IpcReply[] => sent.flatMap((m) => (m.kind === 'reply' ? [m] : m.kind === 'replies' ? m.replies : []));
  const replyTo = async (id: number): Promise<IpcReply> => {
    for (;;) {
      const r = replies().find((x) => x.id === id);
      if (r) return r;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  let nextId = 1;
  const call = async (body: IpcRequestBody): Promise<IpcReply> => {
    const id = nextId++;
    deliver({ ...body, id });
    return await replyTo(id);
  };
  const ready = async (): Promise<void> => {
    deliver(initMessage());
    await next((m): m is Extract<ShardToRouter, { kind: 'ready' }> => m.kind === 'ready');
  };
  return { handler, sent, logLines, exits, pool, deliver, next, call, replies, ready };
}

describe('shard handler: handshake', () => {
  it('answers init with ready carrying pid and protocol version', async () => {
    const h = harness();
    h.deliver(initMessage());
    const msg = await h.next((m) => m.kind === 'ready');
    assert.deepEqual(msg, { kind: 'ready', protocolVersion: PROTOCOL_VERSION, pid: 4242 });
    assert.equal(h.handler.state, 'ready');
  });

  it('refuses a protocol version mismatch with a non-retryable init-failed', async () => {
    const h = harness();
    h.deliver(initMessage({ protocolVersion: PROTOCOL_VERSION + 1 }));
    const msg = await h.next((m) => m.kind === 'init-failed');
    assert.equal(msg.kind, 'init-failed');
    if (msg.kind !== 'init-failed') return;
    assert.equal(msg.retryable, false);
    assert.equal(msg.error.code, 'SHARD_UNAVAILABLE');
    assert.match(msg.error.message, /protocol version mismatch/);
    assert.deepEqual(msg.error.details, { reason: 'protocol-mismatch', routerVersion: PROTOCOL_VERSION + 1, shardVersion: PROTOCOL_VERSION });
    assert.notEqual(h.handler.state, 'ready');
  });

  it('reports a CPU pool that fails to start as a retryable init-failed', async () => {
    const h = harness({
      createCpuPool: async () => {
        throw new Error('worker file missing');
      },
    });
    h.deliver(initMessage());
    const msg = await h.next((m) => m.kind === 'init-failed');
    assert.ok(msg.kind === 'init-failed' && msg.retryable);
    assert.match(msg.error.message, /worker file missing/);
  });

  it('refuses requests before the handshake with SHARD_UNAVAILABLE', async () => {
    const h = harness();
    const r = await h.call({ kind: 'ping' });
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'SHARD_UNAVAILABLE');
  });

  it('ignores malformed messages', async () => {
    const h = harness();
    await h.ready();
    h.deliver({ kind: 'nope', id: 1 });
    h.deliver('garbage');
    h.deliver(null);
    const r = await h.call({ kind: 'ping', payload: 1 });
    assert.ok(r.ok);
    assert.equal(h.replies().length, 1);
  });
});

describe('shard handler: requests', () => {
  it('session requests without session hosting, and qr.render without a renderer, answer SHARD_UNAVAILABLE', async () => {
    const h = harness();
    await h.ready();
    for (const body of [
      { kind: 'session.start', sessionId: 's1', epoch: 1, validUntil: Date.now() + 10_000, reason: 'test' },
      { kind: 'session.list' },
      { kind: 'leases.extend', leases: [] },
      { kind: 'qr.render', text: 'x', format: 'png' },
      { kind: 'group.action', sessionId: 's1', action: { type: 'list' } },
    ] as IpcRequestBody[]) {
      const r = await h.call(body);
      assert.ok(!r.ok, body.kind);
      assert.equal(r.error.code, 'SHARD_UNAVAILABLE', body.kind);
    }
  });

  it('qr.render renders through the pool and returns PNG bytes as base64', async () => {
    const h = harness({
      createCpuPool: async () =>
        Object.assign(new FakePool(), {
          renderQr: async () => ({ format: 'png' as const, contentType: 'image/png' as const, data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }),
        }),
    });
    await h.ready();
    const r = await h.call({ kind: 'qr.render', text: '2@abc', format: 'png' });
    assert.ok(r.ok);
    assert.deepEqual(r.value, { contentType: 'image/png', encoding: 'base64', data: Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64') });
  });

  it('ping echoes its payload', async () => {
    const h = harness();
    await h.ready();
    const payload = { a: 'x'.repeat(4096), n: [1, 2, 3] };
    const r = await h.call({ kind: 'ping', payload });
    assert.deepEqual(r, { kind: 'reply', id: 1, ok: true, value: { payload, pid: 4242 } });
  });

  it('ping honours delayMs and validates it; the error is rebuilt as {code, message}', async () => {
    const h = harness();
    await h.ready();
    const t0 = performance.now();
    const r = await h.call({ kind: 'ping', delayMs: 30 });
    assert.ok(r.ok);
    assert.ok(performance.now() - t0 >= 25);
    const bad = await h.call({ kind: 'ping', delayMs: -1 });
    assert.ok(!bad.ok);
    const err = fromErrorBody(bad.error);
    assert.equal(err.code, 'VALIDATION_FAILED');
    assert.equal(err.status, 400);
    assert.match(err.message, /delayMs/);
  });

  it('stats reports memory, event loop, sessions and the CPU pool', async () => {
    const h = harness({ sessionCount: () => 5 });
    await h.ready();
    const r = await h.call({ kind: 'stats' });
    assert.ok(r.ok);
    const v = r.value as Record<string, unknown> & { memory: { rss: number }; eventLoop: { utilization: number }; cpuPool: CpuPoolStats };
    assert.equal(v['shardIndex'], 3);
    assert.equal(v['pid'], 4242);
    assert.equal(v['sessions'], 5);
    assert.equal(v['inFlight'], 1);
    assert.ok(v.memory.rss > 0);
    assert.ok(v.eventLoop.utilization >= 0 && v.eventLoop.utilization <= 1);
    assert.deepEqual(v.cpuPool, { threads: 1, queued: 0, completed: 7, utilization: 0.5 });
  });

  it('stats only reads the event-loop window (a /metrics scrape); resetWindow starts a new one', async () => {
    const h = harness();
    await h.ready();
    const lagMax = async (params: { resetWindow?: boolean } = {}): Promise<number> => {
      const r = await h.call({ kind: 'stats', ...params });
      assert.ok(r.ok);
      return (r.value as { eventLoop: { lagMaxMs: number } }).eventLoop.lagMaxMs;
    };
    await new Promise((resolve) => setTimeout(resolve, 30)); // the delay monitor has ticked (its first tick sets its baseline)
    // Block the loop for 300 ms: the window's max delay records it.
    const end = Date.now() + 300;
    while (Date.now() < end) {
      // busy
    }
    await new Promise((resolve) => setTimeout(resolve, 30)); // the delay monitor's timer records the late tick
    const first = await lagMax();
    assert.ok(first >= 250, `max lag ${first} ms after a 300 ms block`);
    // A second plain read (another scrape) sees the same window: the max cannot have dropped.
    const second = await lagMax();
    assert.ok(second >= first, `second read ${second} ms < first ${first} ms: the first read reset the window`);
    // resetWindow reads the same window, then starts a new one without the block.
    assert.ok((await lagMax({ resetWindow: true })) >= first);
    assert.ok((await lagMax()) < first);
  });

  it('turns an unknown error into INTERNAL without leaking its message', async () => {
    const h = harness({
      sessionCount: () => {
        throw new Error('secret database password in message');
      },
    });
    await h.ready();
    const r = await h.call({ kind: 'stats' });
    assert.ok(!r.ok);
    assert.deepEqual(r.error, { code: 'INTERNAL', message: 'Internal error.' });
    const logged = h.logLines.find((l) => l['msg'] === 'ipc request failed');
    assert.ok(logged, 'the real error is logged in the shard');
  });

  it('logs each call with the router request id in a child logger', async () => {
    const h = harness();
    await h.ready();
    h.deliver({ kind: 'ping', id: 99, reqId: 'abc' });
    await h.next((m) => m.kind === 'reply' || m.kind === 'replies');
    const line = h.logLines.find((l) => l['msg'] === 'ipc request');
    assert.ok(line);
    assert.equal(line['reqId'], 'abc');
    assert.equal(line['kind'], 'ping');
    assert.equal(line['shard'], 3);
  });

  it('sends the replies of one event-loop turn in a single batch', async () => {
    const h = harness();
    await h.ready();
    const before = h.sent.length;
    const all = Promise.all([h.call({ kind: 'ping', payload: 1 }), h.call({ kind: 'ping', payload: 2 }), h.call({ kind: 'ping', payload: 3 })]);
    const rs = await all;
    assert.deepEqual(rs.map((r) => r.ok && (r.value as { payload: number }).payload), [1, 2, 3]);
    const newMsgs = h.sent.slice(before);
    assert.equal(newMsgs.length, 1);
    assert.equal(newMsgs[0]?.kind, 'replies');
  });

  it('sends one message per reply when batching is off', async () => {
    const h = harness({ replyBatching: 'none' });
    await h.ready();
    const before = h.sent.length;
    await Promise.all([h.call({ kind: 'ping' }), h.call({ kind: 'ping' })]);
    assert.deepEqual(h.sent.slice(before).map((m) => m.kind), ['reply', 'reply']);
  });
});

describe('shard handler: shutdown', () => {
  it('drains running requests, replies, says exiting, closes the pool and exits 0', async () => {
    const h = harness();
    await h.ready();
    const slow = h.call({ kind: 'ping', delayMs: 80, payload: 'slow' });
    const shut = h.call({ kind: 'shutdown', reason: 'test' });
    // New requests are refused while draining.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const refused = await h.call({ kind: 'ping' });
    assert.ok(!refused.ok);
    assert.equal(refused.error.code, 'SHUTTING_DOWN');
    const slowReply = await slow;
    assert.ok(slowReply.ok, 'the running request finished');
    const shutReply = await shut;
    assert.deepEqual(shutReply.ok && shutReply.value, { drained: 1 });
    const kinds = h.sent.map((m) => m.kind);
    // No `shard.draining` event any more (#11: the router ignored it): the router learns of the stop from this reply.
    assert.ok(!kinds.includes('event'));
    assert.equal(kinds.at(-1), 'exiting');
    const exiting = h.sent.at(-1);
    assert.ok(exiting?.kind === 'exiting' && exiting.code === 0);
    assert.deepEqual(h.exits, [0]);
    assert.equal(h.pool.closed, 1);
    assert.equal(h.handler.state, 'closed');
  });

  it('shutdown() from outside the protocol (SIGTERM) stops the same way', async () => {
    const h = harness();
    await h.ready();
    await h.handler.shutdown('SIGTERM');
    const last = h.sent.at(-1);
    assert.ok(last?.kind === 'exiting');
    assert.equal(last.reason, 'SIGTERM');
    assert.deepEqual(h.exits, [0]);
    assert.equal(h.pool.closed, 1);
  });
});
