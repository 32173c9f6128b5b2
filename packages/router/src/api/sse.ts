/**
 * A generic Server-Sent-Events hub: topics (session ids) -> clients. Each client has a bounded buffer: a
 * client that cannot keep up is disconnected rather than buffered without limit. Heartbeat comments keep
 * proxies from closing idle streams. Event types are free strings (qr, status, message, message-status, ...).
 * Streams are capped per topic, per owner (the caller's principal) on one topic, per owner and in total, so one
 * credential cannot take every slot (docs/security.md).
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { GatewayError } from '@wagw/shared';

export interface HubEvent {
  type: string;
  data: unknown;
  /** Optional SSE id (lets a client see where it was). */
  id?: string;
}

export interface EventHubOptions {
  heartbeatMs?: number;
  /** Bytes a client may have queued before it is dropped. */
  maxBufferedBytes?: number;
  /** Clients per topic. Default 32. */
  maxClientsPerTopic?: number;
  /** Clients of one owner on one topic. Default 8: one caller cannot take a session's every slot. */
  maxClientsPerOwnerTopic?: number;
  /** Clients of one owner on all topics (SSE_MAX_STREAMS_PER_PRINCIPAL). Default 256. */
  maxClientsPerOwner?: number;
  /** Clients in all (SSE_MAX_STREAMS). Default 1024. */
  maxClients?: number;
}

interface Client {
  stream: PassThrough;
  topic: string;
  owner: string;
  /** Frees the client's slots (once). */
  remove: () => void;
}

/** A client of every topic it may see (the console's all-sessions stream); `sees` filters by topic. */
interface WideClient {
  stream: PassThrough;
  sees: (topic: string) => boolean;
  /** Frees the client's slots (once). */
  remove: () => void;
}

/** The pseudo-topic under which all-session streams are counted against the caps. */
const WIDE = '\0all';

export function formatSse(event: HubEvent): string {
  const lines = [`event: ${event.type}`];
  if (event.id !== undefined) lines.push(`id: ${event.id}`);
  for (const line of JSON.stringify(event.data).split('\n')) lines.push(`data: ${line}`);
  return `${lines.join('\n')}\n\n`;
}

export class EventHub {
  readonly #topics = new Map<string, Set<Client>>();
  readonly #wide = new Set<WideClient>();
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #maxClients: number;
  readonly #maxPerOwnerTopic: number;
  readonly #maxPerOwner: number;
  readonly #maxTotal: number;
  /** Streams per owner and per `owner\0topic`. */
  readonly #owned = new Map<string, number>();
  #total = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #tap: ((topic: string, event: HubEvent) => HubEvent) | undefined;

  constructor(options: EventHubOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 256 * 1024;
    this.#maxClients = options.maxClientsPerTopic ?? 32;
    this.#maxPerOwnerTopic = options.maxClientsPerOwnerTopic ?? 8;
    this.#maxPerOwner = options.maxClientsPerOwner ?? 256;
    this.#maxTotal = options.maxClients ?? 1024;
  }

  get clientCount(): number {
    return this.#total;
  }

  #count(key: string, by: number): void {
    const n = (this.#owned.get(key) ?? 0) + by;
    if (n > 0) this.#owned.set(key, n);
    else this.#owned.delete(key);
  }

