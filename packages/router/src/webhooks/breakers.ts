/**
 * One cockatiel circuit breaker per target origin (scheme://host:port): the backend's three topic URLs share
 * one, each receiver host of session webhooks has its own. While a breaker is open the dispatcher claims no
 * row for that origin (a dead backend costs nothing but queued rows); after the half-open wait it claims
 * exactly one row as the probe; the probe's success closes the breaker, its failure reopens it.
 *
 * The half-open wait is adaptive: WEBHOOK_BREAKER_HALF_OPEN_MS after the breaker opens, doubled after each
 * failed probe up to WEBHOOK_BREAKER_HALF_OPEN_MAX_MS. A fixed long wait held every event of a receiver that
 * came back for that long; one probe request per origin every few seconds costs nothing, so the cap is what
 * bounds how late a recovered receiver hears from us.
 */
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleType, isBrokenCircuitError } from 'cockatiel';
import type { CircuitBreakerPolicy, IBackoff, IBackoffFactory, IHalfOpenAfterBackoffContext } from 'cockatiel';

/** Thrown inside the breaker for outcomes that say the endpoint is down: no answer, 408, 429, 5xx. */
export class EndpointDownError extends Error {
  readonly code = 'ENDPOINT_DOWN';
}

interface Entry {
  policy: CircuitBreakerPolicy;
  openedAt: number;
  /** The current half-open wait (set by the backoff when the breaker opens or reopens). */
  waitMs: number;
  lastUsed: number;
  /** "Endpoint down" outcomes since the last success (what the ConsecutiveBreaker counts). */
  failures: number;
  lastFailure: { at: number; error: string } | undefined;
}

/** One origin's breaker as the operators' API shows it (GET /api/v1/admin/webhooks/breakers). */
export interface BreakerSnapshot {
  origin: string;
  state: 'closed' | 'open' | 'half-open';
  consecutiveFailures: number;
  /** ISO time and short error of the latest "endpoint down" outcome (no answer, 408, 429, 5xx). */
  lastFailureAt: string | null;
  lastError: string | null;
  /** When the breaker last opened (null while closed). */
  openedAt: string | null;
  /** When an open breaker lets its probe through (null unless open). */
  nextTryAt: string | null;
  /** The current half-open wait (null unless open or half-open). */
  waitMs: number | null;
}

/** Errors shown by the breakers API are cut to this many characters. */
const SHORT_ERROR = 200;

/**
 * Deterministic doubling (no jitter: there is one probe per origin, nothing to spread). cockatiel asks the
 * factory for the first wait when the breaker opens and the previous backoff's next() when a probe fails, so
 * `onWait` sees every wait the policy uses and the claim gate agrees with it.
 */
class DoublingWait implements IBackoff<IHalfOpenAfterBackoffContext> {
  readonly duration: number;
  readonly #maxMs: number;
  readonly #onWait: (ms: number) => void;

  constructor(ms: number, maxMs: number, onWait: (ms: number) => void) {
    this.duration = Math.min(ms, maxMs);
    this.#maxMs = maxMs;
    this.#onWait = onWait;
    onWait(this.duration);
  }

  next(): DoublingWait {
    return new DoublingWait(this.duration * 2, this.#maxMs, this.#onWait);
  }
}

export type BreakerGate = 'closed' | 'blocked' | 'probe';

export function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return endpoint;
  }
}

export interface EndpointBreakersOptions {
  threshold: number;
  /** The first half-open wait after the breaker opens. */
  halfOpenAfterMs: number;
  /** The longest half-open wait (the wait doubles after each failed probe); defaults to halfOpenAfterMs. */
  halfOpenMaxMs?: number;
  /** Called when a breaker closes again after being open (the dispatcher pulls that origin's backlog forward). */
  onRecovered?: (origin: string) => void;
  onStateChange?: (origin: string, state: CircuitState) => void;
}

export class EndpointBreakers {
  readonly #options: EndpointBreakersOptions;
  readonly #entries = new Map<string, Entry>();
  /** Origins whose probe row has been claimed and not yet settled. */
  readonly #probing = new Set<string>();

  constructor(options: EndpointBreakersOptions) {
    this.#options = options;
  }

