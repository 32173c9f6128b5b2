import type { Redis } from 'ioredis';
import type { EventRelay, RelayedEvent } from '@wagw/shared';
import { redisCall } from '../redis-client.ts';

function parse(raw: string): RelayedEvent | undefined {
  try {
    const e = JSON.parse(raw) as Partial<RelayedEvent> | null;
    if (e === null || typeof e !== 'object') return undefined;
    if (typeof e.id !== 'string' || typeof e.origin !== 'string' || typeof e.topic !== 'string' || typeof e.type !== 'string') return undefined;
    return { id: e.id, origin: e.origin, topic: e.topic, type: e.type, data: e.data };
  } catch {
    return undefined;
  }
}

/**
 * Session events between routers over one Redis pub/sub channel (`{prefix}events`). Publishing uses the
 * directory's connection; the subscriber is a second connection (a subscribed Redis connection takes no other
 * command), opened by `subscribe` only: a router opens it, a shard or a tool that opens the stores does not.
 * ioredis reconnects and resubscribes it by itself.
 */
export class RedisEventRelay implements EventRelay {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #channel: string;
  #sub: Redis | undefined;
  #closed = false;

  constructor(redis: Redis, channel: string) {
    this.#redis = redis;
    this.#channel = channel;
  }

  async publish(event: RelayedEvent): Promise<void> {
    if (this.#closed) return;
    await redisCall(this.#redis.publish(this.#channel, JSON.stringify(event)));
  }

  async subscribe(onEvent: (event: RelayedEvent) => void, onError: (err: Error) => void): Promise<void> {
    if (this.#sub !== undefined || this.#closed) throw new Error('the event relay is subscribed already or closed');
    const sub = this.#redis.duplicate();
    this.#sub = sub;
    sub.on('error', onError);
    sub.on('message', (channel: string, raw: string) => {
      if (channel !== this.#channel) return;
      const event = parse(raw);
      if (event !== undefined) onEvent(event);
    });
    await redisCall(sub.subscribe(this.#channel));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sub?.disconnect();
    this.#sub = undefined;
  }
}
