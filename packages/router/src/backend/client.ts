/**
 * The worker-registry client: the router is a worker of the backend. In the background (never blocking
 * start-up or the API) it registers (`POST /api/admin/workers/register`, retried with capped backoff until it
 * succeeds), then fetches the sessions assigned to it (`GET /api/v1/workers/{id}/sessions/assigned`, response
 * `data.sessions`) and hands them to `onAssigned` to restore, and heartbeats every HEARTBEAT_INTERVAL_MS
 * (`PUT /api/admin/workers/{id}/heartbeat`). Every call goes through cockatiel: a per-call timeout, a short
 * retry with exponential backoff, and a circuit breaker, so a dead or slow backend costs a bounded amount.
 * A heartbeat answered 404 (the backend forgot us) re-registers.
 */
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
  timeout,
  wrap,
} from 'cockatiel';
import type { IPolicy } from 'cockatiel';
import { z } from 'zod';
import { backoffDelay } from '@wagw/shared';
import type { BackendConfig, Logger } from '@wagw/shared';

/** One assigned session as the backend lists it: an id string, or an object with `id` (or `sessionId`); unknown fields are kept. */
export interface AssignedSession {
  id: string;
  webhookUrl?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
  status?: string | null | undefined;
  [extra: string]: unknown;
}

export const assignedSessionSchema: z.ZodType<AssignedSession, unknown> = z.union([
  z.string().min(1).transform((id): AssignedSession => ({ id })),
  z
    .looseObject({
      id: z.string().min(1).optional(),
      sessionId: z.string().min(1).optional(),
      webhookUrl: z.string().nullish(),
      metadata: z.record(z.string(), z.unknown()).nullish(),
      status: z.string().nullish(),
    })
    .refine((s) => s.id !== undefined || s.sessionId !== undefined, { message: 'a session needs id or sessionId' })
    .transform((s): AssignedSession => ({ ...s, id: (s.id ?? s.sessionId) as string })),
]);

export const assignedSessionsResponseSchema = z.looseObject({
  data: z.looseObject({ sessions: z.array(assignedSessionSchema) }),
});

/** The heartbeat body (`getLoad()`); extra fields are sent as given. */
export interface WorkerLoad {
  status: 'starting' | 'ready' | 'draining' | 'stopping';
  /** Sessions running on this host. */
  sessions: number;
  /** Fraction of capacity in use (sessions / capacity), 0..1. */
  load: number;
  [extra: string]: unknown;
}

export interface WorkerRegistration {
  id: string;
  endpoint: string;
  shards: number;
  capacity: number;
  version: string;
}

export class BackendHttpError extends Error {
  readonly status: number;
  constructor(method: string, path: string, status: number) {
    super(`${method} ${path} answered HTTP ${status}`);
    this.status = status;
  }
}

export interface BackendClientOptions {
  backend: BackendConfig | undefined;
  logger: Logger;
  /** What `register` sends: endpoint (PUBLIC_URL), shard count, capacity, version. */
  registration: () => Omit<WorkerRegistration, 'id'>;
  getLoad: () => WorkerLoad | Promise<WorkerLoad>;
  /** Restores the sessions the backend assigned to this worker (called once per start, after register). */
  onAssigned?: (sessions: AssignedSession[]) => void | Promise<void>;
  /** Register retry delay: first and cap (default 500 ms and 30 s). */
  registerBackoff?: { initialMs: number; maxMs: number };
}

const USER_AGENT = 'wagw-worker/1';

export interface BackendClient {
  /** True when BACKEND_URL is set (false: standalone, nothing is ever called). */
  readonly enabled: boolean;
  readonly registered: boolean;
  /** Starts registration, assignment recovery and heartbeats in the background; returns at once. */
  start(): void;
  stop(): Promise<void>;
  /** `GET /api/v1/workers/{id}/sessions/assigned` -> `data.sessions` (validated). [] in standalone mode. */
  fetchAssignedSessions(): Promise<AssignedSession[]>;
  /** One heartbeat now (also used by the timer). */
  heartbeat(): Promise<void>;
}

/** Standalone or backed by BACKEND_URL, per config. */
export function createBackendClient(options: BackendClientOptions): BackendClient {
  if (options.backend === undefined) {
    return {
      enabled: false,
      registered: false,
      start() {
        options.logger.info('BACKEND_URL unset: standalone mode, no worker registry');
      },
      async stop() {},
      async fetchAssignedSessions() {
        return [];
      },
      async heartbeat() {},
    };
  }
  return new WorkerRegistryClient(options.backend, options);
}

class WorkerRegistryClient implements BackendClient {
  readonly enabled = true;
  readonly #cfg: BackendConfig;
  readonly #options: BackendClientOptions;
  readonly #log: Logger;
  readonly #policy: IPolicy;
  readonly #stopController = new AbortController();
  #registered = false;
  #task: Promise<void> | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #heartbeating: Promise<void> | undefined;

