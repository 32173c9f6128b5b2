/**
 * GatewayRouter: composes the supervisor, metrics, the Koa app and the HTTP server of one host, and owns the
 * stop sequence (stop accepting, drain, stop shards, close stores). main.ts wires it to config and signals.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { answerShardRequest } from '@wagw/shared';
import type { BlobStore, EventRelay, GatewayConfig, HostRegistry, Logger, QrCache, SessionDirectory, ShardSessionsConfig, SqlDatabase, WebhookOutbox } from '@wagw/shared';
import type { AuthHook, RouteDefinition } from './api/define-route.ts';
import { sessionRoutes } from './api/sessions-routes.ts';
import { webhookAdminRoutes } from './api/webhooks-routes.ts';
import { messageRoutes } from './api/messages-routes.ts';
import { GroupCommit } from './messages/group-commit.ts';
import { groupRoutes } from './api/groups-routes.ts';
import { MessageMetrics } from './messages/metrics.ts';
import { MessageIngest } from './messages/ingest.ts';
import { createAuthenticator } from './security/auth.ts';
import { RateLimits } from './security/rate-limit.ts';
import { validateWebhookUrl } from './security/webhook-url.ts';
import type { WebhookSystem } from './webhooks/index.ts';
import { EventHub } from './api/sse.ts';
import { HubRelay } from './api/hub-relay.ts';
import { SessionManager } from './sessions/manager.ts';
import { Lifecycle, createApp } from './app.ts';
import type { AppDeps, AppSecurity, DependencyCheck } from './app.ts';
import { RouterMetrics } from './metrics.ts';
import { ExpirySweeper } from './messages/expiry.ts';
import { consoleRoutes, simulatorRoutes } from './api/console-routes.ts';
import type { SimulatorControl } from './api/console-routes.ts';
import { ShardSupervisor } from './supervisor.ts';
import type { ShardSupervisorOptions, SupervisorHooks } from './supervisor.ts';

/** What the router needs from the stores (`openStores(...)` from @wagw/stores, adapted in main.ts). */
export interface RouterStores {
  health: DependencyCheck;
  /** The SQL pool's clients, for `wagw_db_pool_clients` (stores without a pool leave it out). */
  sql?: Pick<SqlDatabase, 'poolStats'>;
  close(): Promise<void>;
}

/** What sessions need: the stores of `openStores(...)` (and the webhook outbox when there is one). */
export interface SessionStores {
  directory: SessionDirectory;
  blobs: BlobStore;
  sql: SqlDatabase;
  qr: QrCache;
  hosts: HostRegistry;
  /** The cluster's event bus (Redis); used only when the directory's scope is the cluster (api/hub-relay.ts). */
  events?: EventRelay;
  outbox?: WebhookOutbox;
  /** Validates (and normalises) a session's webhookUrl at creation; throws VALIDATION_FAILED. */
  validateWebhookUrl?: (url: string) => string;
}

export interface GatewayRouterOptions {
  config: GatewayConfig;
  logger: Logger;
  stores: RouterStores;
  /** The shard entry file (required) and overrides (tests: a fixture entry, piped stdio, another protocol version). */
  supervisor: Pick<ShardSupervisorOptions, 'entry'> & Omit<Partial<ShardSupervisorOptions>, 'config' | 'logger' | 'hooks'>;
  hooks?: Omit<SupervisorHooks, 'onCallDone'>;
  /** Default process metrics on /metrics (default true). */
  defaultMetrics?: boolean;
  /** Session hosting (REST API, leases, recovery); absent: the router only supervises shards. */
  sessions?: SessionStores;
  /** More API routes (messages, webhooks admin, ...), validated and documented like the session routes. */
  routes?: readonly RouteDefinition[];
  /**
   * The security edge (authenticator + rate limits). Absent: built from `config` (createAuthenticator, which
   * throws CONFIG_INVALID in production without credentials, and RateLimits.create). The router closes the
   * limits when it stops.
   */
  security?: AppSecurity;
  /** Overrides the per-route auth middleware built from `security` (route-layer tests). */
  auth?: AuthHook;
  /** The webhook system: its operator routes (/api/v1/admin/webhooks...) and its check on /health. */
  webhooks?: Pick<WebhookSystem, 'admin' | 'health' | 'breakers'>;
  /** Tests: sees the Koa router and the OpenAPI registry once every route is mounted. */
  inspect?: AppDeps['inspect'];
  /**
   * A WhatsApp simulator's phone control (the demo and the browser tests only): mounts /api/v1/simulator/* and
   * shows the console's "scan with a simulated phone" button. Never set by main.ts.
   */
  simulator?: SimulatorControl;
}

