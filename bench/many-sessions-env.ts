/**
 * Router settings for benches that run thousands of sessions on one host (bench/scale.ts, bench/shard-memory.ts):
 * leases and deadlines long enough that a login burst on 2 busy cores does not read as a failure.
 */
export const MANY_SESSIONS_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'error',
  LEASE_TTL_MS: '30000',
  LEASE_RENEW_INTERVAL_MS: '10000',
  HOST_DEAD_AFTER_MS: '30000',
  SHARD_READY_TIMEOUT_MS: '120000',
  IPC_CALL_TIMEOUT_MS: '120000',
  SHUTDOWN_TIMEOUT_MS: '600000',
  SHARD_STOP_TIMEOUT_MS: '300000',
};