  constructor(cfg: BackendConfig, options: BackendClientOptions) {
    this.#cfg = cfg;
    this.#options = options;
    this.#log = options.logger.child({ component: 'worker-registry', workerId: cfg.workerId });
    // Retry only what may pass on a second try: no answer, 408, 429, 5xx. A 4xx is the backend's final word.
    const transient = handleWhen((err) => !(err instanceof BackendHttpError) || err.status >= 500 || err.status === 408 || err.status === 429);
    this.#policy = wrap(
      retry(transient, { maxAttempts: 2, backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 2000 }) }),
      circuitBreaker(transient, { halfOpenAfter: Math.min(30_000, cfg.heartbeatIntervalMs), breaker: new ConsecutiveBreaker(5) }),
      timeout(cfg.timeoutMs, TimeoutStrategy.Aggressive),
    );
  }

  get registered(): boolean {
    return this.#registered;
  }

  async #call(method: 'POST' | 'PUT' | 'GET', path: string, body?: unknown): Promise<unknown> {
    return this.#policy.execute(async ({ signal }) => {
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (this.#cfg.apiKey !== undefined) headers['authorization'] = `Bearer ${this.#cfg.apiKey}`;
      const res = await fetch(`${this.#cfg.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.any([signal, this.#stopController.signal]),
      });
      const text = await res.text();
      if (!res.ok) throw new BackendHttpError(method, path, res.status);
      if (text === '') return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return undefined;
      }
    });
  }

  #workerPath(suffix: string): string {
    return `/api/admin/workers/${encodeURIComponent(this.#cfg.workerId)}${suffix}`;
  }

  async register(): Promise<void> {
    const body: WorkerRegistration = { id: this.#cfg.workerId, ...this.#options.registration() };
    await this.#call('POST', '/api/admin/workers/register', body);
    this.#registered = true;
    this.#log.info({ endpoint: body.endpoint, shards: body.shards, capacity: body.capacity }, 'registered with the backend');
  }

  async fetchAssignedSessions(): Promise<AssignedSession[]> {
    const json = await this.#call('GET', `/api/v1/workers/${encodeURIComponent(this.#cfg.workerId)}/sessions/assigned`);
    const parsed = assignedSessionsResponseSchema.safeParse(json);
    if (!parsed.success) {
      throw new Error(`assigned sessions: unexpected response (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
    }
    return parsed.data.data.sessions;
  }

  async heartbeat(): Promise<void> {
    const load = await this.#options.getLoad();
    try {
      await this.#call('PUT', this.#workerPath('/heartbeat'), load);
    } catch (err) {
      if (err instanceof BackendHttpError && err.status === 404) {
        this.#log.warn('the backend does not know this worker (heartbeat 404); registering again');
        this.#registered = false;
        await this.register();
        return;
      }
      throw err;
    }
  }

  start(): void {
    if (this.#task !== undefined) return;
    this.#task = this.#lifecycle().catch((err: unknown) => {
      if (!this.#stopController.signal.aborted) this.#log.error({ err }, 'worker registry task failed');
    });
  }

  /** Retries `fn` with capped exponential backoff (full jitter) until it succeeds or the client stops. */
  async #untilDone(what: string, fn: () => Promise<void>): Promise<boolean> {
    const initial = this.#options.registerBackoff?.initialMs ?? 500;
    const cap = this.#options.registerBackoff?.maxMs ?? 30_000;
    for (let attempt = 1; !this.#stopController.signal.aborted; attempt++) {
      try {
        await fn();
        return true;
      } catch (err) {
        if (this.#stopController.signal.aborted) return false;
        const delay = backoffDelay(attempt, initial, cap, { jitter: 'full' }) + 50;
        const message = isBrokenCircuitError(err) ? 'circuit open' : (err as Error).message;
        (attempt <= 3 ? this.#log.warn.bind(this.#log) : this.#log.debug.bind(this.#log))({ attempt, delayMs: delay, err: message }, `${what} failed; retrying`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.#stopController.signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
      }
    }
    return false;
  }

  async #lifecycle(): Promise<void> {
    if (!(await this.#untilDone('worker registration', () => this.register()))) return;
    this.#scheduleHeartbeat();
    const onAssigned = this.#options.onAssigned;
    if (onAssigned === undefined) return;
    let sessions: AssignedSession[] = [];
    if (!(await this.#untilDone('fetching assigned sessions', async () => {
      sessions = await this.fetchAssignedSessions();
    }))) return;
    this.#log.info({ count: sessions.length }, 'restoring sessions assigned by the backend');
    await onAssigned(sessions);
  }

  #scheduleHeartbeat(): void {
    if (this.#stopController.signal.aborted) return;
    this.#heartbeatTimer = setTimeout(() => {
      this.#heartbeating = this.heartbeat()
        .catch((err: unknown) => {
          this.#log.warn({ err: isBrokenCircuitError(err) ? 'circuit open' : (err as Error).message }, 'heartbeat failed');
        })
        .finally(() => {
          this.#heartbeating = undefined;
          this.#scheduleHeartbeat();
        });
    }, this.#cfg.heartbeatIntervalMs);
    this.#heartbeatTimer.unref();
  }

  async stop(): Promise<void> {
    this.#stopController.abort();
    clearTimeout(this.#heartbeatTimer);
    await this.#heartbeating;
    await this.#task;
  }
}
