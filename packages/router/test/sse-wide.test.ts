// EventHub.subscribeAll (the console's one stream of every session): each client gets the topics its filter
// allows (a credential limited to some sessions sees only those), per-topic clients keep theirs, and the cap,
// the heartbeat bookkeeping and close() cover wide clients too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PassThrough } from 'node:stream';
import { EventHub } from '../src/api/sse.ts';

const read = (s: PassThrough): string => {
  let text = '';
  for (let chunk = s.read() as Buffer | null; chunk !== null; chunk = s.read() as Buffer | null) text += chunk.toString('utf8');
  return text;
};

test('subscribeAll: every allowed topic, nothing else; topic clients unchanged', () => {
  const hub = new EventHub();
  const all = hub.subscribeAll(() => true);
  const onlyA = hub.subscribeAll((topic) => topic === 'a');
  const topicB = hub.subscribe('b');
  assert.ok(all && onlyA && topicB);
  hub.publish('a', { type: 'status', data: { id: 'a', status: 'qr' } });
  hub.publish('b', { type: 'message', data: { sessionId: 'b', id: 'm1' } });
  const everything = read(all);
  assert.match(everything, /event: status\ndata: {"id":"a","status":"qr"}/);
  assert.match(everything, /event: message\ndata: {"sessionId":"b","id":"m1"}/);
  const limited = read(onlyA);
  assert.match(limited, /"id":"a"/);
  assert.doesNotMatch(limited, /"b"/, 'a client limited to session a never sees session b');
  const b = read(topicB);
  assert.match(b, /"sessionId":"b"/);
  assert.doesNotMatch(b, /"id":"a"/);
  assert.equal(hub.clientCount, 3);
  hub.close();
  assert.equal(hub.clientCount, 0);
  assert.throws(() => hub.subscribeAll(() => true), { code: 'SHUTTING_DOWN' }, 'none after close');
});

test('subscribeAll: capped like a topic; a closed stream frees its place', async () => {
  const hub = new EventHub({ maxClientsPerTopic: 2 });
  const one = hub.subscribeAll(() => true);
  const two = hub.subscribeAll(() => true);
  assert.ok(one && two);
  assert.throws(() => hub.subscribeAll(() => true), { code: 'TOO_MANY_STREAMS' });
  one.destroy();
  await new Promise((r) => setImmediate(r));
  assert.ok(hub.subscribeAll(() => true));
  hub.close();
});
