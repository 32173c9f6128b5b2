/**
 * A generic Server-Sent-Events hub: topics (session ids) -> clients. Each client has a bounded buffer: a
 * client that cannot keep up is disconnected rather than buffered without limit. Heartbeat comments keep
 * proxies from closing idle streams. Event types are free strings (qr, status, message, message-status, ...).
 */
import { PassThrough } from 'node:stream';

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
  /** Clients per topic. */
  maxClientsPerTopic?: number;
}

interface Client {
  stream: PassThrough;
  topic: string;
}

/** A client of every topic it may see (the console's all-sessions stream); `sees` filters by topic. */
interface WideClient {
  stream: PassThrough;
  sees: (topic: string) => boolean;
}

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
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EventHubOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 256 * 1024;
    this.#maxClients = options.maxClientsPerTopic ?? 32;
  }

  get clientCount(): number {
    let n = 0;
    for (const set of this.#topics.values()) n += set.size;
    return n + this.#wide.size;
  }

  /**
   * A new stream for `topic`, primed with `initial` events. Returns null when the topic has too many clients.
   * `onClose` runs once when the stream ends (client gone, dropped, or hub closed).
   */
  subscribe(topic: string, initial: readonly HubEvent[] = []): PassThrough | null {
    if (this.#closed) return null;
    let set = this.#topics.get(topic);
    if (set && set.size >= this.#maxClients) return null;
    if (!set) this.#topics.set(topic, (set = new Set()));
    const stream = new PassThrough({ highWaterMark: this.#maxBuffered });
    const client: Client = { stream, topic };
    set.add(client);
    const remove = (): void => {
      const s = this.#topics.get(topic);
      s?.delete(client);
      if (s?.size === 0) this.#topics.delete(topic);
    };
    stream.once('close', remove);
    stream.once('error', remove);
    stream.write(': connected\n\n');
    for (const e of initial) this.#write(client, formatSse(e));
    this.#ensureHeartbeat();
    return stream;
  }

  /**
   * A stream of every topic `sees` allows (a principal limited to some sessions sees only those). Capped like a
   * topic: null past `maxClientsPerTopic` wide clients.
   */
  subscribeAll(sees: (topic: string) => boolean): PassThrough | null {
    if (this.#closed || this.#wide.size >= this.#maxClients) return null;
    const stream = new PassThrough({ highWaterMark: this.#maxBuffered });
    const client: WideClient = { stream, sees };
    this.#wide.add(client);
    const remove = (): void => {
      this.#wide.delete(client);
    };
    stream.once('close', remove);
    stream.once('error', remove);
    stream.write(': connected\n\n');
    this.#ensureHeartbeat();
    return stream;
  }

  publish(topic: string, event: HubEvent): void {
    const set = this.#topics.get(topic);
    const wide = [...this.#wide].filter((c) => c.sees(topic));
    if ((!set || set.size === 0) && wide.length === 0) return;
    const text = formatSse(event);
    for (const c of [...(set ?? [])]) this.#write(c, text);
    for (const c of wide) this.#write(c, text);
  }

  /** Ends every stream (router shutdown). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const set of this.#topics.values()) for (const c of set) c.stream.end();
    for (const c of this.#wide) c.stream.end();
    this.#topics.clear();
    this.#wide.clear();
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
