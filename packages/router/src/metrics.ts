/** Prometheus metrics of one router instance, on its own registry (tests create several). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DependencyHealth, ShardStats, SqlPoolStats } from '@wagw/shared';
import type { CallOutcome, ShardInfo } from './supervisor.ts';
import type { ControlPlaneTimings } from './sessions/context.ts';

/** What the shard gauges read at scrape time. */
export interface ShardSource {
  list(): ShardInfo[];
  pendingCount(): number;
}

/** One `stats` call per ready shard (a failed or late one left out). */
export type ShardStatsSource = () => Promise<{ shard: number; stats: ShardStats }[]>;

/** Session counts by state on this host, read at scrape time. */
export type SessionCountSource = () => Promise<Record<string, number>>;
/** The stores' health probes (each bounded), run at scrape time for up/latency gauges. */
export type DependencySource = () => Promise<Record<string, DependencyHealth>>;

export interface RouterMetricsOptions {
  /** Default process metrics (CPU, memory, event loop lag, handles). Default true. */
  defaultMetrics?: boolean;
}

export class RouterMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly ipcDuration: Histogram<'kind' | 'outcome'>;
  /** The session manager's control-plane passes (`wagw_lease_renew_round_seconds` and the three beside it). */
  readonly controlPlane: ControlPlaneTimings;
  #source: ShardSource | undefined;
  #sessions: SessionCountSource | undefined;
  #dependencies: DependencySource | undefined;
  #sqlPool: (() => SqlPoolStats | undefined) | undefined;
  #shardStats: ShardStatsSource | undefined;
  /** The round in flight: the families of one scrape share it; the next scrape starts a new one. */
  #statsRound: Promise<{ shard: number; stats: ShardStats }[]> | undefined;

  constructor(options: RouterMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route template, method and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.ipcDuration = new Histogram({
      name: 'ipc_call_duration_seconds',
      help: 'Router-to-shard call round trip by request kind and outcome (ok, error, timeout, crashed).',
      labelNames: ['kind', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
      registers: [registry],
    });
    // Control plane: seconds to a minute (a renewal round or an orphan scan over thousands of sessions).
    const controlBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    const renewRound = new Histogram({
      name: 'wagw_lease_renew_round_seconds',
      help: "One renewal of every lease of this host (a batch per shard) with the shards' leases.extend.",
      buckets: controlBuckets,
      registers: [registry],
    });
    const reconcilePass = new Histogram({
      name: 'wagw_reconcile_pass_seconds',
      help: 'One reconcile pass: sessions of this host that should run and have no owner.',
      buckets: controlBuckets,
      registers: [registry],
    });
    const placement = new Histogram({
      name: 'wagw_session_placement_seconds',
      help: 'One placement (lease claim, row, session.start answered) by reason (create, restart, migrate, recover) and outcome (ok, error).',
      labelNames: ['reason', 'outcome'],
      buckets: controlBuckets,
      registers: [registry],
    });
    const orphanPass = new Histogram({
      name: 'wagw_orphan_claim_pass_seconds',
      help: "One failover scan for dead hosts' sessions without a lease (multi-host only).",
      buckets: controlBuckets,
      registers: [registry],
    });
    this.controlPlane = {
      leaseRenewRound: (seconds) => renewRound.observe(seconds),
      reconcilePass: (seconds) => reconcilePass.observe(seconds),
      placement: (seconds, reason, outcome) => placement.observe({ reason, outcome }, seconds),
      orphanClaimPass: (seconds) => orphanPass.observe(seconds),
    };
    const source = (): ShardSource | undefined => this.#source;
    new Gauge({
      name: 'shard_up',
      help: '1 when the shard finished its handshake and serves calls, else 0.',
      labelNames: ['shard'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of source()?.list() ?? []) this.set({ shard: String(s.index) }, s.state === 'ready' ? 1 : 0);
      },
    });
    new Counter({
      name: 'shard_restarts_total',
      help: 'Restarts of the shard after a crash.',
      labelNames: ['shard'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of source()?.list() ?? []) this.inc({ shard: String(s.index) }, s.restarts);
      },
    });
    const sessions = (): SessionCountSource | undefined => this.#sessions;
    new Gauge({
      name: 'wagw_sessions',
      help: 'Sessions of this host by state (from the session registry).',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const read = sessions();
        if (!read) return;
        this.reset();
        for (const [state, n] of Object.entries(await read().catch(() => ({})))) this.set({ state }, n);
      },
    });
    // One probe round per scrape feeds both dependency gauges.
    let probe: { at: number; result: Promise<Record<string, DependencyHealth>> } | undefined;
    const probeOnce = (): Promise<Record<string, DependencyHealth>> => {
      const read = this.#dependencies;
      if (!read) return Promise.resolve({});
      const now = Date.now();
      if (!probe || now - probe.at > 1000) probe = { at: now, result: read().catch(() => ({})) };
      return probe.result;
    };
    new Gauge({
      name: 'wagw_dependency_up',
      help: '1 when the dependency (redis, postgres, storage; labelled with its kind) answered its probe, else 0.',
      labelNames: ['dependency', 'kind'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [dependency, h] of Object.entries(await probeOnce())) this.set({ dependency, kind: h.kind }, h.ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'wagw_dependency_latency_seconds',
      help: 'Round trip of the latest probe of each dependency (Redis PING, SQL SELECT 1, storage request).',
      labelNames: ['dependency', 'kind'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [dependency, h] of Object.entries(await probeOnce())) this.set({ dependency, kind: h.kind }, h.latencyMs / 1000);
      },
    });
    const pool = (): SqlPoolStats | undefined => this.#sqlPool?.();
    new Gauge({
      name: 'wagw_db_pool_clients',
      help: "The router's PostgreSQL pool: connections open (total), idle among them, and requests waiting for one (at most DATABASE_POOL_MAX_WAITING).",
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const st = pool();
        this.reset();
        if (!st) return;
        for (const state of ['total', 'idle', 'waiting'] as const) this.set({ state }, st[state]);
      },
    });
    new Counter({
      name: 'wagw_db_pool_rejected_total',
      help: 'Requests failed at once with DEPENDENCY_UNAVAILABLE because DATABASE_POOL_MAX_WAITING requests already waited for a connection.',
      registers: [registry],
      collect() {
        const st = pool();
        if (!st) return;
        this.reset();
        this.inc(st.rejected);
      },
    });
    const statsRound = async (): Promise<{ shard: number; stats: ShardStats }[]> => await this.shardStats();
    new Gauge({
      name: 'ipc_pending_calls',
      help: 'Router-to-shard calls waiting for a reply.',
      registers: [registry],
      async collect() {
        // prom-client collects every family at once: read after this scrape's stats calls settled, so they are
        // not counted as pending.
        await statsRound();
        this.set(source()?.pendingCount() ?? 0);
      },
    });
    const perShard = (name: string, help: string, read: (st: ShardStats) => number | undefined, counter = false): void => {
      const values = async (): Promise<[{ shard: string }, number][]> =>
        (await statsRound()).flatMap(({ shard, stats }) => {
          const v = read(stats);
          return v === undefined ? [] : [[{ shard: String(shard) }, v] as [{ shard: string }, number]];
        });
      const family = { name, help, labelNames: ['shard'] as const, registers: [registry] };
      // A counter's value is the shard's running total: reset, then added once per scrape (prom-client has no set).
      if (counter) {
        new Counter({
          ...family,
          async collect() {
            const all = await values();
            this.reset();
            for (const [labels, v] of all) this.inc(labels, v);
          },
        });
      } else {
        new Gauge({
          ...family,
          async collect() {
            const all = await values();
            this.reset();
            for (const [labels, v] of all) this.set(labels, v);
          },
        });
      }
    };
    perShard('wagw_shard_ipc_outbox_depth', "Messages the shard's IPC outbox holds while its channel to the router catches up.", (st) => st.outbox?.depth);
    perShard('wagw_shard_ipc_outbox_high_water', "The most messages the shard's IPC outbox held at once since the shard started.", (st) => st.outbox?.highWater);
    perShard('wagw_shard_ipc_outbox_capacity', "Requests to the router the shard's IPC outbox holds at most; further callers wait.", (st) => st.outbox?.capacity);
    perShard('wagw_shard_ipc_outbox_waiting_requests', "Shard requests to the router waiting for room in a full IPC outbox.", (st) => st.outbox?.waitingRequests);
    perShard('wagw_shard_ipc_outbox_coalesced_total', 'Status/QR events replaced in the IPC outbox by a newer one of the same session and epoch.', (st) => st.outbox?.coalescedTotal, true);
    perShard('wagw_shard_auth_durable_waits_total', 'Sent stanzas that waited for their auth-state write to be durable (BlobAuthState.durable, before the relay).', (st) => st.authDurable?.waits, true);
    perShard('wagw_shard_auth_durable_wait_seconds_total', 'Time sent stanzas waited for their auth-state write to be durable, summed.', (st) => st.authDurable?.waitSeconds, true);
    perShard('wagw_shard_auth_durable_slow_waits_total', 'Sent stanzas that waited 5 ms or more for their auth-state write to be durable (a slow disk or blob store).', (st) => st.authDurable?.slowWaits, true);
    perShard('wagw_login_gate_waiting', "Logins waiting for a slot of the shard's login gate (LOGIN_CONCURRENCY).", (st) => st.loginGate?.waiting);
    perShard('wagw_login_gate_running', "Logins holding a slot of the shard's login gate.", (st) => st.loginGate?.running);
    perShard('wagw_login_gate_rate_limited_waits_total', 'Login starts that waited for the spacing of the login rate limit.', (st) => st.loginGate?.rateLimitedWaits, true);
  }

  /**
   * The shards' stats for this scrape: one round of `stats` calls, shared by every family of the scrape while it
   * is in flight and never reused after (a cached round would show a figure older than the scrape).
   */
  async shardStats(): Promise<{ shard: number; stats: ShardStats }[]> {
    const read = this.#shardStats;
    if (read === undefined) return [];
    this.#statsRound ??= read()
      .catch(() => [])
      .finally(() => {
        this.#statsRound = undefined;
      });
    return await this.#statsRound;
  }

  /** The shards' `stats` (outbox, login gate, send queues), called once per scrape. */
  trackShardStats(source: ShardStatsSource): void {
    this.#shardStats = source;
  }

  /** Session counts by state (`wagw_sessions{state}`), read at each scrape. */
  trackSessions(source: SessionCountSource): void {
    this.#sessions = source;
  }

  /** Dependency probes (`wagw_dependency_up`, `wagw_dependency_latency_seconds`), run at each scrape. */
  trackDependencies(source: DependencySource): void {
    this.#dependencies = source;
  }

  /** The SQL pool's clients (`wagw_db_pool_clients`, `wagw_db_pool_rejected_total`), read at each scrape. */
  trackSqlPool(source: () => SqlPoolStats | undefined): void {
    this.#sqlPool = source;
  }

  /** Points the shard gauges at a supervisor (or any source). */
  trackShards(source: ShardSource): void {
    this.#source = source;
  }

  /** The supervisor's `onCallDone` hook. */
  readonly observeIpcCall = (kind: string, _shard: number, seconds: number, outcome: CallOutcome): void => {
    this.ipcDuration.observe({ kind, outcome }, seconds);
  };

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }
}
