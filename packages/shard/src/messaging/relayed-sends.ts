/**
 * The keyed sends of a shard's sessions (a `messageId` derived from an Idempotency-Key, keyed by session and
 * id), so that a session relays a message id to WhatsApp at most once while this shard process lives, across
 * the session's runs (a lease that lapsed while the shard's channel to the router was backed up re-places the
 * session, often on the same shard, while the first attempt still waits for its row). The router releases a key whose outcome it does not know (a
 * 5xx: its own call deadline passed, the shard answered a timeout) and the backend's retry then comes back with
 * the same message id while the first attempt may still run, or after it relayed the message and only the
 * row write failed. Relaying again would deliver the message twice (found as "blob-2 sent once: 2 !== 1" in
 * test/faults/blob-outage.test.ts; regression test test/messaging/ipc-backup.test.ts). So a retry joins the
 * attempt that runs, and once an attempt was relayed and acknowledged, a retry stores the row again (the
 * router's write is idempotent per id) instead of sending. An attempt that failed before WhatsApp acknowledged
 * it is forgotten: its retry sends as before.
 */
import type { WAMessage } from '@whiskeysockets/baileys';
import type { MessageSendResult } from '@wagw/shared';

export interface RelayedSend {
  readonly at: number;
  /** The attempt (or the latest re-store) a retry joins. */
  result: Promise<MessageSendResult>;
  /** Set once WhatsApp acknowledged the relay: from then on the message is never sent again. */
  acked?: { sent: WAMessage; waitMs: number };
}

export interface RelayedSendsOptions {
  /** Entries kept at most (oldest dropped first); default 10,000. */
  maxEntries?: number;
  /** How long an entry is kept; default 10 min (longer than the router's key lock of a send). */
  ttlMs?: number;
  now?: () => number;
}

export class RelayedSends {
  readonly #entries = new Map<string, RelayedSend>();
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: RelayedSendsOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): RelayedSend | undefined {
    this.#prune();
    return this.#entries.get(key);
  }

  /** Registers an attempt before it starts (synchronously, so a concurrent retry finds it). */
  begin(key: string, result: Promise<MessageSendResult>): RelayedSend {
    this.#prune();
    const entry: RelayedSend = { at: this.#now(), result };
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  /** Forgets an attempt that ended before WhatsApp acknowledged it (unless a newer one replaced it). */
  forget(key: string, entry: RelayedSend): void {
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }

  #prune(): void {
    const cutoff = this.#now() - this.#ttlMs;
    for (const [id, e] of this.#entries) {
      if (e.at > cutoff) break;
      this.#entries.delete(id);
    }
  }
}
