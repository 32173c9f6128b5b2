/**
 * The webhook system of one router: the outbox writer (WebhookOutbox), the dispatcher and the operator
 * logic, built from config by `createWebhookSystem`. main.ts wires it; docs/webhooks.md describes the protocol.
 */
import type { Registry } from 'prom-client';
import type { GatewayConfig, Logger, SqlDatabase, WebhookOutbox } from '@wagw/shared';
import { WebhookAdmin } from './admin.ts';
import type { BreakerSnapshot } from './breakers.ts';
import { WebhookDispatcher } from './dispatcher.ts';
import type { DispatcherSettings } from './dispatcher.ts';
import { WebhookMetrics } from './metrics.ts';
import type { OutboxStats } from './metrics.ts';
import { OutboxWriter } from './outbox.ts';
import { validateWebhookUrl } from './target.ts';
import { WebhookTransport } from './transport.ts';

export { OutboxWriter, toPayload, orderingKeyFor, backendEndpoint } from './outbox.ts';
export type { WebhookPayload, OutboxWriterOptions } from './outbox.ts';
export { WebhookDispatcher } from './dispatcher.ts';
export type { DispatcherOptions, DispatcherSettings } from './dispatcher.ts';
export { WebhookTransport } from './transport.ts';
export { sessionWebhookSecret } from './secrets.ts';
export type { DeliveryRequest, DeliveryResult, TransportOptions } from './transport.ts';
export { EndpointBreakers, EndpointDownError, originOf } from './breakers.ts';
export type { BreakerSnapshot } from './breakers.ts';
export { WebhookMetrics } from './metrics.ts';
export type { OutboxStats, DeliveryOutcome } from './metrics.ts';
export {
  WebhookAdmin,
  DELIVERY_STATUSES,
  webhookListQuerySchema,
  webhookIdParamsSchema,
  webhookReplayManyBodySchema,
  webhookDeliverySchema,
  webhookListResponseSchema,
  webhookReplayResponseSchema,
  webhookStatsResponseSchema,
} from './admin.ts';
export type { WebhookAdminOptions, WebhookDelivery, WebhookListQuery, WebhookReplayManyBody, DeliveryStatusFilter } from './admin.ts';
export { validateWebhookUrl, isPrivateAddress, TARGET_FORBIDDEN } from './target.ts';
export type { WebhookUrlPolicy } from './target.ts';

export interface WebhookSystemOptions {
  sql: SqlDatabase;
  config: Pick<GatewayConfig, 'backend' | 'webhooks'>;
  logger: Logger;
  /** The router's prom-client registry (RouterMetrics.registry); metrics are registered on it. */
  metrics?: Registry;
  /** Dispatcher name prefix in `locked_by` (default random). */
  name?: string;
}

export interface WebhookSystem {
  /** Pass to whoever writes session/message state: `outbox.enqueue(tx, event, session.webhookUrl)`. */
  outbox: WebhookOutbox;
  /**
   * Start after the stores are open; stop before they close (in-flight deliveries finish and are recorded,
   * unsent claims released). `stop({abandon: true})` simulates a crash (tests): nothing more is written.
   */
  dispatcher: { start(): void; stop(options?: { abandon?: boolean }): Promise<void>; readonly enabled: boolean };
  admin: WebhookAdmin;
  /** This process's circuit breakers per receiver origin (empty without a dispatcher): in-process, per host. */
  breakers(): BreakerSnapshot[];
  /** For /health: `{ok, ...stats}`; never throws. */
  health(): Promise<{ ok: boolean; stats?: OutboxStats; error?: string }>;
  /** For the sessions route: validates a session's webhookUrl against this configuration. */
  validateWebhookUrl(url: string): string;
  /** Registers the metrics later than construction (the router's registry exists only after the outbox is needed). Once. */
  registerMetrics(registry: Registry): void;
}

/**
 * Builds the webhook system. Without WEBHOOK_SECRET nothing is written and the dispatcher does not run
 * (session webhookUrls are refused by `validateWebhookUrl`); without BACKEND_URL only session webhookUrls
 * receive events.
 */
export function createWebhookSystem(options: WebhookSystemOptions): WebhookSystem {
  const { sql, config } = options;
  const log = options.logger.child({ component: 'webhooks' });
  const w = config.webhooks;
  const secret = w.secret;
  let dispatcher: WebhookDispatcher | undefined;
  const admin = new WebhookAdmin({ db: sql, onReplayed: () => dispatcher?.notify() });
  let metrics: WebhookMetrics | undefined;
  const outbox = new OutboxWriter({
    backendUrl: config.backend?.url,
    signingConfigured: secret !== undefined,
    logger: log,
    onEnqueued: () => dispatcher?.notify(),
  });
  let transport: WebhookTransport | undefined;
  if (secret !== undefined) {
    transport = new WebhookTransport({ secret, timeoutMs: w.timeoutMs, maxSockets: w.concurrency });
    const settings: DispatcherSettings = {
      batchSize: w.batchSize,
      concurrency: w.concurrency,
      lockTimeoutMs: w.lockTimeoutMs,
      pollIntervalMs: w.pollIntervalMs,
      maxAgeMs: w.maxAgeMs,
      backoffBaseMs: w.backoffBaseMs,
      backoffMaxMs: w.backoffMaxMs,
      breakerThreshold: w.breakerThreshold,
      breakerHalfOpenMs: w.breakerHalfOpenMs,
      breakerHalfOpenMaxMs: w.breakerHalfOpenMaxMs,
      allowPrivateTargets: w.allowPrivateTargets,
      retentionMs: w.retentionMs,
    };
    dispatcher = new WebhookDispatcher({
      db: sql,
      transport,
      settings,
      logger: log,
      backendUrl: config.backend?.url,
      backendApiKey: config.backend?.apiKey,
      metrics: () => metrics,
      ...(options.name === undefined ? {} : { name: options.name }),
    });
  }
  const registerMetrics = (registry: Registry): void => {
    if (metrics !== undefined) return;
    metrics = new WebhookMetrics(registry, {
      stats: () => admin.stats(),
      breakers: { states: (): Map<string, number> => dispatcher?.breakers.states() ?? new Map<string, number>() },
    });
  };
  if (options.metrics !== undefined) registerMetrics(options.metrics);
  const policy = { allowPrivateTargets: w.allowPrivateTargets, signingConfigured: secret !== undefined };
  return {
    outbox,
    dispatcher: {
      enabled: dispatcher !== undefined,
      start() {
        if (dispatcher === undefined) {
          log.info('WEBHOOK_SECRET unset: webhooks are off');
          return;
        }
        dispatcher.start();
        log.info({ backend: config.backend?.url !== undefined, concurrency: w.concurrency, batchSize: w.batchSize }, 'webhook dispatcher started');
      },
      async stop(stopOptions) {
        await dispatcher?.stop(stopOptions);
        transport?.close();
      },
    },
    admin,
    breakers: () => dispatcher?.breakers.snapshot() ?? [],
    async health() {
      try {
        const stats = await admin.stats();
        return { ok: true, stats };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    },
    validateWebhookUrl: (url) => validateWebhookUrl(url, policy),
    registerMetrics,
  };
}
