/**
 * The route-definition layer: one `defineRoute({...})` per endpoint declares its method, path, auth, zod
 * schemas for params/query/body and its responses. `mountRoutes` registers each on the Koa router with
 * request validation (400 VALIDATION_FAILED naming each bad field) AND in the OpenAPI registry, so the
 * document at /openapi.json cannot drift from the routes (a test checks every Koa route is documented). The
 * document lists every status an operation can answer: the declared ones plus those the route layer gives
 * (`derivedResponses`: auth, rate limits, validation, body reading), so a generated client knows them all;
 * the route fuzz fails on any answer whose status its operation does not list (test/security/gateway-fuzz.test.ts).
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
import { errorSchema } from './schemas.ts';

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

/** A multipart/form-data body (read by the handler itself, e.g. with busboy), described in the document. */
export interface MultipartBody {
  /** Name of the form field carrying the file. */
  fileField: string;
  description: string;
}

export interface RouteSpec<P extends ZodObject, Q extends ZodObject, B extends ZodType> {
  method: HttpMethod;
  /** Koa path, e.g. `/api/v1/sessions/:id`. */
  path: string;
  /** The OpenAPI operationId; default derived from method and path by `operationIdOf` (stable while the path is). */
  operationId?: string;
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
  /** A multipart body the handler reads itself (no `body` schema then). */
  multipart?: MultipartBody;
  /**
   * The responses the handler itself gives. Those the route layer gives (auth 401/403, rate limit 429,
   * validation 400, body 413/415) are added by `derivedResponses`; a status listed here keeps its own text.
   */
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
  /** One short sentence; lists (accepted formats, ...) are in the fields below. */
  message: string;
  /** A schema's own check names its code (e.g. INVALID_PHONE) and data such as `reason`, `accepted`. */
  code?: string;
  [more: string]: unknown;
}

function problemsOf(location: ValidationProblem['location'], error: z.ZodError): ValidationProblem[] {
  return error.issues.map((issue) => {
    const problem: ValidationProblem = { location, field: [location, ...issue.path.map(String)].join('.'), message: issue.message };
    if (issue.code === 'custom' && issue.params !== undefined) {
      for (const [k, v] of Object.entries(issue.params)) if (!(k in problem) && v !== undefined) problem[k] = v;
    }
    return problem;
  });
}

function parsePart<T extends ZodType>(location: ValidationProblem['location'], schema: T | undefined, value: unknown, problems: ValidationProblem[]): z.output<T> | undefined {
  if (schema === undefined) return undefined;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  problems.push(...problemsOf(location, result.error));
  return undefined;
}

/**
 * 400 naming every bad field. INVALID_PHONE when every problem is a recipient that is not a phone number or JID
 * (its formats in `details.accepted` and in each field), else VALIDATION_FAILED.
 */
