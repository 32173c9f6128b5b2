import { setImmediate as flushIo } from 'node:timers/promises';
import type { GovernorClock } from '../../src/messaging/governor.ts';

/** A virtual clock: timers fire only when the test advances time; no real sleeping. */
export class FakeClock implements GovernorClock {
  #now: number;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #nextId = 1;

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Lets promise chains run (sends completing, their `.finally` pumping the queue). */
  async flush(): Promise<void> {
    for (let i = 0; i < 3; i++) await flushIo();
  }

  /** Fires the earliest timer (moving time to it); false when none is left. */
  async step(): Promise<boolean> {
    await this.flush();
    let first: [number, { at: number; fn: () => void }] | undefined;
    for (const entry of this.#timers) if (first === undefined || entry[1].at < first[1].at) first = entry;
    if (first === undefined) return false;
    this.#timers.delete(first[0]);
    this.#now = Math.max(this.#now, first[1].at);
    first[1].fn();
    await this.flush();
    return true;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await this.flush();
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= until && (first === undefined || entry[1].at < first[1].at)) first = entry;
      if (first === undefined) break;
      this.#timers.delete(first[0]);
      this.#now = Math.max(this.#now, first[1].at);
      first[1].fn();
    }
    this.#now = until;
    await this.flush();
  }

  /** Steps timers until every promise settled (or no timer is left); returns how they settled. */
  async settleAll<T>(promises: Promise<T>[], maxSteps = 100_000): Promise<PromiseSettledResult<T>[]> {
    let done = false;
    const all = Promise.allSettled(promises).then((r) => {
      done = true;
      return r;
    });
    for (let i = 0; i < maxSteps && !done; i++) {
      if (!(await this.step())) break;
    }
    await this.flush();
    if (!done) throw new Error('some promises never settled (a hang)');
    return all;
  }
}
