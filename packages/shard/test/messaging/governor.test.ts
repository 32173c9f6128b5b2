import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GatewayError } from '@wagw/shared';
import { SendGovernor, type GovernorOptions } from '../../src/messaging/governor.ts';
import { FakeClock } from './fake-clock.ts';

function setup(opts: Partial<GovernorOptions> = {}) {
  const clock = new FakeClock();
  const waits: number[] = [];
  const gov = new SendGovernor({
    ratePerSec: 1,
    burst: 5,
    perRecipientIntervalMs: 0,
    queueMax: 1000,
    queueTimeoutMs: 1e9,
    clock,
    onWait: (ms) => waits.push(ms),
    ...opts,
  });
  const starts: { to: string; at: number; n: number }[] = [];
  const submit = (to: string, n: number, work?: () => Promise<unknown>) =>
    gov.submit(to, () => {
      starts.push({ to, at: clock.now(), n });
      return work === undefined ? Promise.resolve(n) : work();
    });
  return { clock, gov, starts, submit, waits };
}

/** In every window [t_i, t_j], the starts must fit burst + rate * (t_j - t_i). */
function assertWithinBucket(times: number[], ratePerSec: number, burst: number): void {
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const allowed = burst + (ratePerSec * ((times[j] as number) - (times[i] as number))) / 1000;
      assert.ok(j - i + 1 <= allowed + 1e-9, `starts ${i}..${j} (${j - i + 1}) within ${(times[j] as number) - (times[i] as number)} ms exceed ${allowed}`);
    }
  }
}

/** Marks a promise as handled now (tests inspect rejections later via settleAll). */
const quiet = <T>(p: Promise<T>): Promise<T> => {
  p.catch(() => undefined);
  return p;
};

const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as GatewayError).code : 'ok');

test('a 300-send burst across 30 recipients never exceeds rate and burst, starts in FIFO order, all succeed', async () => {
  const { clock, starts, submit } = setup({ ratePerSec: 1, burst: 5 });
  const t0 = clock.now();
  const results = await clock.settleAll(Array.from({ length: 300 }, (_, n) => submit(`r${n % 30}`, n)));
  assert.ok(results.every((r) => r.status === 'fulfilled'));
  assert.equal(starts.length, 300);
  assert.deepEqual(starts.map((s) => s.n), Array.from({ length: 300 }, (_, n) => n), 'FIFO across recipients');
  assertWithinBucket(starts.map((s) => s.at), 1, 5);
  // and it is not slower than it must be: 5 at once, then one per second
  assert.ok((starts.at(-1) as { at: number }).at - t0 <= 295_000 + 300, `took ${(starts.at(-1) as { at: number }).at - t0} ms`);
});

test('other configurations too (20/s burst 10, 3/s burst 2): 300 sends to one recipient without pacing', async () => {
  for (const [ratePerSec, burst] of [[20, 10], [3, 2]] as const) {
    const { clock, starts, submit } = setup({ ratePerSec, burst });
    await clock.settleAll(Array.from({ length: 300 }, (_, n) => submit('one', n)));
    assert.equal(starts.length, 300);
    assertWithinBucket(starts.map((s) => s.at), ratePerSec, burst);
  }
});

test('per-recipient pace: starts to one chat are at least the interval apart, and other chats are not held up', async () => {
  const { clock, starts, submit } = setup({ ratePerSec: 100, burst: 100, perRecipientIntervalMs: 2000 });
  const t0 = clock.now();
  const all = [submit('a', 0), submit('a', 1), submit('a', 2), submit('b', 3), submit('c', 4), submit('b', 5)];
  await clock.flush();
  // a0, b3, c4 start at once: a1 and b5 wait for their own pace only
  assert.deepEqual(starts.map((s) => s.n), [0, 3, 4]);
  await clock.settleAll(all);
  const at = (n: number) => (starts.find((s) => s.n === n) as { at: number }).at - t0;
  assert.deepEqual([at(0), at(1), at(2)], [0, 2000, 4000]);
  assert.deepEqual([at(3), at(5)], [0, 2000]);
  assert.equal(at(4), 0);
});