/** The shards' session settings: the same blob store as the router's, WhatsApp endpoint, login cap. */
export function shardSessionsConfig(config: GatewayConfig): ShardSessionsConfig {
  return {
    blobs: config.s3 === undefined ? { kind: 'local', dir: path.join(config.dataDir, 'blobs') } : { kind: 's3', s3: config.s3 },
    wa: config.wa,
    loginConcurrency: config.sessions.loginConcurrency,
    loginRatePerSecond: config.sessions.loginRatePerSecond,
    reconnect: config.sessions.reconnect,
    keyWriteBehind: config.sessions.keyWriteBehind,
    messaging: config.messaging,
  };
}

export class GatewayRouter {
  readonly supervisor: ShardSupervisor;
  readonly metrics: RouterMetrics;
  readonly lifecycle: Lifecycle;
  readonly server: http.Server;
  /** The Koa app behind `server` (tests drive it directly, e.g. the full-route fuzz). */
  readonly app: ReturnType<typeof createApp>;
  /** Session ownership, placement and recovery (when sessions are hosted). */
  readonly sessions: SessionManager | undefined;
  readonly hub: EventHub;
  /** Settles when the start-up restore of sessions has finished. */
  restored: Promise<void> = Promise.resolve();
  /** Deletes expired Idempotency-Keys and uploads (with sessions only). */
  readonly expiry: ExpirySweeper | undefined;
  readonly #config: GatewayConfig;
  readonly #log: Logger;
  readonly #stores: RouterStores;
  readonly #security: AppSecurity;
  /** Relays session events to and from the other hosts (cluster scope only). */
  readonly #relay: HubRelay | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(options: GatewayRouterOptions & { security: AppSecurity }) {
    this.#config = options.config;
    this.#security = options.security;
    this.#log = options.logger;
    this.#stores = options.stores;
    this.metrics = new RouterMetrics({ defaultMetrics: options.defaultMetrics ?? true });
    this.lifecycle = new Lifecycle();
    this.hub = new EventHub({ maxClients: options.config.sse.maxStreams, maxClientsPerOwner: options.config.sse.maxStreamsPerPrincipal });
    const hooks = options.hooks ?? {};
    const manager = (): SessionManager | undefined => this.sessions;
    this.metrics.trackShardStats(async () => {
      const ready = this.supervisor.list().filter((s) => s.state === 'ready');
      const stats = await Promise.all(ready.map((s) => this.supervisor.call(s.index, { kind: 'stats' }, { timeoutMs: 2000 }).catch(() => undefined)));
      return stats.flatMap((st, i) => (st === undefined ? [] : [{ shard: ready[i]?.index ?? -1, stats: st }]));
    });
    const messageMetrics = new MessageMetrics(this.metrics.registry, async () =>
      (await this.metrics.shardStats()).flatMap(({ shard, stats }) => (stats.sendQueue === undefined ? [] : [{ shard, ...stats.sendQueue }])),
    );
    // One group-commit writer for the shards' message and status writes (messages/group-commit.ts), an API send's row included.
    const writer = options.sessions === undefined ? undefined : new GroupCommit(options.sessions.sql, {
            writers: options.config.messaging.writers ?? 2,
            logger: options.logger,
            onBatch: (size) => messageMetrics.writeBatch.observe(size),
            onWait: (seconds) => messageMetrics.writeWait.observe(seconds),
          });
    const ingest =
      options.sessions === undefined
        ? undefined
        : new MessageIngest({
            sql: options.sessions.sql,
            ...(writer === undefined ? {} : { writer }),
            hub: this.hub,
            metrics: messageMetrics,
            logger: options.logger,
            ...(options.sessions.outbox === undefined ? {} : { outbox: options.sessions.outbox }),
          });
    this.supervisor = new ShardSupervisor({
      ...options.supervisor,
      ...(options.sessions === undefined ? {} : { sessions: shardSessionsConfig(options.config) }),
      config: options.config,
      logger: options.logger,
      hooks: {
        ...hooks,
        onCallDone: this.metrics.observeIpcCall,
        onEvent: (index, event) => {
          hooks.onEvent?.(index, event);
          manager()?.onShardEvent(index, event);
        },
        ...(ingest === undefined ? {} : { onRequest: async (index, request) => await answerShardRequest(ingest.handlers, index, request) }),
        onStateChange: (info) => {
          hooks.onStateChange?.(info);
          manager()?.onShardState(info);
        },
        beforeStop: async (index, reason) => {
          await manager()?.beforeShardStop(index, reason);
          await hooks.beforeStop?.(index, reason);
        },
      },
    });
    this.metrics.trackShards(this.supervisor);
    this.metrics.trackDependencies(options.stores.health);
    this.metrics.trackSqlPool(() => options.stores.sql?.poolStats?.());
    const routes: RouteDefinition[] = [];
    if (options.sessions !== undefined) {
      const s = options.sessions;
      this.sessions = new SessionManager({
        hostId: options.config.hostId,
        publicUrl: () => options.config.http.publicUrl ?? this.url,
        lease: options.config.lease,
        cluster: options.config.cluster,
        maxSessionsPerShard: options.config.shards.maxSessions,
        placeConcurrency: options.config.shards.placeConcurrency,
        singleHost: s.directory.scope === 'process',
        logger: options.logger,
        shards: this.supervisor,
        directory: s.directory,
        blobs: s.blobs,
        sql: s.sql,
        qr: s.qr,
        hosts: s.hosts,
        hub: this.hub,
        ...(s.outbox === undefined ? {} : { outbox: s.outbox }),
        ...(s.validateWebhookUrl === undefined ? {} : { validateWebhookUrl: s.validateWebhookUrl }),
        timings: this.metrics.controlPlane,
      });
      if (s.events !== undefined && s.directory.scope === 'cluster') {
        this.#relay = new HubRelay({ hub: this.hub, relay: s.events, hostId: options.config.hostId, logger: options.logger });
      }
      const registry = this.sessions.store;
      const messaging = options.config.messaging;
      this.expiry = new ExpirySweeper({
        sql: s.sql,
        blobs: s.blobs,
        logger: options.logger,
        idempotencyTtlMs: messaging.expiry.idempotencyTtlMs,
        uploadTtlMs: messaging.expiry.uploadTtlMs,
        intervalMs: messaging.expiry.sweepIntervalMs,
        // messages-routes.ts gives a send SEND_QUEUE_TIMEOUT_MS + 30 s; a minute more before its temp goes.
        sendDeadlineMs: messaging.send.queueTimeoutMs + 90_000,
      });
      this.metrics.trackSessions(() => registry.countByStatus(options.config.hostId));
      const allowPrivate = options.config.webhooks.allowPrivateTargets;
      routes.push(
        ...sessionRoutes({
          manager: this.sessions,
          hub: this.hub,
          hosts: s.hosts,
          checkWebhookUrl: async (url) => (await validateWebhookUrl(url, { allowPrivate })).toString(),
          ...(options.config.webhooks.secret === undefined ? {} : { webhookSecret: options.config.webhooks.secret }),
          ...(options.config.http.clusterSecret === undefined ? {} : { clusterSecret: options.config.http.clusterSecret }),
        }),
        ...messageRoutes({
          manager: this.sessions,
          shards: this.supervisor,
          sql: s.sql,
          blobs: s.blobs,
          messaging: options.config.messaging,
          uploadBytes: options.config.limits.uploadBytes,
          uploadQuotaBytes: options.config.limits.uploadQuotaBytes,
          metrics: messageMetrics,
          hosts: s.hosts,
          clusterSecret: options.config.http.clusterSecret,
        }),
        ...groupRoutes({ manager: this.sessions, shards: this.supervisor, messaging: options.config.messaging, blobs: s.blobs, hosts: s.hosts, clusterSecret: options.config.http.clusterSecret }),
      );
    }
    if (options.webhooks !== undefined) routes.push(...webhookAdminRoutes(options.webhooks.admin, options.webhooks.breakers, options.config.hostId));
    routes.push(...consoleRoutes({ hub: this.hub, shards: this.supervisor }));
    if (options.simulator !== undefined) routes.push(...simulatorRoutes(options.simulator));
    routes.push(...(options.routes ?? []));
    const webhooks = options.webhooks;
    const app = (this.app = createApp({
      routes,
      security: options.security,
      bodyLimits: options.config.limits,
      trustProxy: options.config.http.trustProxy,
      ...(webhooks === undefined ? {} : { healthChecks: { webhooks: () => webhooks.health() } }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
      console: { simulator: options.simulator !== undefined },
      logger: options.logger,
      shards: this.supervisor,
      dependencies: options.stores.health,
      lifecycle: this.lifecycle,
      draining: () => this.sessions?.draining === true,
      metrics: this.metrics,
      hostId: options.config.hostId,
    }));
    this.server = http.createServer(app.callback());
    this.server.keepAliveTimeout = 5000;
  }

