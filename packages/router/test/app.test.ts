import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import http from 'node:http';
import { pino } from 'pino';
import { GatewayError } from '@wagw/shared';
import type { DependencyHealth, IpcRequestBody, RequestKind } from '@wagw/shared';
import { Lifecycle, createApp, errorResponse, requestIdFrom } from '../src/app.ts';
import type { ShardsView } from '../src/app.ts';
import { RouterMetrics } from '../src/metrics.ts';
import type { CallOptions, ShardInfo } from '../src/supervisor.ts';

function shard(index: number, overrides: Partial<ShardInfo> = {}): ShardInfo {
  return { index, state: 'ready', pid: 1000 + index, restarts: 0, lastExit: undefined, failureReason: undefined, readySince: '2026-01-01T00:00:00.000Z', pending: 0, ...overrides };
}

class FakeShards implements ShardsView {
  shards: ShardInfo[] = [shard(0), shard(1)];
  calls: { index: number; request: IpcRequestBody; options: CallOptions | undefined }[] = [];
  failing = new Set<number>();
  list(): ShardInfo[] {
    return this.shards;
  }
  pendingCount(): number {
    return 3;
  }
  async call<K extends RequestKind>(index: number, request: IpcRequestBody<K>, options?: CallOptions): Promise<never> {
    this.calls.push({ index, request: request as IpcRequestBody, options });
    if (this.failing.has(index)) throw new GatewayError('IPC_TIMEOUT');
    return { pid: 1000 + index } as never;
  }
}

interface Setup {
  base: string;
  shards: FakeShards;
  lifecycle: Lifecycle;
  logs: Record<string, unknown>[];
  metrics: RouterMetrics;
  setDeps: (d: Record<string, DependencyHealth> | Error) => void;
  close: () => Promise<void>;
}

