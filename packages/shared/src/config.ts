/**
 * The only module that reads `process.env`. `loadConfig()` validates every variable at once, reports all
 * problems together with their variable names, and returns a deeply frozen object. Durations are `...Ms`.
 * Every variable is documented in docs/configuration.md (a test keeps the two in step).
 * Over 500 lines on purpose: `ENV_SPEC`, the typed config and `loadConfig`'s cross-field checks are one
 * contract (the house style: "only the config module reads process.env"), and one file keeps every variable's
 * schema, default and validation in one place to read and diff.
 */
import { readFileSync } from 'node:fs';
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
  TRUST_PROXY: { schema: bool, default: 'false', doc: 'Trust X-Forwarded-For/-Proto/-Host from a load balancer (Koa app.proxy): the client IP for rate limits comes from X-Forwarded-For. Only behind a proxy that sets it.' },
  CLUSTER_SECRET: { schema: z.string().min(32, 'must be at least 32 characters').optional(), default: undefined, doc: 'Shared by every router of a cluster: a call forwarded to the session\'s owning host is signed with it (HMAC, 30 s validity) and not rate-limited again there. Unset: forwarded calls are unsigned and counted again by the owner (docs/security.md).' },
  DATA_DIR: { schema: z.string().min(1), default: './data', doc: 'Directory for embedded stores (PGlite, local blobs).' },
  SHARD_COUNT: { schema: int(1, 256), default: String(os.availableParallelism()), doc: 'Shard processes on this host (default: one per core).' },
  SHARD_MAX_SESSIONS: { schema: int(1, 100_000), default: '1000', doc: 'Sessions one shard accepts before it counts as full.' },
  SESSION_PLACE_CONCURRENCY: {
    schema: int(1, 256),
    default: '8',
    doc: "Placements one router runs at once (lease claim, row write, the shard's start with its auth-state load): bounds the start of a restore, a dead host's sessions or a drain. Logins themselves are paced per shard (SESSION_LOGIN_*).",
  },
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
  LEASE_RENEW_INTERVAL_MS: { schema: int(100, 300_000), default: '5000', doc: 'How often the router renews the leases of its host\'s sessions (in one batch).' },
  HOST_DEAD_AFTER_MS: { schema: int(1000, 3_600_000), default: '15000', doc: 'A host whose registry heartbeat (one per LEASE_RENEW_INTERVAL_MS) is older than this is dead to the others: its sessions whose leases lapsed are claimed by the live hosts. At least twice LEASE_RENEW_INTERVAL_MS.' },
  DRAIN_ON_SHUTDOWN: { schema: bool, default: 'false', doc: 'SIGTERM first hands every session of this host to the other live hosts (like POST /api/v1/admin/hosts/:id/drain), then stops. Without other hosts the sessions just stop and are restored at the next start.' },
  REBALANCE_ENABLED: { schema: bool, default: 'false', doc: 'Move sessions off this host while its load (sessions / capacity) is above the mean of the live hosts by more than REBALANCE_TOLERANCE.' },
  REBALANCE_INTERVAL_MS: { schema: int(1000, 3_600_000), default: '30000', doc: 'How often a host compares its load with the cluster\'s (rebalancing).' },
  REBALANCE_MAX_MOVES_PER_INTERVAL: { schema: int(1, 10_000), default: '10', doc: 'Sessions one host hands off per rebalancing interval at most.' },
  REBALANCE_TOLERANCE: { schema: z.coerce.number().min(0).max(1), default: '0.1', doc: 'Load difference above the cluster mean (a fraction of capacity, 0-1) that rebalancing accepts.' },
  DATABASE_URL: { schema: urlWith(['postgres', 'postgresql']).optional(), default: undefined, doc: 'PostgreSQL for messages and the webhook outbox. Unset: embedded PGlite under DATA_DIR.' },
  DATABASE_POOL_MAX: { schema: int(1, 200), default: '10', doc: 'pg pool size per process (embedded mode always uses 1).' },
  DATABASE_POOL_MAX_WAITING: { schema: int(1, 100_000), default: '1000', doc: 'Requests of one process that may wait for a PostgreSQL connection at once. One more fails at once with 503 DEPENDENCY_UNAVAILABLE ("pool saturated") instead of queueing behind the others; a waiter also gives up after 3 s without a connection. Bounds the queue when the database is slow or the callers retry harder than it answers (wagw_db_pool_clients{state="waiting"}).' },
  DATABASE_QUERY_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'A PostgreSQL query without an answer in this time fails with DEPENDENCY_UNAVAILABLE (a partitioned server must not hang API calls or the outbox).' },
  PGLITE_PORT: { schema: int(0, 65535), default: '0', doc: 'Embedded PGlite wire server: 0 serves it on a Unix socket in a private 0700 directory (only this OS user can connect; PGlite checks no password); a port N serves it on 127.0.0.1:N without a password, for debugging on a single-user machine.' },
  S3_ENDPOINT: { schema: urlWith(['http', 'https']).optional(), default: undefined, doc: 'S3/MinIO endpoint URL (alias MINIO_ENDPOINT). Unset: blobs under DATA_DIR.' },
  S3_ACCESS_KEY: { schema: z.string().min(1).optional(), default: undefined, doc: 'S3 access key (alias MINIO_ACCESS_KEY).' },
  S3_SECRET_KEY: { schema: z.string().min(1).optional(), default: undefined, doc: 'S3 secret key (alias MINIO_SECRET_KEY).' },
  S3_BUCKET: { schema: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'), default: 'wa-gateway', doc: 'Bucket for auth state and media (alias MINIO_BUCKET); created if missing.' },
  S3_REGION: { schema: z.string().min(1), default: 'us-east-1', doc: 'S3 region (alias MINIO_REGION).' },
  S3_PATH_STYLE: { schema: bool, default: 'true', doc: 'Path-style bucket addressing (MinIO, s3rver).' },
  S3_REQUEST_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'An S3 request whose connection sends nothing for this long fails (a partitioned store answers nothing; without it an auth write would wait forever).' },
  BACKEND_URL: { schema: urlWith(['http', 'https']).optional(), default: undefined, doc: 'Base URL of the backend (worker registry and webhooks to {BACKEND_URL}/api/webhooks/{topic}). Unset: standalone, the backend is never called.' },
  BACKEND_API_KEY: { schema: z.string().min(1).optional(), default: undefined, doc: 'Sent as `Authorization: Bearer` on every call to BACKEND_URL (registry and webhooks); never to a session\'s own webhookUrl, never in a payload.' },
  BACKEND_TIMEOUT_MS: { schema: int(100, 120_000), default: '5000', doc: 'Deadline of one worker-registry call to the backend (register, heartbeat, assigned sessions).' },
  WORKER_ID: { schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -').optional(), default: undefined, doc: 'This router\'s id in the backend\'s worker registry (defaults to HOST_ID).' },
  HEARTBEAT_INTERVAL_MS: { schema: int(100, 3_600_000), default: '30000', doc: 'How often the router heartbeats to the backend with its status, sessions and load.' },
  WEBHOOK_SECRET: { schema: z.string().refine((v) => /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v.slice(6), 'base64').length >= 24, 'must be whsec_ followed by at least 24 bytes in base64 (Standard Webhooks)').optional(), default: undefined, doc: 'Standard Webhooks signing secret (`whsec_<base64>`). Required when BACKEND_URL is set; without it no webhook is written (session webhookUrls are refused).' },
  WEBHOOK_TIMEOUT_MS: { schema: int(100, 120_000), default: '10000', doc: 'Deadline of one webhook delivery attempt (connect to end of response).' },
  WEBHOOK_MAX_AGE_MS: { schema: int(1000, 30 * 86_400_000), default: '86400000', doc: 'How long a webhook is retried after it was written; then it is dead (listed and replayable under /api/v1/admin/webhooks).' },
  WEBHOOK_BACKOFF_BASE_MS: { schema: int(10, 3_600_000), default: '1000', doc: 'First retry delay of a failed webhook; doubles per attempt with full jitter.' },
  WEBHOOK_BACKOFF_MAX_MS: { schema: int(10, 86_400_000), default: '600000', doc: 'Cap of the webhook retry delay.' },
  WEBHOOK_BATCH_SIZE: { schema: int(1, 5000), default: '200', doc: 'Outbox rows one dispatcher claims per query.' },
  WEBHOOK_CONCURRENCY: { schema: int(1, 1024), default: '64', doc: 'Webhook deliveries in flight per router.' },
  WEBHOOK_LOCK_TIMEOUT_MS: { schema: int(1000, 3_600_000), default: '60000', doc: 'Lease of a claimed outbox row: if its router dies, the row is due again after this long.' },
  WEBHOOK_POLL_INTERVAL_MS: { schema: int(10, 60_000), default: '500', doc: 'How often the dispatcher looks for due rows when nothing woke it (rows enqueued by this router wake it at once).' },
  WEBHOOK_BREAKER_THRESHOLD: { schema: int(1, 10_000), default: '5', doc: 'Consecutive failed deliveries (connection errors, timeouts, 429, 5xx) that open an endpoint\'s circuit breaker.' },
  WEBHOOK_BREAKER_HALF_OPEN_MS: { schema: int(100, 3_600_000), default: '500', doc: 'Time an open breaker waits before its first probe delivery (half-open); each failed probe doubles the wait up to WEBHOOK_BREAKER_HALF_OPEN_MAX_MS.' },
  WEBHOOK_BREAKER_HALF_OPEN_MAX_MS: { schema: int(100, 3_600_000), default: '3000', doc: 'Longest wait between probes of an open breaker: a receiver that comes back gets its backlog at most this long (plus one poll) later. One probe request per origin per wait is all a dead receiver costs. Values below WEBHOOK_BREAKER_HALF_OPEN_MS mean a fixed wait of that.' },
  WEBHOOK_RETENTION_MS: { schema: int(60_000, 365 * 86_400_000), default: '259200000', doc: 'Delivered outbox rows are deleted this long after delivery (dead rows stay until replayed).' },
  WEBHOOK_ALLOW_PRIVATE_TARGETS: { schema: bool, default: 'false', doc: 'Allow session webhookUrls that resolve to loopback, private or link-local addresses (BACKEND_URL is always allowed).' },
  RATE_LIMITING_ENABLED: { schema: bool.optional(), default: undefined, doc: 'Set false to turn rate limiting off even in production.' },
  RATE_LIMIT_PER_IP: { schema: int(1, 10_000_000), default: '600', doc: 'Requests one client IP may make per RATE_LIMIT_WINDOW_MS (API routes; probes are exempt).' },
  RATE_LIMIT_PER_PRINCIPAL: { schema: int(1, 10_000_000), default: '1200', doc: 'Requests one token subject or API key may make per RATE_LIMIT_WINDOW_MS.' },
  RATE_LIMIT_WINDOW_MS: { schema: int(1000, 86_400_000), default: '60000', doc: 'Sliding window of both rate limits.' },
  AUTH_DISABLED: { schema: bool, default: 'false', doc: 'Run without authentication (everyone is an anonymous admin). Required in production when no AUTH_* credential source is set.' },
  AUTH_JWT_SECRET: { schema: z.string().optional(), default: undefined, doc: 'Shared secret for HS256 bearer tokens (at least 32 bytes). Excludes AUTH_JWKS_URL.' },
  AUTH_JWKS_URL: { schema: urlWith(['http', 'https']).optional(), default: undefined, doc: 'JWKS URL for asymmetric bearer tokens (https in production). Excludes AUTH_JWT_SECRET.' },
  AUTH_JWT_ISSUER: { schema: z.string().min(1).optional(), default: undefined, doc: 'Required `iss` of bearer tokens (required when JWTs are configured).' },
  AUTH_JWT_AUDIENCE: { schema: z.string().min(1).optional(), default: undefined, doc: 'Required `aud` of bearer tokens (required when JWTs are configured).' },
  AUTH_JWT_ALGORITHMS: { schema: z.string().min(1).optional(), default: undefined, doc: 'Comma list of accepted JWS algorithms. Unset: HS256 with a secret, RS256,ES256,EdDSA with a JWKS.' },
  AUTH_CLOCK_SKEW_MS: { schema: int(0, 300_000), default: '30000', doc: 'Clock skew tolerated on `exp` and `nbf`.' },
  AUTH_SESSION_CLAIM: { schema: z.string().regex(/^[A-Za-z0-9_:.\/-]{1,100}$/, 'must be a claim name'), default: 'sessions', doc: 'Token claim listing the session ids a token may touch (absent claim: any session).' },
  AUTH_JWKS_COOLDOWN_MS: { schema: int(0, 3_600_000), default: '30000', doc: 'Least time between two JWKS fetches (an unknown `kid` refetches after it).' },
  AUTH_JWKS_TIMEOUT_MS: { schema: int(100, 60_000), default: '5000', doc: 'Deadline of one JWKS fetch.' },
  AUTH_API_KEYS: { schema: z.string().optional(), default: undefined, doc: 'API keys as SHA-256 hashes: comma list of `name:sha256hex:scope1+scope2` (see docs/security.md; session-limited keys go in AUTH_API_KEYS_FILE).' },
  AUTH_API_KEYS_FILE: { schema: z.string().min(1).optional(), default: undefined, doc: 'JSON file of API keys `[{name, sha256, scopes, sessions?}]` (read at start; adds to AUTH_API_KEYS).' },
  METRICS_TOKEN: { schema: z.string().optional(), default: undefined, doc: 'When set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>` (at least 16 characters).' },
  BODY_LIMIT_BYTES: { schema: int(1024, 2 * 1024 ** 3).optional(), default: undefined, doc: 'Largest JSON request body. Unset: room for base64 media of MEDIA_MAX_BYTES (4/3 of it + 64 KiB).' },
  JSON_MAX_DEPTH: { schema: int(2, 1000), default: '32', doc: 'Deepest nesting of arrays/objects accepted in a JSON body.' },
  UPLOAD_QUOTA_BYTES: { schema: int(1024, 1024 ** 4).optional(), default: undefined, doc: 'Bytes of uploads one session may hold at once (until they expire after UPLOAD_TTL_MS), and at most 1000 files. Unset: 4 x MEDIA_MAX_BYTES.' },
  BODY_BUDGET_BYTES: { schema: int(1024, 1024 ** 4).optional(), default: undefined, doc: 'Bytes of large JSON bodies (over 64 KiB, e.g. base64 media) one router buffers at once; past it such requests get 503 BODY_BUDGET_EXHAUSTED. Unset: 4 x BODY_LIMIT_BYTES.' },
  UPLOAD_LIMIT_BYTES: { schema: int(1024, 4 * 1024 ** 3).optional(), default: undefined, doc: 'Largest multipart upload request. Unset: MEDIA_MAX_BYTES + 1 MiB.' },
  DEFAULT_COUNTRY: { schema: z.string().refine((v) => /^[A-Z]{2}$/.test(v) && isSupportedCountry(v), { message: 'must be an ISO 3166-1 alpha-2 country code known to libphonenumber (e.g. ID, US)' }), default: 'ID', doc: 'Country of phone numbers given without an international prefix (087733760363, 87733760363).' },
  SEND_RATE_PER_SEC: { schema: z.coerce.number().min(0).max(1000), default: '1', doc: 'Sustained sends per second per session (token bucket refill); 0 turns the send governor off.' },
  SEND_BURST: { schema: int(1, 1000), default: '5', doc: 'Sends a session may make back to back before SEND_RATE_PER_SEC pacing applies (token bucket size).' },
  SEND_PER_RECIPIENT_INTERVAL_MS: { schema: int(0, 3_600_000), default: '1000', doc: 'Minimum time between two sends of one session to the same chat (0: no per-recipient pacing).' },
  SEND_QUEUE_MAX: { schema: int(1, 100_000), default: '100', doc: 'Sends waiting per session; more, or a projected wait beyond SEND_QUEUE_TIMEOUT_MS, answer 429 QUEUE_FULL with Retry-After.' },
  SEND_QUEUE_TIMEOUT_MS: { schema: int(100, 3_600_000), default: '25000', doc: 'Longest a queued send may wait to start; then it fails with QUEUE_TIMEOUT and nothing is sent.' },
  SEND_REPLY_MARGIN_MS: { schema: int(100, 3_600_000), default: '30000', doc: 'How long past SEND_QUEUE_TIMEOUT_MS the router waits for a shard to answer a send (media upload, encryption, WhatsApp\'s ack); then the send answers 504 with its outcome unknown and its Idempotency-Key released for a retry.' },
  MEDIA_MAX_BYTES: { schema: int(1024, 2 * 1024 ** 3), default: String(64 * 1024 ** 2), doc: 'Largest media file accepted for sending (upload, base64 or URL) in bytes.' },
  MEDIA_URL_ALLOW_PRIVATE: { schema: bool, default: 'false', doc: 'Let a send\'s media.url reach loopback, private and link-local addresses (tests, private deployments). Off: such URLs, names resolving there and redirects there get one uniform 400 before any connection.' },
  MEDIA_DOWNLOAD_BUDGET_BYTES: { schema: int(1024, 64 * 1024 ** 3).optional(), default: undefined, doc: 'Media bytes all sends of one shard may hold in memory at once (URL downloads and uploads, counted as they arrive); past it a send answers 429 QUEUE_FULL. Unset: 4 x MEDIA_MAX_BYTES.' },
  MEDIA_FETCH_TIMEOUT_MS: { schema: int(100, 600_000), default: '30000', doc: "Deadline for downloading media: a URL given in a send request, and an inbound message's media (served lazily after it)." },
  MESSAGE_WRITERS: { schema: int(0, 64), default: '2', doc: 'Group commit of the router\'s message writes (send rows, inbound messages, status changes and their webhook rows): this many transactions commit at once, each carrying every write that arrived while the previous one ran (as one bulk statement per kind), so one fsync and one statement serve many messages; each reply still waits for its own commit. Fewer writers make larger batches: in bench/messages 2 writers cost PostgreSQL 0.9 ms per send against 1.6 ms with 8 (docs/benchmarks.md). Keep it below DATABASE_POOL_MAX (other queries need connections). 0: one transaction per write (no grouping).' },
  IDEMPOTENCY_TTL_MS: { schema: int(60_000, 30 * 86_400_000), default: '86400000', doc: 'How long a completed Idempotency-Key is remembered (replayed); older keys are swept and a retry sends again.' },
  UPLOAD_TTL_MS: { schema: int(60_000, 30 * 86_400_000), default: '86400000', doc: 'Uploads (POST .../uploads) are deleted from the blob store this long after they were stored, used or not.' },
  EXPIRY_SWEEP_INTERVAL_MS: { schema: int(1000, 86_400_000), default: '600000', doc: 'How often each router deletes expired Idempotency-Keys and uploads (safe when several routers sweep).' },
  SSE_MAX_STREAMS: { schema: int(1, 1_000_000), default: '1024', doc: 'Event streams (GET .../events) one router serves at once; more answer 429 TOO_MANY_STREAMS. Each session takes at most 32, one credential at most 8 of a session.' },
  SSE_MAX_STREAMS_PER_PRINCIPAL: { schema: int(1, 1_000_000), default: '256', doc: 'Event streams one token subject or API key (or all anonymous callers together) holds at once on one router.' },
  GROUP_METADATA_CACHE_TTL_MS: { schema: int(1000, 86_400_000), default: '300000', doc: 'Longest a session keeps a group\'s metadata (participants, settings) for its sends; a group notification drops it earlier (docs/groups.md).' },
  GROUP_METADATA_CACHE_MAX: { schema: int(1, 100_000), default: '500', doc: 'Groups whose metadata one session keeps cached (least recently used dropped first).' },
  INBOUND_MEDIA_DOWNLOAD: { schema: z.enum(['eager', 'lazy']), default: 'eager', doc: 'eager: copy inbound media to the blob store on arrival; lazy: on the first GET of .../media.' },
  WA_WEBSOCKET_URL: { schema: urlWith(['ws', 'wss']), default: 'wss://web.whatsapp.com/ws/chat', doc: 'WebSocket URL of WhatsApp (the bundled simulator\'s in tests and demos).' },
  WA_VERSION: { schema: z.string().regex(/^2\.\d{4}\.\d{1,10}$/, 'must look like 2.3000.1023456789').optional(), default: undefined, doc: 'WhatsApp Web version to announce, e.g. 2.3000.1023456789. Unset: the one Baileys ships (never fetched at run time).' },
  WA_ROOT_PUBLIC_KEY: { schema: z.string().refine((v) => Buffer.from(v, 'base64').length === 32 && /^[A-Za-z0-9+/]+=*$/.test(v), 'must be 32 bytes in base64').optional(), default: undefined, doc: 'Base64 root key of the Noise certificate chain (the simulator\'s). Refused in production unless WA_SIMULATOR=true.' },
  WA_MEDIA_HOST: { schema: z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/, 'must be host:port').optional(), default: undefined, doc: 'host:port of the simulator\'s media server: inbound media is fetched only from WhatsApp\'s media hosts (https, *.whatsapp.net) and, with WA_ROOT_PUBLIC_KEY set, from this one host. Requires WA_ROOT_PUBLIC_KEY.' },
  WA_SIMULATOR: { schema: bool, default: 'false', doc: 'Explicitly allow simulator settings (WA_ROOT_PUBLIC_KEY) when NODE_ENV=production (demos).' },
  WA_EXTRA_CA_FILE: { schema: z.string().min(1).optional(), default: undefined, doc: 'PEM file added to the shards\' trusted CAs (the simulator\'s media certificate).' },
  SESSION_LOGIN_CONCURRENCY: { schema: int(1, 64), default: '2', doc: 'Logins/pairings one shard runs at once (each costs CPU for key generation).' },
  SESSION_LOGIN_RATE_PER_SECOND: { schema: int(1, 1000), default: '10', doc: 'Logins/pairings one shard starts per second at most while it sees trouble (for 30 s after a failed login or a socket the server dropped; reconnects included): after a WhatsApp restart drops every socket, reconnects are spaced instead of arriving as one storm. Logins that succeed (a restore of stored sessions) are bounded by SESSION_LOGIN_CONCURRENCY alone.' },
  SESSION_RECONNECT_BASE_MS: { schema: int(10, 600_000), default: '1000', doc: 'First reconnect delay of a session after a dropped connection (doubles, with jitter).' },
  SESSION_RECONNECT_MAX_MS: { schema: int(10, 3_600_000), default: '60000', doc: 'Cap of the reconnect delay.' },
  SESSION_RECONNECT_MAX_ATTEMPTS: { schema: int(1, 10_000), default: '12', doc: 'Reconnect attempts in a row before a session is marked failed.' },
  SESSION_KEY_WRITE_BEHIND: {
    schema: bool,
    default: 'true',
    doc: "Store Signal ratchet updates in the background, group-committed, instead of making Baileys wait for each write (creds, new prekeys and app-state keys are always awaited). A crash can lose the last batch's ratchet steps of received messages, which retry receipts heal (a sent message's steps are always stored before it leaves); `false` waits for every write.",
  },
} as const;

