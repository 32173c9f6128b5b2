/**
 * The router's Koa app: request ids, one error middleware, security headers, /health, /ready, /metrics.
 * The API routes (`deps.routes`, declared with `defineRoute`) mount on the same Router, validated and documented in /openapi.json.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import { Router } from '@koa/router';
import helmet from 'koa-helmet';
import { ERRORS, GatewayError, isErrorCode, withTimeout } from '@wagw/shared';
import type { DependencyHealth, ErrorCode, IpcRequestBody, IpcResult, Logger, RequestKind } from '@wagw/shared';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { RouterMetrics } from './metrics.ts';
import { mountRoutes } from './api/define-route.ts';
import type { AuthHook, RouteDefinition } from './api/define-route.ts';
import { createOpenApiRegistry, mountOpenApi } from './api/openapi.ts';
import { errorSchema } from './api/schemas.ts';
import { consoleSlashRedirect, mountConsolePages } from './api/console-routes.ts';
import type { CallOptions, ShardExit, ShardInfo, ShardState } from './supervisor.ts';
import type { Authenticator } from './security/auth.ts';
import type { BodyLimits } from './security/limits.ts';
import type { Principal } from './security/principal.ts';
import type { RateLimits } from './security/rate-limit.ts';
import type { ForwardedCall } from './security/forwarded.ts';

/** The slice of the ShardSupervisor the HTTP layer uses. */
export interface ShardsView {
  list(): ShardInfo[];
  pendingCount(): number;
  call<K extends RequestKind>(index: number, request: IpcRequestBody<K>, options?: CallOptions): Promise<IpcResult<K>>;
}

/** Health of the stores (redis/directory, blobs, sql), keyed by name; `openStores(...).health()` adapted. */
export type DependencyCheck = () => Promise<Record<string, DependencyHealth>>;

export type LifecyclePhase = 'starting' | 'ready' | 'stopping';

/** Whether the router accepts traffic; main.ts moves it forward. */
export class Lifecycle {
  #phase: LifecyclePhase = 'starting';
  get phase(): LifecyclePhase {
    return this.#phase;
  }
  markReady(): void {
    if (this.#phase === 'starting') this.#phase = 'ready';
  }
  markStopping(): void {
    this.#phase = 'stopping';
  }
}

export interface AppDeps {
  logger: Logger;
  shards: ShardsView;
  dependencies: DependencyCheck;
  lifecycle: Lifecycle;
  metrics: RouterMetrics;
  hostId: string;
  /** True while this host is drained (`/ready` answers 503). */
  draining?: () => boolean;
  /** Deadline of each health probe (shard ping, dependency check). Default 2000. */
  healthTimeoutMs?: number;
  /**
   * How long one /health probe round (a ping per shard, the dependency checks, `healthChecks`) answers every
   * caller; concurrent callers share the round in flight. Default 1000: the public route costs at most one
   * round per second however often it is called. `now` is the clock (tests).
   */
  healthCacheMs?: number;
  now?: () => number;
  /** API routes (sessions, admin, ...), each validated and documented in /openapi.json. */
  routes?: readonly RouteDefinition[];
  /**
   * The security edge (docs/security.md): per-IP limiter -> authenticate -> per-principal limiter before the
   * routes, and `auth.requireAuth({scopes, sessionParam})` on every non-public route. Absent: no authentication.
   */
  security?: AppSecurity;
  /** Overrides the per-route hook built from `security` (tests of the route layer). */
  auth?: AuthHook;
  /** BODY_LIMIT_BYTES and JSON_MAX_DEPTH for JSON bodies (config.limits); default 1 MiB and 32. */
  bodyLimits?: Pick<BodyLimits, 'bodyBytes' | 'jsonMaxDepth'>;
  /** TRUST_PROXY: Koa's app.proxy (ctx.ip from X-Forwarded-For). Default false. */
  trustProxy?: boolean;
  /** More checks on /health by name (e.g. `webhooks`); a `{ok: false}` one makes it 503. Never throw. */
  healthChecks?: Record<string, () => Promise<{ ok: boolean }>>;
  /** Tests: sees the Koa router and the OpenAPI registry once every route is mounted. */
  inspect?: (router: Router<AppState>, registry: OpenAPIRegistry) => void;
  /** The web console at /console (docs/console.md): `simulator` shows its simulated-phone button. */
  console?: { simulator: boolean };
}

export interface AppState {
  reqId: string;
  /** The request's child logger ({reqId} and what `bindLog` added), built on first use: most requests log nothing. */
  log: Logger;
  bindLog: (bindings: Record<string, unknown>) => void;
  /** Who is calling, set by the authenticator (anonymous admin when no authentication is configured). */
  principal?: Principal | undefined;
  /** The JSON body as the client sent it (before validation), kept so a forwarded call passes it on unchanged. */
  rawBody?: unknown;
  /** A call another router forwarded with a valid cluster signature (security/forwarded.ts). */
  forwarded?: ForwardedCall | undefined;
}

/** The security parts the app mounts (built by main.ts / GatewayRouter from config). */
export interface AppSecurity {
  auth: Authenticator;
  limits: RateLimits;
}

/** The route layer's auth hook from the authenticator: requireAuth with the route's scopes and session param. */
export function authHookFor(auth: Authenticator): AuthHook {
  return (routeAuth) => {
    if (routeAuth === 'public') return undefined;
    const options = routeAuth.sessionParam === undefined ? { scopes: routeAuth.scopes } : { scopes: routeAuth.scopes, sessionParam: routeAuth.sessionParam };
    return auth.requireAuth(options) as Middleware<AppState>;
  };
}

export type AppContext = Koa.ParameterizedContext<AppState>;

const REQUEST_ID = /^[\x20-\x7e]{1,128}$/;
/** Routes probed often; their access lines are logged at debug. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/metrics']);

/** `x-request-id` when it is 1-128 printable ASCII characters, else a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && REQUEST_ID.test(value) ? value : randomUUID();
}

/** Koa/HTTP errors that carry a status but no registry code. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'BAD_REQUEST';
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
    case 501:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMITED';
    default:
      return 'INTERNAL';
  }
}

interface ErrorResponse {
  status: number;
  body: { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };
}

/** Any thrown value as the HTTP error response; matches on `err.code`, never on the class. */
export function errorResponse(err: unknown): ErrorResponse {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown; details?: unknown; status?: unknown; expose?: unknown };
  let code: ErrorCode;
  let message: string | undefined;
  let details: Record<string, unknown> | undefined;
  if (isErrorCode(e.code)) {
    code = e.code;
    message = typeof e.message === 'string' ? e.message : undefined;
    details = typeof e.details === 'object' && e.details !== null ? (e.details as Record<string, unknown>) : undefined;
  } else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    // koa's ctx.throw / http-errors; their message is meant for the client when `expose` is set.
    code = codeForStatus(e.status);
    message = e.expose === true && typeof e.message === 'string' ? e.message : undefined;
  } else {
    code = 'INTERNAL';
  }
  const spec = ERRORS[code];
  const error: ErrorResponse['body']['error'] = { code, message: spec.expose && message ? message : spec.message };
  if (spec.expose && details !== undefined) error.details = details;
  return { status: spec.status, body: { error } };
}

