/**
 * Store interfaces. Each has a production implementation and an embedded one in @wagw/stores, and ONE
 * conformance suite that runs against both.
 */
import type { Readable } from 'node:stream';

/** A fenced lease: at most one owner runs a session at any instant; `epoch` only ever grows per session. */
export interface Lease {
  sessionId: string;
  /** Owner id, `${hostId}/${shardIndex}`. */
  owner: string;
  epoch: number;
  /** Epoch milliseconds at which the lease lapses unless renewed. */
  expiresAt: number;
}

export type ClaimResult = { ok: true; lease: Lease } | { ok: false; holder: Lease };

export interface LeaseRef {
  sessionId: string;
  epoch: number;
}

export interface SessionDirectory {
  readonly kind: 'redis' | 'memory';
  /**
   * Who sees the leases: `process` (only this router: a single-host deployment, so no other host can own a
   * session and there is no cluster membership to keep) or `cluster` (every router sharing the store).
   */
  readonly scope: 'process' | 'cluster';
  /**
   * Takes the lease when it is free, lapsed, or already held by `owner`; every successful claim returns an
   * epoch higher than any before it for that session. Otherwise returns the live holder.
   */
  claim(sessionId: string, owner: string, ttlMs: number): Promise<ClaimResult>;
  /** Renews many leases in one round trip. Returns the session ids whose lease is no longer ours. */
  renew(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<string[]>;
  /** Gives the lease up when `owner` still holds it at `epoch`; true when it was released. */
  release(sessionId: string, owner: string, epoch: number): Promise<boolean>;
  /** The live lease of a session, or null when none is held. */
  get(sessionId: string): Promise<Lease | null>;
  /** Fencing check for writes: true only while this exact epoch holds a live lease. */
  isCurrent(sessionId: string, epoch: number): Promise<boolean>;
  /** Every live lease held by one owner (used for draining and recovery). */
  listByOwner(owner: string): Promise<Lease[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * QR codes of sessions waiting to be linked. They live only in a cache with their TTL (Redis in production,
 * the router's memory embedded), never in SQL: a QR is worthless once it expires.
 */
export interface CachedQr {
  /** The QR string Baileys produced (what the phone scans). */
  qr: string;
  /** Lease epoch of the socket that produced it (a QR of an older owner is ignored). */
  epoch: number;
  /** 0 for the first QR of a login attempt. */
  index: number;
  /** Epoch milliseconds at which the QR expires. */
  expiresAt: number;
}

export interface QrCache {
  readonly kind: 'redis' | 'memory';
  /** Stores the session's current QR for `ttlMs` (replacing any previous one). */
  set(sessionId: string, entry: CachedQr, ttlMs: number): Promise<void>;
  /** The current QR, or null when none or expired. */
  get(sessionId: string): Promise<CachedQr | null>;
  delete(sessionId: string): Promise<void>;
}

/** One router of the cluster, as it announces itself. */
export interface HostRecord {
  hostId: string;
  /** Where other routers reach it (PUBLIC_URL). */
  url: string;
  shards: number;
  /** Shards in state ready at the announcement. */
  shardsReady: number;
  sessions: number;
  /** Sessions the host accepts in all (shards * SHARD_MAX_SESSIONS). */
  capacity: number;
  /** Being drained: it takes no new sessions (orphans, hand-offs, rebalancing) and gives its own away. */
  draining: boolean;
  /** ISO time of the announcement (the heartbeat). */
  updatedAt: string;
  /** Epoch ms after which the record counts as gone. */
  expiresAt: number;
}

export type HostAnnouncement = Omit<HostRecord, 'expiresAt' | 'updatedAt'>;

/**
 * The hosts of the cluster: each router announces itself (its heartbeat) periodically with a TTL of
 * HOST_DEAD_AFTER_MS; a record past its expiry is a dead host (kept an hour so operators see it).
 */
export interface HostRegistry {
  readonly kind: 'redis' | 'memory';
  announce(record: HostAnnouncement, ttlMs: number): Promise<void>;
  /** Live hosts, sorted by id. */
  list(): Promise<HostRecord[]>;
  /** Every known host, live or dead (expired in the last hour), sorted by id. */
  listAll(): Promise<HostRecord[]>;
  get(hostId: string): Promise<HostRecord | null>;
  remove(hostId: string): Promise<void>;
}

/** A session event of one host relayed to the others (the all-sessions stream, `GET /api/v1/events`). */
export interface RelayedEvent {
  /** Unique per event (the publishing host, a per-process nonce and a counter): receivers drop repeats. */
  id: string;
  /** The host that published it. */
  origin: string;
  /** The session id (the event hub's topic). */
  topic: string;
  /** The SSE event type: status, qr or deleted. */
  type: string;
  data: unknown;
}

/**
 * A cluster-wide bus of session events: each router publishes the status/qr/deleted events of the sessions it
 * runs and hears those of every host. Redis pub/sub, only in cluster scope (none in single-host mode). At most
 * once: what is published while a router's subscriber is disconnected is lost to it.
 */
export interface EventRelay {
  readonly kind: 'redis';
  /** Publishes one event; rejects when Redis did not take it (the caller logs, the event is lost). */
  publish(event: RelayedEvent): Promise<void>;
  /**
   * Opens the one subscriber connection and calls `onEvent` for every event of any host (its own included);
   * `onError` hears connection errors (it reconnects and resubscribes by itself). Once per relay.
   */
  subscribe(onEvent: (event: RelayedEvent) => void, onError: (err: Error) => void): Promise<void>;
  /** Closes the subscriber connection (the publisher is the directory's, closed with it). Idempotent. */
  close(): Promise<void>;
}

export interface BlobStore {
  readonly kind: 's3' | 'local';
  put(key: string, data: Uint8Array, contentType?: string): Promise<void>;
  /**
   * Appends bytes to an object, creating it when missing, and resolves once they are durable. Only stores that can
   * (the local one: one write to a file opened O_DSYNC, against a whole new file, a rename and two fsyncs for `put`; S3
   * objects cannot grow). Appends to one key must not overlap, and a crash may leave a prefix of the last one: a
   * reader must recognise a torn tail (the auth-state journal checks each record).
   */
  append?(key: string, data: Uint8Array): Promise<void>;
  /** Streams a body of unknown length into the store (media uploads); returns the byte count. */
  putStream(key: string, body: Readable, contentType?: string): Promise<number>;
  /** The object's bytes, or null when there is none. Any other failure throws. */
  get(key: string): Promise<Buffer | null>;
  getStream(key: string): Promise<Readable | null>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Keys under a prefix with their last write time (ms since the epoch), sorted by key (expiry sweeps). */
  listModified(prefix: string): Promise<{ key: string; modifiedAt: number }[]>;
  delete(key: string): Promise<void>;
  /** Deletes every key under a prefix; returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

export interface SqlQueryOptions {
  /**
   * A prepared statement's name, for a hot statement whose text never changes (one name per text): PostgreSQL
   * parses and plans it once per connection instead of on every call (the planning of the message writes' CTEs
   * cost twice their execution: docs/benchmarks.md). Ignored by the embedded PGlite, whose one backend outlives
   * a client's connection (a statement prepared by an earlier connection would collide).
   */
  name?: string;
}

export interface SqlClient {
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: SqlQueryOptions,
  ): Promise<SqlResult<R>>;
}

/**
 * A transaction's client (`SqlDatabase.transaction`): `query` as anywhere, and `write` for a statement whose result
 * the caller does not need.
 */
export interface SqlTransaction extends SqlClient {
  /**
   * Sends `text` now, in order after everything before it, without waiting for its answer: on PostgreSQL the
   * statement goes out with the transaction's COMMIT (pipelined), one round trip instead of two. Its failure fails the
   * transaction: nothing of it is committed, `transaction` rejects with that error, and a `query` after it rejects
   * with it too. For writes whose result is not needed, such as the webhook outbox's rows.
   */
  write(text: string, params?: readonly unknown[], options?: SqlQueryOptions): void;
}

export interface SqlDatabase extends SqlClient {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction (BEGIN/COMMIT, ROLLBACK on throw) on one connection. */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The connection pool's clients now (`wagw_db_pool_clients`); absent where there is no pool. */
  poolStats?(): SqlPoolStats;
}

/** A connection pool's clients: open, idle among them, and requests waiting for one (bounded). */
export interface SqlPoolStats {
  total: number;
  idle: number;
  waiting: number;
  /** Requests turned away at once because `waiting` was at its bound (DATABASE_POOL_MAX_WAITING), since start. */
  rejected: number;
}

export interface DependencyHealth {
  ok: boolean;
  kind: string;
  latencyMs: number;
  error?: string;
}
