/**
 * The request/reply machinery both ends of the router <-> shard channel share (model: Node's
 * lib/internal/cluster/utils.js, one helper for primary and worker). The router calls its shards and the shard
 * calls its router with the same envelope (`{id, ...}` out, `{id, ok, value | error}` back), so the ids, the
 * deadlines, the settling of a reply and the reject-all when the other side goes away live here once:
 * `PendingCalls`. `ReplyBatcher` sends the replies of one event-loop turn as one `replies` message.
 * `answerShardRequest` is the router's one dispatch of a shard's request to its typed handler.
 */
import { GatewayError, fromErrorBody } from './errors.ts';
import { isShardRequestKind } from './ipc.ts';
import type { IpcReply, IpcReplyBatch, ShardRequestBody, ShardRequestHandlers, ShardRequestKind, ShardRequestResult } from './ipc.ts';

/** How a pending call ended (`closed`: the other side went away, `rejectAll`). */
export type PendingOutcome = 'ok' | 'error' | 'timeout' | 'closed';

export interface PendingCallsOptions<M> {
  /** Builds the error of a call whose deadline passed. */
  timeoutError: (meta: M, timeoutMs: number) => Error;
  /** Every settled call, once (metrics). */
  onDone?: (meta: M, outcome: PendingOutcome, startedAt: number) => void;
  /** Deadlines do not keep the process alive (the shard: its parent's disappearance must end it). */
  unrefTimers?: boolean;
}

interface Entry<M> {
  meta: M;
  startedAt: number;
  timer: NodeJS.Timeout;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** Calls sent and not yet answered, each with a deadline; `M` is what the owner keeps per call (its kind...). */
export class PendingCalls<M> {
  readonly #o: PendingCallsOptions<M>;
  readonly #pending = new Map<number, Entry<M>>();
  #nextId = 0;

  constructor(options: PendingCallsOptions<M>) {
    this.#o = options;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Registers a call under a fresh id, then `send(id)` puts it on the wire; settles by reply, deadline or close. */
  open(meta: M, timeoutMs: number, send: (id: number) => void): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(id);
        if (p === undefined) return;
        this.#pending.delete(id);
        this.#o.onDone?.(p.meta, 'timeout', p.startedAt);
        reject(this.#o.timeoutError(p.meta, timeoutMs));
      }, timeoutMs);
      if (this.#o.unrefTimers === true) timer.unref();
      this.#pending.set(id, { meta, startedAt: performance.now(), timer, resolve, reject });
      try {
        send(id);
      } catch (err) {
        // A channel that throws on send (closed meanwhile) fails this call now, not at its deadline.
        this.#pending.delete(id);
        clearTimeout(timer);
        this.#o.onDone?.(meta, 'closed', performance.now());
        reject(err as Error);
      }
    });
  }

  /** Settles the call a reply answers; false for an unknown id (late: it timed out or was rejected already). */
  settle(reply: IpcReply): boolean {
    const p = this.#pending.get(reply.id);
    if (p === undefined) return false;
    this.#pending.delete(reply.id);
    clearTimeout(p.timer);
    if (reply.ok) {
      this.#o.onDone?.(p.meta, 'ok', p.startedAt);
      p.resolve(reply.value);
    } else {
      this.#o.onDone?.(p.meta, 'error', p.startedAt);
      p.reject(fromErrorBody(reply.error));
    }
    return true;
  }

  /** The other side is gone: every pending call fails with `error(meta)`. Returns how many there were. */
  rejectAll(error: (meta: M) => Error): number {
    if (this.#pending.size === 0) return 0;
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      this.#o.onDone?.(p.meta, 'closed', p.startedAt);
      p.reject(error(p.meta));
    }
    return all.length;
  }
}

/** `immediate`: replies of one event-loop turn go out as one `replies` message; `none`: one message per reply. */
export type ReplyBatching = 'immediate' | 'none';

export class ReplyBatcher {
  readonly #send: (msg: IpcReply | IpcReplyBatch) => void;
  #mode: ReplyBatching;
  #outbox: IpcReply[] = [];
  #scheduled = false;

  constructor(send: (msg: IpcReply | IpcReplyBatch) => void, mode: ReplyBatching = 'immediate') {
    this.#send = send;
    this.#mode = mode;
  }

  set mode(mode: ReplyBatching) {
    this.#mode = mode;
  }

  reply(msg: IpcReply): void {
    if (this.#mode === 'none') {
      this.#send(msg);
      return;
    }
    this.#outbox.push(msg);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends what is queued now (before a deliberate exit, so no reply is lost). */
  flush(): void {
    this.#scheduled = false;
    const replies = this.#outbox;
    this.#outbox = [];
    if (replies.length === 1) this.#send(replies[0] as IpcReply);
    else if (replies.length > 1) this.#send({ kind: 'replies', replies });
  }
}

/**
 * Runs a shard's request through the handler of its kind. The message check (`isShardToRouter`) only knows the
 * kind is a string, so a kind this router does not know (a shard of another version) is refused with
 * BAD_REQUEST naming it, never answered with an empty value.
 */
export async function answerShardRequest(handlers: ShardRequestHandlers, shard: number, request: ShardRequestBody): Promise<ShardRequestResult<ShardRequestKind>> {
  const kind: unknown = request.kind;
  if (!isShardRequestKind(kind)) throw new GatewayError('BAD_REQUEST', `The router does not handle the shard request kind ${JSON.stringify(kind)}.`, { kind: String(kind) });
  // One cast, here: TypeScript cannot correlate `handlers[request.kind]` with `request` across the union.
  const handler = handlers[kind] as (shard: number, request: ShardRequestBody) => Promise<ShardRequestResult<ShardRequestKind>>;
  return await handler(shard, request);
}
