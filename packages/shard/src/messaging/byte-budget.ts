/**
 * The shard's budget of media bytes held in memory by sends (MEDIA_DOWNLOAD_BUDGET_BYTES): URL downloads and
 * uploads read from the blob store count against it from their first byte until the send finished, so many
 * concurrent sends with large media cannot buffer more than the budget in one shard. Past it, a send is
 * refused with 429 QUEUE_FULL (retry later) and its download is aborted, not queued: the caller's retry is
 * the backpressure.
 */
import { GatewayError } from '@wagw/shared';

export interface BudgetAccount {
  /** Counts `bytes` more; throws QUEUE_FULL (taking nothing) when the shard's budget would be exceeded. */
  take(bytes: number): void;
  /** Gives back everything this account took (idempotent). */
  release(): void;
}

export class ByteBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    if (!(limit > 0)) throw new RangeError('ByteBudget: limit > 0');
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  open(): BudgetAccount {
    let held = 0;
    return {
      take: (bytes: number) => {
        if (this.#used + bytes > this.limit) {
          throw new GatewayError('QUEUE_FULL', `This shard is holding its media budget of ${this.limit} bytes for other sends; retry in a few seconds.`, { retryAfterMs: 2000, budgetBytes: this.limit });
        }
        this.#used += bytes;
        held += bytes;
      },
      release: () => {
        this.#used -= held;
        held = 0;
      },
    };
  }
}
