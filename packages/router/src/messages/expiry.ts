/**
 * The expiry sweep of the message API's leftovers (docs/messaging.md, "Expiry"):
 * - `idempotency_keys` rows older than IDEMPOTENCY_TTL_MS (index `idempotency_keys_created_idx`), in batches;
 *   an in-progress key whose lock is still valid is kept;
 * - uploads in the blob store (`uploads/<session>/u_…` and its `.meta`) written more than UPLOAD_TTL_MS ago, used
 *   or not; a router-decoded base64 temp (`b64-…`, normally removed right after its send) only once it is older
 *   than the longest a send may run too.
 *
 * Every router runs it every EXPIRY_SWEEP_INTERVAL_MS (first run at a random point of the first interval).
 * On PostgreSQL a sweep holds a transaction-level advisory lock, so while one router sweeps the others skip;
 * without the lock (PGlite: one host) or if two ran anyway, nothing breaks: a row is deleted once and deleting a
 * missing blob is a no-op.
 */
import type { BlobStore, Logger, SqlDatabase } from '@wagw/shared';

export interface ExpirySweeperOptions {
  sql: SqlDatabase;
  blobs: BlobStore;
  logger: Logger;
  idempotencyTtlMs: number;
  uploadTtlMs: number;
  intervalMs: number;
  /** The longest a send may run (its base64 temp object is kept at least this long). */
  sendDeadlineMs: number;
}

export interface SweepResult {
  /** False when another router held the sweep lock (nothing was done). */
  ran: boolean;
  idempotencyKeys: number;
  uploads: number;
}

/** Key of the PostgreSQL advisory lock (an arbitrary constant: "wagw" + 1). */
const SWEEP_LOCK = 0x77616777_01;
const BATCH = 5000;
const UPLOADS_PREFIX = 'uploads/';

export class ExpirySweeper {
  readonly #o: ExpirySweeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(options: ExpirySweeperOptions) {
    this.#o = options;
  }

  /** Sweeps periodically until `stop()`; a failed sweep is logged and retried at the next tick. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    const tick = (delay: number): void => {
      this.#timer = setTimeout(() => {
        this.#running = this.sweepOnce()
          .then((r) => {
            if (r.ran && r.idempotencyKeys + r.uploads > 0) this.#o.logger.info(r, 'expired idempotency keys and uploads swept');
          })
          .catch((err: unknown) => this.#o.logger.warn({ err: (err as Error).message }, 'expiry sweep failed'))
          .finally(() => {
            this.#running = undefined;
            if (!this.#stopped) tick(this.#o.intervalMs);
          });
      }, delay);
      this.#timer.unref();
    };
    tick(Math.floor(Math.random() * this.#o.intervalMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One sweep as of `now` (ms since the epoch). */
  async sweepOnce(now = Date.now()): Promise<SweepResult> {
    if (this.#o.sql.kind !== 'postgres') return { ran: true, ...(await this.#sweep(this.#o.sql, now)) };
    return await this.#o.sql.transaction(async (tx) => {
      const lock = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [SWEEP_LOCK]);
      if (lock.rows[0]?.locked !== true) return { ran: false, idempotencyKeys: 0, uploads: 0 };
      return { ran: true, ...(await this.#sweep(tx, now)) };
    });
  }

  async #sweep(sql: Pick<SqlDatabase, 'query'>, now: number): Promise<{ idempotencyKeys: number; uploads: number }> {
    const cutoff = new Date(now - this.#o.idempotencyTtlMs).toISOString();
    const at = new Date(now).toISOString();
    let idempotencyKeys = 0;
    for (;;) {
      const r = await sql.query(
        `DELETE FROM idempotency_keys WHERE (session_id, key) IN (
           SELECT session_id, key FROM idempotency_keys
            WHERE created_at < $1 AND (locked_until IS NULL OR locked_until < $2) LIMIT ${BATCH})`,
        [cutoff, at],
      );
      idempotencyKeys += r.rowCount;
      if (r.rowCount < BATCH) break;
    }
    const tempAgeMs = Math.max(this.#o.uploadTtlMs, this.#o.sendDeadlineMs);
    let uploads = 0;
    for (const { key, modifiedAt } of await this.#o.blobs.listModified(UPLOADS_PREFIX)) {
      const name = key.slice(key.lastIndexOf('/') + 1);
      const maxAge = name.startsWith('b64-') ? tempAgeMs : this.#o.uploadTtlMs;
      if (now - modifiedAt <= maxAge) continue;
      await this.#o.blobs.delete(key);
      uploads++;
    }
    return { idempotencyKeys, uploads };
  }
}