function validationError(problems: ValidationProblem[]): GatewayError {
  const text = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  const phone = problems.every((p) => p.code === 'INVALID_PHONE');
  if (phone) {
    // The formats once, in details.accepted (each field keeps its reason).
    const fields = problems.map(({ accepted: _accepted, ...rest }) => rest);
    return new GatewayError('INVALID_PHONE', `Invalid request: ${text}`, { fields, accepted: problems[0]?.['accepted'] });
  }
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

/**
 * `get /api/v1/sessions/:id/messages` -> `getSessionMessages`: the method, then each static segment after
 * `/api/v1` in PascalCase, singular when a parameter follows it (`sessions/:id` -> `Session`). Unique for the
 * gateway's routes (a test checks), stable as long as the path is.
 */
export function operationIdOf(method: HttpMethod, path: string): string {
  const segments = path.replace(/^\/api\/v1(?=\/|$)/, '').split('/').filter((s) => s !== '');
  let id: string = method;
  segments.forEach((segment, i) => {
    if (segment.startsWith(':')) return;
    const next = segments[i + 1];
    const word = next?.startsWith(':') === true && segment.endsWith('s') ? (segment.endsWith('ies') ? `${segment.slice(0, -3)}y` : segment.slice(0, -1)) : segment;
    id += word
      .split(/[^A-Za-z0-9]+/)
      .filter((w) => w !== '')
      .map((w) => w[0]?.toUpperCase() + w.slice(1))
      .join('');
  });
  return id;
}

const errorResponse = (description: string): RouteResponse => ({ description, schema: errorSchema });

/**
 * The responses the route layer gives on its own, from the declaration: credentials (401/403) and the rate
 * limits (429) on every non-public route (the per-IP and per-principal limiters skip only public paths), and
 * 400 when a part is validated, plus 413/415 when a body is read. docs/errors.md lists the codes.
 */
export function derivedResponses(spec: Pick<RouteSpec<ZodObject, ZodObject, ZodType>, 'auth' | 'params' | 'query' | 'body' | 'multipart'>): Record<number, RouteResponse> {
  const out: Record<number, RouteResponse> = {};
  const validated = [spec.params && 'path parameter', spec.query && 'query parameter', spec.body && 'JSON body', spec.multipart && 'multipart body'].filter(Boolean);
  if (validated.length > 0) {
    const codes = spec.body ? 'VALIDATION_FAILED, INVALID_JSON' : 'VALIDATION_FAILED';
    out[400] = errorResponse(`Invalid ${validated.join(' or ')} (${codes}); details.fields names each bad field`);
  }
  if (spec.body || spec.multipart) {
    out[413] = errorResponse('The body is larger than the route allows (PAYLOAD_TOO_LARGE)');
    out[415] = errorResponse(spec.multipart ? 'Not multipart/form-data (UNSUPPORTED_MEDIA_TYPE)' : 'Not UTF-8 application/json, or compressed (UNSUPPORTED_MEDIA_TYPE)');
  }
  if (spec.auth !== 'public') {
    out[401] = errorResponse('No credentials, or invalid ones (UNAUTHORIZED, INVALID_TOKEN, TOKEN_EXPIRED, INVALID_API_KEY)');
    out[403] = errorResponse(
      spec.auth.sessionParam === undefined
        ? 'The credentials lack a required scope (INSUFFICIENT_SCOPE, FORBIDDEN)'
        : 'The credentials lack a required scope or are limited to other sessions (INSUFFICIENT_SCOPE, SESSION_NOT_ALLOWED, FORBIDDEN)',
    );
    out[429] = errorResponse('Rate limited per client address or per credential (RATE_LIMITED); see Retry-After');
  }
  return out;
}

const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' as const, minimum: 1 } } };

function openApiResponse(status: number, r: RouteResponse): ResponseConfig {
  const content: Record<string, { schema: ZodType | { type: 'string'; description?: string; format?: string } }> = {};
  if (r.schema) content['application/json'] = { schema: r.schema };
  for (const [type, description] of Object.entries(r.contentTypes ?? {})) {
    content[type] = { schema: type.startsWith('image/png') || type === 'application/octet-stream' ? { type: 'string', format: 'binary', description } : { type: 'string', description } };
  }
  const out: ResponseConfig = Object.keys(content).length > 0 ? { description: r.description, content } : { description: r.description };
  if (status === 429) out.headers = RETRY_AFTER;
  return out;
}

/** Every status an operation can answer: the declared ones, then the derived ones not declared. */
export function allResponses(spec: RouteSpec<ZodObject, ZodObject, ZodType>): Record<number, RouteResponse> {
  return { ...derivedResponses(spec), ...spec.responses };
}

function openApiRoute(route: RouteDefinition): RouteConfig {
  const { spec } = route;
  const responses: Record<number, ResponseConfig> = {};
  const all = allResponses(spec);
  for (const status of Object.keys(all).map(Number).sort((a, b) => a - b)) {
    const r = all[status];
    if (r !== undefined) responses[status] = openApiResponse(status, r);
  }
  const request: NonNullable<RouteConfig['request']> = {};
  if (spec.params) request.params = spec.params;
  if (spec.query) request.query = spec.query;
  if (spec.body) request.body = { required: false, content: { 'application/json': { schema: spec.body } } };
  if (spec.multipart) {
    request.body = {
      required: true,
      description: spec.multipart.description,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: { [spec.multipart.fileField]: { type: 'string', format: 'binary', description: 'The file (its part Content-Type is the media type)' } },
            required: [spec.multipart.fileField],
          },
        },
      },
    };
  }
  const config: RouteConfig = {
    method: route.method,
    path: toOpenApiPath(route.path),
    operationId: spec.operationId ?? operationIdOf(route.method, route.path),
    summary: spec.summary,
    tags: spec.tags,
    request,
    responses,
  };
  if (spec.description) config.description = spec.description;
  config.security = route.auth === 'public' ? [] : [{ bearerAuth: [...route.auth.scopes] }, { apiKey: [...route.auth.scopes] }];
  return config;
}
