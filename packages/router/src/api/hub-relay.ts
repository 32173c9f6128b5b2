/**
 * The all-sessions event stream across the cluster (`GET /api/v1/events`, docs/console.md): this router relays
 * the status, qr and deleted events of the sessions it runs to the other routers over the cluster's event bus
 * (Redis pub/sub, `EventRelay`), and hands theirs to its own all-session streams, where each stream's filter
 * (the caller's session limit) applies as to a local event. Message events stay on their host: they are many,
 * and the chat view reads them from the owner's stream of the session.
 *
 * Each relayed event gets an id (`{hostId}.{nonce}.{n}`, also sent as the SSE `id:`); a router drops its own
 * events coming back and any id it has seen (a bounded set), so an event reaches a stream once. Only in cluster
 * scope (router.ts): with the in-process directory there is no other host and no bus.
 */
import { randomBytes } from 'node:crypto';
import type { EventRelay, Logger, RelayedEvent } from '@wagw/shared';
import type { EventHub, HubEvent } from './sse.ts';

/** The event types that cross hosts. */
export const RELAYED_TYPES: ReadonlySet<string> = new Set(['status', 'qr', 'deleted']);

/** Ids remembered for de-duplication (oldest forgotten first). */
const SEEN_MAX = 10_000;

export interface HubRelayOptions {
  hub: EventHub;
  relay: EventRelay;
  hostId: string;
  logger: Logger;
}

export class HubRelay {
  readonly #o: HubRelayOptions;
  readonly #log: Logger;
  /** Per process: a restarted router never reuses an id of its earlier life. */
  readonly #prefix: string;
  readonly #seen = new Set<string>();
  #seq = 0;
  #lastError = '';

  constructor(options: HubRelayOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'event-relay' });
    this.#prefix = `${options.hostId}.${randomBytes(4).toString('hex')}`;
  }

  /** Taps the hub (local events go out) and subscribes (other hosts' events come in). */
  async start(): Promise<void> {
    this.#o.hub.tap((topic, event) => this.#out(topic, event));
    await this.#o.relay.subscribe(
      (event) => this.#in(event),
      (err) => {
        if (err.message === this.#lastError) return;
        this.#lastError = err.message;
        this.#log.warn({ err: err.message }, 'event relay subscriber connection error');
      },
    );
    this.#log.info('relaying session events across the cluster');
  }

  async stop(): Promise<void> {
    await this.#o.relay.close();
  }

  #remember(id: string): void {
    this.#seen.add(id);
    if (this.#seen.size > SEEN_MAX) {
      const oldest = this.#seen.values().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
  }

  #out(topic: string, event: HubEvent): HubEvent {
    if (!RELAYED_TYPES.has(event.type)) return event;
    const id = event.id ?? `${this.#prefix}.${++this.#seq}`;
    this.#remember(id);
    this.#o.relay.publish({ id, origin: this.#o.hostId, topic, type: event.type, data: event.data }).catch((err: unknown) => {
      this.#log.warn({ sessionId: topic, type: event.type, err: err instanceof Error ? err.message : String(err) }, 'event not relayed to the other hosts');
    });
    return { ...event, id };
  }

  #in(event: RelayedEvent): void {
    if (event.origin === this.#o.hostId || !RELAYED_TYPES.has(event.type) || this.#seen.has(event.id)) return;
    this.#remember(event.id);
    this.#o.hub.publishWide(event.topic, { type: event.type, data: event.data, id: event.id });
  }
}
