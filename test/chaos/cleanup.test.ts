// The chaos campaign's clean-up runner (cleanup.ts): steps run last-registered first, a step that throws does not
// stop the others, and a step that never finishes is named when the deadline passes (a 30-minute campaign once
// hung in its clean-up for two hours with nothing saying where).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CleanupSteps } from './cleanup.ts';

describe('chaos campaign clean-up', () => {
  test('runs every step, newest first; a failing step is reported and the others still run', async () => {
    const steps = new CleanupSteps();
    const ran: string[] = [];
    steps.named('database').after(async () => void ran.push('database'));
    steps.named('proxy').after(async () => {
      ran.push('proxy');
      throw new Error('already closed');
    });
    steps.named('router').after(async () => void ran.push('router'));
    const trace: string[] = [];
    const result = await steps.run(5_000, (line) => trace.push(line));
    assert.deepEqual(ran, ['router', 'proxy', 'database']);
    assert.deepEqual(result, { ok: false, step: 'proxy', error: 'Error: already closed' });
    assert.ok(trace.some((l) => l.startsWith('cleanup: proxy failed after')));
    assert.ok(trace.some((l) => l.startsWith('cleanup: database done in')));
  });

  test('a step that never finishes is named once the deadline passed, and run() returns', async () => {
    const steps = new CleanupSteps();
    let after = false;
    steps.named('drop test database').after(async () => void (after = true));
    steps.named('simulator').after(() => new Promise<void>(() => undefined));
    steps.named('router chaos-host-1, launch 1').after(async () => undefined);
    const started = Date.now();
    const result = await steps.run(300, () => undefined);
    assert.deepEqual(result, { ok: false, step: 'simulator', error: 'did not finish within 300 ms' });
    assert.ok(Date.now() - started < 2_000, 'run() returned at the deadline');
    assert.equal(after, false, 'the steps after the stuck one did not run');
  });

  test('all steps done: ok', async () => {
    const steps = new CleanupSteps();
    steps.named('temp dir').after(async () => undefined);
    assert.deepEqual(await steps.run(1_000, () => undefined), { ok: true });
  });
});
