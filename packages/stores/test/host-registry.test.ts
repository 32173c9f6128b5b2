// One conformance suite for both host registries (Redis and the single host's memory): heartbeats with load,
// live hosts vs every known host (a host past its expiry is dead, still listed by listAll), removal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger } from '@wagw/shared';
import { redisNamespace } from '../../../test/harness/index.ts';
import { RedisDirectory } from '../src/directory/redis.ts';
import { MemoryHostRegistry, RedisHostRegistry } from '../src/hosts/registry.ts';
import type { HostAnnouncement, HostRegistry } from '@wagw/shared';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

type Factory = (t: { after(fn: () => Promise<void>): void }) => Promise<HostRegistry>;

const factories: Record<string, Factory> = {
  memory: async () => new MemoryHostRegistry(),
  redis: async (t) => {
    const ns = await redisNamespace(t);
    const dir = await RedisDirectory.create(ns.url, { logger, prefix: ns.prefix });
    t.after(() => dir.close());
    return new RedisHostRegistry(dir.client, `${ns.prefix}hosts`);
  },
};

const host = (hostId: string, sessions: number): HostAnnouncement => ({
  hostId,
  url: `http://127.0.0.1:1/${hostId}`,
  shards: 2,
  shardsReady: 2,
  sessions,
  capacity: 2000,
  draining: false,
});

for (const [name, make] of Object.entries(factories)) {
  describe(`HostRegistry conformance: ${name}`, () => {
    test('a host whose heartbeat expired is dead: gone from list, still in listAll with its last load', async (t) => {
      const reg = await make(t);
      await reg.announce(host('a', 3), 60_000);
      await reg.announce(host('b', 5), 150);
      assert.deepEqual((await reg.list()).map((h) => h.hostId), ['a', 'b']);
      await sleep(200);
      assert.deepEqual((await reg.list()).map((h) => h.hostId), ['a']);
      assert.equal(await reg.get('b'), null);
      const all = await reg.listAll();
      assert.deepEqual(all.map((h) => h.hostId), ['a', 'b']);
      const b = all.find((h) => h.hostId === 'b');
      assert.ok(b && b.expiresAt <= Date.now());
      assert.equal(b.sessions, 5);
      assert.equal(b.capacity, 2000);
      // A new heartbeat brings it back, with its new load.
      await reg.announce({ ...host('b', 0), draining: true }, 60_000);
      const back = await reg.get('b');
      assert.equal(back?.sessions, 0);
      assert.equal(back?.draining, true);
      await reg.remove('a');
      assert.deepEqual((await reg.listAll()).map((h) => h.hostId), ['b']);
    });
  });
}
