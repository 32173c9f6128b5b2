/**
 * The only module that reads `process.env`. `loadConfig()` validates every variable at once, reports all
 * problems together with their variable names, and returns a deeply frozen object. Durations are `...Ms`.
 * Every variable is documented in docs/configuration.md (a test keeps the two in step).
 */
import os from 'node:os';
import path from 'node:path';
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const urlWith = (schemes: readonly string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `must be a URL with scheme ${schemes.join(' or ')}` },
  );

/** Every environment variable the gateway reads, with its default and meaning (the doc is generated from it). */
export const ENV_SPEC = {
  NODE_ENV: { schema: z.enum(['development', 'production', 'test']), default: 'development', doc: 'Run mode. Rate limiting is on only in production.' },
  LOG_LEVEL: { schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), default: 'info', doc: 'pino log level for router and shards.' },
  HOST: { schema: z.string().min(1), default: '127.0.0.1', doc: 'Address the router listens on (0.0.0.0 in containers).' },
  PORT: { schema: int(0, 65535), default: '8080', doc: 'Port the router listens on (0 picks a free one).' },
  HOST_ID: { schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'), default: os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'host', doc: 'This host\'s id in the cluster (defaults to the hostname).' },
  PUBLIC_URL: { schema: urlWith(['http', 'https']).optional(), default: undefined, doc: 'URL other routers use to reach this one (defaults to http://HOST:PORT).' },
  DATA_DIR: { schema: z.string().min(1), default: './data', doc: 'Directory for embedded stores (PGlite, local blobs).' },
  SHARD_COUNT: { schema: int(1, 256), default: String(os.availableParallelism()), doc: 'Shard processes on this host (default: one per core).' },
  SHARD_MAX_SESSIONS: { schema: int(1, 100_000), default: '1000', doc: 'Sessions one shard accepts before it counts as full.' },
  SHARD_READY_TIMEOUT_MS: { schema: int(100, 600_000), default: '20000', doc: 'Time a new shard has to answer the init handshake.' },
  IPC_CALL_TIMEOUT_MS: { schema: int(10, 600_000), default: '30000', doc: 'Deadline of one router-to-shard call.' },
  SHARD_STOP_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'Grace between SIGTERM and SIGKILL for a shard.' },
  SHARD_RESTART_BACKOFF_MS: { schema: int(10, 600_000), default: '500', doc: 'First delay before restarting a crashed shard (doubles per crash).' },
  SHARD_RESTART_BACKOFF_MAX_MS: { schema: int(10, 3_600_000), default: '30000', doc: 'Cap of the restart delay.' },
  SHARD_CRASH_LOOP_MAX: { schema: int(1, 1000), default: '5', doc: 'Crashes within SHARD_CRASH_LOOP_WINDOW_MS after which a shard is given up on.' },
  SHARD_CRASH_LOOP_WINDOW_MS: { schema: int(1000, 86_400_000), default: '60000', doc: 'Window for counting crashes.' },
  SHUTDOWN_TIMEOUT_MS: { schema: int(100, 600_000), default: '25000', doc: 'Total time SIGTERM may take before the router forces its exit.' },
  WORKER_THREADS: { schema: int(1, 64), default: '2', doc: 'piscina threads per shard for CPU work (QR images, media).' },
  REDIS_URL: { schema: urlWith(['redis', 'rediss']).optional(), default: undefined, doc: 'Redis for leases, QR cache and rate limits. Unset: in-process directory (single host).' },
  LEASE_TTL_MS: { schema: int(1000, 600_000), default: '15000', doc: 'Lifetime of a session lease without renewal.' },
  LEASE_RENEW_INTERVAL_MS: { schema: int(100, 300_000), default: '5000', doc: 'How often a shard renews its leases (in one batch).' },
  DATABASE_URL: { schema: urlWith(['postgres', 'postgresql']).optional(), default: undefined, doc: 'PostgreSQL for messages and the webhook outbox. Unset: embedded PGlite under DATA_DIR.' },
  DATABASE_POOL_MAX: { schema: int(1, 200), default: '10', doc: 'pg pool size per process (embedded mode always uses 1).' },
  PGLITE_PORT: { schema: int(0, 65535), default: '0', doc: 'Port of the embedded PGlite wire server (0 picks a free one).' },
  S3_ENDPOINT: { schema: urlWith(['http', 'https']).optional(), default: undefined, doc: 'S3/MinIO endpoint URL (alias MINIO_ENDPOINT). Unset: blobs under DATA_DIR.' },
  S3_ACCESS_KEY: { schema: z.string().min(1).optional(), default: undefined, doc: 'S3 access key (alias MINIO_ACCESS_KEY).' },
  S3_SECRET_KEY: { schema: z.string().min(1).optional(), default: undefined, doc: 'S3 secret key (alias MINIO_SECRET_KEY).' },
  S3_BUCKET: { schema: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'), default: 'wa-gateway', doc: 'Bucket for auth state and media (alias MINIO_BUCKET); created if missing.' },
  S3_REGION: { schema: z.string().min(1), default: 'us-east-1', doc: 'S3 region (alias MINIO_REGION).' },
  S3_PATH_STYLE: { schema: bool, default: 'true', doc: 'Path-style bucket addressing (MinIO, s3rver).' },
  RATE_LIMITING_ENABLED: { schema: bool.optional(), default: undefined, doc: 'Set false to turn rate limiting off even in production.' },
  DEFAULT_COUNTRY: { schema: z.string().refine((v) => /^[A-Z]{2}$/.test(v) && isSupportedCountry(v), { message: 'must be an ISO 3166-1 alpha-2 country code known to libphonenumber (e.g. ID, US)' }), default: 'ID', doc: 'Country of phone numbers given without an international prefix (087733760363, 87733760363).' },
  SEND_RATE_PER_SEC: { schema: z.coerce.number().min(0).max(1000), default: '1', doc: 'Sustained sends per second per session (token bucket refill); 0 turns the send governor off.' },
  SEND_BURST: { schema: int(1, 1000), default: '5', doc: 'Sends a session may make back to back before SEND_RATE_PER_SEC pacing applies (token bucket size).' },
  SEND_PER_RECIPIENT_INTERVAL_MS: { schema: int(0, 3_600_000), default: '1000', doc: 'Minimum time between two sends of one session to the same chat (0: no per-recipient pacing).' },
  SEND_QUEUE_MAX: { schema: int(1, 100_000), default: '100', doc: 'Sends waiting per session; more, or a projected wait beyond SEND_QUEUE_TIMEOUT_MS, answer 429 QUEUE_FULL with Retry-After.' },
  SEND_QUEUE_TIMEOUT_MS: { schema: int(100, 3_600_000), default: '25000', doc: 'Longest a queued send may wait to start; then it fails with QUEUE_TIMEOUT and nothing is sent.' },
  MEDIA_MAX_BYTES: { schema: int(1024, 2 * 1024 ** 3), default: String(64 * 1024 ** 2), doc: 'Largest media file accepted for sending (upload, base64 or URL) in bytes.' },
  MEDIA_FETCH_TIMEOUT_MS: { schema: int(100, 600_000), default: '30000', doc: 'Deadline for downloading a media URL given in a send request.' },
  INBOUND_MEDIA_DOWNLOAD: { schema: z.enum(['eager', 'lazy']), default: 'eager', doc: 'eager: copy inbound media to the blob store on arrival; lazy: on the first GET of .../media.' },
} as const;

