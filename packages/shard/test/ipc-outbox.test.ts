import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShardEvent, ShardRequestMessage, ShardToRouter } from '@wagw/shared';
import { IpcOutbox } from '../src/ipc-outbox.ts';

/** A channel whose writes answer `full` and whose send callbacks the test completes by hand. */
function fakeChannel() {
  const written: ShardToRouter[] = [];
  const callbacks: (() => void)[] = [];
  const ch = {
    full: false,
    written,
    /** Send callbacks not run yet. */
    get unsettled(): number {
      return callbacks.length;
    },
    write: (msg: ShardToRouter, onSent: () => void): boolean => {
      written.push(msg);
      callbacks.push(onSent);
      return !ch.full;
    },
    /** Runs the callbacks of the writes made so far (not of those they lead to). */
    complete(): void {
      for (const cb of callbacks.splice(0)) cb();
    },
  };
  return ch;
}

let nextId = 0;
const req = (): ShardRequestMessage => ({ kind: 'request', id: ++nextId, request: { kind: 'message.get', sessionId: 's', id: `m${nextId}` } });
const reply = (id: number): ShardToRouter => ({ kind: 'reply', id, ok: true, value: id });
const status = (sessionId: string, epoch: number, seq: number): ShardEvent => ({ type: 'session.status', sessionId, epoch, seq, status: 'reconnecting', at: '2026-01-01T00:00:00Z' });
const ids = (msgs: ShardToRouter[]): unknown[] => msgs.map((m) => (m.kind === 'request' || m.kind === 'reply' ? `${m.kind}:${m.id}` : m.kind === 'event' && m.event.type === 'session.status' ? `status:${m.event.sessionId}:${m.event.seq}` : m.kind));

async function sendRequest(outbox: IpcOutbox, msg: ShardRequestMessage, deadline = Date.now() + 60_000): Promise<boolean> {
  const slot = await outbox.room(deadline);
  if (slot === undefined) return false;
  outbox.request(msg, deadline, slot);
  return true;
}

test('pass-through while the channel keeps up; from the first false it holds until the callbacks ran, then flushes in order', async () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write);
  outbox.send(reply(1));
  ch.complete();
  assert.deepEqual(ids(ch.written), ['reply:1']);
  ch.full = true;
  outbox.send(reply(2)); // written, answers false: the pipe is backed up
  ch.full = false;
  outbox.send(reply(3));
  const r = req();
  await sendRequest(outbox, r);
  outbox.send(reply(4));
  assert.deepEqual(ids(ch.written), ['reply:1', 'reply:2'], 'held during catch-up');
  assert.equal(outbox.stats().depth, 3);
  ch.complete(); // only reply:2's callback: the catch-up ends, the held ones go out in order
  assert.deepEqual(ids(ch.written), ['reply:1', 'reply:2', 'reply:3', `request:${r.id}`, 'reply:4']);
  assert.equal(outbox.stats().depth, 0);
  assert.equal(outbox.stats().highWater, 3);
});

test('a write that backs up again during the flush holds the rest until its callbacks ran', () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write);
  ch.full = true;
  outbox.send(reply(1));
  for (let i = 2; i <= 5; i++) outbox.send(reply(i));
  ch.complete(); // still full: reply:2 is written and answers false
  assert.deepEqual(ids(ch.written), ['reply:1', 'reply:2']);
  ch.full = false;
  ch.complete();
  assert.deepEqual(ids(ch.written), ['reply:1', 'reply:2', 'reply:3', 'reply:4', 'reply:5']);
});

