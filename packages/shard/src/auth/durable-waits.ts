/**
 * How long sent stanzas waited for their auth-state write to be durable (Baileys' `beforeRelay`, the
 * `BlobAuthState.durable()` wait), for every session of a shard: running totals the router exports as counters
 * (`wagw_shard_auth_durable_*`, docs/architecture.md), so a rate over any window gives the mean wait and the share
 * of slow ones. A slow disk or blob store shows here before it shows as send latency.
 */
import type { AuthDurableStats } from '@wagw/shared';

/** A wait at least this long counts as slow (`slowWaits`): a tenth of the send latency budget below saturation. */
export const SLOW_DURABLE_WAIT_MS = 5;

export class DurableWaits {
  readonly #now: () => number;
  #waits = 0;
  #seconds = 0;
  #slow = 0;

  /** `now`: a clock in ms (tests). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Runs `wait` (the durable promise) and counts how long it took, settled or failed. */
  async measure(wait: () => Promise<void>): Promise<void> {
    const start = this.#now();
    try {
      await wait();
    } finally {
      const ms = this.#now() - start;
      this.#waits++;
      this.#seconds += ms / 1000;
      if (ms >= SLOW_DURABLE_WAIT_MS) this.#slow++;
    }
  }

  stats(): AuthDurableStats {
    return { waits: this.#waits, waitSeconds: this.#seconds, slowWaits: this.#slow };
  }
}
