/**
 * Status and QR intake: the one-way `session.status` / `session.qr` events of the shards (messages take the
 * acknowledged path, messages/ingest.ts; why status stays one-way: docs/architecture.md, "Decisions"). Events of
 * one session are handled in order; an event of a stale owner (another shard or epoch) is ignored. A status is
 * persisted with its `session-status` webhook in one transaction (`writeStatus`), then published on SSE; a QR is
 * cached (QR_TTL), published, and its webhook recorded.
 */
import { createHash } from 'node:crypto';
import { blobKeys } from '@wagw/shared';
import type { SessionMe, SessionQrEvent, SessionState, SessionStatusData, SessionStatusEvent, ShardEvent, SqlTransaction, WebhookEvent } from '@wagw/shared';
import type { SessionRecord } from './store.ts';
import type { LocalSession, SessionContext } from './context.ts';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A status change as `writeStatus` stores it. */
export interface StatusWrite {
  status: SessionState;
  reason: string | null;
  me?: SessionMe | null;
  desired?: 'running' | 'stopped';
  ownerEpoch?: number;
}

export class StatusIntake {
  readonly #ctx: SessionContext;
  readonly #chains = new Map<string, Promise<void>>();

  constructor(ctx: SessionContext) {
    this.#ctx = ctx;
  }

  onShardEvent(index: number, event: ShardEvent): void {
    switch (event.type) {
      case 'session.status':
        this.#chain(event.sessionId, () => this.#onStatus(index, event));
        return;
      case 'session.qr':
        this.#chain(event.sessionId, () => this.#onQr(index, event));
        return;
    }
  }

  /** Resolves when every event received so far was handled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
  }

  /**
   * Stores a status change and its `session-status` webhook in one transaction, then publishes it on SSE.
   * `fact` makes the webhook id (one per fact: a repeat is a no-op); null when the session is gone.
   */
  async writeStatus(id: string, w: StatusWrite, fact: string, shard?: number, requestId?: string): Promise<SessionRecord | null> {
    const ctx = this.#ctx;
    const record = await ctx.store.writeStatus(id, w, async (tx, r) => {
      const data: SessionStatusData = { status: w.status };
      if (w.reason !== null) data.reason = w.reason;
      if (r.me !== null) data.me = r.me;
      await this.enqueue(tx, id, r.webhookUrl, data, `${w.status}|${fact}`, requestId);
    });
    if (record !== null) {
      const data: Record<string, unknown> = { id, status: w.status, host: ctx.o.hostId, shard: shard ?? record.shard, at: record.updatedAt };
      if (w.reason !== null) data['reason'] = w.reason;
      if (record.me !== null) data['me'] = record.me;
      ctx.o.hub.publish(id, { type: 'status', data });
    }
    return record;
  }

  /** Records a `session-status` webhook in `tx` (no outbox: nothing). */
  async enqueue(tx: SqlTransaction, id: string, webhookUrl: string | null, data: SessionStatusData, fact: string, requestId?: string): Promise<void> {
    const outbox = this.#ctx.o.outbox;
    if (!outbox) return;
    const event: WebhookEvent<SessionStatusData> = {
      id: `evt_${sha256(`${id}|session-status|${fact}`).slice(0, 32)}`,
      topic: 'session-status',
      sessionId: id,
      occurredAt: new Date().toISOString(),
      data,
      ...(requestId === undefined ? {} : { requestId }),
    };
    await outbox.enqueue(tx, event, webhookUrl);
  }

  #chain(id: string, fn: () => Promise<void>): void {
    const prev = this.#chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => this.#ctx.log.error({ sessionId: id, err }, 'session event handling failed'));
    this.#chains.set(id, next);
    void next.then(() => {
      if (this.#chains.get(id) === next) this.#chains.delete(id);
    });
  }

  /** The local session the event's sender owns, or undefined when it is a stale owner's event. */
  #current(index: number, id: string, epoch: number): LocalSession | undefined {
    const l = this.#ctx.local.get(id);
    return l && l.shard === index && l.epoch === epoch ? l : undefined;
  }

  async #onStatus(index: number, ev: SessionStatusEvent): Promise<void> {
    const ctx = this.#ctx;
    const l = this.#current(index, ev.sessionId, ev.epoch);
    if (!l) {
      ctx.log.debug({ sessionId: ev.sessionId, epoch: ev.epoch, status: ev.status }, 'status of a stale owner ignored');
      return;
    }
    if (l.quiet && ev.status === 'disconnected') return;
    const ended = ev.status === 'logged_out' || ev.status === 'failed';
    const write: StatusWrite = {
      status: ev.status,
      reason: ev.reason ?? null,
      ownerEpoch: ev.epoch,
      ...(ev.me !== undefined ? { me: ev.me } : ev.status === 'logged_out' ? { me: null } : {}),
      ...(ended ? { desired: 'stopped' as const } : {}),
    };
    const cause = l.cause;
    if (ev.status === 'connected' || ended) l.cause = undefined;
    await this.writeStatus(ev.sessionId, write, `${ev.epoch}|${ev.seq}`, index, cause);
    if (ev.status === 'connected' || ended) await ctx.o.qr.delete(ev.sessionId);
    if (ended && ctx.local.get(ev.sessionId) === l) {
      ctx.local.delete(ev.sessionId);
      await ctx.release(ev.sessionId, l);
      if (ev.status === 'logged_out') await ctx.o.blobs.deletePrefix(blobKeys.session(ev.sessionId));
    }
  }

  async #onQr(index: number, ev: SessionQrEvent): Promise<void> {
    const ctx = this.#ctx;
    const l = this.#current(index, ev.sessionId, ev.epoch);
    if (!l) return;
    const expiresAt = Date.parse(ev.at) + ev.ttlMs;
    await ctx.o.qr.set(ev.sessionId, { qr: ev.qr, epoch: ev.epoch, index: ev.index, expiresAt }, ev.ttlMs);
    const qrExpiresAt = new Date(expiresAt).toISOString();
    ctx.o.hub.publish(ev.sessionId, { type: 'qr', data: { id: ev.sessionId, qr: ev.qr, index: ev.index, expiresAt: qrExpiresAt } });
    await ctx.store.withRecord(ev.sessionId, async (tx, r) => {
      await this.enqueue(tx, ev.sessionId, r.webhookUrl, { status: 'qr', qr: ev.qr, qrExpiresAt }, `qr|${sha256(ev.qr)}`, l.cause);
    });
  }
}