  #entry(origin: string): Entry {
    let entry = this.#entries.get(origin);
    if (entry === undefined) {
      const first = this.#options.halfOpenAfterMs;
      const max = Math.max(first, this.#options.halfOpenMaxMs ?? first);
      const holder: { entry?: Entry } = {};
      const onWait = (ms: number): void => {
        if (holder.entry !== undefined) holder.entry.waitMs = ms;
      };
      const halfOpenAfter: IBackoffFactory<IHalfOpenAfterBackoffContext> = { next: () => new DoublingWait(first, max, onWait) };
      const policy = circuitBreaker(handleType(EndpointDownError), {
        halfOpenAfter,
        breaker: new ConsecutiveBreaker(this.#options.threshold),
      });
      const created: Entry = { policy, openedAt: 0, waitMs: first, lastUsed: Date.now(), failures: 0, lastFailure: undefined };
      holder.entry = created;
      policy.onBreak(() => {
        created.openedAt = Date.now();
      });
      policy.onReset(() => this.#options.onRecovered?.(origin));
      policy.onStateChange((state) => this.#options.onStateChange?.(origin, state));
      this.#entries.set(origin, created);
      entry = created;
    }
    entry.lastUsed = Date.now();
    return entry;
  }

  /** Whether rows of `origin` may be claimed: freely, not at all, or one as the probe. */
  gate(origin: string, now = Date.now()): BreakerGate {
    const entry = this.#entries.get(origin);
    if (entry === undefined) return 'closed';
    switch (entry.policy.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
      case CircuitState.Isolated:
        return 'blocked';
      case CircuitState.Open:
        if (this.#probing.has(origin)) return 'blocked';
        return now - entry.openedAt >= entry.waitMs ? 'probe' : 'blocked';
    }
  }

  /** When an open breaker of `origin` lets its probe through (ms epoch), or now when it is not open. */
  probeAt(origin: string): number {
    const entry = this.#entries.get(origin);
    if (entry === undefined || entry.policy.state !== CircuitState.Open) return Date.now();
    return entry.openedAt + entry.waitMs;
  }

  /** Origins that must not be claimed now, and those whose probe may be claimed. */
  partition(now = Date.now()): { blocked: string[]; probe: string[] } {
    const blocked: string[] = [];
    const probe: string[] = [];
    for (const origin of this.#entries.keys()) {
      const g = this.gate(origin, now);
      if (g === 'blocked') blocked.push(origin);
      else if (g === 'probe') probe.push(origin);
    }
    return { blocked, probe };
  }

  markProbing(origin: string): void {
    this.#probing.add(origin);
  }

  /**
   * Runs `fn` through the origin's breaker. `fn` throws EndpointDownError for "endpoint down" outcomes.
   * Resolves with fn's value, or 'rejected' when the breaker refused to run it (open).
   */
  async run<T>(origin: string, fn: () => Promise<T>): Promise<T | 'rejected'> {
    const entry = this.#entry(origin);
    try {
      const value = await entry.policy.execute(fn);
      entry.failures = 0;
      return value;
    } catch (err) {
      if (isBrokenCircuitError(err)) return 'rejected';
      if (err instanceof EndpointDownError) {
        entry.failures++;
        entry.lastFailure = { at: Date.now(), error: err.message.slice(0, SHORT_ERROR) };
      }
      throw err;
    } finally {
      this.#probing.delete(origin);
    }
  }

  /** The current half-open wait of an open breaker of `origin` (undefined when it is not open). */
  halfOpenWait(origin: string): number | undefined {
    const entry = this.#entries.get(origin);
    return entry === undefined || entry.policy.state !== CircuitState.Open ? undefined : entry.waitMs;
  }

  states(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [origin, entry] of this.#entries) out.set(origin, entry.policy.state);
    return out;
  }

  /** Every breaker this process holds (breakers are in-process: another host has its own), by origin. */
  snapshot(): BreakerSnapshot[] {
    const out: BreakerSnapshot[] = [];
    for (const [origin, entry] of this.#entries) {
      const state = entry.policy.state;
      const open = state === CircuitState.Open || state === CircuitState.Isolated;
      const notClosed = state !== CircuitState.Closed;
      out.push({
        origin,
        state: state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open',
        consecutiveFailures: entry.failures,
        lastFailureAt: entry.lastFailure === undefined ? null : new Date(entry.lastFailure.at).toISOString(),
        lastError: entry.lastFailure?.error ?? null,
        openedAt: notClosed && entry.openedAt > 0 ? new Date(entry.openedAt).toISOString() : null,
        nextTryAt: open ? new Date(entry.openedAt + entry.waitMs).toISOString() : null,
        waitMs: notClosed ? entry.waitMs : null,
      });
    }
    return out.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0));
  }

  /** Forgets closed breakers unused for `idleMs` (bounds the metric's label set). */
  sweep(idleMs: number, now = Date.now()): void {
    for (const [origin, entry] of this.#entries) {
      if (entry.policy.state === CircuitState.Closed && now - entry.lastUsed > idleMs) this.#entries.delete(origin);
    }
  }
}