test('a recipient with a send in flight waits for it to finish (per-chat order), others go ahead', async () => {
  const { clock, starts, submit } = setup({ ratePerSec: 100, burst: 100 });
  let release: () => void = () => undefined;
  const slow = new Promise<void>((r) => (release = r));
  const all = [submit('a', 0, () => slow), submit('a', 1), submit('b', 2)];
  await clock.flush();
  assert.deepEqual(starts.map((s) => s.n), [0, 2]);
  release();
  await clock.settleAll(all);
  assert.deepEqual(starts.map((s) => s.n), [0, 2, 1]);
});

test('a full queue answers QUEUE_FULL at once with a sane retryAfterMs; every request of 300 settles', async () => {
  const { clock, gov, submit } = setup({ ratePerSec: 1, burst: 5, queueMax: 100, queueTimeoutMs: 25_000 });
  const promises = Array.from({ length: 300 }, (_, n) => quiet(submit(`r${n % 50}`, n)));
  const early = await Promise.allSettled(promises.slice(40).map((p) => Promise.race([p, Promise.resolve('pending')])));
  // the projected wait beyond 25 s is refused up front, not after a timeout
  assert.ok(early.every((r) => r.status === 'rejected' && (r.reason as GatewayError).code === 'QUEUE_FULL'));
  const results = await clock.settleAll(promises);
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  const full = results.filter((r) => codeOf(r) === 'QUEUE_FULL');
  assert.equal(ok + full.length, 300, 'every send ends in a result or QUEUE_FULL, no timeout, no hang');
  assert.ok(ok >= 25 && ok <= 31, `admitted ${ok}`);
  for (const r of full) {
    const err = (r as PromiseRejectedResult).reason as GatewayError;
    assert.equal(err.status, 429);
    const retry = err.details?.['retryAfterMs'] as number;
    assert.ok(retry >= 1000 && retry <= 10_000, `retryAfterMs ${retry}`);
  }
  assert.equal(gov.stats().rejectedFull, full.length);
  assert.equal(gov.stats().depth, 0);
});

test('queueMax bounds the depth even when the wait would fit', async () => {
  const { clock, gov, submit } = setup({ ratePerSec: 10, burst: 1, queueMax: 3 });
  const ps = Array.from({ length: 6 }, (_, n) => quiet(submit('x', n)));
  await clock.flush();
  assert.equal(gov.stats().depth, 3);
  const results = await clock.settleAll(ps);
  assert.deepEqual(results.map(codeOf), ['ok', 'ok', 'ok', 'ok', 'QUEUE_FULL', 'QUEUE_FULL']);
  const retry = ((results[4] as PromiseRejectedResult).reason as GatewayError).details?.['retryAfterMs'];
  assert.equal(retry, 100);
});

test('a queued send that cannot start before its deadline fails with QUEUE_TIMEOUT and is never run', async () => {
  const { clock, starts, submit, gov } = setup({ ratePerSec: 100, burst: 100, perRecipientIntervalMs: 10_000, queueTimeoutMs: 5000 });
  const t0 = clock.now();
  const results = await clock.settleAll([submit('a', 0), submit('a', 1), submit('b', 2)]);
  assert.deepEqual(results.map(codeOf), ['ok', 'QUEUE_TIMEOUT', 'ok']);
  const err = (results[1] as PromiseRejectedResult).reason as GatewayError;
  assert.equal(err.status, 429);
  assert.equal(err.details?.['waitedMs'], 5000);
  assert.deepEqual(starts.map((s) => s.n), [0, 2]);
  assert.equal(clock.now() - t0, 5000);
  assert.equal(gov.stats().timedOut, 1);
});

