/**
 * GatewayRouter: composes the supervisor, metrics, the Koa app and the HTTP server of one host, and owns the
 * stop sequence (stop accepting, drain, stop shards, close stores). main.ts wires it to config and signals.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig, Logger } from '@wagw/shared';
import { Lifecycle, createApp } from './app.ts';
import type { DependencyCheck } from './app.ts';
import { RouterMetrics } from './metrics.ts';
import { ShardSupervisor } from './supervisor.ts';
import type { ShardSupervisorOptions, SupervisorHooks } from './supervisor.ts';

/** What the router needs from the stores (`openStores(...)` from @wagw/stores, adapted in main.ts). */
export interface RouterStores {
  health: DependencyCheck;
  close(): Promise<void>;
}

export interface GatewayRouterOptions {
  config: GatewayConfig;
  logger: Logger;
  stores: RouterStores;
  /** Supervisor overrides (tests: a fixture entry, piped stdio, another protocol version). */
  supervisor?: Omit<Partial<ShardSupervisorOptions>, 'config' | 'logger' | 'hooks'>;
  hooks?: Omit<SupervisorHooks, 'onCallDone'>;
  /** Default process metrics on /metrics (default true). */
  defaultMetrics?: boolean;
}

export class GatewayRouter {
  readonly supervisor: ShardSupervisor;
  readonly metrics: RouterMetrics;
  readonly lifecycle: Lifecycle;
  readonly server: http.Server;
  readonly #config: GatewayConfig;
  readonly #log: Logger;
  readonly #stores: RouterStores;
  #stopping: Promise<void> | undefined;

  private constructor(options: GatewayRouterOptions) {
    this.#config = options.config;
    this.#log = options.logger;
    this.#stores = options.stores;
    this.metrics = new RouterMetrics({ defaultMetrics: options.defaultMetrics ?? true });
    this.lifecycle = new Lifecycle();
    this.supervisor = new ShardSupervisor({
      ...options.supervisor,
      config: options.config,
      logger: options.logger,
      hooks: { ...options.hooks, onCallDone: this.metrics.observeIpcCall },
    });
    this.metrics.trackShards(this.supervisor);
    const app = createApp({
      logger: options.logger,
      shards: this.supervisor,
      dependencies: options.stores.health,
      lifecycle: this.lifecycle,
      metrics: this.metrics,
      hostId: options.config.hostId,
    });
    this.server = http.createServer(app.callback());
    this.server.keepAliveTimeout = 5000;
  }

  /** Starts the shards (each one's first handshake settles), then listens on `config.http`. */
  static async create(options: GatewayRouterOptions): Promise<GatewayRouter> {
    const router = new GatewayRouter(options);
    const shards = await router.supervisor.start();
    const ready = shards.filter((s) => s.state === 'ready').length;
    if (ready < shards.length) router.#log.warn({ ready, total: shards.length }, 'not every shard is ready');
    try {
      await new Promise<void>((resolve, reject) => {
        router.server.once('error', reject);
        router.server.listen(options.config.http.port, options.config.http.host, () => {
          router.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await router.supervisor.stop('listen failed');
      throw err;
    }
    router.lifecycle.markReady();
    return router;
  }

  /** The address actually bound (port 0 picks a free one). */
  get url(): string {
    const addr = this.server.address() as AddressInfo | null;
    const host = this.#config.http.host.includes(':') ? `[${this.#config.http.host}]` : this.#config.http.host;
    return `http://${host}:${addr?.port ?? this.#config.http.port}`;
  }

  /**
   * Planned stop: /ready turns 503 and the server stops accepting; in-flight requests drain (bounded so the
   * shards still get their `stopTimeoutMs`); shards get `shutdown`, then SIGTERM, then SIGKILL; stores close.
   * Idempotent. The caller bounds the whole with `shutdownTimeoutMs` (see main.ts).
   */
  async stop(reason = 'router stopping'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    await this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    const t0 = performance.now();
    this.lifecycle.markStopping();
    this.#log.info({ reason }, 'router stopping: no new connections, draining requests');
    const drainMs = Math.max(100, this.#config.shutdownTimeoutMs - this.#config.shards.stopTimeoutMs - 1000);
    await this.#drainHttp(drainMs);
    this.#log.info({ ms: Math.round(performance.now() - t0) }, 'requests drained; stopping shards');
    await this.supervisor.stop(reason);
    try {
      await this.#stores.close();
    } catch (err) {
      this.#log.error({ err }, 'closing stores failed');
    }
    this.#log.info({ ms: Math.round(performance.now() - t0) }, 'router stopped');
  }

  async #drainHttp(deadlineMs: number): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Keep-alive connections go as soon as they are idle; busy ones finish their response first.
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const outcome = await Promise.race([closed.then(() => 'closed' as const), deadline]);
    clearInterval(sweep);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#log.warn({ deadlineMs }, 'requests still running at the drain deadline; closing their connections');
      this.server.closeAllConnections();
      await closed;
    }
  }
}
