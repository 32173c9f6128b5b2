/** Prometheus metrics of the message path: sends by outcome, send latency, governor queue wait. */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export class MessageMetrics {
  readonly sends: Counter<'outcome'>;
  readonly sendDuration: Histogram<'outcome'>;
  readonly queueWait: Histogram;
  readonly received: Counter;
  readonly writeBatch: Histogram;
  readonly writeWait: Histogram;

  /**
   * `queues` reports each shard's summed governor depth and in-flight sends (a `stats` call per shard, made
   * when /metrics is scraped).
   */
  constructor(registry: Registry, queues?: () => Promise<{ shard: number; depth: number; inFlight: number }[]>) {
    if (queues !== undefined) {
      new Gauge({
        name: 'wagw_send_queue_depth',
        help: 'Sends waiting in the session send governors of a shard',
        labelNames: ['shard', 'state'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const q of await queues().catch(() => [])) {
            this.set({ shard: String(q.shard), state: 'waiting' }, q.depth);
            this.set({ shard: String(q.shard), state: 'in_flight' }, q.inFlight);
          }
        },
      });
    }
    this.sends = new Counter({ name: 'wagw_message_sends_total', help: 'Sends by outcome (sent or the error code)', labelNames: ['outcome'], registers: [registry] });
    this.sendDuration = new Histogram({
      name: 'wagw_message_send_seconds',
      help: 'POST /messages from the IPC call to the stored row (queue wait included)',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.queueWait = new Histogram({
      name: 'wagw_send_queue_wait_seconds',
      help: 'Time a send waited in its session governor before it started',
      buckets: [0, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    });
    this.received = new Counter({ name: 'wagw_messages_received_total', help: 'Inbound messages stored (first delivery only)', registers: [registry] });
    this.writeBatch = new Histogram({
      name: 'wagw_message_write_batch_size',
      help: 'Shard requests (message.received, message.status) per committed group-commit transaction (MESSAGE_WRITERS)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    });
    this.writeWait = new Histogram({
      name: 'wagw_message_write_wait_seconds',
      help: 'A shard request\'s wait in the group commit, from queued to committed (its share of a send\'s or a receipt\'s latency)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  }

  observeSend(outcome: string, seconds: number, waitSeconds?: number): void {
    this.sends.inc({ outcome });
    this.sendDuration.observe({ outcome }, seconds);
    if (waitSeconds !== undefined) this.queueWait.observe(waitSeconds);
  }
}
