/**
 * A counting semaphore with a FIFO queue. Caps how many logins/pairings a shard runs at once: each one
 * generates hundreds of prekeys on the event loop, and Baileys drops a socket that handled no frame for 35 s.
 *
 * It also spaces the starts (`ratePerSecond`): a concurrency cap alone does not bound the rate when attempts
 * fail fast. After a WhatsApp-side restart every socket of the shard drops at once, and against a server that
 * refuses connections each attempt frees its slot within milliseconds: without spacing, the shard's sessions
 * would hammer the server in lockstep (a thundering herd, which WhatsApp answers with rate limits or bans).
 * With it, any window of W ms sees at most `floor(W * ratePerSecond / 1000) + 1` starts from one shard.
 *
 * With `troubleWindowMs` the spacing applies only while the shard sees trouble: for that long after a login that
 * failed or a live socket the server dropped (`noteTrouble()`). Logins that succeed are bounded by the concurrency
 * cap alone, so a restore of thousands of stored sessions runs at the speed of the CPU (each login's key work holds
 * a slot) instead of at the herd-protection rate; the moment the server refuses or drops, the starts are spaced
 * again. The first failures can arrive before the trouble is known: at most `limit` starts go unspaced then.
 */
export interface GateStats {
  /** Logins waiting for a slot. */
  waiting: number;
  /** Logins holding a slot. */
  running: number;
  /** Starts that waited for the spacing (`ratePerSecond`) since the shard started. */
  rateLimitedWaits: number;
}

export class Gate {
  private readonly limit: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  /** When the last start happened (read after waking: a stalled event loop must not release a burst). */
  private lastStartAt = -Infinity;
  /** Starts pass one at a time through this chain, each after waiting out the spacing. */
  private spacing: Promise<void> = Promise.resolve();
  /** Starts that had to wait for the spacing (`wagw_login_gate_rate_limited_waits_total`). */
  private rateLimitedWaits = 0;
  /** Spacing only until this time (`troubleWindowMs` after the last trouble); always when no window is set. */
  private readonly troubleWindowMs: number | undefined;
  private spacedUntil = -Infinity;

  constructor(limit: number, ratePerSecond = Infinity, now: () => number = Date.now, opts: { troubleWindowMs?: number } = {}) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`gate limit must be a positive integer, got ${limit}`);
    if (!(ratePerSecond > 0)) throw new RangeError(`gate rate must be positive, got ${ratePerSecond}`);
    this.limit = limit;
    this.intervalMs = Number.isFinite(ratePerSecond) ? 1000 / ratePerSecond : Infinity;
    this.now = now;
    this.troubleWindowMs = opts.troubleWindowMs;
  }

  /** A login failed or the server dropped a live socket: space the starts for the trouble window from now. */
  noteTrouble(): void {
    if (this.troubleWindowMs !== undefined) this.spacedUntil = Math.max(this.spacedUntil, this.now() + this.troubleWindowMs);
  }

  /** Whether a start now waits for the spacing (always, unless a trouble window is set and none is open). */
  private spacingOn(): boolean {
    return Number.isFinite(this.intervalMs) && (this.troubleWindowMs === undefined || this.now() < this.spacedUntil);
  }

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** For the shard's stats (router metrics `wagw_login_gate_*`). */
  stats(): GateStats {
    return { waiting: this.queue.length, running: this.active, rateLimitedWaits: this.rateLimitedWaits };
  }

  /** Resolves with a release function once a slot is free and the start rate allows. Release is idempotent. */
  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    if (this.spacingOn()) {
      const turn = this.spacing.then(async () => {
        if (this.lastStartAt + this.intervalMs > this.now()) this.rateLimitedWaits++;
        // Measured after every wake-up, not reserved ahead: timers set for t+1 s and t+2 s that fire together
        // after a stall would otherwise start together.
        for (let wait = this.lastStartAt + this.intervalMs - this.now(); wait > 0; wait = this.lastStartAt + this.intervalMs - this.now()) {
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
        this.lastStartAt = this.now();
      });
      this.spacing = turn;
      await turn;
    } else {
      this.lastStartAt = this.now();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
  }
}
