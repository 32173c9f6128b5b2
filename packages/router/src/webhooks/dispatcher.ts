/**
 * The webhook dispatcher: claims due outbox rows in short single-statement transactions
 * (`FOR UPDATE SKIP LOCKED`, so several routers share the work), delivers them outside any transaction with
 * bounded concurrency, and records the results in batched UPDATEs. It never holds a database connection
 * across network I/O (embedded mode has ONE connection for the whole router).
 *
 * A claim is a lease: `locked_by` (a random token) and `locked_until`; `next_attempt_at` moves to the lease
 * end, so a row whose router died is due again after WEBHOOK_LOCK_TIMEOUT_MS. Results are recorded only while
 * `locked_by` still holds our token, so a late result never overwrites a newer claim's.
 *
 * Ordering: only the oldest pending row of a stream (endpoint, ordering_key) is claimable, so a stream is
 * delivered one row at a time in id order, across retries and routers (see outbox.ts for the keys).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WEBHOOK_TOPICS, backoffDelay } from '@wagw/shared';
import type { Logger, SqlDatabase, WebhookTopic } from '@wagw/shared';
import { EndpointBreakers, EndpointDownError, originOf } from './breakers.ts';
import type { DeliveryOutcome, WebhookMetrics } from './metrics.ts';
import { backendEndpoint } from './outbox.ts';
import type { DeliveryResult, WebhookTransport } from './transport.ts';

export interface DispatcherSettings {
  batchSize: number;
  concurrency: number;
  lockTimeoutMs: number;
  pollIntervalMs: number;
  maxAgeMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
  breakerHalfOpenMaxMs: number;
  allowPrivateTargets: boolean;
  retentionMs: number;
}

export interface DispatcherOptions {
  db: SqlDatabase;
  transport: WebhookTransport;
  settings: DispatcherSettings;
  logger: Logger;
  /** `{BACKEND_URL}`: its endpoints get `Authorization` and skip the private-address guard. */
  backendUrl?: string | undefined;
  backendApiKey?: string | undefined;
  /** Read at each use (metrics may be registered after the dispatcher is built). */
  metrics?: () => WebhookMetrics | undefined;
  /** Random by default; shows in `locked_by` (prefix) for operators. */
  name?: string;
}

interface ClaimedRow {
  id: number;
  eventId: string;
  endpoint: string;
  /** The event's session (a session's own endpoint is signed with a secret derived from it and the URL). */
  sessionId: string;
  topic: WebhookTopic;
  body: string;
  /** The correlation id of the request that caused the event (`x-request-id`), or null. */
  requestId: string | null;
  attempts: number;
  /** ms epoch the retry window counts from (replayed_at or created_at). */
  ageBase: number;
  token: string;
}

interface RecordedResult {
  id: number;
  token: string;
  status: 'pending' | 'delivered' | 'dead';
  /** Counts as an attempt (false: released unattempted, e.g. breaker open or stopping). */
  attempted: boolean;
  nextAttemptAt: Date;
  httpStatus: number | null;
  error: string | null;
}


const FLUSH_AT = 256;
const FLUSH_DELAY_MS = 5;

