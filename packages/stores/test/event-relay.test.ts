// The cluster's event bus (RedisEventRelay): no subscriber connection until a router subscribes, then exactly
// one per relay; an event published by one reaches every subscriber (its publisher too) as it was sent; a
// malformed message on the channel is skipped; closing ends the subscription. The embedded stores have none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { createRootLogger } from '@wagw/shared';
import type { RelayedEvent } from '@wagw/shared';
import { redisNamespace, tempDir, waitFor } from '../../../test/harness/index.ts';
import { RedisDirectory } from '../src/directory/redis.ts';
import { MemoryDirectory } from '../src/directory/memory.ts';
import { assembleStores } from '../src/open.ts';
import { LocalBlobStore } from '../src/blobs/local.ts';
import type { SqlDatabase } from '@wagw/shared';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

test('RedisEventRelay: one subscriber connection per relay, events to every subscriber, closed cleanly', async (t) => {
  const ns = await redisNamespace(t);
  const channel = `${ns.prefix}events`;
  const probe = new Redis(ns.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  t.after(() => probe.disconnect());
  const subscribers = async (): Promise<number> => Number(((await probe.pubsub('NUMSUB', channel)) as [string, number])[1]);

  const dirs = await Promise.all([0, 1].map(() => RedisDirectory.create(ns.url, { logger, prefix: ns.prefix })));
  t.after(async () => {
    for (const d of dirs) await d.close();
  });
  const fakeSql = { kind: 'postgres' } as unknown as SqlDatabase;
  const blobs = await LocalBlobStore.create((await tempDir(t)).path);
  const [a, b] = dirs.map((d) => assembleStores(d, blobs, fakeSql).events);
  assert.ok(a && b);
  assert.equal(await subscribers(), 0, 'opening the stores opens no subscriber');

  const gotA: RelayedEvent[] = [];
  const gotB: RelayedEvent[] = [];
  const errors: Error[] = [];
  await a.subscribe((e) => gotA.push(e), (e) => errors.push(e));
  await b.subscribe((e) => gotB.push(e), (e) => errors.push(e));
  assert.equal(await subscribers(), 2, 'one subscriber connection per relay');
  await assert.rejects(a.subscribe(() => undefined, () => undefined), /subscribed already/);

  const event: RelayedEvent = { id: 'h1.abcd.1', origin: 'h1', topic: 's1', type: 'status', data: { id: 's1', status: 'connected', me: { phone: '62812' } } };
  await probe.publish(channel, 'not json');
  await probe.publish(channel, JSON.stringify({ id: 1, origin: 'h1' }));
  await a.publish(event);
  await waitFor(() => gotA.length === 1 && gotB.length === 1, { what: 'the event at both subscribers', timeoutMs: 5000, intervalMs: 10 });
  assert.deepEqual(gotB[0], event);
  assert.deepEqual(gotA[0], event, 'the publisher hears its own event too (the router drops it by id)');

  await b.close();
  await b.publish(event); // closed: a no-op, not an error
  await waitFor(async () => (await subscribers()) === 1, { what: 'the closed relay to unsubscribe', timeoutMs: 5000, intervalMs: 20 });
  await a.close();
  assert.deepEqual(errors, []);

  const embedded = assembleStores(new MemoryDirectory(), blobs, fakeSql);
  assert.equal(embedded.events, undefined, 'single host: no event bus');
});