const ALIASES: Readonly<Record<string, keyof typeof ENV_SPEC>> = {
  MINIO_ENDPOINT: 'S3_ENDPOINT',
  MINIO_ACCESS_KEY: 'S3_ACCESS_KEY',
  MINIO_SECRET_KEY: 'S3_SECRET_KEY',
  MINIO_BUCKET: 'S3_BUCKET',
  MINIO_REGION: 'S3_REGION',
};

type EnvSpec = typeof ENV_SPEC;
type Raw = { [K in keyof EnvSpec]: z.output<EnvSpec[K]['schema']> };

export interface S3Config {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  pathStyle: boolean;
}

export interface GatewayConfig {
  nodeEnv: 'development' | 'production' | 'test';
  logLevel: string;
  http: { host: string; port: number; publicUrl: string | undefined };
  hostId: string;
  dataDir: string;
  shards: {
    count: number;
    maxSessions: number;
    readyTimeoutMs: number;
    callTimeoutMs: number;
    stopTimeoutMs: number;
    restartBackoffMs: number;
    restartBackoffMaxMs: number;
    crashLoopMax: number;
    crashLoopWindowMs: number;
    workerThreads: number;
  };
  shutdownTimeoutMs: number;
  redis: { url: string } | undefined;
  lease: { ttlMs: number; renewIntervalMs: number };
  database: { url: string; poolMax: number } | undefined;
  pglitePort: number;
  s3: S3Config | undefined;
  rateLimit: { enabled: boolean; reason: string };
  messaging: MessagingConfig;
}

