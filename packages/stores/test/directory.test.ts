import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger } from '@wagw/shared';
import { redisNamespace } from '../../../test/harness/index.ts';
import { MemoryDirectory } from '../src/directory/memory.ts';
import { RedisDirectory } from '../src/directory/redis.ts';
import { directoryConformance } from './conformance/directory.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

directoryConformance('in-process (fake clock)', async () => {
  let now = Date.now();
  const directory = new MemoryDirectory({ clock: () => now });
  return {
    directory,
    elapse: async (ms) => {
      now += ms;
    },
  };
});

directoryConformance('Redis (shared server, unique key prefix)', async (t) => {
  const ns = await redisNamespace(t);
  const directory = await RedisDirectory.create(ns.url, { logger, prefix: ns.prefix });
  t.after(() => directory.close());
  return { directory, elapse: (ms) => sleep(ms) };
});

test('in-process directory: a restarted router (fresh instance) still hands out higher epochs', async () => {
  let now = 1_700_000_000_000;
  const first = new MemoryDirectory({ clock: () => now });
  const a = await first.claim('s1', 'host-a/0', 10_000);
  const b = await first.claim('s1', 'host-a/0', 10_000);
  assert.ok(a.ok && b.ok && b.lease.epoch > a.lease.epoch);
  now += 1000; // a restart takes far longer than the ms the clock floor needs
  const restarted = new MemoryDirectory({ clock: () => now });
  const c = await restarted.claim('s1', 'host-b/0', 10_000);
  assert.ok(c.ok && c.lease.epoch > b.lease.epoch, `${c.ok ? c.lease.epoch : '-'} > ${b.lease.epoch}`);
});
