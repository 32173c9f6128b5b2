/**
 * Group commit for the message write path (issue #18): every send row, inbound message, status change and
 * the outbox rows they enqueue go through `transaction(fn)` here instead of one transaction each. A writer
 * takes whatever arrived while its previous commit ran and runs it as one transaction, so one WAL flush
 * (fsync) serves the whole batch; each caller's promise settles only after its batch committed, so "answered"
 * still means "durable in PostgreSQL".
 *
 * Only for short SQL-only work: a batched `fn` must not wait on anything but its own queries (another
 * transaction, a lock held by a caller, the network), or the whole batch waits with it. A throwing `fn`
 * aborts the batch's transaction: the batch is then re-run one transaction per item, so only the failing
 * item fails. An item can therefore run twice when its batch failed; the message writes are idempotent
 * (ON CONFLICT DO NOTHING, status only forward), and nothing of the failed attempt was committed.
 */
import type { Logger, SqlClient, SqlDatabase } from '@wagw/shared';

/** The part of SqlDatabase the message writers use. */
export type TransactionRunner = Pick<SqlDatabase, 'transaction'>;

interface Item {
  fn: (tx: SqlClient) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitOptions {
  /** Batches committing at once (each on its own pooled connection). 0: no grouping, one transaction per call. */
  writers: number;
  /** Most items in one transaction (bounds a batch's lock set and how long its first caller waits). */
  maxBatch?: number;
  logger?: Logger;
  /** Observes each committed batch's size (metrics, tests). */
  onBatch?: (size: number) => void;
}

export class GroupCommit implements TransactionRunner {
  readonly #db: SqlDatabase;
  readonly #writers: number;
  readonly #maxBatch: number;
  readonly #o: GroupCommitOptions;
  readonly #queue: Item[] = [];
  #active = 0;

  constructor(db: SqlDatabase, options: GroupCommitOptions) {
    this.#db = db;
    this.#writers = options.writers;
    this.#maxBatch = options.maxBatch ?? 256;
    this.#o = options;
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    if (this.#writers <= 0) return this.#db.transaction(fn);
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.#active < this.#writers) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#active++;
    try {
      while (this.#queue.length > 0) await this.#commit(this.#queue.splice(0, this.#maxBatch));
    } finally {
      this.#active--;
    }
  }

  async #commit(batch: Item[]): Promise<void> {
    const [only] = batch;
    if (batch.length === 1 && only !== undefined) {
      await this.#db.transaction(only.fn).then(only.resolve, only.reject);
      this.#o.onBatch?.(1);
      return;
    }
    const results: unknown[] = [];
    try {
      await this.#db.transaction(async (tx) => {
        for (const item of batch) results.push(await item.fn(tx));
      });
    } catch (err) {
      this.#o.logger?.debug({ err, size: batch.length }, 'a grouped commit failed; its items run one transaction each');
      for (const item of batch) await this.#db.transaction(item.fn).then(item.resolve, item.reject);
      return;
    }
    this.#o.onBatch?.(batch.length);
    batch.forEach((item, i) => item.resolve(results[i]));
  }
}
