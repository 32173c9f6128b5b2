/**
 * Router process entry: the only place that wires config, logger, stores, shards and HTTP together.
 * Bad configuration prints every bad variable and exits 1. SIGTERM/SIGINT stop gracefully and exit 0
 * within SHUTDOWN_TIMEOUT_MS (or SIGKILL the shards and exit 1 when that deadline passes).
 */
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { GatewayConfig } from '@wagw/shared';
import { GatewayRouter } from './router.ts';
import type { RouterStores } from './router.ts';

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

// TODO(stores): replace with `openStores(config, logger)` from @wagw/stores once it exists.
const stores: RouterStores = {
  health: async () => ({}),
  close: async () => undefined,
};

let router: GatewayRouter;
try {
  router = await GatewayRouter.create({ config, logger, stores });
} catch (err) {
  logger.fatal({ err }, 'router failed to start');
  process.stderr.write(`router failed to start: ${(err as Error).message}\n`);
  await stores.close().catch(() => undefined);
  process.exit(1);
}

logger.info({ url: router.url, hostId: config.hostId, shards: config.shards.count, dataDir: config.dataDir }, 'router listening');

let stopping = false;
function shutdown(signal: NodeJS.Signals): void {
  if (stopping) {
    logger.info({ signal }, 'already stopping');
    return;
  }
  stopping = true;
  logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutdown requested');
  const force = setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline passed; killing shards');
    router.supervisor.killAll();
    setTimeout(() => process.exit(1), 200).unref();
  }, config.shutdownTimeoutMs);
  force.unref();
  router.stop(`signal ${signal}`).then(
    () => {
      clearTimeout(force);
      process.exit(0);
    },
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      router.supervisor.killAll();
      process.exit(1);
    },
  );
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