test('at most maxRequests requests are held; further callers wait and are released in order as room frees', async () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write, { maxRequests: 3 });
  ch.full = true;
  outbox.send(reply(0));
  ch.full = false;
  const held = [req(), req(), req()];
  for (const r of held) assert.equal(await sendRequest(outbox, r), true);
  const later = [req(), req()];
  let done = 0;
  const waiting = later.map((r) => sendRequest(outbox, r).then((ok) => (done++, ok)));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(done, 0, 'the callers wait for room');
  assert.equal(outbox.stats().waitingRequests, 2);
  assert.equal(outbox.stats().depth, 3, 'the bound holds');
  outbox.send(reply(9)); // a reply is held beyond the request bound: replies are never dropped
  assert.equal(outbox.stats().depth, 4);
  ch.full = true; // the flush writes one request and backs up again
  ch.complete();
  assert.deepEqual(await Promise.race([waiting[0], new Promise((resolve) => setTimeout(() => resolve('still waiting'), 20))]), true, 'one left, so the first caller got room');
  assert.equal(outbox.stats().waitingRequests, 1);
  ch.full = false;
  ch.complete();
  assert.deepEqual(await Promise.all(waiting), [true, true]);
  // The first flush wrote held[0] and backed up; the second wrote the rest, then the later callers' requests
  // came through (the channel had caught up by then).
  ch.complete();
  assert.deepEqual(ids(ch.written), ['reply:0', ...held.map((r) => `request:${r.id}`), 'reply:9', ...later.map((r) => `request:${r.id}`)]);
  assert.equal(outbox.stats().waitingRequests, 0);
});

test('a caller waiting for room past its deadline gives up (its caller gets a timeout) and holds no slot', async () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write, { maxRequests: 1 });
  ch.full = true;
  outbox.send(reply(0));
  assert.equal(await sendRequest(outbox, req()), true);
  assert.equal(await sendRequest(outbox, req(), Date.now() + 30), false);
  assert.equal(outbox.stats().waitingRequests, 0);
  ch.full = false;
  ch.complete();
  assert.equal(await sendRequest(outbox, req()), true, 'room again once the held one left');
});

test('a request whose deadline passed while held is not written; requests still in time are', async () => {
  let now = 1_000;
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write, { now: () => now });
  ch.full = true;
  outbox.send(reply(0));
  ch.full = false;
  const late = req();
  const inTime = req();
  outbox.request(late, 1_500, (await outbox.room(1_500))!);
  outbox.request(inTime, 5_000, (await outbox.room(5_000))!);
  now = 2_000;
  ch.complete();
  assert.deepEqual(ids(ch.written), ['reply:0', `request:${inTime.id}`]);
  assert.equal(outbox.stats().depth, 0);
});

test('status events coalesce per session and epoch while held: only the newest of each is written, in its place', () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write);
  ch.full = true;
  outbox.send(reply(0));
  ch.full = false;
  outbox.event(status('a', 1, 1));
  outbox.event(status('b', 1, 1));
  outbox.event(status('a', 1, 2));
  outbox.send(reply(1));
  outbox.event(status('a', 1, 3));
  outbox.event(status('a', 2, 1)); // another epoch: another fact
  assert.equal(outbox.stats().depth, 4);
  assert.equal(outbox.stats().coalescedTotal, 2);
  ch.complete();
  assert.deepEqual(ids(ch.written), ['reply:0', 'status:b:1', 'reply:1', 'status:a:3', 'status:a:1']);
  // Pass-through again: nothing coalesces when nothing is held.
  outbox.event(status('a', 1, 4));
  outbox.event(status('a', 1, 5));
  assert.equal(outbox.stats().coalescedTotal, 2);
});

test('replies are held in order and never dropped, however many', () => {
  const ch = fakeChannel();
  const outbox = new IpcOutbox(ch.write, { maxRequests: 1 });
  ch.full = true;
  outbox.send(reply(0));
  ch.full = false;
  const sentCallbacks: number[] = [];
  for (let i = 1; i <= 5000; i++) outbox.send(reply(i), () => sentCallbacks.push(i));
  assert.equal(outbox.stats().depth, 5000);
  ch.complete();
  assert.equal(ch.written.length, 5001);
  assert.deepEqual(ids(ch.written).slice(0, 3), ['reply:0', 'reply:1', 'reply:2']);
  ch.complete();
  assert.equal(sentCallbacks.length, 5000, "each held message's onSent runs once it was written");
  assert.equal(outbox.stats().highWater, 5000);
});
