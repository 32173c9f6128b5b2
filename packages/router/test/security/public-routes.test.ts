// The public routes of createApp with the real security edge (Authenticator + RateLimits, API keys and
// METRICS_TOKEN configured): /metrics needs its token whatever the spelling of the path (issue 10 item 8), and
// /health shows the public only its status, runs one probe round per cache period however often it is called,
// and gives shards and dependency errors to METRICS_TOKEN or an admin only (issue 10 item 11).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GatewayError } from '@wagw/shared';
import type { IpcRequestBody, RequestKind } from '@wagw/shared';
import { Lifecycle, createApp } from '../../src/app.ts';
import type { ShardsView } from '../../src/app.ts';
import { RouterMetrics } from '../../src/metrics.ts';
import { RateLimits, createAuthenticator } from '../../src/security/index.ts';
import type { ShardInfo } from '../../src/supervisor.ts';
import { captureLogger, config, serve } from './helpers.ts';
import type { Served } from './helpers.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ADMIN_KEY = 'wagw_admin_key_0123456789abcdef';
const READ_KEY = 'wagw_read_key_0123456789abcdef';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

class CountingShards implements ShardsView {
  pings = 0;
  list(): ShardInfo[] {
    return [{ index: 0, state: 'ready', pid: 4242, restarts: 1, lastExit: { code: null, signal: 'SIGKILL', planned: false, at: '2026-01-01T00:00:00.000Z', reason: 'killed' }, failureReason: undefined, readySince: '2026-01-01T00:00:00.000Z', pending: 0 }];
  }
  pendingCount(): number {
    return 0;
  }
  async call<K extends RequestKind>(_index: number, request: IpcRequestBody<K>): Promise<never> {
    if (request.kind !== 'ping') throw new GatewayError('SHARD_UNAVAILABLE');
    this.pings++;
    return {} as never;
  }
}

describe('public routes behind the security edge', () => {
  let served: Served;
  let limits: RateLimits;
  const shards = new CountingShards();
  let dependencyChecks = 0;
  let clock = 1_000_000;

  before(async () => {
    const cap = captureLogger('silent');
    const cfg = config({ METRICS_TOKEN, AUTH_API_KEYS: `ops:${sha(ADMIN_KEY)}:admin,reader:${sha(READ_KEY)}:sessions:read` });
    limits = await RateLimits.create(cfg, { logger: cap.logger });
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createApp({
      logger: cap.logger,
      shards,
      lifecycle,
      metrics: new RouterMetrics({ defaultMetrics: false }),
      hostId: 'h1',
      now: () => clock,
      dependencies: async () => {
        dependencyChecks++;
        return { sql: { ok: false, kind: 'postgres', latencyMs: 3, error: 'connect ECONNREFUSED 10.0.0.7:5432 (password authentication failed for user "gw")' } };
      },
      security: { auth: createAuthenticator(cfg, { logger: cap.logger }), limits },
    });
    served = await serve(app);
  });
  after(async () => {
    await served.close();
    await limits.close();
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${served.base}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers };
  };

  it('/metrics needs METRICS_TOKEN under every spelling of its path; other spellings are not routes', async () => {
    assert.equal((await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).status, 200);
    assert.equal((await get('/metrics')).status, 401);
    assert.equal((await get('/metrics', { 'x-api-key': ADMIN_KEY })).status, 401, 'an API key is not the metrics token');
    for (const path of ['/metrics/', '/METRICS', '/Metrics', '/metrics//', '/METRICS/']) {
      const anonymous = await get(path);
      assert.ok(anonymous.status === 401 || anonymous.status === 404, `${path} -> ${anonymous.status}`);
      assert.doesNotMatch(anonymous.text, /http_requests_total|ipc_pending_calls/, path);
      // Even a caller with valid credentials gets no metrics through another spelling.
      const withKey = await get(path, { 'x-api-key': ADMIN_KEY });
      assert.equal(withKey.status, 404, `${path} with an API key -> ${withKey.status}`);
      assert.doesNotMatch(withKey.text, /http_requests_total|ipc_pending_calls/, path);
    }
  });

  it('/health: the public sees its status only; METRICS_TOKEN or the admin scope see shards and dependency errors', async () => {
    clock += 60_000;
    const anonymous = await get('/health');
    assert.equal(anonymous.status, 503);
    assert.deepEqual(JSON.parse(anonymous.text), { status: 'unavailable' });
    assert.equal(anonymous.headers.get('www-authenticate'), null);
    const others: Record<string, string>[] = [{ 'x-api-key': READ_KEY }, { 'x-api-key': 'wagw_wrong' }, { authorization: 'Bearer not-the-token-0123456789' }];
    for (const headers of others) {
      const r = await get('/health', headers);
      assert.deepEqual(JSON.parse(r.text), { status: 'unavailable' }, JSON.stringify(headers));
      assert.equal(r.headers.get('www-authenticate'), null, 'a public route sets no challenge');
    }
    const privileged: Record<string, string>[] = [{ authorization: `Bearer ${METRICS_TOKEN}` }, { 'x-api-key': ADMIN_KEY }];
    for (const headers of privileged) {
      const r = await get('/health', headers);
      assert.equal(r.status, 503);
      const body = JSON.parse(r.text) as { shards: { pid: number }[]; dependencies: { sql: { error: string } } };
      assert.equal(body.shards[0]?.pid, 4242, JSON.stringify(headers));
      assert.match(body.dependencies.sql.error, /ECONNREFUSED/);
    }
  });

  it('/health runs one probe round per second however many callers, concurrent or not', async () => {
    clock += 60_000;
    const pings = shards.pings;
    const checks = dependencyChecks;
    await Promise.all(Array.from({ length: 20 }, () => get('/health')));
    for (let i = 0; i < 5; i++) await get('/health', { 'x-api-key': ADMIN_KEY });
    assert.equal(shards.pings - pings, 1);
    assert.equal(dependencyChecks - checks, 1);
    clock += 999;
    await get('/health');
    assert.equal(dependencyChecks - checks, 1, 'still within the cache period');
    clock += 2;
    await get('/health');
    assert.equal(shards.pings - pings, 2);
    assert.equal(dependencyChecks - checks, 2);
  });
});
