/**
 * The per-session send governor: paces one session's sends so a burst from the backend cannot get the number
 * banned. Policy (docs/messaging.md "Send governor"):
 *
 * - A token bucket per session: `burst` sends back to back, then `ratePerSec` sustained. A token is taken
 *   when a send starts (not when it finishes), so the rate is the rate of sends reaching WhatsApp.
 * - Per recipient (chat JID): one send at a time, and starts at least `perRecipientIntervalMs` apart. This
 *   keeps a chat's messages in order and human-paced.
 * - Order: FIFO within the session among the recipients that may send now. A recipient waiting for its pace
 *   is skipped, not waited for, so it never blocks the others; when it becomes ready its older send goes first.
 * - Admission: the queue holds at most `queueMax` sends, and a send whose projected wait (from the bucket)
 *   exceeds `queueTimeoutMs` is refused up front: both answer QUEUE_FULL with `retryAfterMs` (-> 429 Retry-After).
 * - Deadline: a queued send that still has not started after `queueTimeoutMs` fails with QUEUE_TIMEOUT
 *   (nothing sent). `close()` fails every waiting send with QUEUE_CLOSED. Every submitted send settles.
 * - Off: `ratePerSec: 0` or `enabled: false` runs sends at once (benchmarks, trusted backends).
 */
import { GatewayError } from '@wagw/shared';

export interface GovernorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: GovernorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface GovernorOptions {
  /** Sustained sends per second; 0 turns the governor off. */
  ratePerSec: number;
  /** Bucket size: sends allowed back to back. */
  burst: number;
  /** Minimum time between two starts to one recipient (0: only one at a time). */
  perRecipientIntervalMs: number;
  queueMax: number;
  /** Longest a send may wait to start. */
  queueTimeoutMs: number;
  /** false runs every send at once, whatever the rate. */
  enabled?: boolean;
  clock?: GovernorClock;
  /** Called with the queue wait of every started send (for a Prometheus histogram). */
  onWait?: (waitMs: number) => void;
}

/** A place in the queue taken by `reserve()`; `release()` is idempotent. */
export interface Reservation {
  release(): void;
}

function closedError(): GatewayError {
  return new GatewayError('QUEUE_CLOSED', 'The session send queue is closed (session stopping); the message was not sent.');
}

export interface GovernorStats {
  enabled: boolean;
  /** Sends waiting to start. */
  depth: number;
  /** Sends started and not finished. */
  inFlight: number;
  submitted: number;
  started: number;
  rejectedFull: number;
  timedOut: number;
  closed: number;
  wait: { count: number; sumMs: number; maxMs: number };
  /** Whole tokens available now. */
  tokens: number;
}

/** Float slack for the bucket: 3/s refills in steps binary fractions cannot hit exactly. */
const EPSILON = 1e-9;

interface Item {
  seq: number;
  recipient: string;
  enqueuedAt: number;
  deadline: number;
  run: () => void;
  reject: (err: GatewayError) => void;
}

interface RecipientState {
  queue: Item[];
  busy: boolean;
  lastStart: number;
}

export class SendGovernor {
  readonly #opts: Required<Omit<GovernorOptions, 'onWait' | 'enabled'>> & { enabled: boolean };
  readonly #clock: GovernorClock;
  readonly #onWait: ((waitMs: number) => void) | undefined;
  readonly #recipients = new Map<string, RecipientState>();
  #tokens: number;
  #refilledAt: number;
  #depth = 0;
  /** Places held by `reserve()` for sends still fetching their media. */
  #reserved = 0;
  #inFlight = 0;
  #seq = 0;
  #timer: unknown = undefined;
  #timerAt = Infinity;
  #closed = false;
  #idle: (() => void)[] = [];
  readonly #stats = { submitted: 0, started: 0, rejectedFull: 0, timedOut: 0, closed: 0, waitCount: 0, waitSum: 0, waitMax: 0 };

  constructor(options: GovernorOptions) {
    if (!(options.ratePerSec >= 0) || !(options.burst >= 1) || !(options.queueMax >= 1) || !(options.queueTimeoutMs > 0) || !(options.perRecipientIntervalMs >= 0)) {
      throw new RangeError('SendGovernor: ratePerSec >= 0, burst >= 1, queueMax >= 1, queueTimeoutMs > 0, perRecipientIntervalMs >= 0');
    }
    this.#clock = options.clock ?? systemClock;
    this.#onWait = options.onWait;
    this.#opts = { ...options, clock: this.#clock, enabled: options.enabled !== false && options.ratePerSec > 0 };
    this.#tokens = options.burst;
    this.#refilledAt = this.#clock.now();
  }