export interface MessagingConfig {
  /** ISO 3166-1 alpha-2 country for numbers without an international prefix. */
  defaultCountry: string;
  /** The per-session send governor; `ratePerSec: 0` turns it off. */
  send: { ratePerSec: number; burst: number; perRecipientIntervalMs: number; queueMax: number; queueTimeoutMs: number };
  media: { maxBytes: number; fetchTimeoutMs: number; inboundDownload: 'eager' | 'lazy' };
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Reads, validates and freezes the configuration. Throws one ConfigError naming every bad variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): GatewayConfig {
  const problems: string[] = [];
  const source: Record<string, string | undefined> = {};
  for (const name of Object.keys(ENV_SPEC)) source[name] = env[name];
  for (const [alias, name] of Object.entries(ALIASES)) {
    const value = env[alias];
    if (value === undefined || value === '') continue;
    if (source[name] !== undefined && source[name] !== '' && source[name] !== value) {
      problems.push(`${alias}: conflicts with ${name}; set only one of them`);
    }
    source[name] ??= value;
  }
  const raw: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(ENV_SPEC) as [keyof EnvSpec, EnvSpec[keyof EnvSpec]][]) {
    const given = source[name];
    const input = given === undefined || given === '' ? spec.default : given.trim();
    const result = spec.schema.safeParse(input);
    if (result.success) raw[name] = result.data;
    else problems.push(`${name}: ${result.error.issues.map((i) => i.message).join('; ')} (got ${JSON.stringify(given)})`);
  }
  const r = raw as Raw;
  if (problems.length === 0) {
    const s3Given = [r.S3_ENDPOINT, r.S3_ACCESS_KEY, r.S3_SECRET_KEY].filter((v) => v !== undefined).length;
    if (s3Given > 0 && s3Given < 3) {
      problems.push('S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY: set all three (or none for the local data directory)');
    }
    if (r.LEASE_RENEW_INTERVAL_MS * 2 > r.LEASE_TTL_MS) {
      problems.push('LEASE_RENEW_INTERVAL_MS: must be at most half of LEASE_TTL_MS so a lease survives one missed renewal');
    }
    if (r.SHARD_RESTART_BACKOFF_MAX_MS < r.SHARD_RESTART_BACKOFF_MS) {
      problems.push('SHARD_RESTART_BACKOFF_MAX_MS: must not be below SHARD_RESTART_BACKOFF_MS');
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const production = r.NODE_ENV === 'production';
  const rateLimit =
    r.RATE_LIMITING_ENABLED === false
      ? { enabled: false, reason: 'RATE_LIMITING_ENABLED=false' }
      : production
        ? { enabled: true, reason: 'NODE_ENV=production' }
        : { enabled: false, reason: `NODE_ENV=${r.NODE_ENV} (rate limiting runs only in production)` };

  return deepFreeze({
    nodeEnv: r.NODE_ENV,
    logLevel: r.LOG_LEVEL,
    http: { host: r.HOST, port: r.PORT, publicUrl: r.PUBLIC_URL },
    hostId: r.HOST_ID,
    dataDir: path.resolve(r.DATA_DIR),
    shards: {
      count: r.SHARD_COUNT,
      maxSessions: r.SHARD_MAX_SESSIONS,
      readyTimeoutMs: r.SHARD_READY_TIMEOUT_MS,
      callTimeoutMs: r.IPC_CALL_TIMEOUT_MS,
      stopTimeoutMs: r.SHARD_STOP_TIMEOUT_MS,
      restartBackoffMs: r.SHARD_RESTART_BACKOFF_MS,
      restartBackoffMaxMs: r.SHARD_RESTART_BACKOFF_MAX_MS,
      crashLoopMax: r.SHARD_CRASH_LOOP_MAX,
      crashLoopWindowMs: r.SHARD_CRASH_LOOP_WINDOW_MS,
      workerThreads: r.WORKER_THREADS,
    },
    shutdownTimeoutMs: r.SHUTDOWN_TIMEOUT_MS,
    redis: r.REDIS_URL === undefined ? undefined : { url: r.REDIS_URL },
    lease: { ttlMs: r.LEASE_TTL_MS, renewIntervalMs: r.LEASE_RENEW_INTERVAL_MS },
    database: r.DATABASE_URL === undefined ? undefined : { url: r.DATABASE_URL, poolMax: r.DATABASE_POOL_MAX },
    pglitePort: r.PGLITE_PORT,
    s3:
      r.S3_ENDPOINT === undefined || r.S3_ACCESS_KEY === undefined || r.S3_SECRET_KEY === undefined
        ? undefined
        : {
            endpoint: r.S3_ENDPOINT,
            accessKey: r.S3_ACCESS_KEY,
            secretKey: r.S3_SECRET_KEY,
            bucket: r.S3_BUCKET,
            region: r.S3_REGION,
            pathStyle: r.S3_PATH_STYLE,
          },
    rateLimit,
    messaging: {
      defaultCountry: r.DEFAULT_COUNTRY,
      send: {
        ratePerSec: r.SEND_RATE_PER_SEC,
        burst: r.SEND_BURST,
        perRecipientIntervalMs: r.SEND_PER_RECIPIENT_INTERVAL_MS,
        queueMax: r.SEND_QUEUE_MAX,
        queueTimeoutMs: r.SEND_QUEUE_TIMEOUT_MS,
      },
      media: { maxBytes: r.MEDIA_MAX_BYTES, fetchTimeoutMs: r.MEDIA_FETCH_TIMEOUT_MS, inboundDownload: r.INBOUND_MEDIA_DOWNLOAD },
    },
  } satisfies GatewayConfig);
}
