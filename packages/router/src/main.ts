/**
 * Router process entry: the only place that wires config, logger, stores, shards and HTTP together.
 * Bad configuration prints every bad variable and exits 1; an unreachable dependency is reported by name.
 * SIGTERM/SIGINT stop gracefully and exit 0 within SHUTDOWN_TIMEOUT_MS (past that deadline the shards are
 * SIGKILLed and the exit code is 1).
 */
import { fileURLToPath } from 'node:url';
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { GatewayConfig } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import type { Stores } from '@wagw/stores';
import { createBackendClient } from './backend/index.ts';
import type { BackendClient } from './backend/index.ts';
import { installProcessHandlers } from './process-handlers.ts';
import { composeGateway } from './compose.ts';
import type { GatewayRouter } from './router.ts';
import { createAuthenticator, logRateLimitDecision, RateLimits } from './security/index.ts';
import type { Authenticator } from './security/index.ts';

const VERSION = '0.1.0';
/** The shard process entry: resolved here, the composition root's caller, so the router code never imports the shard. */
const SHARD_ENTRY = fileURLToPath(import.meta.resolve('@wagw/shard/main'));

let config: GatewayConfig;
try {
  config = loadConfig();
} catch (err) {
  if ((err as { code?: unknown }).code === 'CONFIG_INVALID') {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  throw err;
}

const logger = createRootLogger({ proc: 'router', level: config.logLevel });

// Authentication is decided before anything listens: production without credentials is a config error.
let auth: Authenticator;
try {
  auth = createAuthenticator(config, { logger });
} catch (err) {
  if ((err as { code?: unknown }).code === 'CONFIG_INVALID') {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  throw err;
}
auth.logStartup();
logRateLimitDecision(config, logger);

let router: GatewayRouter | undefined;
let stores: Stores | undefined;
let limits: RateLimits | undefined;
let backend: BackendClient | undefined;
let stopRequested: NodeJS.Signals | undefined;

function shutdown(signal: NodeJS.Signals): void {
  if (stopRequested !== undefined) {
    logger.info({ signal }, 'already stopping');
    return;
  }
  stopRequested = signal;
  logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutdown requested');
  const force = setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline passed; killing shards');
    router?.supervisor.killAll();
    setTimeout(() => process.exit(1), 200).unref();
  }, config.shutdownTimeoutMs);
  force.unref();
  // Before the router exists, start-up notices the request after its current step (see `abortIfStopping`).
  if (router === undefined) return;
  router.stop(`signal ${signal}`).then(
    () => {
      clearTimeout(force);
      process.exit(0);
    },
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      router?.supervisor.killAll();
      process.exit(1);
    },
  );
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// A stray rejection is logged (the router keeps serving); an uncaught exception stops the router, exit code 1.
installProcessHandlers(process, logger, () => {
  const force = setTimeout(() => process.exit(1), config.shutdownTimeoutMs);
  force.unref();
  if (router === undefined) process.exit(1);
  void router.stop('uncaught exception').finally(() => process.exit(1));
});

/** A signal during start-up: undo what is up and exit 0. */
async function abortIfStopping(): Promise<void> {
  if (stopRequested === undefined) return;
  logger.info({ signal: stopRequested }, 'stopped during start-up');
  await router?.stop(`signal ${stopRequested}`);
  await stores?.close().catch(() => undefined);
  await limits?.close();
  process.exit(0);
}

try {
  stores = await openStores(config, logger);
} catch (err) {
  // An unreachable Redis/PostgreSQL/S3 is reported by name (DEPENDENCY_UNAVAILABLE), not as a stack.
  const code = (err as { code?: unknown }).code;
  logger.fatal(code === 'DEPENDENCY_UNAVAILABLE' ? { code } : { err }, 'stores failed to open');
  process.stderr.write(`router failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
const opened = stores;
await abortIfStopping();

try {
  limits = await RateLimits.create(config, { logger });
  ({ router } = await composeGateway({
    config,
    logger,
    stores: opened,
    shardEntry: SHARD_ENTRY,
    security: { auth, limits },
    // The worker-registry client stops before the stores close.
    beforeStoresClose: async () => {
      await backend?.stop().catch((err: unknown) => logger.error({ err }, 'stopping the backend client failed'));
    },
  }));
} catch (err) {
  logger.fatal({ err }, 'router failed to start');
  process.stderr.write(`router failed to start: ${(err as Error).message}\n`);
  await opened.close().catch(() => undefined);
  await limits?.close();
  process.exit(1);
}

// The backend's worker registry, in the background: start-up and the API never wait for the backend.
{
  const r = router;
  const capacity = config.shards.count * config.shards.maxSessions;
  backend = createBackendClient({
    backend: config.backend,
    logger,
    registration: () => ({ endpoint: config.http.publicUrl ?? r.url, shards: r.supervisor.list().length, capacity, version: VERSION }),
    getLoad: () => {
      const sessions = r.sessions?.localCount ?? 0;
      const shards = r.supervisor.list().length;
      const cap = Math.max(1, shards * config.shards.maxSessions);
      const phase = r.lifecycle.phase;
      return { status: phase === 'stopping' ? 'stopping' : phase, sessions, load: Math.min(1, sessions / cap), shards };
    },
    onAssigned: async (assigned) => {
      await r.restoreAssigned(assigned);
    },
  });
  backend.start();
}
await abortIfStopping();

logger.info({ url: router.url, hostId: config.hostId, shards: config.shards.count, dataDir: config.dataDir }, 'router listening');
process.stdout.write(`wa-gateway router listening on ${router.url} (host ${config.hostId}, ${config.shards.count} shards, data in ${config.dataDir})\n`);