/** Variables whose value a configuration error never echoes (only its length); docs/security.md. */
export const SECRET_VARIABLES: ReadonlySet<keyof typeof ENV_SPEC> = new Set(['WEBHOOK_SECRET', 'AUTH_JWT_SECRET', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'BACKEND_API_KEY', 'METRICS_TOKEN', 'CLUSTER_SECRET']);

/**
 * A rejected value as a configuration error shows it: a secret variable only by its length; anything else with
 * URL user info and password-like query parameters masked, since a URL that failed to parse may still carry
 * a password (everything up to the last `@` goes, so a password holding `/` or `@` does not leak either).
 */
export function describeRejected(name: string, given: string | undefined): string {
  if (given === undefined) return 'unset';
  if ((SECRET_VARIABLES as ReadonlySet<string>).has(name)) return `a value of ${given.length} characters, not shown`;
  const masked = given.replace(/^([^@]*?:\/\/)?[^]*@/, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`).replace(/([?&][^=&#]*(?:pass|pwd|secret|token|key|cred|sig|auth)[^=&#]*=)[^&#]*/gi, '$1***');
  return JSON.stringify(masked);
}

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
  /** Idle limit of one request (S3_REQUEST_TIMEOUT_MS); default 10 s. */
  requestTimeoutMs?: number;
}

export interface GatewayConfig {
  nodeEnv: 'development' | 'production' | 'test';
  logLevel: string;
  http: { host: string; port: number; publicUrl: string | undefined; trustProxy: boolean; clusterSecret: string | undefined };
  hostId: string;
  dataDir: string;
  shards: {
    count: number;
    maxSessions: number;
    /** Placements one router runs at once (SESSION_PLACE_CONCURRENCY). */
    placeConcurrency: number;
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
  /** Multi-host membership, drain and rebalancing (docs/sessions.md, "Multi-host"). */
  cluster: { hostDeadAfterMs: number; drainOnShutdown: boolean; rebalance: { enabled: boolean; intervalMs: number; maxMoves: number; tolerance: number } };
  database: { url: string; poolMax: number; poolMaxWaiting?: number; queryTimeoutMs?: number } | undefined;
  pglitePort: number;
  s3: S3Config | undefined;
  /** The backend (worker registry, webhooks); undefined in standalone mode. */
  backend: BackendConfig | undefined;
  webhooks: WebhookConfig;
  rateLimit: { enabled: boolean; reason: string; perIp: number; perPrincipal: number; windowMs: number };
  /** Inbound authentication (docs/security.md). */
  auth: AuthConfig;
  /** Request size limits the route layer enforces. */
  limits: { bodyBytes: number; jsonMaxDepth: number; uploadBytes: number; uploadQuotaBytes: number; bodyBudgetBytes: number };
  messaging: MessagingConfig;
  /** Where and how the shards' Baileys sockets connect. */
  wa: WaConfig;
  sessions: { loginConcurrency: number; loginRatePerSecond: number; reconnect: { baseMs: number; maxMs: number; maxAttempts: number }; keyWriteBehind: boolean };
  /** SSE_MAX_STREAMS and SSE_MAX_STREAMS_PER_PRINCIPAL: the event stream caps. */
  sse: { maxStreams: number; maxStreamsPerPrincipal: number };
}

export interface WaConfig {
  websocketUrl: string;
  /** [2, 3000, n] or undefined for Baileys' built-in version. */
  version: [number, number, number] | undefined;
  /** Base64 root public key of the Noise certificate chain (simulator only). */
  rootPublicKey: string | undefined;
  /** PEM file added to the default CAs (simulator media). */
  extraCaFile: string | undefined;
  /** WA_MEDIA_HOST: the simulator's media `host:port` (only with rootPublicKey). */
  mediaHost?: string;
  simulator: boolean;
}

export interface MessagingConfig {
  /** ISO 3166-1 alpha-2 country for numbers without an international prefix. */
  defaultCountry: string;
  /** The per-session send governor; `ratePerSec: 0` turns it off. */
  send: { ratePerSec: number; burst: number; perRecipientIntervalMs: number; queueMax: number; queueTimeoutMs: number; replyMarginMs: number };
  media: {
    maxBytes: number;
    fetchTimeoutMs: number;
    inboundDownload: 'eager' | 'lazy';
    /** MEDIA_URL_ALLOW_PRIVATE (absent: false). */
    allowPrivate?: boolean;
    /** MEDIA_DOWNLOAD_BUDGET_BYTES, per shard (unset: 4 x maxBytes, resolved here). */
    downloadBudgetBytes: number;
  };
  /** IDEMPOTENCY_TTL_MS, UPLOAD_TTL_MS and EXPIRY_SWEEP_INTERVAL_MS: the router's expiry sweep. */
  expiry: { idempotencyTtlMs: number; uploadTtlMs: number; sweepIntervalMs: number };
  /** MESSAGE_WRITERS: group-commit writers of the message write path (0: one transaction per write). */
  writers: number;
  /** GROUP_METADATA_CACHE_TTL_MS and GROUP_METADATA_CACHE_MAX: each session's group metadata cache (docs/groups.md). */
  groups: { ttlMs: number; max: number };
}

export interface BackendConfig {
  url: string;
  apiKey: string | undefined;
  workerId: string;
  heartbeatIntervalMs: number;
  timeoutMs: number;
}

export interface WebhookConfig {
  /** `whsec_...`; undefined: no webhook is written or sent. */
  secret: string | undefined;
  timeoutMs: number;
  maxAgeMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  batchSize: number;
  concurrency: number;
  lockTimeoutMs: number;
  pollIntervalMs: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
  breakerHalfOpenMaxMs: number;
  allowPrivateTargets: boolean;
  retentionMs: number;
}

export type AuthScope = 'sessions:read' | 'sessions:write' | 'messages:send' | 'messages:read' | 'admin';
export const AUTH_SCOPES: readonly AuthScope[] = ['sessions:read', 'sessions:write', 'messages:send', 'messages:read', 'admin'];

/** One configured API key: only the SHA-256 of the key is known. */
export interface ApiKeyConfig {
  name: string;
  sha256: string;
  scopes: AuthScope[];
  sessions: string[] | undefined;
}

export interface AuthConfig {
  disabled: boolean;
  jwt:
    | { kind: 'secret'; secret: string; algorithms: string[] }
    | { kind: 'jwks'; url: string; algorithms: string[]; cooldownMs: number; timeoutMs: number }
    | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockSkewMs: number;
  sessionClaim: string;
  apiKeys: ApiKeyConfig[];
  metricsToken: string | undefined;
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
    else problems.push(`${name}: ${result.error.issues.map((i) => i.message).join('; ')} (got ${describeRejected(name, given)})`);
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
    if (r.LEASE_RENEW_INTERVAL_MS * 2 > r.HOST_DEAD_AFTER_MS) {
      problems.push('HOST_DEAD_AFTER_MS: must be at least twice LEASE_RENEW_INTERVAL_MS (the heartbeat) so one late heartbeat does not declare a host dead');
    }
    if (r.WA_ROOT_PUBLIC_KEY !== undefined && r.NODE_ENV === 'production' && !r.WA_SIMULATOR) {
      problems.push('WA_ROOT_PUBLIC_KEY: refused when NODE_ENV=production (it replaces WhatsApp\'s root key); set WA_SIMULATOR=true for a simulator demo');
    }
    if (r.WA_MEDIA_HOST !== undefined && r.WA_ROOT_PUBLIC_KEY === undefined) {
      problems.push('WA_MEDIA_HOST: only for the simulator; set WA_ROOT_PUBLIC_KEY too (real WhatsApp media comes from *.whatsapp.net only)');
    }
    if (r.MEDIA_DOWNLOAD_BUDGET_BYTES !== undefined && r.MEDIA_DOWNLOAD_BUDGET_BYTES < r.MEDIA_MAX_BYTES) {
      problems.push('MEDIA_DOWNLOAD_BUDGET_BYTES: must be at least MEDIA_MAX_BYTES, or no send of the largest media could ever run');
    }
    if (r.SESSION_RECONNECT_MAX_MS < r.SESSION_RECONNECT_BASE_MS) {
      problems.push('SESSION_RECONNECT_MAX_MS: must not be below SESSION_RECONNECT_BASE_MS');
    }
    if (r.BACKEND_URL !== undefined && r.WEBHOOK_SECRET === undefined) {
      problems.push('WEBHOOK_SECRET: required when BACKEND_URL is set (webhooks to the backend are signed); generate one with: node -e "console.log(\'whsec_\'+require(\'crypto\').randomBytes(32).toString(\'base64\'))"');
    }
    if (r.WEBHOOK_BACKOFF_MAX_MS < r.WEBHOOK_BACKOFF_BASE_MS) {
      problems.push('WEBHOOK_BACKOFF_MAX_MS: must not be below WEBHOOK_BACKOFF_BASE_MS');
    }
    if (r.WEBHOOK_LOCK_TIMEOUT_MS < r.WEBHOOK_TIMEOUT_MS * 2) {
      problems.push('WEBHOOK_LOCK_TIMEOUT_MS: must be at least twice WEBHOOK_TIMEOUT_MS so a live delivery is never claimed by another router');
    }
    if (r.SHARD_RESTART_BACKOFF_MAX_MS < r.SHARD_RESTART_BACKOFF_MS) {
      problems.push('SHARD_RESTART_BACKOFF_MAX_MS: must not be below SHARD_RESTART_BACKOFF_MS');
    }
  }
  const security = problems.length === 0 ? securityConfig(r, problems) : undefined;
  if (problems.length > 0 || security === undefined) throw new ConfigError(problems);

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
    http: { host: r.HOST, port: r.PORT, publicUrl: r.PUBLIC_URL, trustProxy: r.TRUST_PROXY, clusterSecret: r.CLUSTER_SECRET },
    hostId: r.HOST_ID,
    dataDir: path.resolve(r.DATA_DIR),
    shards: {
      count: r.SHARD_COUNT,
      maxSessions: r.SHARD_MAX_SESSIONS,
      placeConcurrency: r.SESSION_PLACE_CONCURRENCY,
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
    cluster: {
      hostDeadAfterMs: r.HOST_DEAD_AFTER_MS,
      drainOnShutdown: r.DRAIN_ON_SHUTDOWN,
      rebalance: { enabled: r.REBALANCE_ENABLED, intervalMs: r.REBALANCE_INTERVAL_MS, maxMoves: r.REBALANCE_MAX_MOVES_PER_INTERVAL, tolerance: r.REBALANCE_TOLERANCE },
    },
    database: r.DATABASE_URL === undefined ? undefined : { url: r.DATABASE_URL, poolMax: r.DATABASE_POOL_MAX, poolMaxWaiting: r.DATABASE_POOL_MAX_WAITING, queryTimeoutMs: r.DATABASE_QUERY_TIMEOUT_MS },
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
            requestTimeoutMs: r.S3_REQUEST_TIMEOUT_MS,
          },
    backend:
      r.BACKEND_URL === undefined
        ? undefined
        : {
            url: r.BACKEND_URL.replace(/\/+$/, ''),
            apiKey: r.BACKEND_API_KEY,
            workerId: r.WORKER_ID ?? r.HOST_ID,
            heartbeatIntervalMs: r.HEARTBEAT_INTERVAL_MS,
            timeoutMs: r.BACKEND_TIMEOUT_MS,
          },
    webhooks: {
      secret: r.WEBHOOK_SECRET,
      timeoutMs: r.WEBHOOK_TIMEOUT_MS,
      maxAgeMs: r.WEBHOOK_MAX_AGE_MS,
      backoffBaseMs: r.WEBHOOK_BACKOFF_BASE_MS,
      backoffMaxMs: r.WEBHOOK_BACKOFF_MAX_MS,
      batchSize: r.WEBHOOK_BATCH_SIZE,
      concurrency: r.WEBHOOK_CONCURRENCY,
      lockTimeoutMs: r.WEBHOOK_LOCK_TIMEOUT_MS,
      pollIntervalMs: r.WEBHOOK_POLL_INTERVAL_MS,
      breakerThreshold: r.WEBHOOK_BREAKER_THRESHOLD,
      breakerHalfOpenMs: r.WEBHOOK_BREAKER_HALF_OPEN_MS,
      breakerHalfOpenMaxMs: r.WEBHOOK_BREAKER_HALF_OPEN_MAX_MS,
      allowPrivateTargets: r.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      retentionMs: r.WEBHOOK_RETENTION_MS,
    },
    rateLimit: { ...rateLimit, ...security.rateLimit },
    auth: security.auth,
    limits: security.limits,
    messaging: {
      defaultCountry: r.DEFAULT_COUNTRY,
      send: {
        ratePerSec: r.SEND_RATE_PER_SEC,
        burst: r.SEND_BURST,
        perRecipientIntervalMs: r.SEND_PER_RECIPIENT_INTERVAL_MS,
        queueMax: r.SEND_QUEUE_MAX,
        queueTimeoutMs: r.SEND_QUEUE_TIMEOUT_MS,
        replyMarginMs: r.SEND_REPLY_MARGIN_MS,
      },
      media: {
        maxBytes: r.MEDIA_MAX_BYTES,
        fetchTimeoutMs: r.MEDIA_FETCH_TIMEOUT_MS,
        inboundDownload: r.INBOUND_MEDIA_DOWNLOAD,
        allowPrivate: r.MEDIA_URL_ALLOW_PRIVATE,
        downloadBudgetBytes: r.MEDIA_DOWNLOAD_BUDGET_BYTES ?? 4 * r.MEDIA_MAX_BYTES,
      },
      expiry: { idempotencyTtlMs: r.IDEMPOTENCY_TTL_MS, uploadTtlMs: r.UPLOAD_TTL_MS, sweepIntervalMs: r.EXPIRY_SWEEP_INTERVAL_MS },
      writers: r.MESSAGE_WRITERS,
      groups: { ttlMs: r.GROUP_METADATA_CACHE_TTL_MS, max: r.GROUP_METADATA_CACHE_MAX },
    },
    wa: {
      websocketUrl: r.WA_WEBSOCKET_URL,
      version: r.WA_VERSION === undefined ? undefined : (r.WA_VERSION.split('.').map(Number) as [number, number, number]),
      rootPublicKey: r.WA_ROOT_PUBLIC_KEY,
      extraCaFile: r.WA_EXTRA_CA_FILE === undefined ? undefined : path.resolve(r.WA_EXTRA_CA_FILE),
      ...(r.WA_MEDIA_HOST === undefined ? {} : { mediaHost: r.WA_MEDIA_HOST }),
      simulator: r.WA_SIMULATOR,
    },
    sessions: {
      loginConcurrency: r.SESSION_LOGIN_CONCURRENCY,
      loginRatePerSecond: r.SESSION_LOGIN_RATE_PER_SECOND,
      reconnect: { baseMs: r.SESSION_RECONNECT_BASE_MS, maxMs: r.SESSION_RECONNECT_MAX_MS, maxAttempts: r.SESSION_RECONNECT_MAX_ATTEMPTS },
      keyWriteBehind: r.SESSION_KEY_WRITE_BEHIND,
    },
    sse: { maxStreams: r.SSE_MAX_STREAMS, maxStreamsPerPrincipal: r.SSE_MAX_STREAMS_PER_PRINCIPAL },
  } satisfies GatewayConfig);
}

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const API_KEY_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function apiKey(where: string, name: unknown, sha256: unknown, scopes: unknown, sessions: unknown, problems: string[]): ApiKeyConfig | undefined {
  const bad = (why: string) => {
    problems.push(`${where}: ${why}`);
    return undefined;
  };
  if (typeof name !== 'string' || !API_KEY_NAME.test(name)) return bad('name must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256.toLowerCase())) return bad(`key "${name}": hash must be 64 hex digits (the SHA-256 of the key, never the key)`);
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((x) => AUTH_SCOPES.includes(x as AuthScope))) {
    return bad(`key "${name}": scopes must be one or more of ${AUTH_SCOPES.join(', ')}`);
  }
  if (sessions !== undefined && (!Array.isArray(sessions) || sessions.length === 0 || !sessions.every((x) => typeof x === 'string' && x.length > 0))) {
    return bad(`key "${name}": sessions must be a non-empty list of session ids`);
  }
  return { name, sha256: sha256.toLowerCase(), scopes: scopes as AuthScope[], sessions: sessions as string[] | undefined };
}

/** The AUTH_*, RATE_LIMIT_*, limits and webhook-target variables, cross-checked; problems never echo a secret. */
function securityConfig(r: Raw, problems: string[]) {
  const apiKeys: ApiKeyConfig[] = [];
  for (const [i, entry] of (r.AUTH_API_KEYS ?? '').split(',').map((e) => e.trim()).filter(Boolean).entries()) {
    // name:sha256hex:scope1+scope2 (scope names contain ':', so only the first two colons separate fields).
    const m = /^([^:]*):([^:]*):(.*)$/.exec(entry);
    if (m === null) problems.push(`AUTH_API_KEYS: entry ${i + 1} must be name:sha256hex:scope1+scope2`);
    else {
      const key = apiKey(`AUTH_API_KEYS: entry ${i + 1}`, m[1], m[2], m[3]?.split('+'), undefined, problems);
      if (key) apiKeys.push(key);
    }
  }
  if (r.AUTH_API_KEYS_FILE !== undefined) {
    let list: unknown;
    try {
      list = JSON.parse(readFileSync(r.AUTH_API_KEYS_FILE, 'utf8'));
    } catch (err) {
      problems.push(`AUTH_API_KEYS_FILE: cannot read ${r.AUTH_API_KEYS_FILE} as JSON (${(err as { code?: string }).code ?? 'invalid JSON'})`);
    }
    if (list !== undefined && !Array.isArray(list)) problems.push('AUTH_API_KEYS_FILE: must hold a JSON array of {name, sha256, scopes, sessions?}');
    for (const [i, e] of (Array.isArray(list) ? list : []).entries()) {
      const o = (e ?? {}) as Record<string, unknown>;
      const key = apiKey(`AUTH_API_KEYS_FILE: entry ${i + 1}`, o['name'], o['sha256'], o['scopes'], o['sessions'], problems);
      if (key) apiKeys.push(key);
    }
  }
  const names = apiKeys.map((k) => k.name);
  const dupes = names.filter((n, i) => names.indexOf(n) !== i);
  if (dupes.length > 0) problems.push(`AUTH_API_KEYS: duplicate key names ${[...new Set(dupes)].join(', ')}`);

  let jwt: AuthConfig['jwt'];
  const algorithms = r.AUTH_JWT_ALGORITHMS?.split(',').map((a) => a.trim()).filter(Boolean);
  const secret = r.AUTH_JWT_SECRET === undefined || r.AUTH_JWT_SECRET === '' ? undefined : r.AUTH_JWT_SECRET;
  if (secret !== undefined && r.AUTH_JWKS_URL !== undefined) {
    problems.push('AUTH_JWT_SECRET, AUTH_JWKS_URL: set only one of them (mixing symmetric and asymmetric keys invites algorithm confusion)');
  } else if (secret !== undefined) {
    if (Buffer.byteLength(secret) < 32) problems.push('AUTH_JWT_SECRET: must be at least 32 bytes (256 bits) long');
    const algs = algorithms ?? ['HS256'];
    if (algs.length === 0 || !algs.every((a) => HMAC_ALGS.includes(a))) problems.push(`AUTH_JWT_ALGORITHMS: with AUTH_JWT_SECRET only ${HMAC_ALGS.join(', ')} are allowed`);
    jwt = { kind: 'secret', secret, algorithms: algs };
  } else if (r.AUTH_JWKS_URL !== undefined) {
    if (r.NODE_ENV === 'production' && !r.AUTH_JWKS_URL.startsWith('https:')) problems.push('AUTH_JWKS_URL: must be https when NODE_ENV=production');
    const algs = algorithms ?? ['RS256', 'ES256', 'EdDSA'];
    if (algs.length === 0 || !algs.every((a) => ASYMMETRIC_ALGS.includes(a))) problems.push(`AUTH_JWT_ALGORITHMS: with AUTH_JWKS_URL only ${ASYMMETRIC_ALGS.join(', ')} are allowed`);
    jwt = { kind: 'jwks', url: r.AUTH_JWKS_URL, algorithms: algs, cooldownMs: r.AUTH_JWKS_COOLDOWN_MS, timeoutMs: r.AUTH_JWKS_TIMEOUT_MS };
  } else if (algorithms !== undefined) {
    problems.push('AUTH_JWT_ALGORITHMS: set only together with AUTH_JWT_SECRET or AUTH_JWKS_URL');
  }
  if (jwt !== undefined && (r.AUTH_JWT_ISSUER === undefined || r.AUTH_JWT_AUDIENCE === undefined)) {
    problems.push('AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE: both are required when bearer tokens are configured (they are pinned)');
  }
  const metricsToken = r.METRICS_TOKEN === undefined || r.METRICS_TOKEN === '' ? undefined : r.METRICS_TOKEN;
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('METRICS_TOKEN: must be at least 16 characters long');
  if (r.AUTH_DISABLED && (jwt !== undefined || apiKeys.length > 0)) {
    problems.push('AUTH_DISABLED: true contradicts the configured AUTH_JWT_SECRET/AUTH_JWKS_URL/AUTH_API_KEYS; remove one side');
  }
  return {
    rateLimit: { perIp: r.RATE_LIMIT_PER_IP, perPrincipal: r.RATE_LIMIT_PER_PRINCIPAL, windowMs: r.RATE_LIMIT_WINDOW_MS },
    auth: {
      disabled: r.AUTH_DISABLED,
      jwt,
      issuer: r.AUTH_JWT_ISSUER,
      audience: r.AUTH_JWT_AUDIENCE,
      clockSkewMs: r.AUTH_CLOCK_SKEW_MS,
      sessionClaim: r.AUTH_SESSION_CLAIM,
      apiKeys,
      metricsToken,
    } satisfies AuthConfig,
    limits: {
      bodyBytes: r.BODY_LIMIT_BYTES ?? Math.ceil((r.MEDIA_MAX_BYTES * 4) / 3) + 64 * 1024,
      jsonMaxDepth: r.JSON_MAX_DEPTH,
      uploadBytes: r.UPLOAD_LIMIT_BYTES ?? r.MEDIA_MAX_BYTES + 1024 * 1024,
      uploadQuotaBytes: r.UPLOAD_QUOTA_BYTES ?? 4 * r.MEDIA_MAX_BYTES,
      bodyBudgetBytes: r.BODY_BUDGET_BYTES ?? 4 * (r.BODY_LIMIT_BYTES ?? Math.ceil((r.MEDIA_MAX_BYTES * 4) / 3) + 64 * 1024),
    },
  };
}

/**
 * Runtime variables a shard process keeps (plus every `LC_*`). Shards parse untrusted WhatsApp data and get all
 * of their configuration in `init`, so they need none of the gateway's variables: an allow-list, not a
 * deny-list, so a secret added later (or an operator's own, e.g. a cloud token) is never inherited by accident.
 */
const SHARD_ENV_KEEP = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'TMP', 'TEMP', 'TZ', 'LANG', 'LANGUAGE', 'TERM', 'NO_COLOR', 'FORCE_COLOR',
  'NODE_ENV', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_V8_COVERAGE', 'NODE_DEBUG', 'UV_THREADPOOL_SIZE', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'SYSTEMROOT', 'WINDIR', 'COMSPEC', 'PATHEXT',
  // glibc malloc tuning, for an operator who sets it (docs/sessions.md, "What an idle session holds").
  'MALLOC_ARENA_MAX', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_THRESHOLD_',
]);

/** The environment a shard is forked with: `env` filtered through SHARD_ENV_KEEP (docs/security.md). */
export function shardEnvironment(env: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (SHARD_ENV_KEEP.has(name) || name.startsWith('LC_'))) out[name] = value;
  }
  return out;
}