  get enabled(): boolean {
    return this.#opts.enabled;
  }

  /**
   * Runs `send` when the session's pace and `recipient`'s pace allow. Resolves or rejects with what `send`
   * does; rejects QUEUE_FULL (at once), QUEUE_TIMEOUT or QUEUE_CLOSED without calling `send`.
   */
  submit<T>(recipient: string, send: () => Promise<T>, reservation?: Reservation): Promise<T> {
    // The send's own place, held while its media was fetched, is given back before it is counted again.
    reservation?.release();
    this.#stats.submitted++;
    if (this.#closed) {
      this.#stats.closed++;
      return Promise.reject(closedError());
    }
    if (!this.#opts.enabled) return this.#start(send, 0);
    const now = this.#clock.now();
    const full = this.#refusal(now);
    if (full !== undefined) return Promise.reject(full);
    return new Promise<T>((resolve, reject) => {
      const item: Item = {
        seq: this.#seq++,
        recipient,
        enqueuedAt: now,
        deadline: now + this.#opts.queueTimeoutMs,
        run: () => {
          void this.#start(send, this.#clock.now() - item.enqueuedAt)
            .then(resolve, reject)
            .finally(() => this.#finished(recipient));
        },
        reject,
      };
      let state = this.#recipients.get(recipient);
      if (state === undefined) {
        state = { queue: [], busy: false, lastStart: -Infinity };
        this.#recipients.set(recipient, state);
      }
      state.queue.push(item);
      this.#depth++;
      this.#pump();
    });
  }

  /**
   * Admission before the send does anything costly (docs/messaging.md "Send governor"): refuses QUEUE_FULL
   * or QUEUE_CLOSED exactly as `submit` would, else holds a place in the queue (it counts in the admission
   * checks of other sends) until it is handed to `submit` or released. A send fetches its media only after
   * this, so a full queue never buffers media it will refuse.
   */
  reserve(): Reservation {
    if (this.#closed) throw closedError();
    if (!this.#opts.enabled) return { release: () => undefined };
    const full = this.#refusal(this.#clock.now());
    if (full !== undefined) throw full;
    this.#reserved++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#reserved--;
      },
    };
  }

  /** QUEUE_FULL when the queue (with the places reserved) is full or the projected wait too long. */
  #refusal(now: number): GatewayError | undefined {
    this.#refill(now);
    const ahead = this.#depth + this.#reserved;
    const projectedMs = this.#projectedWaitMs(ahead);
    if (ahead < this.#opts.queueMax && projectedMs <= this.#opts.queueTimeoutMs) return undefined;
    this.#stats.rejectedFull++;
    const perToken = 1000 / this.#opts.ratePerSec;
    const overDepth = Math.max(0, ahead - this.#opts.queueMax + 1) * perToken;
    const retryAfterMs = Math.ceil(Math.max(perToken, projectedMs - this.#opts.queueTimeoutMs, overDepth));
    return new GatewayError('QUEUE_FULL', `The session send queue is full (${ahead} waiting); retry in ${Math.ceil(retryAfterMs / 1000)} s.`, { retryAfterMs, depth: ahead });
  }

  /** Fails every waiting send with QUEUE_CLOSED and refuses new ones; resolves when in-flight sends finished. */
  close(reason = 'session stopping'): Promise<void> {
    this.#closed = true;
    this.#disarm();
    for (const state of this.#recipients.values()) {
      for (const item of state.queue) {
        this.#stats.closed++;
        item.reject(new GatewayError('QUEUE_CLOSED', `The session send queue closed (${reason}); the message was not sent.`));
      }
      state.queue = [];
    }
    this.#depth = 0;
    this.#prune();
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  stats(): GovernorStats {
    if (this.#opts.enabled) this.#refill(this.#clock.now());
    const s = this.#stats;
    return {
      enabled: this.#opts.enabled,
      depth: this.#depth,
      inFlight: this.#inFlight,
      submitted: s.submitted,
      started: s.started,
      rejectedFull: s.rejectedFull,
      timedOut: s.timedOut,
      closed: s.closed,
      wait: { count: s.waitCount, sumMs: s.waitSum, maxMs: s.waitMax },
      tokens: this.#opts.enabled ? Math.floor(this.#tokens) : Infinity,
    };
  }

  /** Time until a send queued behind `ahead` others may start, as far as the bucket alone decides. */
  #projectedWaitMs(ahead: number): number {
    const deficit = ahead + 1 - this.#tokens;
    return deficit <= 0 ? 0 : (deficit / this.#opts.ratePerSec) * 1000;
  }

  #refill(now: number): void {
    const elapsed = now - this.#refilledAt;
    if (elapsed > 0) this.#tokens = Math.min(this.#opts.burst, this.#tokens + (elapsed * this.#opts.ratePerSec) / 1000);
    this.#refilledAt = now;
  }

  #start<T>(send: () => Promise<T>, waitMs: number): Promise<T> {
    this.#inFlight++;
    this.#stats.started++;
    this.#stats.waitCount++;
    this.#stats.waitSum += waitMs;
    this.#stats.waitMax = Math.max(this.#stats.waitMax, waitMs);
    this.#onWait?.(waitMs);
    let p: Promise<T>;
    try {
      p = send();
    } catch (err) {
      p = Promise.reject(err as Error);
    }
    if (this.#opts.enabled) return p;
    return p.finally(() => this.#settled());
  }

  #finished(recipient: string): void {
    const state = this.#recipients.get(recipient);
    if (state !== undefined) state.busy = false;
    this.#settled();
    this.#prune();
    if (!this.#closed) this.#pump();
  }

  #settled(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#idle.length > 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }

  #prune(): void {
    const now = this.#clock.now();
    for (const [recipient, state] of this.#recipients) {
      if (state.queue.length === 0 && !state.busy && now - state.lastStart >= this.#opts.perRecipientIntervalMs) this.#recipients.delete(recipient);
    }
  }

  #pump(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#refill(now);
    // start what may start first, so a send whose turn comes exactly at its deadline still goes
    for (;;) {
      if (this.#tokens < 1 - EPSILON) break;
      let next: RecipientState | undefined;
      for (const state of this.#recipients.values()) {
        const head = state.queue[0];
        if (head === undefined || state.busy || now < state.lastStart + this.#opts.perRecipientIntervalMs) continue;
        if (next === undefined || head.seq < (next.queue[0] as Item).seq) next = state;
      }
      if (next === undefined) break;
      const item = next.queue.shift() as Item;
      this.#depth--;
      this.#tokens = Math.max(0, this.#tokens - 1);
      next.busy = true;
      next.lastStart = now;
      item.run();
    }
    this.#expire(now);
    this.#arm(now);
  }

  #expire(now: number): void {
    for (const state of this.#recipients.values()) {
      if (!state.queue.some((i) => i.deadline <= now)) continue;
      const keep: Item[] = [];
      for (const item of state.queue) {
        if (item.deadline > now) {
          keep.push(item);
          continue;
        }
        this.#depth--;
        this.#stats.timedOut++;
        item.reject(
          new GatewayError('QUEUE_TIMEOUT', `The message waited ${now - item.enqueuedAt} ms in the session send queue and was not sent.`, {
            retryAfterMs: Math.ceil(1000 / this.#opts.ratePerSec),
            waitedMs: now - item.enqueuedAt,
          }),
        );
      }
      state.queue = keep;
    }
  }

  /** One timer for the earliest of: next token, next recipient becoming ready, next deadline. */
  #arm(now: number): void {
    if (this.#depth === 0) {
      this.#disarm();
      return;
    }
    let at = Infinity;
    let readyAt = Infinity;
    for (const state of this.#recipients.values()) {
      for (const item of state.queue) at = Math.min(at, item.deadline);
      if (state.queue.length > 0 && !state.busy) readyAt = Math.min(readyAt, Math.max(now, state.lastStart + this.#opts.perRecipientIntervalMs));
    }
    if (readyAt !== Infinity) {
      const tokenAt = this.#tokens >= 1 - EPSILON ? now : now + ((1 - this.#tokens) / this.#opts.ratePerSec) * 1000;
      at = Math.min(at, Math.max(readyAt, tokenAt));
    }
    if (at === this.#timerAt) return;
    this.#disarm();
    if (at === Infinity) return;
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#pump();
    }, Math.max(0, Math.ceil(at - now)));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}
