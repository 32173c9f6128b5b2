/**
 * The route-definition layer: one `defineRoute({...})` per endpoint declares its method, path, auth, zod
 * schemas for params/query/body and its responses. `mountRoutes` registers each on the Koa router with
 * request validation (400 VALIDATION_FAILED naming each bad field) AND in the OpenAPI registry, so the
 * document at /openapi.json cannot drift from the routes (a test checks every Koa route is documented).
 */
import type { Middleware } from 'koa';
import type { Router } from '@koa/router';
import type { z } from 'zod';
import type { ZodObject, ZodType } from 'zod';
import type { OpenAPIRegistry, ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { GatewayError } from '@wagw/shared';
import type { AuthScope } from '@wagw/shared';
import type { AppContext, AppState } from '../app.ts';
import { ByteBudget, readJsonBody } from '../security/limits.ts';
import type { BodyLimits } from '../security/limits.ts';

/** Body limit of a route that does not say otherwise. */
export const DEFAULT_JSON_LIMIT_BYTES = 64 * 1024;

export type HttpMethod = 'get' | 'post' | 'put' | 'delete' | 'patch';

/** Who may call a route: public, or a principal with these scopes (optionally limited to the `:id` session). */
export type RouteAuth = 'public' | { scopes: readonly AuthScope[]; sessionParam?: string };

export interface RouteResponse {
  description: string;
  /** JSON body schema; omit for bodies described by `contentTypes` only. */
  schema?: ZodType;
  /** Non-JSON content types (images, event streams) with a description of their body. */
  contentTypes?: Record<string, string>;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

export interface RouteSpec<P extends ZodObject, Q extends ZodObject, B extends ZodType> {
  method: HttpMethod;
  /** Koa path, e.g. `/api/v1/sessions/:id`. */
  path: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: RouteAuth;
  params?: P;
  query?: Q;
  body?: B;
  /**
   * Body size limit of this route: default 64 KiB (small control bodies); `'config'` for BODY_LIMIT_BYTES (media
   * as base64). Never more than BODY_LIMIT_BYTES. Depth is always JSON_MAX_DEPTH.
   */
  bodyLimitBytes?: number | 'config';
  responses: Record<number, RouteResponse>;
  handler: (ctx: AppContext, input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<void> | void;
}

/** A route with its types erased, ready to mount. */
export interface RouteDefinition {
  readonly method: HttpMethod;
  readonly path: string;
  readonly auth: RouteAuth;
  readonly spec: RouteSpec<ZodObject, ZodObject, ZodType>;
}

export function defineRoute<P extends ZodObject = ZodObject, Q extends ZodObject = ZodObject, B extends ZodType = ZodType>(
  spec: RouteSpec<P, Q, B>,
): RouteDefinition {
  return { method: spec.method, path: spec.path, auth: spec.auth, spec: spec as unknown as RouteSpec<ZodObject, ZodObject, ZodType> };
}

/** The single place authentication plugs in: returns a middleware for a route's auth (none until then). */
export type AuthHook = (auth: RouteAuth, route: { method: HttpMethod; path: string }) => Middleware<AppState> | undefined;

export interface ValidationProblem {
  location: 'params' | 'query' | 'body';
  /** Dotted path of the field (`body.metadata.x`), or the location itself for the whole part. */
  field: string;
  message: string;
}

function problemsOf(location: ValidationProblem['location'], error: z.ZodError): ValidationProblem[] {
  return error.issues.map((issue) => ({
    location,
    field: [location, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
}

function parsePart<T extends ZodType>(location: ValidationProblem['location'], schema: T | undefined, value: unknown, problems: ValidationProblem[]): z.output<T> | undefined {
  if (schema === undefined) return undefined;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  problems.push(...problemsOf(location, result.error));
  return undefined;
}

function validationError(problems: ValidationProblem[]): GatewayError {
  const text = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  return new GatewayError('VALIDATION_FAILED', `Invalid request: ${text}`, { fields: problems });
}

/** `/api/v1/sessions/:id` -> `/api/v1/sessions/{id}` */
export function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export interface MountOptions {
  registry: OpenAPIRegistry;
  auth?: AuthHook;
  /** BODY_LIMIT_BYTES and JSON_MAX_DEPTH (config.limits): every JSON body is read by security's readJsonBody. */
  limits: Pick<BodyLimits, 'bodyBytes' | 'jsonMaxDepth' | 'bodyBudgetBytes'>;
}

export function mountRoutes(router: Router<AppState>, routes: readonly RouteDefinition[], options: MountOptions): void {
  const budget = options.limits.bodyBudgetBytes === undefined ? undefined : new ByteBudget(options.limits.bodyBudgetBytes);
  for (const route of routes) {
    const { spec } = route;
    const middlewares: Middleware<AppState>[] = [];
    const authMw = options.auth?.(route.auth, { method: route.method, path: route.path });
    if (authMw) middlewares.push(authMw);
    middlewares.push(async (ctx) => {
      const c = ctx as AppContext;
      const problems: ValidationProblem[] = [];
      const params = parsePart('params', spec.params, (c as AppContext & { params?: unknown }).params ?? {}, problems);
      const query = parsePart('query', spec.query, { ...c.query }, problems);
      let body: unknown;
      let release: (() => void) | undefined;
      try {
        if (spec.body !== undefined) {
          const own = spec.bodyLimitBytes ?? DEFAULT_JSON_LIMIT_BYTES;
          const bodyBytes = own === 'config' ? options.limits.bodyBytes : Math.min(options.limits.bodyBytes, own);
          // A large body holds its bytes from reading until the handler is done (the parsed copy lives that long).
          const declared = Number(c.get('content-length') || NaN);
          const expected = Number.isFinite(declared) ? declared : c.req.headers['transfer-encoding'] === undefined ? 0 : bodyBytes;
          if (budget !== undefined && expected > DEFAULT_JSON_LIMIT_BYTES && expected <= bodyBytes) {
            try {
              release = budget.take(expected);
            } catch (e) {
              c.set('retry-after', '1');
              throw e;
            }
          }
          const raw = await readJsonBody(c.req, { bodyBytes, jsonMaxDepth: options.limits.jsonMaxDepth }, c.state.forwarded);
          c.state.rawBody = raw;
          body = parsePart('body', spec.body, raw === undefined ? {} : raw, problems);
        }
        if (problems.length > 0) throw validationError(problems);
        await spec.handler(c, { params, query, body } as Parameters<typeof spec.handler>[1]);
      } finally {
        release?.();
      }
    });
    router[route.method](route.path, ...middlewares);
    options.registry.registerPath(openApiRoute(route));
  }
}

function openApiRoute(route: RouteDefinition): RouteConfig {
  const { spec } = route;
  const responses: Record<number, ResponseConfig> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const content: Record<string, { schema: ZodType | { type: 'string'; description?: string; format?: string } }> = {};
    if (r.schema) content['application/json'] = { schema: r.schema };
    for (const [type, description] of Object.entries(r.contentTypes ?? {})) {
      content[type] = { schema: type.startsWith('image/png') ? { type: 'string', format: 'binary', description } : { type: 'string', description } };
    }
    responses[Number(status)] = Object.keys(content).length > 0 ? { description: r.description, content } : { description: r.description };
  }
  const request: NonNullable<RouteConfig['request']> = {};
  if (spec.params) request.params = spec.params;
  if (spec.query) request.query = spec.query;
  if (spec.body) request.body = { required: false, content: { 'application/json': { schema: spec.body } } };
  const config: RouteConfig = {
    method: route.method,
    path: toOpenApiPath(route.path),
    summary: spec.summary,
    tags: spec.tags,
    request,
    responses,
  };
  if (spec.description) config.description = spec.description;
  if (route.auth !== 'public') {
    config.security = [{ bearerAuth: [...route.auth.scopes] }, { apiKey: [...route.auth.scopes] }];
  }
  return config;
}