  /** Starts the shards (each one's first handshake settles), then listens on `config.http`. */
  static async create(options: GatewayRouterOptions): Promise<GatewayRouter> {
    let security = options.security;
    if (security === undefined) {
      const auth = createAuthenticator(options.config, { logger: options.logger });
      auth.logStartup();
      security = { auth, limits: await RateLimits.create(options.config, { logger: options.logger }) };
    }
    const router = new GatewayRouter({ ...options, security });
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
      await security.limits.close();
      throw err;
    }
    // The stream of all sessions covers every host's only with the relay; without it, the start goes on.
    await router.#relay?.start().catch((err: unknown) => router.#log.error({ err }, 'the cluster event relay did not start; all-session streams show this host only'));
    router.lifecycle.markReady();
    if (router.sessions) {
      const log = router.#log;
      router.restored = router.sessions.start().catch((err: unknown) => log.error({ err }, 'restoring sessions failed'));
    }
    router.expiry?.start();
    return router;
  }

  /**
   * Restores the sessions the backend lists as assigned to this worker (docs/webhooks.md, "Worker registry"):
   * after the start-up restore, each one not running here nor owned by another host is started again from its
   * stored auth state (`restart`: desired running, placed, no new QR). Unknown and logged-out ids are skipped.
   */
  async restoreAssigned(sessions: readonly { id: string }[]): Promise<{ restored: string[]; skipped: string[] }> {
    const manager = this.sessions;
    const restored: string[] = [];
    const skipped: string[] = [];
    if (manager === undefined) return { restored, skipped: sessions.map((s) => s.id) };
    await this.restored;
    for (const { id } of sessions) {
      if (this.lifecycle.phase === 'stopping') break;
      try {
        const own = await manager.ownership(id);
        // Running here or elsewhere: nothing to do. Logged out: no auth state left, restarting would only show a QR.
        if (own.kind !== 'idle' || (await manager.get(id)).status === 'logged_out') {
          skipped.push(id);
          continue;
        }
        await manager.restart(id);
        restored.push(id);
      } catch (err) {
        skipped.push(id);
        const code = (err as { code?: unknown }).code;
        if (code === 'SESSION_NOT_FOUND') this.#log.warn({ sessionId: id }, 'the backend assigned a session this gateway does not know; skipped');
        else this.#log.error({ sessionId: id, err }, 'restoring an assigned session failed');
      }
    }
    this.#log.info({ restored: restored.length, skipped: skipped.length }, 'assigned sessions restored');
    return { restored, skipped };
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
    if (this.#config.cluster.drainOnShutdown && this.sessions !== undefined) {
      // Sessions go to the other hosts now (each down for about a login), not after a lease TTL. Bounded so the
      // shards still get their stop time within SHUTDOWN_TIMEOUT_MS; what is left stops with the shards.
      const budget = Math.max(1000, this.#config.shutdownTimeoutMs - this.#config.shards.stopTimeoutMs - 2000);
      const drained = await Promise.race([
        this.sessions.drain().catch((err: unknown) => {
          this.#log.error({ err }, 'drain before shutdown failed');
          return undefined;
        }),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), budget).unref()),
      ]);
      this.#log.info({ drained: drained ?? null, budgetMs: budget }, 'drained before shutdown');
    }
    this.sessions?.beginShutdown();
    await this.expiry?.stop();
    this.hub.close();
    await this.#relay?.stop();
    this.#log.info({ reason }, 'router stopping: no new connections, draining requests');
    const drainMs = Math.max(100, this.#config.shutdownTimeoutMs - this.#config.shards.stopTimeoutMs - 1000);
    await this.#drainHttp(drainMs);
    this.#log.info({ ms: Math.round(performance.now() - t0) }, 'requests drained; stopping shards');
    await this.supervisor.stop(reason);
    // The shards flushed and closed their sessions: release the leases so a peer can take over at once.
    await this.sessions?.releaseAll().catch((err: unknown) => this.#log.error({ err }, 'releasing leases failed'));
    await this.#security.limits.close().catch((err: unknown) => this.#log.error({ err }, 'closing the rate limiter failed'));
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
