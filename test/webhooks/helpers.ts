/** Shared set-up of the webhook tests: a migrated database (PostgreSQL or PGlite), config, events. */
import { randomBytes } from 'node:crypto';
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { GatewayConfig, Logger, SqlDatabase, WebhookEvent, WebhookOutbox, WebhookTopic } from '@wagw/shared';
import { PgliteDatabase, PostgresDatabase, migrate } from '@wagw/stores';
import { RouterMetrics, backend, webhooks } from '@wagw/router';
import type { WaSimulator } from '@wagw/wa-sim';
import { createTestDatabase, startPrivateRedis, startTestBackend, tempDir, testLogger } from '../harness/index.ts';
import type { Cleanup, TestBackend } from '../harness/index.ts';
import { productionStores, sessionTestEnv, startSim } from '../sessions/helpers.ts';

export const { createWebhookSystem, sessionWebhookSecret } = webhooks;
/** For startTestBackend: a session URL on the test backend verifies with that session's derived secret. */
export const sessionSecretFor = (backendUrl: () => string) => (path: string, sessionId: string): string => sessionWebhookSecret(SECRET, sessionId, `${backendUrl()}${path}`);
export type WebhookSystem = webhooks.WebhookSystem;
export const { createBackendClient } = backend;

export const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

export function quietLogger(): Logger {
  return createRootLogger({ proc: 'test', level: process.env['TEST_LOG_LEVEL'] ?? 'silent', destination: testLogger().destination });
}

/** Short timings so failures, retries, leases and breakers play out in a second or two. */
export function webhookConfig(overrides: Record<string, string | undefined> = {}): GatewayConfig {
  return loadConfig({
    NODE_ENV: 'test',
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_TIMEOUT_MS: '300',
    WEBHOOK_LOCK_TIMEOUT_MS: '1000',
    WEBHOOK_BACKOFF_BASE_MS: '20',
    WEBHOOK_BACKOFF_MAX_MS: '150',
    WEBHOOK_POLL_INTERVAL_MS: '50',
    WEBHOOK_BREAKER_THRESHOLD: '5',
    WEBHOOK_BREAKER_HALF_OPEN_MS: '150',
    WEBHOOK_BREAKER_HALF_OPEN_MAX_MS: '150',
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_BATCH_SIZE: '100',
    WEBHOOK_CONCURRENCY: '32',
    HEARTBEAT_INTERVAL_MS: '100',
    BACKEND_TIMEOUT_MS: '300',
    ...overrides,
  });
}

export type DbKind = 'postgres' | 'pglite';

/** A fresh migrated database; closed (and dropped) at the test's end. */
export async function openDb(kind: DbKind, t: Cleanup, logger: Logger, poolMax = 4): Promise<SqlDatabase & { url?: string }> {
  if (kind === 'pglite') {
    const dir = await tempDir(undefined, 'wagw-webhooks-');
    const db = await PgliteDatabase.open({ dataDir: dir.path, port: 0, logger });
    t.after(async () => {
      await db.close();
      await dir.remove();
    });
    await migrate(db, { logger });
    return db;
  }
  const tdb = await createTestDatabase();
  const db = await PostgresDatabase.connect(tdb.url, { logger, poolMax });
  t.after(async () => {
    await db.close().catch(() => undefined);
    await tdb.drop();
  });
  await migrate(db, { logger });
  return Object.assign(db, { url: tdb.url });
}

/** A second pool on the same PostgreSQL database (a second router). */
export async function secondPool(url: string, t: Cleanup, logger: Logger): Promise<SqlDatabase> {
  const db = await PostgresDatabase.connect(url, { logger, poolMax: 4 });
  t.after(() => db.close().catch(() => undefined));
  return db;
}

export function event(topic: WebhookTopic, sessionId: string, n: number, data: unknown = { n }): WebhookEvent {
  return { id: `evt_${sessionId}_${topic}_${n}`, topic, sessionId, occurredAt: new Date(1_700_000_000_000 + n).toISOString(), data };
}

/** Enqueues events, each in its own transaction (as the state writers do). */
export async function enqueueAll(
  db: SqlDatabase,
  outbox: WebhookOutbox,
  events: readonly WebhookEvent[],
  sessionWebhookUrl?: string,
): Promise<void> {
  for (const e of events) await db.transaction((tx) => outbox.enqueue(tx, e, sessionWebhookUrl));
}
type Registry = RouterMetrics['registry'];

export function registry(): Registry {
  return new RouterMetrics({ defaultMetrics: false }).registry;
}

/** Value of one counter/gauge sample from a registry. */
export async function metricValue(reg: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await reg.getSingleMetric(name)?.get();
  let total = 0;
  for (const v of metric?.values ?? []) {
    if (Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)) total += v.value;
  }
  return total;
}

export async function outboxRows(db: SqlDatabase): Promise<{ id: number; event_id: string; endpoint: string; status: string; attempts: number; payload: unknown }[]> {
  const { rows } = await db.query<{ id: number; event_id: string; endpoint: string; status: string; attempts: number; payload: unknown }>(
    'SELECT id, event_id, endpoint, status, attempts, payload FROM webhook_outbox ORDER BY id',
  );
  return rows;
}

/**
 * What a real router process talks to in the backend tests: the simulator, Redis (a private server, so tests
 * may stop it) + PostgreSQL + S3, and the test backend verifying signatures with a fresh WEBHOOK_SECRET. `env`
 * is the router's environment (one shard) with `BACKEND_URL` set; `overrides` adds to it.
 */
export async function startBackendCluster(t: Cleanup, overrides: Record<string, string>): Promise<{ sim: WaSimulator; backend: TestBackend; env: Record<string, string>; databaseUrl: string }> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const dir = await tempDir(t);
  const [{ sim, env: simEnv }, prod, redis, backend] = await Promise.all([startSim(t, dir.path), productionStores(t), startPrivateRedis(t), startTestBackend({ secret })]);
  t.after(() => backend.stop());
  const env = sessionTestEnv(dir.path, {
    ...simEnv,
    ...prod.env,
    REDIS_URL: redis.url,
    SHARD_COUNT: '1',
    BACKEND_URL: backend.url,
    WEBHOOK_SECRET: secret,
    ...overrides,
  });
  return { sim, backend, env, databaseUrl: prod.env['DATABASE_URL'] ?? '' };
}
