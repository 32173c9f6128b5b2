// Rate limiting against the real Redis (unique key prefix per run): on in production, off with
// RATE_LIMITING_ENABLED=false and in development, per IP and per principal, 429 in the gateway's error shape.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRootLogger, loadConfig } from '@wagw/shared';
import { redisNamespace, startPrivateRedis, testLogger } from '../harness/index.ts';
import { security } from '@wagw/router';

const { logRateLimitDecision } = security;
import { listen, securedApp } from './app.ts';

const KEY_A = 'wagw_test_key_a_0123456789';
const KEY_B = 'wagw_test_key_b_0123456789';
const sha = (k: string) => createHash('sha256').update(k).digest('hex');
const API_KEYS = `a:${sha(KEY_A)}:admin,b:${sha(KEY_B)}:admin`;

function env(extra: Record<string, string>) {
  return loadConfig({ LOG_LEVEL: 'silent', AUTH_API_KEYS: API_KEYS, RATE_LIMIT_PER_IP: '5', RATE_LIMIT_PER_PRINCIPAL: '3', RATE_LIMIT_WINDOW_MS: '60000', ...extra });
}

async function get(base: string, path: string, key?: string) {
  const res = await fetch(base + path, { headers: key ? { 'x-api-key': key } : {} });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { error?: { code: string; message: string; details?: Record<string, unknown> } } };
}

describe('rate limiting', () => {
  it('production with Redis: the N+1-th request per principal, then per IP, gets 429 with Retry-After and the error body', async (t) => {
    const ns = await redisNamespace(t);
    const config = env({ NODE_ENV: 'production', REDIS_URL: ns.url });
    const log = testLogger();
    const logger = createRootLogger({ proc: 'test', level: 'info', destination: log.destination });
    logRateLimitDecision(config, logger);
    assert.ok(log.lines.some((l) => l['msg'] === 'rate limiting on' && l['reason'] === 'NODE_ENV=production' && l['store'] === 'redis'));
    const s = await securedApp(config, logger, { keyPrefix: `${ns.prefix}rl:` });
    const server = await listen(s.app);
    t.after(async () => {
      await server.close();
      await s.close();
    });
    assert.equal(s.limits.store, 'redis');
    for (let i = 0; i < 3; i++) assert.equal((await get(server.base, '/api/v1/sessions', KEY_A)).status, 200, `request ${i + 1}`);
    const limited = await get(server.base, '/api/v1/sessions', KEY_A);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error?.code, 'RATE_LIMITED');
    assert.equal(limited.body.error?.details?.['limit'], 'principal');
    const retry = Number(limited.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(limited.headers.get('x-ratelimit-limit'), '3');
    // Another principal from the same IP: its own budget, until the IP's 5 are used (A used 4).
    assert.equal((await get(server.base, '/api/v1/sessions', KEY_B)).status, 200);
    const ipLimited = await get(server.base, '/api/v1/sessions', KEY_B);
    assert.equal(ipLimited.status, 429);
    assert.equal(ipLimited.body.error?.details?.['limit'], 'ip');
    assert.ok(Number(ipLimited.headers.get('retry-after')) >= 1);
    // Unauthenticated guessing is limited per IP too, and probes stay open.
    assert.equal((await get(server.base, '/api/v1/sessions', 'wrong-key')).status, 429);
    assert.equal((await get(server.base, '/ready')).status, 200);
    // The counters live in Redis under the run's prefix.
    const redis = new Redis(ns.url, { lazyConnect: true });
    await redis.connect();
    try {
      const keys = await redis.keys(`${ns.prefix}rl:*`);
      assert.ok(keys.some((k) => k.includes(':ip:')) && keys.some((k) => k.includes(':principal:api-key:a')), keys.join(' '));
    } finally {
      redis.disconnect();
    }
  });

  it('production without Redis: the in-memory driver limits the same way', async (t) => {
    const s = await securedApp(env({ NODE_ENV: 'production' }), createRootLogger({ proc: 'test', level: 'silent' }));
    const server = await listen(s.app);
    t.after(() => server.close());
    assert.equal(s.limits.store, 'memory');
    for (let i = 0; i < 3; i++) assert.equal((await get(server.base, '/api/v1/sessions', KEY_A)).status, 200);
    const limited = await get(server.base, '/api/v1/sessions', KEY_A);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error?.code, 'RATE_LIMITED');
  });

  it('off with RATE_LIMITING_ENABLED=false even in production, and off in development; the reason is logged', async (t) => {
    for (const extra of [{ NODE_ENV: 'production', RATE_LIMITING_ENABLED: 'false' }, { NODE_ENV: 'development' }] as Record<string, string>[]) {
      const config = env(extra);
      const log = testLogger();
      const logger = createRootLogger({ proc: 'test', level: 'info', destination: log.destination });
      logRateLimitDecision(config, logger);
      const line = log.lines.find((l) => l['msg'] === 'rate limiting off');
      assert.match(String(line?.['reason']), extra.NODE_ENV === 'production' ? /RATE_LIMITING_ENABLED=false/ : /NODE_ENV=development/);
      const s = await securedApp(config, logger);
      const server = await listen(s.app);
      t.after(() => server.close());
      assert.equal(s.limits.store, 'off');
      for (let i = 0; i < 12; i++) {
        const r = await get(server.base, '/api/v1/sessions', KEY_A);
        assert.equal(r.status, 200, `${JSON.stringify(extra)} request ${i + 1}`);
        assert.equal(r.headers.get('x-ratelimit-limit'), null);
      }
    }
  });

  it('a Redis outage lets requests through (fail open) and is logged, never a 5xx', async (t) => {
    const redis = await startPrivateRedis(t);
    const log = testLogger();
    const logger = createRootLogger({ proc: 'test', level: 'info', destination: log.destination });
    const s = await securedApp(env({ NODE_ENV: 'production', REDIS_URL: redis.url }), logger);
    const server = await listen(s.app);
    t.after(async () => {
      await server.close();
      await s.close();
    });
    assert.equal((await get(server.base, '/api/v1/sessions', KEY_A)).status, 200);
    await redis.kill();
    const r = await get(server.base, '/api/v1/sessions', KEY_A);
    assert.equal(r.status, 200);
    assert.ok(log.lines.some((l) => l['msg'] === 'rate limit store failed; letting requests through'));
  });
});
