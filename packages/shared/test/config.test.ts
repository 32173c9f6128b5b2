import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

test('defaults give embedded mode with every optional service unset', () => {
  const c = loadConfig({});
  assert.equal(c.redis, undefined);
  assert.equal(c.database, undefined);
  assert.equal(c.s3, undefined);
  assert.equal(c.http.port, 8080);
  assert.ok(c.shards.count >= 1);
  assert.equal(c.rateLimit.enabled, false);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.shards), 'config is frozen');
});

test('every bad variable is reported by name at once', () => {
  let caught: unknown;
  try {
    loadConfig({ SHARD_COUNT: 'abc', REDIS_URL: 'not a url', PORT: '70000', DATABASE_URL: 'mysql://x' });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError);
  const text = caught.message;
  for (const name of ['SHARD_COUNT', 'REDIS_URL', 'PORT', 'DATABASE_URL']) assert.match(text, new RegExp(name));
  assert.equal(caught.problems.length, 4);
});

test('S3 needs endpoint and both keys; MINIO_* aliases are accepted', () => {
  assert.throws(() => loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000' }), /S3_ACCESS_KEY/);
  const c = loadConfig({ MINIO_ENDPOINT: 'http://127.0.0.1:9000', MINIO_ACCESS_KEY: 'a', MINIO_SECRET_KEY: 'b' });
  assert.deepEqual(c.s3?.endpoint, 'http://127.0.0.1:9000');
  assert.equal(c.s3?.bucket, 'wa-gateway');
  assert.throws(() => loadConfig({ S3_BUCKET: 'one', MINIO_BUCKET: 'two' }), /MINIO_BUCKET: conflicts with S3_BUCKET/);
});

test('rate limiting follows the seed rule: production and not explicitly false', () => {
  assert.equal(loadConfig({ NODE_ENV: 'production' }).rateLimit.enabled, true);
  assert.equal(loadConfig({ NODE_ENV: 'production', RATE_LIMITING_ENABLED: 'false' }).rateLimit.enabled, false);
  assert.match(loadConfig({ NODE_ENV: 'production', RATE_LIMITING_ENABLED: 'false' }).rateLimit.reason, /RATE_LIMITING_ENABLED=false/);
  assert.equal(loadConfig({ NODE_ENV: 'development', RATE_LIMITING_ENABLED: 'true' }).rateLimit.enabled, false);
  assert.throws(() => loadConfig({ RATE_LIMITING_ENABLED: 'maybe' }), /RATE_LIMITING_ENABLED/);
});

test('lease renewal must fit twice into the lease TTL', () => {
  assert.throws(() => loadConfig({ LEASE_TTL_MS: '4000', LEASE_RENEW_INTERVAL_MS: '3000' }), /LEASE_RENEW_INTERVAL_MS/);
});
