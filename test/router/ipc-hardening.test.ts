/**
 * Issue #10 items 15 and 16 against real forked processes: a shard's environment carries no gateway secret, and
 * malformed messages from a shard (a bad batched reply item, an error reply without a body, an `init-failed`
 * without an error) are logged and dropped instead of throwing inside the router's `message` listener (which
 * ended the router: here, the test process itself).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRootLogger, shardEnvironment } from '@wagw/shared';
import type { Logger } from '@wagw/shared';
import { ShardSupervisor } from '@wagw/router';
import { testLogger as captureLog } from '../harness/logger.ts';
import { FIXTURES, testConfig } from './helpers.ts';

const SECRETS = {
  AUTH_JWT_SECRET: 'jwt-secret-that-must-not-reach-a-shard-0000',
  WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
  BACKEND_API_KEY: 'backend-key-must-not-reach-a-shard',
  METRICS_TOKEN: 'metrics-token-must-not-reach-a-shard',
  DATABASE_URL: 'postgres://user:password@127.0.0.1:5432/db',
  S3_SECRET_KEY: 's3-secret-must-not-reach-a-shard',
  CLUSTER_SECRET: 'cluster-secret-must-not-reach-a-shard-0000',
  SOME_OPERATOR_TOKEN: 'an-unknown-variable-is-not-inherited-either',
};

function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const { destination, lines } = captureLog();
  return { logger: createRootLogger({ proc: 'test', level: 'warn', destination }), lines };
}

describe('shard environment (issue #10 item 15)', () => {
  it('shardEnvironment keeps runtime variables and drops every gateway variable and unknown name', () => {
    const env = shardEnvironment({ ...SECRETS, PATH: '/usr/bin', HOME: '/home/x', LC_ALL: 'C.UTF-8', NODE_OPTIONS: '--enable-source-maps', REDIS_URL: 'redis://:pw@127.0.0.1' });
    assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/x', LC_ALL: 'C.UTF-8', NODE_OPTIONS: '--enable-source-maps' });
  });

  it('an operator\'s glibc malloc tuning reaches the shards', () => {
    assert.deepEqual(shardEnvironment({ MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '131072' }), { MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '131072' });
  });

  it('a forked shard does not inherit AUTH_JWT_SECRET, WEBHOOK_SECRET, BACKEND_API_KEY, METRICS_TOKEN (read from the shard)', async () => {
    const saved = Object.fromEntries(Object.keys(SECRETS).map((k) => [k, process.env[k]]));
    Object.assign(process.env, SECRETS);
    const { logger } = recordingLogger();
    let sup: ShardSupervisor | undefined;
    try {
      sup = new ShardSupervisor({ config: testConfig({ SHARD_COUNT: '1' }), logger, entry: path.join(FIXTURES, 'misbehaving.ts'), stdio: 'ignore' });
      await sup.start();
      const res = await sup.call(0, { kind: 'ping', payload: 'env' });
      const env = res.payload as Record<string, string>;
      for (const name of Object.keys(SECRETS)) assert.equal(env[name], undefined, `${name} reached the shard`);
      assert.ok(!JSON.stringify(env).includes('must-not-reach'), 'no secret value anywhere in the shard environment');
      assert.equal(env['PATH'], process.env['PATH'], 'runtime variables are kept');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await sup?.stop();
    }
  });
});

describe('malformed messages from a shard (issue #10 item 16)', () => {
  it('are logged and dropped; the router keeps serving, a bad init-failed is ignored', async () => {
    const { logger, lines } = recordingLogger();
    const sup = new ShardSupervisor({
      config: testConfig({ SHARD_COUNT: '2' }),
      logger,
      entry: path.join(FIXTURES, 'misbehaving.ts'),
      stdio: 'ignore',
    });
    try {
      await sup.start();
      // Before the fix each of these threw inside the `message` listener: an uncaught exception in this process.
      const res = await sup.call(0, { kind: 'ping', payload: 'garbage' });
      assert.equal(res.payload, 'garbage', 'the valid reply after the garbage still settles the call');
      assert.equal(sup.info(0)?.state, 'ready');
      const second = await sup.call(0, { kind: 'ping', payload: 'again' });
      assert.equal(second.payload, 'again');
      const dropped = lines.filter((l) => l['msg'] === 'malformed message from shard ignored');
      assert.ok(dropped.length >= 10, `every malformed message logged (${dropped.length})`);
      assert.ok(dropped.some((l) => l['kind'] === 'replies'));
      // Shard 1's init-failed without an error body is dropped too; the well-formed one after it is honoured.
      const [, failed] = await sup.waitFor((l) => l[1]?.state === 'failed', 20_000);
      assert.equal(failed?.failureReason, 'init failed: the well-formed one');
      assert.ok(lines.some((l) => l['msg'] === 'malformed message from shard ignored' && l['kind'] === 'init-failed' && l['shard'] === 1));
    } finally {
      await sup.stop();
    }
  });
});
