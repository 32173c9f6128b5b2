// HubRelay: the all-session streams of two routers joined by an event bus (an in-memory stand-in for Redis pub/sub
// that, like it, echoes each event to its publisher too). Status, qr and deleted events of one host reach the
// other host's all-session streams once each, filtered by each stream's session limit; a repeated id is dropped;
// message events and per-session streams stay local.
import assert from 'node:assert/strict';
import type { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import type { EventRelay, RelayedEvent } from '@wagw/shared';
import { HubRelay } from '../src/api/hub-relay.ts';
import { EventHub } from '../src/api/sse.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

const read = (s: PassThrough): string => {
  let text = '';
  for (let chunk = s.read() as Buffer | null; chunk !== null; chunk = s.read() as Buffer | null) text += chunk.toString('utf8');
  return text;
};

class Bus {
  readonly subscribers = new Set<(e: RelayedEvent) => void>();
  readonly published: RelayedEvent[] = [];
  relay(): EventRelay {
    let mine: ((e: RelayedEvent) => void) | undefined;
    return {
      kind: 'redis',
      publish: async (e) => {
        this.published.push(e);
        // A copy per subscriber, as a JSON round trip through Redis would give.
        for (const s of this.subscribers) s(JSON.parse(JSON.stringify(e)) as RelayedEvent);
      },
      subscribe: async (onEvent) => {
        mine = onEvent;
        this.subscribers.add(onEvent);
      },
      close: async () => {
        if (mine) this.subscribers.delete(mine);
      },
    };
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('events of one host reach the all-session streams of the other, once, filtered like local ones', async () => {
  const bus = new Bus();
  const hubA = new EventHub();
  const hubB = new EventHub();
  const a = new HubRelay({ hub: hubA, relay: bus.relay(), hostId: 'A', logger });
  const b = new HubRelay({ hub: hubB, relay: bus.relay(), hostId: 'B', logger });
  await a.start();
  await b.start();
  const allB = hubB.subscribeAll(() => true);
  const onlyS2onB = hubB.subscribeAll((topic) => topic === 's2');
  const topicOnB = hubB.subscribe('s1');
  const allA = hubA.subscribeAll(() => true);

  hubA.publish('s1', { type: 'status', data: { id: 's1', status: 'connected', host: 'A' } });
  hubA.publish('s1', { type: 'qr', data: { id: 's1', qr: '2@abc' } });
  hubA.publish('s1', { type: 'message', data: { sessionId: 's1', id: 'm1' } });
  hubA.publish('s2', { type: 'deleted', data: { id: 's2' } });
  await tick();

  const seenB = read(allB);
  assert.match(seenB, /event: status\nid: A\.[0-9a-f]{8}\.1\ndata: {"id":"s1","status":"connected","host":"A"}/);
  assert.match(seenB, /event: qr\nid: A\.[0-9a-f]{8}\.2\n/);
  assert.match(seenB, /event: deleted\nid: A\.[0-9a-f]{8}\.3\n/);
  assert.doesNotMatch(seenB, /event: message/, 'message events stay on their host');
  assert.equal(bus.published.length, 3, 'only status, qr and deleted go on the bus');
  const limited = read(onlyS2onB);
  assert.match(limited, /event: deleted/);
  assert.doesNotMatch(limited, /"s1"/, 'a stream limited to s2 never gets s1');
  assert.doesNotMatch(read(topicOnB), /event: /, "a session's own stream is its owner's, not relayed");

  // The publisher's own stream gets each event once (the echo from the bus is dropped), with the same id.
  const seenA = read(allA);
  assert.equal(seenA.match(/event: status/g)?.length, 1);
  assert.match(seenA, /event: status\nid: A\.[0-9a-f]{8}\.1\n/);

  // The same event id arriving again (a redelivery) is dropped; a new id of the same content is not.
  const again = bus.published[0] as RelayedEvent;
  for (const s of bus.subscribers) s({ ...again });
  await tick();
  assert.equal(read(allB), '', 'a repeated id is dropped');
  for (const s of bus.subscribers) s({ ...again, id: 'C.00000000.1', origin: 'C' });
  await tick();
  assert.match(read(allB), /id: C\.00000000\.1/);

  await a.stop();
  hubA.publish('s1', { type: 'status', data: { id: 's1', status: 'disconnected' } });
  await tick();
  assert.match(read(allA), /"disconnected"/, 'local streams go on after the relay stopped');
  hubA.close();
  hubB.close();
  await b.stop();
});
