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
