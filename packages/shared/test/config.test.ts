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

test('a rejected secret or URL is never echoed whole: secrets by length only, URL user info masked (issue 10 item 9)', () => {
  const password = 'Sup3r-Secret-Pw';
  const webhookSecret = `whsec_${password}`;
  let caught: unknown;
  try {
    loadConfig({
      // A malformed URL (a space in the host; mysql scheme) still carries its password; so does one whose password holds '/' and '@'.
      DATABASE_URL: `postgres://gateway:${password}@db host:5432/gw`,
      REDIS_URL: `http://:${password}/x@redis:6379`,
      S3_ENDPOINT: `ftp://minio:9000/?X-Amz-Credential=${password}&token=${password}`,
      WEBHOOK_SECRET: webhookSecret,
      METRICS_TOKEN: undefined,
    });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError);
  assert.equal(caught.problems.length, 4, caught.message);
  assert.doesNotMatch(caught.message, new RegExp(password), caught.message);
  // Still useful: the variable names, what was wrong and the parts of the URL that are not secret.
  assert.match(caught.message, /DATABASE_URL: .*got "postgres:\/\/\*\*\*@db host:5432\/gw"/);
  assert.match(caught.message, /REDIS_URL: .*got "http:\/\/\*\*\*@redis:6379"/);
  assert.match(caught.message, /S3_ENDPOINT: .*token=\*\*\*/);
  assert.match(caught.message, /WEBHOOK_SECRET: .*got a value of 21 characters, not shown/);
});
