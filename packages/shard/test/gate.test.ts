import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Gate } from '../src/sessions/gate.ts';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('the gate caps logins running at once, FIFO', async () => {
  const gate = new Gate(2);
  const order: number[] = [];
  const releases = await Promise.all([gate.acquire(), gate.acquire()]);
  const third = gate.acquire().then((r) => (order.push(3), r));
  await flush();
  assert.equal(gate.waiting, 1);
  assert.deepEqual(order, []);
  assert.deepEqual(gate.stats(), { waiting: 1, running: 2, rateLimitedWaits: 0 });
  releases[0]!();
  releases[0]!(); // idempotent: frees one slot only
  (await third)();
  assert.deepEqual(order, [3]);
  assert.equal(gate.running, 1);
});

test('the gate spaces starts at ratePerSecond even when every attempt frees its slot at once (no reconnect storm)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const gate = new Gate(64, 2, () => Date.now());
  const started: number[] = [];
  // Ten sessions whose sockets all dropped at once, each failing (and releasing) the moment it starts.
  const all = Array.from({ length: 10 }, () => gate.acquire().then((release) => (started.push(Date.now()), release())));
  for (let i = 0; i < 10; i++) {
    await flush();
    t.mock.timers.tick(500);
  }
  await Promise.all(all);
  assert.deepEqual(started, [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]);
  // Every start after the first waited for the spacing (wagw_login_gate_rate_limited_waits_total).
  assert.deepEqual(gate.stats(), { waiting: 0, running: 0, rateLimitedWaits: 9 });
  // The bound the fault test asserts at the simulator: any 1 s window holds at most rate + 1 starts.
  for (const at of started) assert.ok(started.filter((x) => x >= at && x < at + 1000).length <= 3);
});

test('after an event-loop stall the gate does not release the starts it held back as one burst', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const gate = new Gate(64, 2, () => Date.now());
  const started: number[] = [];
  const all = Array.from({ length: 4 }, () => gate.acquire().then((release) => (started.push(Date.now()), release())));
  await flush();
  // One stall of 3 s: every timer is due at once when the loop runs again.
  t.mock.timers.tick(3_000);
  for (let i = 0; i < 10; i++) {
    await flush();
    t.mock.timers.tick(500);
  }
  await Promise.all(all);
  for (let i = 1; i < started.length; i++) assert.ok(started[i]! - started[i - 1]! >= 500, `starts ${JSON.stringify(started)} spaced by 500 ms`);
});

test('with a trouble window, logins that succeed are bounded by the concurrency alone; trouble spaces the starts for the window', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const gate = new Gate(4, 2, () => Date.now(), { troubleWindowMs: 10_000 });
  // A restore: no trouble seen, so eight logins start as fast as slots free up (no 500 ms spacing).
  const started: number[] = [];
  const restore = Array.from({ length: 8 }, () => gate.acquire().then((release) => (started.push(Date.now()), release())));
  for (let i = 0; i < 4; i++) await flush();
  await Promise.all(restore);
  assert.deepEqual(started, [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(gate.stats().rateLimitedWaits, 0);

  // The server drops a socket (or a login fails): the next starts are spaced at the rate for the window.
  gate.noteTrouble();
  const spaced: number[] = [];
  const storm = Array.from({ length: 4 }, () => gate.acquire().then((release) => (spaced.push(Date.now()), release())));
  for (let i = 0; i < 8; i++) {
    await flush();
    t.mock.timers.tick(500);
  }
  await Promise.all(storm);
  for (let i = 1; i < spaced.length; i++) assert.ok(spaced[i]! - spaced[i - 1]! >= 500, `starts ${JSON.stringify(spaced)} spaced by 500 ms`);
  assert.equal(gate.stats().rateLimitedWaits, 4);

  // Once the window has passed with no new trouble, starts are unspaced again.
  t.mock.timers.tick(10_000);
  const after: number[] = [];
  await Promise.all(Array.from({ length: 3 }, () => gate.acquire().then((release) => (after.push(Date.now()), release()))));
  assert.equal(new Set(after).size, 1, `starts ${JSON.stringify(after)} at once`);
});

test('without a trouble window noteTrouble changes nothing: every start is spaced, as before', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const gate = new Gate(4, 2, () => Date.now());
  gate.noteTrouble();
  const started: number[] = [];
  const all = Array.from({ length: 3 }, () => gate.acquire().then((release) => (started.push(Date.now()), release())));
  for (let i = 0; i < 6; i++) {
    await flush();
    t.mock.timers.tick(500);
  }
  await Promise.all(all);
  assert.deepEqual(started, [0, 500, 1000]);
});
