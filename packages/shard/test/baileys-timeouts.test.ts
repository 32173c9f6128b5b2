// The project's Baileys patch (patches/) changes how `promiseTimeout` and `delayCancellable` keep the caller's stack:
// captured, formatted only when read, and no 'Cancelled' Boom built per call. Baileys' callers (every frame sent,
// every query) rely on what they did before: settle with the work's result, or reject with a 'Timed Out' Boom
// (status 408) carrying the caller's stack, and leave no timer behind.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DisconnectReason, delayCancellable, promiseTimeout } from '@whiskeysockets/baileys';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('Baileys timeouts (patched)', () => {
  it('promiseTimeout settles with the work and clears its timer', async () => {
    const before = timers();
    assert.equal(await promiseTimeout<number>(60_000, (resolve) => resolve(7)), 7);
    await assert.rejects(promiseTimeout(60_000, (_resolve, reject) => reject(new Error('work failed'))), /work failed/);
    assert.equal(timers(), before, 'no 60 s timer left behind');
  });

  it("promiseTimeout rejects with a 'Timed Out' Boom carrying the caller's stack", async () => {
    const callerOfTheTimeout = async (): Promise<void> => await promiseTimeout(20, () => undefined);
    const err = (await callerOfTheTimeout().then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    )) as { message: string; output: { statusCode: number }; data: { stack: unknown } };
    assert.equal(err.message, 'Timed Out');
    assert.equal(err.output.statusCode, DisconnectReason.timedOut);
    assert.equal(typeof err.data.stack, 'string');
    assert.match(err.data.stack as string, /callerOfTheTimeout/);
    // Logged as JSON (pino's err serializer), the stack reads as before.
    assert.match(JSON.stringify(err.data), /callerOfTheTimeout/);
  });

  it("delayCancellable resolves after its delay, and cancel rejects with a 'Cancelled' Boom carrying the caller's stack", async () => {
    await delayCancellable(5).delay;
    const callerOfTheDelay = (): ReturnType<typeof delayCancellable> => delayCancellable(60_000);
    const { delay, cancel } = callerOfTheDelay();
    cancel();
    const err = (await delay.then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    )) as { message: string; data: { stack: unknown } };
    assert.equal(err.message, 'Cancelled');
    assert.match(String(err.data.stack), /callerOfTheDelay/);
  });
});
