/**
 * The shard's side of the IPC channel to the router, bounded (issue #14 item 4). `process.send` never refuses a
 * message: when the pipe is full it returns false and libuv buffers the rest in this process without limit, so
 * under a burst (an inbound storm, many status changes) the shard's memory grows and an old request waits
 * behind every newer one.
 *
 * Pass-through while the channel keeps up. From the first write that returns false the outbox holds every new
 * message until the send callbacks of everything written so far have run (catch-up), then writes what it held,
 * in order, and holds again if the channel backs up again. While holding:
 * - requests (shard -> router calls the router answers, e.g. `message.received`) are held up to `maxRequests`;
 *   a further caller waits (`room`) until one leaves instead of being dropped; a held request whose deadline
 *   passed is not written (its caller already got the timeout of its pending call);
 * - status and QR events coalesce per session, epoch and type: only the newest held one is written (a status is
 *   a level, the next one carries the whole state; a newer QR replaces the older);
 * - replies and everything else are held in order and never dropped.
 */
import type { IpcOutboxStats, ShardEvent, ShardRequestMessage, ShardToRouter } from '@wagw/shared';

/** Writes one message; returns false when the channel is backed up. `onSent` runs once the message left. */
export type OutboxChannel = (msg: ShardToRouter, onSent: () => void) => boolean | void;

export type OutboxStats = IpcOutboxStats;

export interface IpcOutboxOptions {
  /** Requests held at most while the channel catches up; default 1,000. */
  maxRequests?: number;
  now?: () => number;
}

interface Held {
  msg: ShardToRouter;
  onSent: (() => void) | undefined;
  /** A request: not written once this time passed. */
  deadline?: number;
  /** A status/QR event: its coalescing key. */
  key?: string;
  /** Replaced by a newer event of the same key, or expired: skipped when the queue drains. */
  dead?: boolean;
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout | undefined;
}

export const DEFAULT_OUTBOX_MAX_REQUESTS = 1000;

export class IpcOutbox {
  readonly #write: OutboxChannel;
  readonly #now: () => number;
  readonly #maxRequests: number;
  /** Held messages in order; dead ones are skipped (depth counts the live). */
  #queue: Held[] = [];
  #head = 0;
  #depth = 0;
  #highWater = 0;
  #coalesced = 0;
  /** Requests held (live), plus slots granted to waiters that have not enqueued yet. */
  #requests = 0;
  #reserved = 0;
  readonly #waiters: Waiter[] = [];
  readonly #byKey = new Map<string, Held>();
  /** Writes whose send callback has not run yet. */
  #unsettled = 0;
  #holding = false;
  #draining = false;

  constructor(write: OutboxChannel, options: IpcOutboxOptions = {}) {
    this.#write = write;
    this.#now = options.now ?? Date.now;
    this.#maxRequests = options.maxRequests ?? DEFAULT_OUTBOX_MAX_REQUESTS;
    if (!Number.isInteger(this.#maxRequests) || this.#maxRequests < 1) throw new RangeError(`outbox maxRequests must be a positive integer, got ${this.#maxRequests}`);
  }

  /** True while the outbox holds messages for the channel to catch up. */
  get holding(): boolean {
    return this.#holding || this.#depth > 0;
  }

  stats(): OutboxStats {
    return { depth: this.#depth, highWater: this.#highWater, capacity: this.#maxRequests, waitingRequests: this.#waiters.length, coalescedTotal: this.#coalesced };
  }

  /** A reply, a handshake message, `exiting`: held in order, never dropped. */
  send(msg: ShardToRouter, onSent?: () => void): void {
    this.#enqueue({ msg, onSent });
  }

  /** A one-way event; status and QR events coalesce while held. */
  event(event: ShardEvent): void {
    const held: Held = { msg: { kind: 'event', event }, onSent: undefined };
    if (event.type === 'session.status' || event.type === 'session.qr') held.key = `${event.type}|${event.sessionId}|${event.epoch}`;
    this.#enqueue(held);
  }

  /**
   * A request to the router. Call `room` first and pass what it returned: a request is only written or held
   * within the bound. Not written once `deadline` passed.
   */
  request(msg: ShardRequestMessage, deadline: number, slot: RequestSlot): void {
    if (slot.used) throw new Error('an outbox request slot is used once');
    slot.used = true;
    if (slot.reserved) this.#reserved--;
    this.#enqueue({ msg, onSent: undefined, deadline });
  }

  /**
   * Waits until a request may be written or held: at once while fewer than `maxRequests` are held and nobody
   * waits before this caller (FIFO), else when one leaves. Resolves undefined when `deadline` passes first.
   */
  async room(deadline: number): Promise<RequestSlot | undefined> {
    if (this.#waiters.length === 0 && this.#requests + this.#reserved < this.#maxRequests) return { used: false, reserved: false };
    const wait = deadline - this.#now();
    if (wait <= 0) return undefined;
    return await new Promise<RequestSlot | undefined>((resolve) => {
      const waiter: Waiter = {
        grant: () => {
          if (waiter.timer !== undefined) clearTimeout(waiter.timer);
          resolve({ used: false, reserved: true });
        },
        timer: undefined,
      };
      waiter.timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(undefined);
      }, wait);
      // The deadline does not keep a shard alive whose parent is gone.
      waiter.timer.unref();
      this.#waiters.push(waiter);
    });
  }

  #enqueue(held: Held): void {
    if (!this.holding) {
      this.#writeOne(held);
      return;
    }
    if (held.key !== undefined) {
      const older = this.#byKey.get(held.key);
      if (older !== undefined) {
        older.dead = true;
        this.#depth--;
        this.#coalesced++;
      }
      this.#byKey.set(held.key, held);
    }
    if (held.deadline !== undefined) this.#requests++;
    this.#queue.push(held);
    this.#depth++;
    if (this.#depth > this.#highWater) this.#highWater = this.#depth;
  }

  #writeOne(held: Held): void {
    this.#unsettled++;
    let settled = false;
    const onSent = (): void => {
      if (settled) return;
      settled = true;
      this.#unsettled--;
      held.onSent?.();
      if (this.#holding && this.#unsettled === 0) this.#drain();
    };
    let ok: boolean | void;
    try {
      ok = this.#write(held.msg, onSent);
    } catch (err) {
      // Nothing was written (a closed channel throws): no callback will come for it.
      if (!settled) {
        settled = true;
        this.#unsettled--;
      }
      throw err;
    }
    if (ok === false && !settled) this.#holding = true;
  }

  /** The channel caught up: write what is held, in order, until it backs up again. */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      this.#holding = false;
      while (this.#head < this.#queue.length && !this.#holding) {
        const held = this.#queue[this.#head] as Held;
        this.#queue[this.#head] = undefined as unknown as Held;
        this.#head++;
        if (held.dead === true) continue;
        this.#depth--;
        if (held.key !== undefined && this.#byKey.get(held.key) === held) this.#byKey.delete(held.key);
        if (held.deadline !== undefined) {
          this.#requests--;
          this.#grantRoom();
          if (this.#now() >= held.deadline) continue;
        }
        this.#writeOne(held);
      }
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    } finally {
      this.#draining = false;
    }
  }

  #grantRoom(): void {
    while (this.#waiters.length > 0 && this.#requests + this.#reserved < this.#maxRequests) {
      const waiter = this.#waiters.shift() as Waiter;
      this.#reserved++;
      waiter.grant();
    }
  }
}

/** What `room` hands out: the right to write or hold one request. */
export interface RequestSlot {
  used: boolean;
  reserved: boolean;
}