async function setup(extra?: (app: ReturnType<typeof createApp>) => void): Promise<Setup> {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const shards = new FakeShards();
  const lifecycle = new Lifecycle();
  lifecycle.markReady();
  const metrics = new RouterMetrics({ defaultMetrics: false });
  metrics.trackShards(shards);
  let deps: Record<string, DependencyHealth> | Error = { sql: { ok: true, kind: 'pglite', latencyMs: 1 } };
  const app = createApp({
    logger: pino({ level: 'debug' }, stream),
    shards,
    lifecycle,
    metrics,
    hostId: 'h1',
    healthTimeoutMs: 200,
    healthCacheMs: 0, // these tests change the shards and dependencies between calls
    dependencies: async () => {
      if (deps instanceof Error) throw deps;
      return deps;
    },
  });
  extra?.(app);
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    shards,
    lifecycle,
    logs,
    metrics,
    setDeps: (d) => {
      deps = d;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('request id', () => {
  it('keeps a valid x-request-id and replaces a bad one with a UUID', () => {
    assert.equal(requestIdFrom('abc'), 'abc');
    assert.equal(requestIdFrom(['abc', 'def']), 'abc');
    assert.match(requestIdFrom(undefined), /^[0-9a-f-]{36}$/);
    assert.match(requestIdFrom('x'.repeat(129)), /^[0-9a-f-]{36}$/);
    assert.match(requestIdFrom('bad\u0001id'), /^[0-9a-f-]{36}$/);
    assert.match(requestIdFrom('é'), /^[0-9a-f-]{36}$/);
    assert.equal(requestIdFrom('x'.repeat(128)), 'x'.repeat(128));
  });

  it('is echoed on the response, logged, and passed to every shard call', async () => {
    const s = await setup();
    try {
      const r = await fetch(`${s.base}/health`, { headers: { 'x-request-id': 'abc' } });
      assert.equal(r.headers.get('x-request-id'), 'abc');
      assert.ok(s.shards.calls.length === 2 && s.shards.calls.every((c) => c.options?.requestId === 'abc'));
      assert.ok(s.logs.some((l) => l['reqId'] === 'abc' && l['msg'] === 'request'));
      const gen = await fetch(`${s.base}/ready`);
      assert.match(gen.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    } finally {
      await s.close();
    }
  });
});

describe('error middleware', () => {
  it('maps codes, hides unknown errors, and logs 5xx at error and 4xx at info', async () => {
    const s = await setup((app) => {
      app.use((ctx) => {
        if (ctx.path === '/gw') throw new GatewayError('SESSION_NOT_FOUND', 'No session s1.', { id: 's1' });
        if (ctx.path === '/boom') throw new Error('password=hunter2');
        if (ctx.path === '/koa') ctx.throw(400, 'bad thing');
        if (ctx.path === '/crashed') throw new GatewayError('SHARD_CRASHED', undefined, { shard: 0 });
      });
    });
    try {
      const gw = await getJson(`${s.base}/gw`);
      assert.equal(gw.status, 404);
      assert.deepEqual(gw.body, { error: { code: 'SESSION_NOT_FOUND', message: 'No session s1.', details: { id: 's1' } } });
      const boom = await getJson(`${s.base}/boom`, { headers: { 'x-request-id': 'r-boom' } });
      assert.equal(boom.status, 500);
      assert.deepEqual(boom.body, { error: { code: 'INTERNAL', message: 'Internal error.' } });
      const koa = await getJson(`${s.base}/koa`);
      assert.equal(koa.status, 400);
      assert.deepEqual(koa.body, { error: { code: 'BAD_REQUEST', message: 'bad thing' } });
      const crashed = await getJson(`${s.base}/crashed`);
      assert.equal(crashed.status, 503);
      assert.equal((crashed.body['error'] as { code: string }).code, 'SHARD_CRASHED');

      const boomLog = s.logs.find((l) => l['reqId'] === 'r-boom' && l['msg'] === 'request failed');
      assert.equal(boomLog?.['level'], 50);
      assert.match(JSON.stringify(boomLog?.['err']), /hunter2/, 'the real error is in the log, not in the response');
      const gwLog = s.logs.find((l) => l['code'] === 'SESSION_NOT_FOUND');
      assert.equal(gwLog?.['level'], 30);
    } finally {
      await s.close();
    }
  });

  it('answers unknown routes with 404 JSON and wrong methods with 405 and Allow', async () => {
    const s = await setup();
    try {
      const nf = await getJson(`${s.base}/nope`);
      assert.equal(nf.status, 404);
      assert.equal((nf.body['error'] as { code: string }).code, 'NOT_FOUND');
      const na = await getJson(`${s.base}/health`, { method: 'POST' });
      assert.equal(na.status, 405);
      assert.equal((na.body['error'] as { code: string }).code, 'METHOD_NOT_ALLOWED');
      assert.match(na.headers.get('allow') ?? '', /GET/);
    } finally {
      await s.close();
    }
  });

  it('sets security headers (koa-helmet)', async () => {
    const s = await setup();
    try {
      const r = await fetch(`${s.base}/ready`);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(r.headers.get('content-security-policy'));
    } finally {
      await s.close();
    }
  });

  it('errorResponse: registry status, expose rules, unknown values', () => {
    assert.deepEqual(errorResponse(new GatewayError('INTERNAL', 'leak me')), { status: 500, body: { error: { code: 'INTERNAL', message: 'Internal error.' } } });
    assert.deepEqual(errorResponse({ code: 'IPC_TIMEOUT', message: 'slow', details: { shard: 1 } }), {
      status: 504,
      body: { error: { code: 'IPC_TIMEOUT', message: 'slow', details: { shard: 1 } } },
    });
    assert.equal(errorResponse('a string').status, 500);
    assert.equal(errorResponse(null).body.error.code, 'INTERNAL');
    assert.equal(errorResponse({ status: 413, expose: true, message: 'too big' }).body.error.code, 'PAYLOAD_TOO_LARGE');
  });
});

describe('/health and /ready', () => {
  it('is 200 with every shard and dependency listed when all is well', async () => {
    const s = await setup();
    s.shards.shards = [shard(0), shard(1, { state: 'failed', failureReason: 'crash loop: 5 crashes', restarts: 4, pid: undefined })];
    try {
      const r = await getJson(`${s.base}/health`);
      assert.equal(r.status, 200);
      assert.equal(r.body['status'], 'ok');
      const shards = r.body['shards'] as Record<string, unknown>[];
      assert.equal(shards.length, 2);
      assert.equal(shards[0]?.['responsive'], true);
      assert.equal(shards[1]?.['state'], 'failed');
      assert.equal(shards[1]?.['failureReason'], 'crash loop: 5 crashes');
      assert.equal(shards[1]?.['restarts'], 4);
      assert.deepEqual(r.body['dependencies'], { sql: { ok: true, kind: 'pglite', latencyMs: 1 } });
    } finally {
      await s.close();
    }
  });

  it('is 503 when a dependency is down, when the check throws, or when no shard answers', async () => {
    const s = await setup();
    try {
      s.setDeps({ sql: { ok: false, kind: 'postgres', latencyMs: 3, error: 'ECONNREFUSED' } });
      assert.equal((await getJson(`${s.base}/health`)).status, 503);
      s.setDeps(new Error('redis exploded'));
      const thrown = await getJson(`${s.base}/health`);
      assert.equal(thrown.status, 503);
      assert.match(JSON.stringify(thrown.body['dependencies']), /redis exploded/);
      s.setDeps({});
      s.shards.failing = new Set([0, 1]);
      const unresponsive = await getJson(`${s.base}/health`);
      assert.equal(unresponsive.status, 503);
      assert.equal((unresponsive.body['shards'] as { error: string }[])[0]?.error, 'IPC_TIMEOUT');
      s.shards.failing = new Set();
      s.shards.shards = [shard(0, { state: 'restarting' })];
      assert.equal((await getJson(`${s.base}/health`)).status, 503);
    } finally {
      await s.close();
    }
  });

  it('/ready follows the lifecycle: 503 starting, 200 ready, 503 SHUTTING_DOWN when stopping', async () => {
    const s = await setup();
    try {
      assert.equal((await getJson(`${s.base}/ready`)).status, 200);
      s.lifecycle.markStopping();
      const stopping = await getJson(`${s.base}/ready`);
      assert.equal(stopping.status, 503);
      assert.equal((stopping.body['error'] as { code: string }).code, 'SHUTTING_DOWN');
      assert.equal((await getJson(`${s.base}/health`)).status, 503);
      const fresh = new Lifecycle();
      assert.equal(fresh.phase, 'starting');
    } finally {
      await s.close();
    }
  });
});

describe('/metrics', () => {
  it('serves Prometheus text with HTTP, shard and IPC metrics on a per-app registry', async () => {
    const a = await setup();
    const b = await setup();
    try {
      a.shards.shards = [shard(0, { restarts: 2 }), shard(1, { state: 'restarting' })];
      await fetch(`${a.base}/health`);
      await fetch(`${a.base}/nope`);
      a.metrics.observeIpcCall('ping', 0, 0.0002, 'ok');
      const res = await fetch(`${a.base}/metrics`);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      const text = await res.text();
      assert.match(text, /http_requests_total\{method="GET",route="\/health",status="200"\} 1/);
      assert.match(text, /http_requests_total\{method="GET",route="unmatched",status="404"\} 1/);
      assert.match(text, /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/health",status="200"\}/);
      assert.match(text, /shard_up\{shard="0"\} 1/);
      assert.match(text, /shard_up\{shard="1"\} 0/);
      assert.match(text, /shard_restarts_total\{shard="0"\} 2/);
      assert.match(text, /ipc_pending_calls 3/);
      assert.match(text, /ipc_call_duration_seconds_count\{kind="ping",outcome="ok"\} 1/);
      const other = await (await fetch(`${b.base}/metrics`)).text();
      assert.doesNotMatch(other, /route="\/health"/, 'registries are per app');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('app settings', () => {
  it('trusts X-Forwarded-For only with trustProxy (TRUST_PROXY), and logs client socket errors at debug instead of stderr', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const make = (trustProxy: boolean | undefined) =>
      createApp({
        logger,
        shards: new FakeShards(),
        dependencies: async () => ({}),
        lifecycle: new Lifecycle(),
        metrics: new RouterMetrics({ defaultMetrics: false }),
        hostId: 'h',
        ...(trustProxy === undefined ? {} : { trustProxy }),
      });
    assert.equal(make(undefined).proxy, false);
    assert.equal(make(false).proxy, false);
    const app = make(true);
    assert.equal(app.proxy, true);
    // Koa prints 'error' events to stderr only when nobody listens: the app listens and logs at debug.
    assert.ok(app.listenerCount('error') >= 1);
    app.emit('error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    assert.ok(lines.some((l) => l['msg'] === 'client connection error' && l['level'] === 20 && l['code'] === 'ECONNRESET'));
  });
});

describe('request logger', () => {
  // A pino child per request (with its bindings redacted) was ~0.15 ms of CPU per send in the profile; a request
  // that writes no line must not build one, and one that does must still carry its reqId.
  it('is built only when a line is written', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logger = pino({ level: 'info' }, stream);
    let children = 0;
    const child = logger.child.bind(logger);
    logger.child = ((...args: Parameters<typeof logger.child>) => {
      children++;
      return child(...args);
    }) as typeof logger.child;
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createApp({ logger, shards: new FakeShards(), lifecycle, metrics: new RouterMetrics({ defaultMetrics: false }), hostId: 'h1', dependencies: async () => ({}) });
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    children = 0; // what the app built for itself at start
    try {
      // /ready at info: its access line is at debug, so nothing is written and no child is built.
      assert.equal((await fetch(`${base}/ready`, { headers: { 'x-request-id': 'quiet' } })).status, 200);
      assert.equal(children, 0);
      assert.ok(!lines.some((l) => l['reqId'] === 'quiet'));
      // An unknown route is refused at info: one child, its lines carry the reqId.
      assert.equal((await fetch(`${base}/nope`, { headers: { 'x-request-id': 'loud' } })).status, 404);
      assert.equal(children, 1);
      assert.ok(lines.some((l) => l['reqId'] === 'loud' && l['msg'] === 'request refused'));
      assert.ok(lines.some((l) => l['reqId'] === 'loud' && l['msg'] === 'request'));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
