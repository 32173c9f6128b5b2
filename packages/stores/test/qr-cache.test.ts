// One conformance suite for both QR caches (Redis and the router's memory).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger } from '@wagw/shared';
import { redisNamespace } from '../../../test/harness/index.ts';
import { MemoryQrCache } from '../src/qr/memory.ts';
import { RedisQrCache } from '../src/qr/redis.ts';
import type { QrCache } from '@wagw/shared';
import { RedisDirectory } from '../src/directory/redis.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

type Factory = (t: { after(fn: () => Promise<void>): void }) => Promise<QrCache>;

const factories: Record<string, Factory> = {
  memory: async () => new MemoryQrCache(),
  redis: async (t) => {
    const ns = await redisNamespace(t);
    const dir = await RedisDirectory.create(ns.url, { logger, prefix: ns.prefix });
    t.after(() => dir.close());
    return new RedisQrCache(dir.client, (id) => dir.keys.qr(id));
  },
};

for (const [name, make] of Object.entries(factories)) {
  describe(`QrCache conformance: ${name}`, () => {
    test('set, get, replace, delete', async (t) => {
      const cache = await make(t);
      assert.equal(await cache.get('s1'), null);
      const e1 = { qr: '2@abc,def', epoch: 3, index: 0, expiresAt: Date.now() + 60_000 };
      await cache.set('s1', e1, 60_000);
      assert.deepEqual(await cache.get('s1'), e1);
      const e2 = { ...e1, qr: '2@next', index: 1 };
      await cache.set('s1', e2, 60_000);
      assert.deepEqual(await cache.get('s1'), e2);
      assert.equal(await cache.get('s2'), null);
      await cache.delete('s1');
      assert.equal(await cache.get('s1'), null);
    });

    test('an entry is gone after its TTL', async (t) => {
      const cache = await make(t);
      await cache.set('s1', { qr: 'x', epoch: 1, index: 0, expiresAt: Date.now() + 80 }, 80);
      assert.ok(await cache.get('s1'));
      await sleep(150);
      assert.equal(await cache.get('s1'), null);
    });

    test('a non-positive TTL is refused', async (t) => {
      const cache = await make(t);
      await assert.rejects(cache.set('s1', { qr: 'x', epoch: 1, index: 0, expiresAt: 0 }, 0), RangeError);
    });
  });
}

test('memory QR cache: the size cap evicts the oldest entry', async () => {
  const cache = new MemoryQrCache({ maxEntries: 3 });
  for (let i = 0; i < 5; i++) await cache.set(`s${i}`, { qr: `q${i}`, epoch: 1, index: 0, expiresAt: Date.now() + 60_000 }, 60_000);
  assert.equal(cache.size, 3);
  assert.equal(await cache.get('s0'), null);
  assert.equal(await cache.get('s1'), null);
  assert.equal((await cache.get('s4'))?.qr, 'q4');
});