test('every enqueued send settles: resolving, rejecting, throwing and slow sends', async () => {
  const { clock, submit, gov } = setup({ ratePerSec: 5, burst: 2, perRecipientIntervalMs: 300 });
  const ps: Promise<unknown>[] = [];
  for (let n = 0; n < 60; n++) {
    const kind = n % 4;
    ps.push(
      quiet(submit(`r${n % 7}`, n, () => {
        if (kind === 1) return Promise.reject(new Error('wa said no'));
        if (kind === 2) throw new Error('sync throw');
        if (kind === 3) return new Promise((r) => clock.setTimeout(() => r('slow'), 700));
        return Promise.resolve('fast');
      })),
    );
  }
  const results = await clock.settleAll(ps);
  assert.equal(results.length, 60);
  assert.equal(results.filter((r) => r.status === 'rejected').length, 30);
  assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as Error).message !== undefined));
  const s = gov.stats();
  assert.deepEqual([s.depth, s.inFlight, s.started], [0, 0, 60]);
  assert.equal(clock.pendingTimers, 0, 'no timer left behind');
});

test('disabled mode passes straight through (rate 0 or enabled: false)', async () => {
  for (const opts of [{ ratePerSec: 0 }, { ratePerSec: 1, enabled: false }]) {
    const { clock, gov, starts, submit } = setup({ ...opts, burst: 1, queueMax: 1 });
    const ps = Array.from({ length: 500 }, (_, n) => submit('same', n));
    assert.equal(starts.length, 500, 'all started synchronously');
    assert.equal(gov.enabled, false);
    const results = await Promise.all(ps);
    assert.equal(results.length, 500);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(gov.stats().inFlight, 0);
  }
});

test('close() rejects waiting sends with QUEUE_CLOSED, refuses new ones, lets in-flight ones finish', async () => {
  const { clock, gov, starts, submit } = setup({ ratePerSec: 1, burst: 1 });
  let release: () => void = () => undefined;
  const first = submit('a', 0, () => new Promise<string>((r) => (release = () => r('done'))));
  const waiting = [quiet(submit('b', 1)), quiet(submit('c', 2))];
  await clock.flush();
  let closed = false;
  const closing = gov.close('session stopped').then(() => (closed = true));
  const rejected = await Promise.allSettled(waiting);
  assert.deepEqual(rejected.map(codeOf), ['QUEUE_CLOSED', 'QUEUE_CLOSED']);
  assert.match(((rejected[0] as PromiseRejectedResult).reason as Error).message, /session stopped/);
  await assert.rejects(submit('d', 3), { code: 'QUEUE_CLOSED', status: 503 });
  await clock.flush();
  assert.equal(closed, false, 'close waits for the in-flight send');
  release();
  assert.equal(await first, 'done');
  await closing;
  assert.equal(closed, true);
  assert.deepEqual(starts.map((s) => s.n), [0]);
  assert.equal(clock.pendingTimers, 0);
});

test('stats expose depth and wait times; onWait sees every start', async () => {
  const { clock, gov, submit, waits } = setup({ ratePerSec: 1, burst: 1 });
  const ps = [submit('a', 0), submit('b', 1), submit('c', 2)];
  await clock.flush();
  assert.equal(gov.stats().depth, 2);
  await clock.settleAll(ps);
  assert.deepEqual(waits, [0, 1000, 2000]);
  const s = gov.stats();
  assert.deepEqual(s.wait, { count: 3, sumMs: 3000, maxMs: 2000 });
  assert.equal(s.submitted, 3);
});

test('the bucket refills while idle, up to burst only', async () => {
  const { clock, starts, submit } = setup({ ratePerSec: 2, burst: 3 });
  await clock.settleAll([submit('a', 0), submit('b', 1), submit('c', 2)]);
  await clock.advance(60_000);
  const t = clock.now();
  await clock.settleAll(Array.from({ length: 5 }, (_, i) => submit(`x${i}`, 10 + i)));
  assert.deepEqual(starts.slice(3).map((s) => s.at - t), [0, 0, 0, 500, 1000]);
});
