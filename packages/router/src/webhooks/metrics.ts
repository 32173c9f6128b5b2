/** Prometheus metrics of the webhook system, registered on the router's registry. */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export type DeliveryOutcome = 'delivered' | 'retry' | 'dead' | 'deferred';

export interface OutboxStats {
  /** Waiting rows, including the in-flight ones. */
  pending: number;
  /** Pending rows currently claimed by a dispatcher. */
  inFlight: number;
  /** Pending rows that failed at least once. */
  failed: number;
  dead: number;
  /** Age of the oldest pending row in seconds (0 when none). */
  oldestPendingSeconds: number;
}

export interface BreakerView {
  /** 0 closed, 1 open, 2 half-open, 3 isolated (cockatiel's CircuitState). */
  states(): Map<string, number>;
}

export class WebhookMetrics {
  readonly deliveries: Counter<'topic' | 'outcome'>;
  readonly duration: Histogram<'topic'>;

  constructor(registry: Registry, sources: { stats: () => Promise<OutboxStats>; breakers: BreakerView }) {
    this.deliveries = new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery attempts by topic and outcome (delivered, retry, dead, deferred by an open breaker).',
      labelNames: ['topic', 'outcome'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'webhook_delivery_duration_seconds',
      help: 'Duration of one webhook delivery attempt (request to end of response or failure).',
      labelNames: ['topic'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    new Gauge({
      name: 'webhook_outbox_depth',
      help: 'Outbox rows by status: pending (incl. in flight), in_flight, failed (pending after a failure), dead.',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const s = await sources.stats();
        this.set({ status: 'pending' }, s.pending);
        this.set({ status: 'in_flight' }, s.inFlight);
        this.set({ status: 'failed' }, s.failed);
        this.set({ status: 'dead' }, s.dead);
      },
    });
    new Gauge({
      name: 'webhook_outbox_oldest_pending_seconds',
      help: 'Age of the oldest undelivered outbox row.',
      registers: [registry],
      async collect() {
        this.set((await sources.stats()).oldestPendingSeconds);
      },
    });
    new Gauge({
      name: 'webhook_breaker_state',
      help: 'Circuit breaker state per endpoint: 0 closed, 1 open, 2 half-open.',
      labelNames: ['endpoint'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [endpoint, state] of sources.breakers.states()) this.set({ endpoint }, state);
      },
    });
  }
}
