/** Prometheus metrics of one router instance, on its own registry (tests create several). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallOutcome, ShardInfo } from './supervisor.ts';

/** What the shard gauges read at scrape time. */
export interface ShardSource {
  list(): ShardInfo[];
  pendingCount(): number;
}

export interface RouterMetricsOptions {
  /** Default process metrics (CPU, memory, event loop lag, handles). Default true. */
  defaultMetrics?: boolean;
}

export class RouterMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly ipcDuration: Histogram<'kind' | 'outcome'>;
  #source: ShardSource | undefined;

  constructor(options: RouterMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route template, method and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.ipcDuration = new Histogram({
      name: 'ipc_call_duration_seconds',
      help: 'Router-to-shard call round trip by request kind and outcome (ok, error, timeout, crashed).',
      labelNames: ['kind', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
      registers: [registry],
    });
    const source = (): ShardSource | undefined => this.#source;
    new Gauge({
      name: 'shard_up',
      help: '1 when the shard finished its handshake and serves calls, else 0.',
      labelNames: ['shard'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of source()?.list() ?? []) this.set({ shard: String(s.index) }, s.state === 'ready' ? 1 : 0);
      },
    });
    new Counter({
      name: 'shard_restarts_total',
      help: 'Restarts of the shard after a crash.',
      labelNames: ['shard'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of source()?.list() ?? []) this.inc({ shard: String(s.index) }, s.restarts);
      },
    });
    new Gauge({
      name: 'ipc_pending_calls',
      help: 'Router-to-shard calls waiting for a reply.',
      registers: [registry],
      collect() {
        this.set(source()?.pendingCount() ?? 0);
      },
    });
  }

  /** Points the shard gauges at a supervisor (or any source). */
  trackShards(source: ShardSource): void {
    this.#source = source;
  }

  /** The supervisor's `onCallDone` hook. */
  readonly observeIpcCall = (kind: string, _shard: number, seconds: number, outcome: CallOutcome): void => {
    this.ipcDuration.observe({ kind, outcome }, seconds);
  };

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }
}