function likePattern(origin: string): string {
  return `${origin.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;
}

export class WebhookDispatcher {
  readonly #db: SqlDatabase;
  readonly #transport: WebhookTransport;
  readonly #s: DispatcherSettings;
  readonly #log: Logger;
  readonly #metrics: () => WebhookMetrics | undefined;
  readonly #backendUrl: string | undefined;
  readonly #backendHeaders: Record<string, string>;
  readonly #name: string;
  readonly breakers: EndpointBreakers;

  #running = false;
  #abandoned = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #dirty = false;
  readonly #queue: ClaimedRow[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #pending: RecordedResult[] = [];
  #flushing: Promise<void> | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #nudgeTimers = new Set<NodeJS.Timeout>();
  #lastSweep = 0;

  constructor(options: DispatcherOptions) {
    this.#db = options.db;
    this.#transport = options.transport;
    this.#s = options.settings;
    this.#log = options.logger;
    this.#metrics = options.metrics ?? (() => undefined);
    this.#backendUrl = options.backendUrl;
    this.#backendHeaders = options.backendApiKey === undefined ? {} : { authorization: `Bearer ${options.backendApiKey}` };
    this.#name = options.name ?? `d-${randomBytes(4).toString('hex')}`;
    this.breakers = new EndpointBreakers({
      threshold: options.settings.breakerThreshold,
      halfOpenAfterMs: options.settings.breakerHalfOpenMs,
      halfOpenMaxMs: options.settings.breakerHalfOpenMaxMs,
      onRecovered: (origin) => {
        this.#log.info({ origin }, 'webhook endpoint recovered; its backlog is due now');
        this.#pullForward(origin);
      },
      onStateChange: (origin, state) => this.#log.info({ origin, state }, 'webhook breaker state changed'),
    });
  }

  get name(): string {
    return this.#name;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abandoned = false;
    this.#loop = this.#run();
  }

  /**
   * Wakes the claim loop (new rows). Enqueues happen inside the caller's transaction, so the loop also looks
   * again a little later, after the commit.
   */
  notify(): void {
    this.#dirty = true;
    this.#wake?.();
    if (this.#nudgeTimers.size < 4) {
      for (const ms of [15, 60]) {
        const t = setTimeout(() => {
          this.#nudgeTimers.delete(t);
          this.#dirty = true;
          this.#wake?.();
        }, ms);
        t.unref();
        this.#nudgeTimers.add(t);
      }
    }
  }

  /**
   * Stops claiming, lets in-flight deliveries finish and records them, releases claimed rows not yet sent.
   * With `abandon: true` (a crash, in tests) nothing more is written: the claims lapse after the lock timeout.
   */
  async stop(options: { abandon?: boolean } = {}): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#abandoned = options.abandon === true;
    this.#wake?.();
    for (const t of this.#nudgeTimers) clearTimeout(t);
    this.#nudgeTimers.clear();
    await this.#loop;
    if (this.#abandoned) {
      this.#queue.length = 0;
      this.#pending = [];
      clearTimeout(this.#flushTimer);
      return;
    }
    const unsent = this.#queue.splice(0);
    for (const row of unsent) this.#pending.push(this.#release(row, new Date()));
    await Promise.allSettled([...this.#inFlight]);
    clearTimeout(this.#flushTimer);
    await this.#flushAll();
  }

  // ---- claim loop ----

  async #run(): Promise<void> {
    let idle = false;
    while (this.#running) {
      const capacity = this.#s.concurrency + this.#s.batchSize - this.#queue.length - this.#inFlight.size;
      if (capacity < Math.max(1, Math.floor(this.#s.batchSize / 2)) || (idle && !this.#dirty)) {
        await this.#waitForWork(idle ? this.#s.pollIntervalMs : 1000);
        idle = false;
        continue;
      }
      this.#dirty = false;
      let claimed = 0;
      try {
        claimed = await this.#claim(Math.min(this.#s.batchSize, capacity));
      } catch (err) {
        if (!this.#running) break;
        this.#log.warn({ err: (err as Error).message }, 'claiming webhook rows failed; retrying');
        await this.#waitForWork(Math.min(5000, this.#s.pollIntervalMs * 4));
        continue;
      }
      if (!this.#running) break;
      this.#pump();
      idle = claimed === 0;
      if (Date.now() - this.#lastSweep > 60_000) await this.#sweep();
    }
  }

  #waitForWork(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  async #claim(limit: number): Promise<number> {
    const { blocked, probe } = this.breakers.partition();
    const token = `${this.#name}:${randomBytes(6).toString('hex')}`;
    const exclude = [...blocked, ...probe].map(likePattern);
    let rows = await this.#claimQuery(token, limit, exclude, null);
    for (const origin of probe) {
      const one = await this.#claimQuery(token, 1, [], likePattern(origin));
      if (one.length > 0) this.breakers.markProbing(origin);
      rows = rows.concat(one);
    }
    rows.sort((a, b) => a.id - b.id);
    if (this.#abandoned || !this.#running) return rows.length; // claims lapse on their own
    this.#queue.push(...rows);
    return rows.length;
  }

  async #claimQuery(token: string, limit: number, exclude: string[], only: string | null): Promise<ClaimedRow[]> {
    const { rows } = await this.#db.query<{
      id: number;
      event_id: string;
      endpoint: string;
      session_id: string;
      event_type: WebhookTopic;
      body: string;
      request_id: string | null;
      attempts: number;
      age_base: Date;
    }>(
      `WITH due AS (
         SELECT o.id FROM webhook_outbox o
          WHERE o.status = 'pending'
            -- A breaker's probe ($4) takes the origin's next unclaimed row even when that row's own retry
            -- backoff runs longer: the breaker's schedule, not a row's backoff, decides when a receiver that
            -- came back is found again.
            AND (o.next_attempt_at <= now() OR ($4::text IS NOT NULL AND o.locked_by IS NULL))
            AND NOT (o.endpoint LIKE ANY ($3::text[]))
            AND ($4::text IS NULL OR o.endpoint LIKE $4)
            AND (o.ordering_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM webhook_outbox p
                   WHERE p.endpoint = o.endpoint AND p.ordering_key = o.ordering_key
                     AND p.status = 'pending' AND p.id < o.id))
          ORDER BY o.next_attempt_at, o.id
          LIMIT $2
          FOR UPDATE OF o SKIP LOCKED)
       UPDATE webhook_outbox w
          SET locked_by = $1,
              locked_until = now() + $5 * interval '1 millisecond',
              next_attempt_at = now() + $5 * interval '1 millisecond'
         FROM due WHERE w.id = due.id
       RETURNING w.id, w.event_id, w.endpoint, w.session_id, w.event_type, w.payload::text AS body, w.request_id, w.attempts,
                 coalesce(w.replayed_at, w.created_at) AS age_base`,
      [token, limit, exclude, only, this.#s.lockTimeoutMs],
    );
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      endpoint: r.endpoint,
      sessionId: r.session_id,
      topic: r.event_type,
      body: r.body,
      requestId: r.request_id,
      attempts: r.attempts,
      ageBase: r.age_base.getTime(),
      token,
    }));
  }

  // ---- delivery ----

  #pump(): void {
    while (this.#running && this.#inFlight.size < this.#s.concurrency && this.#queue.length > 0) {
      const row = this.#queue.shift();
      if (row === undefined) break;
      const p: Promise<void> = this.#deliver(row).then(
        (result) => {
          this.#inFlight.delete(p);
          if (!this.#abandoned) this.#push(result);
          this.#pump();
          if (this.#queue.length + this.#inFlight.size <= this.#s.concurrency) this.#wake?.();
        },
        (err: unknown) => {
          this.#inFlight.delete(p);
          this.#log.error({ err, id: row.id }, 'webhook delivery crashed; the row is retried after its lease');
          this.#pump();
        },
      );
      this.#inFlight.add(p);
    }
  }

  /** Exactly one of the backend's topic URLs (a session URL elsewhere on the backend's host is not trusted). */
  #isBackend(endpoint: string): boolean {
    return this.#backendUrl !== undefined && WEBHOOK_TOPICS.some((topic) => endpoint === backendEndpoint(this.#backendUrl as string, topic));
  }

  /** The backend's Authorization (backend endpoints only) and the event's correlation id (every endpoint). */
  #headersFor(backend: boolean, requestId: string | null): Record<string, string> {
    const base = backend ? this.#backendHeaders : {};
    return requestId === null ? base : { ...base, 'x-request-id': requestId };
  }

  async #deliver(row: ClaimedRow): Promise<RecordedResult> {
    const origin = originOf(row.endpoint);
    const backend = this.#isBackend(row.endpoint);
    let result: DeliveryResult | undefined;
    const ran = await this.breakers.run(origin, async () => {
      result = await this.#transport.deliver({
        endpoint: row.endpoint,
        eventId: row.eventId,
        body: row.body,
        headers: this.#headersFor(backend, row.requestId),
        publicOnly: !backend && !this.#s.allowPrivateTargets,
        ...(backend ? {} : { sessionId: row.sessionId }),
      });
      if (result.kind === 'network' || (result.kind === 'status' && (result.status >= 500 || result.status === 429 || result.status === 408))) {
        throw new EndpointDownError(result.kind === 'network' ? result.error : `HTTP ${result.status}`);
      }
      return result;
    }).catch((err: unknown) => {
      if (err instanceof EndpointDownError) return 'down' as const;
      throw err;
    });
    const now = new Date();
    if (ran === 'rejected' || result === undefined) {
      this.#count(row.topic, 'deferred');
      return { ...this.#release(row, new Date(Math.max(now.getTime(), this.breakers.probeAt(origin)))) };
    }
    this.#metrics()?.duration.observe({ topic: row.topic }, result.ms / 1000);
    if (result.kind === 'ok') {
      this.#count(row.topic, 'delivered');
      return { id: row.id, token: row.token, status: 'delivered', attempted: true, nextAttemptAt: now, httpStatus: result.status, error: null };
    }
    const httpStatus = result.kind === 'status' ? result.status : null;
    const error = result.kind === 'status' ? `HTTP ${result.status}` : result.error;
    const attempt = row.attempts + 1;
    const deadline = row.ageBase + this.#s.maxAgeMs;
    if (result.kind === 'forbidden' || now.getTime() >= deadline) {
      this.#count(row.topic, 'dead');
      this.#log.warn({ id: row.id, eventId: row.eventId, origin, attempts: attempt, error }, 'webhook is dead (replay with POST /api/v1/admin/webhooks/:id/replay)');
      return { id: row.id, token: row.token, status: 'dead', attempted: true, nextAttemptAt: now, httpStatus, error };
    }
    this.#count(row.topic, 'retry');
    const next = Math.min(now.getTime() + backoffDelay(attempt, this.#s.backoffBaseMs, this.#s.backoffMaxMs, { jitter: 'full' }), deadline);
    return { id: row.id, token: row.token, status: 'pending', attempted: true, nextAttemptAt: new Date(next), httpStatus, error };
  }

  #release(row: ClaimedRow, at: Date): RecordedResult {
    return { id: row.id, token: row.token, status: 'pending', attempted: false, nextAttemptAt: at, httpStatus: null, error: null };
  }

  #count(topic: WebhookTopic, outcome: DeliveryOutcome): void {
    this.#metrics()?.deliveries.inc({ topic, outcome });
  }

  // ---- recording ----

  #push(result: RecordedResult): void {
    this.#pending.push(result);
    if (result.status !== 'pending' || !result.attempted) this.#dirty = true; // a stream's next row may be due
    if (this.#pending.length >= FLUSH_AT) void this.#flush();
    else this.#flushTimer ??= setTimeout(() => void this.#flush(), FLUSH_DELAY_MS);
  }

  #flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#flushing !== undefined) return this.#flushing;
    if (this.#pending.length === 0) return Promise.resolve();
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#record(batch)
      .then(
        () => {
          // Recorded results may have unblocked a stream's next row. Marked dirty (not only woken) so that a
          // claim that ran while this UPDATE committed, and found nothing, is followed by another one at once
          // instead of waiting WEBHOOK_POLL_INTERVAL_MS.
          if (batch.some((r) => r.status !== 'pending' || !r.attempted)) this.#dirty = true;
          this.#wake?.();
        },
        async (err: unknown) => {
          this.#log.warn({ err: (err as Error).message, rows: batch.length }, 'recording webhook results failed; retrying');
          await sleep(200);
          if (!this.#abandoned) this.#pending = batch.concat(this.#pending);
        },
      )
      .finally(() => {
        this.#flushing = undefined;
        if (this.#pending.length > 0 && !this.#abandoned) this.#flushTimer ??= setTimeout(() => void this.#flush(), FLUSH_DELAY_MS);
      });
    return this.#flushing;
  }

  async #flushAll(): Promise<void> {
    for (let i = 0; i < 20 && (this.#pending.length > 0 || this.#flushing !== undefined); i++) {
      await (this.#flushing ?? this.#flush());
    }
  }

  async #record(batch: RecordedResult[]): Promise<void> {
    await this.#db.query(
      `UPDATE webhook_outbox o
          SET status = v.status,
              attempts = o.attempts + CASE WHEN v.attempted THEN 1 ELSE 0 END,
              next_attempt_at = v.next_at,
              last_attempt_at = CASE WHEN v.attempted THEN now() ELSE o.last_attempt_at END,
              last_status = CASE WHEN v.attempted THEN v.http_status ELSE o.last_status END,
              last_error = CASE WHEN v.attempted THEN v.error ELSE o.last_error END,
              delivered_at = CASE WHEN v.status = 'delivered' THEN now() ELSE NULL END,
              locked_by = NULL,
              locked_until = NULL
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[], $6::int[], $7::text[])
              AS v(id, token, status, attempted, next_at, http_status, error)
        WHERE o.id = v.id AND o.locked_by = v.token`,
      [
        batch.map((r) => r.id),
        batch.map((r) => r.token),
        batch.map((r) => r.status),
        batch.map((r) => r.attempted),
        batch.map((r) => r.nextAttemptAt.toISOString()),
        batch.map((r) => r.httpStatus),
        batch.map((r) => (r.error === null ? null : r.error.slice(0, 500))),
      ],
    );
  }

  /** A recovered origin: its waiting rows (in backoff) are due now instead of at their backoff time. */
  #pullForward(origin: string): void {
    this.#db
      .query(
        `UPDATE webhook_outbox SET next_attempt_at = now()
          WHERE status = 'pending' AND endpoint LIKE $1 AND next_attempt_at > now() AND locked_by IS NULL`,
        [likePattern(origin)],
      )
      .then(
        () => {
          this.#dirty = true;
          this.#wake?.();
        },
        (err: unknown) => this.#log.warn({ err: (err as Error).message, origin }, 'pulling a recovered endpoint\'s backlog forward failed'),
      );
  }

  /** Deletes delivered rows older than the retention (in small batches) and forgets idle breakers. */
  async #sweep(): Promise<void> {
    this.#lastSweep = Date.now();
    this.breakers.sweep(10 * 60_000);
    try {
      await this.#db.query(
        `DELETE FROM webhook_outbox WHERE id IN (
           SELECT id FROM webhook_outbox WHERE status = 'delivered' AND delivered_at < now() - $1 * interval '1 millisecond' LIMIT 5000)`,
        [this.#s.retentionMs],
      );
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'webhook retention sweep failed');
    }
  }
}