export interface ShardHealth {
  index: number;
  state: ShardState;
  pid: number | null;
  restarts: number;
  lastExit: ShardExit | null;
  failureReason: string | null;
  readySince: string | null;
  /** Whether it answered a ping within the health timeout (only probed when ready). */
  responsive: boolean;
  rttMs: number | null;
  error: string | null;
}

export function createApp(deps: AppDeps): Koa<AppState> {
  const app = new Koa<AppState>();
  app.proxy = deps.trustProxy ?? false;
  // Koa reports errors it could not answer (a client socket reset mid-body, a write after close) here; without a
  // listener it prints them raw to stderr. They are the client's problem: debug level, with the request id.
  app.on('error', (err: unknown, ctx?: AppContext) => {
    const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
    const log = ctx?.state?.log ?? deps.logger;
    log.debug({ code: typeof e.code === 'string' ? e.code : undefined, err: typeof e.message === 'string' ? e.message : String(err) }, 'client connection error');
  });
  const healthTimeoutMs = deps.healthTimeoutMs ?? 2000;
  const startedAt = Date.now();

  // 1. Request context: id, child logger, timing, access log and HTTP metrics. Never throws.
  app.use(async (ctx: AppContext, next: Next) => {
    const t0 = performance.now();
    const reqId = requestIdFrom(ctx.get('x-request-id') || undefined);
    ctx.state.reqId = reqId;
    // A pino child (with redaction of its bindings) cost ~0.15 ms of CPU per request (profile, docs/benchmarks.md
    // "Where a send's CPU goes"); at LOG_LEVEL=warn a successful request writes no line, so it is built lazily.
    let log: Logger | undefined;
    let bindings: Record<string, unknown> = { reqId };
    Object.defineProperty(ctx.state, 'log', {
      get: (): Logger => (log ??= deps.logger.child(bindings)),
      set: (value: Logger) => {
        log = value;
      },
      enumerable: true,
      configurable: true,
    });
    ctx.state.bindLog = (more) => {
      if (log === undefined) bindings = { ...bindings, ...more };
      else log = log.child(more);
    };
    ctx.set('x-request-id', reqId);
    try {
      await next();
    } finally {
      const seconds = (performance.now() - t0) / 1000;
      const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
      const route = typeof matched === 'string' ? matched : 'unmatched';
      deps.metrics.observeHttp(ctx.method, route, ctx.status, seconds);
      const level = QUIET_ROUTES.has(ctx.path) ? 'debug' : 'info';
      if (deps.logger.isLevelEnabled(level)) ctx.state.log[level]({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
  });

  // 2. The one error middleware: GatewayError (by code) or anything else -> {"error": {...}}.
  app.use(async (ctx: AppContext, next: Next) => {
    try {
      await next();
      if (ctx.body === undefined) {
        // Nothing answered: an unknown route, or a known path with the wrong method (the Allow header is set).
        if (ctx.status === 404) throw new GatewayError('NOT_FOUND', `No route ${ctx.method} ${ctx.path}.`);
        if (ctx.status === 405 || ctx.status === 501) throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}.`);
      }
    } catch (err) {
      const { status, body } = errorResponse(err);
      ctx.status = status;
      ctx.body = body;
      const { code, message } = body.error;
      if (status < 500) ctx.state.log.info({ code, status, message }, 'request refused');
      else if (code === 'INTERNAL') ctx.state.log.error({ err, code, status }, 'request failed');
      else ctx.state.log.error({ code, status, message, details: body.error.details }, 'request failed');
    }
  });

  // 3. Security headers.
  app.use(helmet());
  app.use(consoleSlashRedirect);

  // 4. Security edge: per-IP limit (before authentication, so guessing is limited too), authentication
  // (public paths pass; /metrics checks METRICS_TOKEN), per-principal limit; scopes are checked per route.
  if (deps.security !== undefined) {
    app.use(deps.security.limits.perIp as Middleware<AppState>);
    app.use(deps.security.auth.authenticate() as Middleware<AppState>);
    app.use(deps.security.limits.perPrincipal as Middleware<AppState>);
  }

  // Strict and case-sensitive: `/metrics/` or `/METRICS` must not reach a route whose public-path check
  // (isPublicPath) compares exact paths.
  const router = new Router<AppState>({ strict: true, sensitive: true });

  /** One probe round; never rejects (every failure becomes an entry of the report). */
  const probeHealth = async (reqId: string): Promise<{ ok: boolean; details: Record<string, unknown> }> => {
    const probe = async (s: ShardInfo): Promise<ShardHealth> => {
      const base: ShardHealth = {
        index: s.index,
        state: s.state,
        pid: s.pid ?? null,
        restarts: s.restarts,
        lastExit: s.lastExit ?? null,
        failureReason: s.failureReason ?? null,
        readySince: s.readySince ?? null,
        responsive: false,
        rttMs: null,
        error: null,
      };
      if (s.state !== 'ready') return base;
      const t0 = performance.now();
      try {
        await deps.shards.call(s.index, { kind: 'ping' }, { timeoutMs: healthTimeoutMs, requestId: reqId });
        return { ...base, responsive: true, rttMs: Math.round((performance.now() - t0) * 1000) / 1000 };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        return { ...base, error: typeof code === 'string' ? code : 'INTERNAL' };
      }
    };
    const extra = Object.entries(deps.healthChecks ?? {});
    const [shards, dependencies, checks] = await Promise.all([
      Promise.all(deps.shards.list().map(probe)),
      withTimeout(deps.dependencies(), healthTimeoutMs, () => new Error(`dependency check timed out after ${healthTimeoutMs} ms`)).catch(
        (err: unknown): Record<string, DependencyHealth> => ({
          stores: { ok: false, kind: 'unknown', latencyMs: healthTimeoutMs, error: err instanceof Error ? err.message : String(err) },
        }),
      ),
      Promise.all(
        extra.map(([name, check]) =>
          withTimeout(check(), healthTimeoutMs, () => new Error(`${name} check timed out after ${healthTimeoutMs} ms`))
            .catch((err: unknown) => ({ ok: false, error: err instanceof Error ? err.message : String(err) }))
            .then((result) => [name, result] as const),
        ),
      ),
    ]);
    const depsOk = Object.values(dependencies).every((d) => d.ok) && checks.every(([, c]) => c.ok);
    const shardsOk = shards.some((s) => s.responsive);
    return { ok: depsOk && shardsOk, details: { shards, dependencies, ...Object.fromEntries(checks) } };
  };
  const healthCacheMs = deps.healthCacheMs ?? 1000;
  const now = deps.now ?? Date.now;
  let lastRound: { report: ReturnType<typeof probeHealth>; settledAt: number | undefined } | undefined;
  const healthReport = (reqId: string): ReturnType<typeof probeHealth> => {
    if (lastRound !== undefined && (lastRound.settledAt === undefined || now() - lastRound.settledAt < healthCacheMs)) return lastRound.report;
    const round: NonNullable<typeof lastRound> = { report: probeHealth(reqId), settledAt: undefined };
    void round.report.then(() => {
      round.settledAt = now();
    });
    lastRound = round;
    return round.report;
  };

  // Public: status only. Shards (pids, exits), dependency errors and check results go to METRICS_TOKEN or an
  // admin (everyone when the app has no authentication), since they map the deployment for an attacker.
  router.get('/health', async (ctx) => {
    const { ok: healthy, details } = await healthReport(ctx.state.reqId);
    const ok = healthy && deps.lifecycle.phase !== 'stopping';
    const detailed = deps.security === undefined || (await deps.security.auth.mayReadDetails(ctx));
    ctx.status = ok ? 200 : 503;
    ctx.set('cache-control', 'no-store');
    ctx.body = detailed
      ? { status: ok ? 'ok' : 'unavailable', hostId: deps.hostId, phase: deps.lifecycle.phase, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000), ...details }
      : { status: ok ? 'ok' : 'unavailable' };
  });

  router.get('/ready', (ctx) => {
    const phase = deps.lifecycle.phase;
    if (phase === 'ready' && deps.draining?.() === true) {
      // A draining host hands its sessions away: a load balancer must stop sending it calls.
      const { status, body } = errorResponse(new GatewayError('SHUTTING_DOWN', 'This host is draining.'));
      ctx.status = status;
      ctx.body = body;
      return;
    }
    if (phase === 'ready') {
      ctx.body = { status: 'ready' };
      return;
    }
    // Expected while starting or stopping: answered here rather than thrown, so it is not logged as a failure.
    const { status, body } = errorResponse(
      phase === 'stopping' ? new GatewayError('SHUTTING_DOWN') : new GatewayError('SHARD_UNAVAILABLE', 'The gateway is starting.'),
    );
    ctx.status = status;
    ctx.body = body;
  });

  router.get('/metrics', async (ctx) => {
    // Checked here as well as in authenticate(): the route is what serves the data, whatever path reached it.
    deps.security?.auth.checkMetricsToken(ctx);
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  const registry = createOpenApiRegistry();
  registerPublicRoutes(registry);
  const authHook = deps.auth ?? (deps.security === undefined ? undefined : authHookFor(deps.security.auth));
  const limits = deps.bodyLimits ?? { bodyBytes: 1024 * 1024, jsonMaxDepth: 32 };
  mountRoutes(router, deps.routes ?? [], authHook === undefined ? { registry, limits } : { registry, limits, auth: authHook });
  mountOpenApi(router, registry);
  mountConsolePages(router, registry, { logger: deps.logger, simulator: deps.console?.simulator ?? false });
  deps.inspect?.(router, registry);

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** The public routes defined above, in the OpenAPI document too. */
function registerPublicRoutes(registry: OpenAPIRegistry): void {
  const json = (description: string) => ({ description, content: { 'application/json': { schema: z.object({}).passthrough() } } });
  const text = (description: string, type: string) => ({ description, content: { [type]: { schema: { type: 'string' as const } } } });
  const error = { description: 'Error', content: { 'application/json': { schema: errorSchema } } };
  const base = { tags: ['operations'], security: [] };
  registry.registerPath({ ...base, method: 'get', path: '/health', operationId: 'getHealth', summary: 'Liveness: `{status}`; shards and dependency checks only with METRICS_TOKEN or the admin scope (cached ~1 s)', responses: { 200: json('Healthy'), 503: json('Unhealthy') } });
  registry.registerPath({ ...base, method: 'get', path: '/ready', operationId: 'getReady', summary: 'Readiness: 200 while accepting traffic', responses: { 200: json('Ready'), 503: { ...error, description: 'Starting or stopping (SHARD_UNAVAILABLE, SHUTTING_DOWN)' } } });
  registry.registerPath({
    ...base,
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    description: 'Public unless METRICS_TOKEN is set; then it needs `Authorization: Bearer <METRICS_TOKEN>` (not an API credential).',
    responses: { 200: text('Prometheus text format', 'text/plain'), 401: { ...error, description: 'METRICS_TOKEN is set and the request does not carry it (UNAUTHORIZED)' } },
  });
  registry.registerPath({ ...base, method: 'get', path: '/openapi.json', operationId: 'getOpenApiDocument', summary: 'This document (OpenAPI 3.1)', responses: { 200: json('The document') } });
  registry.registerPath({ ...base, method: 'get', path: '/docs', operationId: 'getDocsPage', summary: 'API reference (Swagger UI over this document)', responses: { 200: text('HTML page', 'text/html') } });
}