  /** Throws 429 TOO_MANY_STREAMS naming the cap a new stream of `owner` on `topic` would pass. */
  #admit(topic: string, owner: string): void {
    const full = (limit: string, max: number, message: string): never => {
      throw new GatewayError('TOO_MANY_STREAMS', `${message} (at most ${max}); close one first.`, { limit, max });
    };
    if (this.#total >= this.#maxTotal) full('total', this.#maxTotal, 'This gateway serves its maximum of event streams');
    const onTopic = topic === WIDE ? this.#wide.size : (this.#topics.get(topic)?.size ?? 0);
    if (onTopic >= this.#maxClients) full('session', this.#maxClients, topic === WIDE ? 'This gateway serves its maximum of all-session event streams' : 'This session has its maximum of event streams');
    if ((this.#owned.get(owner) ?? 0) >= this.#maxPerOwner) full('principal', this.#maxPerOwner, 'These credentials hold their maximum of event streams');
    if ((this.#owned.get(`${owner}\0${topic}`) ?? 0) >= this.#maxPerOwnerTopic) {
      full('principal-session', this.#maxPerOwnerTopic, 'These credentials hold their maximum of event streams for this session');
    }
  }

  /**
   * A new stream of `owner` (a principal's key) for `topic`, primed with `initial` events. Throws 503
   * SHUTTING_DOWN once the hub is closed and 429 TOO_MANY_STREAMS past a cap.
   */
  subscribe(topic: string, initial: readonly HubEvent[] = [], owner = 'anonymous'): PassThrough {
    let set = this.#topics.get(topic);
    const { stream, client } = this.#open(topic, owner, (c) => {
      if (!set) this.#topics.set(topic, (set = new Set()));
      set.add({ ...c, topic, owner });
    }, (c) => {
      const s = this.#topics.get(topic);
      for (const x of s ?? []) if (x.stream === c.stream) s?.delete(x);
      if (s?.size === 0) this.#topics.delete(topic);
    });
    for (const e of initial) this.#write(client, formatSse(e));
    return stream;
  }

  /**
   * A stream of every topic `sees` allows (a principal limited to some sessions sees only those). Counted against
   * the same caps as `subscribe`, all-session streams together as one topic: 503 SHUTTING_DOWN once closed, 429
   * TOO_MANY_STREAMS past a cap.
   */
  subscribeAll(sees: (topic: string) => boolean, owner = 'anonymous'): PassThrough {
    let wide: WideClient | undefined;
    return this.#open(WIDE, owner, (c) => this.#wide.add((wide = { ...c, sees })), () => {
      if (wide) this.#wide.delete(wide);
    }).stream;
  }

  /**
   * Admits a stream of `owner` under `key` (a topic, or WIDE), counts its slots, and frees them once when the
   * stream ends (client gone, dropped, or hub closed): the bookkeeping both kinds of client share.
   */
  #open(
    key: string,
    owner: string,
    attach: (c: { stream: PassThrough; remove: () => void }) => void,
    detach: (c: { stream: PassThrough }) => void,
  ): { stream: PassThrough; client: { stream: PassThrough } } {
    if (this.#closed) throw new GatewayError('SHUTTING_DOWN', 'The gateway is shutting down; no new event streams.');
    this.#admit(key, owner);
    const stream = new PassThrough({ highWaterMark: this.#maxBuffered });
    let removed = false;
    const remove = (): void => {
      if (removed) return;
      removed = true;
      this.#total--;
      this.#count(owner, -1);
      this.#count(`${owner}\0${key}`, -1);
      detach({ stream });
    };
    attach({ stream, remove });
    this.#total++;
    this.#count(owner, 1);
    this.#count(`${owner}\0${key}`, 1);
    stream.once('close', remove);
    stream.once('error', remove);
    stream.write(': connected\n\n');
    this.#ensureHeartbeat();
    return { stream, client: { stream } };
  }

  /**
   * Sees every local `publish` first and may return the event to send instead (the cluster relay gives the
   * events it forwards an id). One tap.
   */
  tap(fn: (topic: string, event: HubEvent) => HubEvent): void {
    this.#tap = fn;
  }

  publish(topic: string, event: HubEvent): void {
    if (this.#tap !== undefined) event = this.#tap(topic, event);
    const set = this.#topics.get(topic);
    const wide = [...this.#wide].filter((c) => c.sees(topic));
    if ((!set || set.size === 0) && wide.length === 0) return;
    const text = formatSse(event);
    for (const c of [...(set ?? [])]) this.#write(c, text);
    for (const c of wide) this.#write(c, text);
  }

  /**
   * An event of a session another host runs (relayed over the cluster's event bus): only the all-session streams
   * get it, filtered by each one's `sees` like a local event. A session's own stream is served by its owner.
   */
  publishWide(topic: string, event: HubEvent): void {
    const wide = [...this.#wide].filter((c) => c.sees(topic));
    if (wide.length === 0) return;
    const text = formatSse(event);
    for (const c of wide) this.#write(c, text);
  }

  /** Ends every stream (router shutdown). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const set of [...this.#topics.values()]) {
      for (const c of [...set]) {
        c.remove();
        c.stream.end();
      }
    }
    for (const c of [...this.#wide]) {
      c.remove();
      c.stream.end();
    }
  }

  #write(client: { stream: PassThrough }, text: string): void {
    if (client.stream.destroyed) return;
    if (client.stream.writableLength + text.length > this.#maxBuffered) {
      // A slow consumer: drop it (it reconnects and gets the current state first) instead of buffering.
      client.stream.end(': dropped (too slow)\n\n');
      client.stream.destroy();
      return;
    }
    client.stream.write(text);
  }

  #ensureHeartbeat(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#topics.size === 0 && this.#wide.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        return;
      }
      for (const set of this.#topics.values()) for (const c of set) this.#write(c, ': heartbeat\n\n');
      for (const c of this.#wide) this.#write(c, ': heartbeat\n\n');
    }, this.#heartbeatMs);
    this.#timer.unref();
  }
}

/** Answers a request with an event stream: no socket timeout, no buffering by proxies, destroyed when the client goes. */
export function respondWithEvents(
  ctx: { req: IncomingMessage; status: number; type: string; body: unknown; set(field: string, value: string): void },
  stream: PassThrough,
): void {
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.req.once('close', () => stream.destroy());
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('cache-control', 'no-cache, no-transform');
  ctx.set('x-accel-buffering', 'no');
  ctx.body = stream;
}
