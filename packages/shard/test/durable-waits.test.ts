import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DurableWaits, SLOW_DURABLE_WAIT_MS } from '../src/auth/durable-waits.ts';

test('durable waits: each wait is counted with its time, slow ones apart, failed ones too (and rethrown)', async () => {
  let clock = 1000;
  const waits = new DurableWaits(() => clock);
  const taking = (ms: number, fail = false) => async (): Promise<void> => {
    clock += ms;
    if (fail) throw new Error('fenced out');
  };
  await waits.measure(taking(1));
  await waits.measure(taking(SLOW_DURABLE_WAIT_MS - 0.5));
  await waits.measure(taking(SLOW_DURABLE_WAIT_MS));
  await assert.rejects(waits.measure(taking(40, true)), /fenced out/);
  const s = waits.stats();
  assert.equal(s.waits, 4);
  assert.equal(s.slowWaits, 2, 'the wait of the threshold and the failed one of 40 ms');
  assert.ok(Math.abs(s.waitSeconds - (1 + SLOW_DURABLE_WAIT_MS - 0.5 + SLOW_DURABLE_WAIT_MS + 40) / 1000) < 1e-9, String(s.waitSeconds));
});
