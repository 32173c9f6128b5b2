/** Shared set-up for the router integration tests: real shard processes, fake stores, quick timeouts. */
import { fileURLToPath } from 'node:url';
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { GatewayConfig, Logger } from '@wagw/shared';
import type { RouterStores } from '@wagw/router';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const ROUTER_MAIN = fileURLToPath(import.meta.resolve('@wagw/router/main'));
/** The real shard entry: every supervisor gets its entry passed in (the router package never resolves it). */
export const SHARD_MAIN = fileURLToPath(import.meta.resolve('@wagw/shard/main'));

/** Quick timeouts so the tests finish in seconds; overrides are environment variable names. */
export function testConfig(overrides: Record<string, string> = {}): GatewayConfig {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    SHARD_COUNT: '2',
    WORKER_THREADS: '1',
    SHARD_READY_TIMEOUT_MS: '20000',
    IPC_CALL_TIMEOUT_MS: '5000',
    SHARD_STOP_TIMEOUT_MS: '1000',
    SHARD_RESTART_BACKOFF_MS: '50',
    SHARD_RESTART_BACKOFF_MAX_MS: '200',
    SHARD_CRASH_LOOP_MAX: '3',
    SHARD_CRASH_LOOP_WINDOW_MS: '60000',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...overrides,
  });
}

export function testLogger(level = 'warn'): Logger {
  return createRootLogger({ proc: 'test', level });
}

export function fakeStores(): RouterStores & { closed: number } {
  const stores = {
    closed: 0,
    health: async () => ({ directory: { ok: true, kind: 'memory', latencyMs: 0 } }),
    close: async () => {
      stores.closed++;
    },
  };
  return stores;
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
