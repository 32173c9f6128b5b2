/**
 * The webhook dispatcher: claims due outbox rows (`FOR UPDATE SKIP LOCKED`, so several routers share the work),
 * delivers them outside any transaction with bounded concurrency, and records the results. Recording and the next
 * claim are one statement per cycle (cycle-sql.ts). It never holds a database connection across network I/O
 * (embedded mode has ONE connection for the whole router).
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
import { CYCLE_SQL, cycleParams } from './cycle-sql.ts';
import type { CycleClaim, CycleRow, RecordedResult } from './cycle-sql.ts';
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

/** Results waiting this many (or this long) start a cycle even when there is no room to claim. */
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
  /** Set when results waited FLUSH_DELAY_MS (or reached FLUSH_AT): the loop records them. */
  #recordDue = false;
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
    // Record what is left (no claim); a failing database gets a few tries, then the leases lapse on their own.
    for (let i = 0; i < 20 && this.#pending.length > 0; i++) {
      if (!(await this.#cycle(0))) await sleep(200);
    }
  }

  // ---- claim loop ----

  async #run(): Promise<void> {
    let idle = false;
    while (this.#running) {
      const capacity = this.#s.concurrency + this.#s.batchSize - this.#queue.length - this.#inFlight.size;
      const claim = capacity >= Math.max(1, Math.floor(this.#s.batchSize / 2)) && (!idle || this.#dirty);
      const record = this.#pending.length > 0 && (claim || this.#recordDue);
      if (!claim && !record) {
        await this.#waitForWork(idle ? this.#s.pollIntervalMs : 1000);
        idle = false;
        continue;
      }
      this.#dirty = false;
      // A cycle that records anyway claims whatever room there is: the rows ride on the same statement.
      const result = await this.#cycle(Math.max(0, Math.min(this.#s.batchSize, capacity)));
      if (!this.#running) break;
      if (result === undefined) {
        await this.#waitForWork(Math.min(5000, this.#s.pollIntervalMs * 4));
        continue;
      }
      this.#pump();
      idle = result.claimed === 0 && !result.unblocked;
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

  /**
   * One cycle: records every waiting result and claims up to `limit` rows in one statement (plus one statement
   * per breaker probe). Returns undefined when the statement failed: the results wait for the next cycle.
   */
  async #cycle(limit: number): Promise<{ claimed: number; unblocked: boolean } | undefined> {
    const results = this.#pending;
    this.#pending = [];
    this.#recordDue = false;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const claiming = limit > 0 && this.#running && !this.#abandoned;
    const { blocked, probe } = claiming ? this.breakers.partition() : { blocked: [], probe: [] };
    const token = `${this.#name}:${randomBytes(6).toString('hex')}`;
    const claim: CycleClaim = { token, limit: claiming ? limit : 0, exclude: [...blocked, ...probe].map(likePattern), only: null, lockTimeoutMs: this.#s.lockTimeoutMs };
    let rows: ClaimedRow[];
    try {
      rows = await this.#cycleQuery(results, claim);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, results: results.length }, 'recording and claiming webhook rows failed; retrying');
      if (!this.#abandoned) this.#pending = results.concat(this.#pending);
      return undefined;
    }
    // Recorded results may have unblocked a stream's next row (not visible to this statement's claim): marked
    // dirty so the loop claims again at once instead of waiting WEBHOOK_POLL_INTERVAL_MS.
    const unblocked = results.some((r) => r.status !== 'pending' || !r.attempted);
    if (unblocked) this.#dirty = true;
    for (const origin of probe) {
      let one: ClaimedRow[] = [];
      try {
        one = await this.#cycleQuery([], { ...claim, limit: 1, exclude: [], only: likePattern(origin) });
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, origin }, 'claiming a breaker probe failed; retrying');
      }
      if (one.length > 0) this.breakers.markProbing(origin);
      rows = rows.concat(one);
    }
    rows.sort((a, b) => a.id - b.id);
    if (this.#abandoned || !this.#running) return { claimed: rows.length, unblocked }; // claims lapse on their own
    this.#queue.push(...rows);
    return { claimed: rows.length, unblocked };
  }

  async #cycleQuery(results: readonly RecordedResult[], claim: CycleClaim): Promise<ClaimedRow[]> {
    const { rows } = await this.#db.query<CycleRow>(CYCLE_SQL, cycleParams(results, claim), { name: 'wagw_webhook_cycle' });
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
      token: claim.token,
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
    if (this.#pending.length >= FLUSH_AT) this.#flushNow();
    else this.#flushTimer ??= setTimeout(() => this.#flushNow(), FLUSH_DELAY_MS);
  }

  #flushNow(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#recordDue = true;
    this.#wake?.();
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
