/**
 * Group commit for the message write path (issue #18): every send row, inbound message, status change and
 * the outbox rows they enqueue go through here instead of one transaction each. A writer takes whatever
 * arrived while its previous commit ran and runs it as one transaction, so one WAL flush (fsync) serves the
 * whole batch; each caller's promise settles only after its batch committed, so "answered" still means
 * "durable in PostgreSQL".
 *
 * Writes are bulk: `submit(op, input)` queues one input of a `BulkWrite`, and every input of that op in the batch
 * goes to one `op.run` call, which writes them with a statement or two for all (arrays unnested: 2-5x less CPU
 * per message in PostgreSQL and node-postgres than a statement each at batches of 4-16, docs/benchmarks.md).
 * The ops of one batch run in their `order` (the message rows before the status changes, so a receipt in the
 * same batch as its row finds it).
 *
 * Only for short SQL-only work: a batched write must not wait on anything but its own queries (another
 * transaction, a lock held by a caller, the network), or the whole batch waits with it. A throwing write
 * aborts the batch's transaction: the batch is then re-run one transaction per item, so only the failing
 * item fails. An item can therefore run twice when its batch failed; the message writes are idempotent
 * (ON CONFLICT DO NOTHING, status only forward), and nothing of the failed attempt was committed.
 */
import type { Logger, SqlDatabase, SqlTransaction } from '@wagw/shared';

/** A write many callers' inputs share: `run` gets every input of a batch and answers one result per input, in order. */
export interface BulkWrite<I, R> {
  /** Where the op runs in a batch's transaction: lower first. */
  readonly order: number;
  run(tx: SqlTransaction, inputs: readonly I[]): Promise<R[]>;
}

/** `at`: when the item was queued (performance.now()), for `onWait`. */
type Settle = { resolve: (value: unknown) => void; reject: (err: unknown) => void; at: number };
type Item = Settle & { op: BulkWrite<unknown, unknown>; input: unknown };

export interface GroupCommitOptions {
  /** Batches committing at once (each on its own pooled connection). 0: no grouping, one transaction per call. */
  writers: number;
  /** Most items in one transaction (bounds a batch's lock set and how long its first caller waits). */
  maxBatch?: number;
  logger?: Logger;
  /** Observes each committed batch's size (metrics, tests). */
  onBatch?: (size: number) => void;
  /** Observes each committed item's wait, from queued to committed, in seconds (metrics). */
  onWait?: (seconds: number) => void;
}

/** Runs one batch's items in `tx`, each op once for all its inputs, in the ops' order; their results by item, in the batch's order. */
async function runItems(tx: SqlTransaction, batch: readonly Item[]): Promise<unknown[]> {
  const results = new Array<unknown>(batch.length);
  const groups = new Map<BulkWrite<unknown, unknown>, number[]>();
  batch.forEach((item, i) => {
    const indexes = groups.get(item.op);
    if (indexes === undefined) groups.set(item.op, [i]);
    else indexes.push(i);
  });
  for (const [op, indexes] of [...groups].sort(([a], [b]) => a.order - b.order)) {
    const out = await op.run(tx, indexes.map((i) => batch[i]?.input));
    if (out.length !== indexes.length) throw new Error(`a bulk write answered ${out.length} results for ${indexes.length} inputs`);
    indexes.forEach((i, k) => (results[i] = out[k]));
  }
  return results;
}

export class GroupCommit {
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

  /** `input` written by `op` together with every other input of `op` in the same batch; settles after the commit. */
  submit<I, R>(op: BulkWrite<I, R>, input: I): Promise<R> {
    if (this.#writers <= 0) return this.#db.transaction(async (tx) => (await op.run(tx, [input]))[0] as R);
    return this.#enqueue((settle) => ({ ...settle, op: op as BulkWrite<unknown, unknown>, input }));
  }

  #enqueue<T>(make: (settle: Settle) => Item): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(make({ resolve: resolve as (value: unknown) => void, reject, at: performance.now() }));
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
    let results: unknown[];
    try {
      results = await this.#db.transaction((tx) => runItems(tx, batch));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
      this.#o.logger?.debug({ err, size: batch.length }, 'a grouped commit failed; its items run one transaction each');
      for (const item of batch) {
        await this.#db.transaction(async (tx) => (await runItems(tx, [item]))[0]).then(item.resolve, item.reject);
      }
      return;
    }
    this.#o.onBatch?.(batch.length);
    const onWait = this.#o.onWait;
    if (onWait !== undefined) {
      const now = performance.now();
      for (const item of batch) onWait((now - item.at) / 1000);
    }
    batch.forEach((item, i) => item.resolve(results[i]));
  }
}
