/**
 * The composition root: the one function that wires opened stores, the webhook system and the router together.
 * main.ts calls it, and so do the tests (test/sessions/helpers.ts `startGateway`), the demo and the benches, so
 * what they run is wired the way production is. It takes the shard entry file as an argument: the router
 * package never resolves the shard package itself (main.ts does, for the real process).
 */
import type { Logger, GatewayConfig, WebhookOutbox } from '@wagw/shared';
import type { Stores } from '@wagw/stores';
import { GatewayRouter } from './router.ts';
import type { GatewayRouterOptions } from './router.ts';
import { createWebhookSystem } from './webhooks/index.ts';
import type { WebhookSystem } from './webhooks/index.ts';

export interface ComposeOptions extends Pick<GatewayRouterOptions, 'security' | 'defaultMetrics' | 'inspect' | 'simulator' | 'hooks' | 'routes' | 'auth'> {
  config: GatewayConfig;
  logger: Logger;
  /** The stores `openStores(config, logger)` opened; the router closes them when it stops. */
  stores: Stores;
  /** Absolute path of the shard process entry (main.ts: `import.meta.resolve('@wagw/shard/main')`; tests: a fixture). */
  shardEntry: string;
  /**
   * The webhook system (outbox + dispatcher + admin routes) from the WEBHOOK_* / BACKEND_URL settings.
   * Default true. False: no dispatcher; `outbox` (tests: a recording fake) or none receives the events.
   */
  webhooks?: boolean;
  outbox?: WebhookOutbox;
  /** Other supervisor options (tests: piped stdio, exec arguments, another protocol version). */
  supervisor?: Omit<NonNullable<GatewayRouterOptions['supervisor']>, 'entry'>;
  /** Runs first when the router closes its stores (main.ts: the backend client stops before SQL closes). */
  beforeStoresClose?: () => Promise<void>;
}

export interface ComposedGateway {
  router: GatewayRouter;
  /** Present unless `webhooks: false`; its dispatcher is already started. */
  webhooks: WebhookSystem | undefined;
}

/** Starts the router (shards handshaken, HTTP listening) over `stores`; on failure the stores stay open (the caller's). */
export async function composeGateway(options: ComposeOptions): Promise<ComposedGateway> {
  const { config, logger, stores } = options;
  const webhooks = options.webhooks === false ? undefined : createWebhookSystem({ sql: stores.sql, config, logger });
  const outbox = webhooks?.outbox ?? options.outbox;
  const router = await GatewayRouter.create({
    config,
    logger,
    stores: {
      health: () => stores.health(),
      sql: stores.sql,
      // The dispatcher (in-flight deliveries recorded) stops before the stores close.
      close: async () => {
        await options.beforeStoresClose?.();
        await webhooks?.dispatcher.stop();
        await stores.close();
      },
    },
    sessions: {
      directory: stores.directory,
      blobs: stores.blobs,
      sql: stores.sql,
      qr: stores.qr,
      hosts: stores.hosts,
      ...(stores.events === undefined ? {} : { events: stores.events }),
      ...(outbox === undefined ? {} : { outbox }),
      ...(webhooks === undefined ? {} : { validateWebhookUrl: (url: string) => webhooks.validateWebhookUrl(url) }),
    },
    supervisor: { ...options.supervisor, entry: options.shardEntry },
    ...(webhooks === undefined ? {} : { webhooks }),
    ...(options.security === undefined ? {} : { security: options.security }),
    ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
    ...(options.simulator === undefined ? {} : { simulator: options.simulator }),
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
    ...(options.routes === undefined ? {} : { routes: options.routes }),
    ...(options.auth === undefined ? {} : { auth: options.auth }),
  });
  webhooks?.registerMetrics(router.metrics.registry);
  webhooks?.dispatcher.start();
  return { router, webhooks };
}
