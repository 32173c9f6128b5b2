/**
 * One cockatiel circuit breaker per target origin (scheme://host:port): the backend's three topic URLs share
 * one, each receiver host of session webhooks has its own. While a breaker is open the dispatcher claims no
 * row for that origin (a dead backend costs nothing but queued rows); after WEBHOOK_BREAKER_HALF_OPEN_MS it
 * claims exactly one row as the probe; the probe's success closes the breaker, its failure reopens it.
 */
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleType, isBrokenCircuitError } from 'cockatiel';
import type { CircuitBreakerPolicy } from 'cockatiel';

/** Thrown inside the breaker for outcomes that say the endpoint is down: no answer, 408, 429, 5xx. */
export class EndpointDownError extends Error {
  readonly code = 'ENDPOINT_DOWN';
}

interface Entry {
  policy: CircuitBreakerPolicy;
  openedAt: number;
  lastUsed: number;
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
  halfOpenAfterMs: number;
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
      const policy = circuitBreaker(handleType(EndpointDownError), {
        halfOpenAfter: this.#options.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.#options.threshold),
      });
      const created: Entry = { policy, openedAt: 0, lastUsed: Date.now() };
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
        return now - entry.openedAt >= this.#options.halfOpenAfterMs ? 'probe' : 'blocked';
    }
  }

  /** When an open breaker of `origin` lets its probe through (ms epoch), or now when it is not open. */
  probeAt(origin: string): number {
    const entry = this.#entries.get(origin);
    if (entry === undefined || entry.policy.state !== CircuitState.Open) return Date.now();
    return entry.openedAt + this.#options.halfOpenAfterMs;
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
      return await entry.policy.execute(fn);
    } catch (err) {
      if (isBrokenCircuitError(err)) return 'rejected';
      throw err;
    } finally {
      this.#probing.delete(origin);
    }
  }

  states(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [origin, entry] of this.#entries) out.set(origin, entry.policy.state);
    return out;
  }

  /** Forgets closed breakers unused for `idleMs` (bounds the metric's label set). */
  sweep(idleMs: number, now = Date.now()): void {
    for (const [origin, entry] of this.#entries) {
      if (entry.policy.state === CircuitState.Closed && now - entry.lastUsed > idleMs) this.#entries.delete(origin);
    }
  }
}
