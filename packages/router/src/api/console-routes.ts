/**
 * The web console (docs/console.md): its static pages at /console (built in memory from @wagw/console at the
 * first request), the API reference at /docs (swagger-ui-dist from npm, served from here, no CDN), and the
 * few API routes the console needs beyond the session and message API: who the caller is (`/api/v1/me`), one
 * event stream of every session the caller may see (`/api/v1/events`, so a browser holds one connection, not
 * one per session) and, only when a WhatsApp simulator is wired in (the demo, the browser tests), a
 * "scan with a simulated phone" route.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Router } from '@koa/router';
import { buildConsole } from '@wagw/console';
import type { ConsoleBundle } from '@wagw/console';
import { GatewayError } from '@wagw/shared';
import type { Logger } from '@wagw/shared';
import { z } from 'zod';
import type { AppContext, AppState, ShardsView } from '../app.ts';
import { ANONYMOUS, sessionAllowed } from '../security/principal.ts';
import { defineRoute } from './define-route.ts';
import type { RouteDefinition } from './define-route.ts';
import { errorSchema } from './schemas.ts';
import { respondWithEvents } from './sse.ts';
import type { EventHub } from './sse.ts';

/** What the console's simulator button drives: a simulated phone that scans a QR (wa-sim's demo helpers). */
export interface SimulatorControl {
  /** A new simulated phone scans `qr` and links the session to itself; resolves with the phone's number. */
  scanQr(qr: string): Promise<{ phone: string }>;
  /** The simulated contacts a session can chat with (they answer). */
  contacts(): { number: string; name: string }[];
}

/**
 * The console's CSP: everything from this origin, no inline script or style; `blob:` and `data:` images for the
 * QR code and media previews that the console fetches with its credential and shows as object URLs.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Swagger UI sets style attributes at run time, hence 'unsafe-inline' for styles only (never for scripts). */
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WhatsApp gateway API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<script src="/docs/swagger-ui-bundle.js" defer></script>
<script src="/docs/init.js" defer></script>
</head><body>
<main><h1 class="visually-hidden">WhatsApp gateway API</h1>
<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). The <a href="/console">console</a>'s
credential is used by "Try it out".</p>
<div id="swagger"></div></main>
</body></html>`;

/**
 * Swagger UI start-up, a file rather than an inline script so the CSP needs no 'unsafe-inline' for scripts.
 * It reuses the console's credential (same origin, sessionStorage) so "Try it out" calls as the signed-in user.
 */
const DOCS_INIT = `window.addEventListener('DOMContentLoaded', function () {
  var ui = window.SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger',
    deepLinking: true,
    // Pre-authorising works once the document is loaded, hence onComplete.
    onComplete: function () {
      try {
        var c = JSON.parse(sessionStorage.getItem('wagw.credential') || 'null');
        if (c && c.kind === 'api-key') ui.preauthorizeApiKey('apiKey', c.value);
        if (c && c.kind === 'jwt') ui.preauthorizeApiKey('bearerAuth', c.value);
      } catch (e) { /* no credential: Authorize by hand */ }
    },
  });
});
`;

const SWAGGER_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
};

export interface ConsolePagesOptions {
  logger: Logger;
  /** Whether the simulator routes are mounted (the console shows its "scan" button only then). */
  simulator: boolean;
}

/**
 * Mounts /console, /console/:file and /docs, /docs/:file (all public: static files with no data; every call
 * the console makes carries the user's credential). The bundle is built once, on first use.
 */
/** `/console/` -> `/console` (a middleware, not a route: strict routing would otherwise 404 it). */
export async function consoleSlashRedirect(ctx: { path: string; redirect(url: string): void }, next: () => Promise<void>): Promise<void> {
  if (ctx.path === '/console/') {
    ctx.redirect('/console');
    return;
  }
  await next();
}

export function mountConsolePages(router: Router<AppState>, registry: OpenAPIRegistry, options: ConsolePagesOptions): void {
  let bundle: Promise<ConsoleBundle> | undefined;
  const load = (): Promise<ConsoleBundle> => {
    bundle ??= buildConsole().then(
      (b) => {
        options.logger.info({ ms: Math.round(b.buildMs) }, 'console built');
        return b;
      },
      (err: unknown) => {
        // Not cached: the next request tries again (a half-installed dependency fixed meanwhile).
        bundle = undefined;
        throw err;
      },
    );
    return bundle;
  };
  const config = Buffer.from(JSON.stringify({ simulator: options.simulator }));

  const serve = async (ctx: AppContext, file: string): Promise<void> => {
    if (file === 'config.json') {
      ctx.type = 'application/json';
      ctx.set('cache-control', 'no-store');
      ctx.body = config;
      return;
    }
    const asset = (await load()).files.get(file);
    if (asset === undefined) throw new GatewayError('NOT_FOUND', `No console file ${file.slice(0, 64)}.`);
    ctx.set('content-security-policy', CONSOLE_CSP);
    ctx.set('cache-control', 'no-cache');
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
  // The page is /console (its assets are absolute: /console/app.js); routing is strict, so /console/ is another
  // path, redirected here by consoleSlashRedirect (app middleware: no route, so nothing undocumented).
  router.get('/console', (ctx) => serve(ctx, 'index.html'));
  router.get('/console/:file', (ctx) => serve(ctx, ctx.params.file ?? ''));

  const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const swagger = new Map<string, Promise<Buffer>>();
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('content-security-policy', DOCS_CSP);
    ctx.body = DOCS_PAGE;
  });
  router.get('/docs/:file', async (ctx) => {
    const file = ctx.params.file ?? '';
    ctx.set('content-security-policy', DOCS_CSP);
    if (file === 'init.js') {
      ctx.type = 'text/javascript; charset=utf-8';
      ctx.body = DOCS_INIT;
      return;
    }
    const type = SWAGGER_FILES[file];
    if (type === undefined) throw new GatewayError('NOT_FOUND', `No docs file ${file.slice(0, 64)}.`);
    let body = swagger.get(file);
    if (body === undefined) swagger.set(file, (body = readFile(path.join(swaggerDir, file))));
    ctx.type = type;
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = await body;
  });

  const text = (description: string, type: string) => ({ description, content: { [type]: { schema: { type: 'string' as const } } } });
  const fileParam = z.object({ file: z.string() });
  const err404 = { description: 'No such file (NOT_FOUND)', content: { 'application/json': { schema: errorSchema } } };
  registry.registerPath({
    method: 'get',
    path: '/console',
    operationId: 'getConsolePage',
    security: [],
    summary: 'The web console (docs/console.md); /console/ redirects here',
    tags: ['console'],
    responses: { 200: text('HTML page', 'text/html') },
  });
  registry.registerPath({
    method: 'get',
    path: '/console/{file}',
    operationId: 'getConsoleFile',
    security: [],
    summary: 'A file of the console: app.js, app.css, config.json ({simulator})',
    tags: ['console'],
    request: { params: fileParam },
    responses: { 200: text('The file', 'application/octet-stream'), 404: err404 },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs/{file}',
    operationId: 'getDocsFile',
    security: [],
    summary: 'A file of the API reference page (Swagger UI)',
    tags: ['operations'],
    request: { params: fileParam },
    responses: { 200: text('The file', 'application/octet-stream'), 404: err404 },
  });
}

const meSchema = z
  .object({
    kind: z.enum(['jwt', 'api-key', 'anonymous']),
    subject: z.string(),
    scopes: z.array(z.string()),
    sessions: z.array(z.string()).nullable().meta({ description: 'Session ids this credential is limited to; null: any' }),
  })
  .meta({ id: 'Principal' });

export interface ConsoleRoutesDeps {
  hub: EventHub;
  /** The host's shards: `/api/v1/admin/shards/stats` asks each ready one for its `stats`. */
  shards: ShardsView;
}

const shardStatsSchema = z
  .object({
    index: z.number().int(),
    ok: z.boolean(),
    error: z.string().optional(),
    uptimeMs: z.number().optional(),
    sessions: z.number().int().optional(),
    rssBytes: z.number().optional(),
    heapUsedBytes: z.number().optional(),
    lagP99Ms: z.number().optional(),
    lagMaxMs: z.number().optional(),
    loopUtilization: z.number().optional(),
  })
  .meta({ id: 'ShardStats' });

/**
 * `/api/v1/me`, `/api/v1/events` and `/api/v1/admin/shards/stats`: what the console needs to show only what
 * the credential allows, live, and each shard's memory and event-loop lag.
 */
export function consoleRoutes(deps: ConsoleRoutesDeps): RouteDefinition[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/v1/admin/shards/stats',
      summary: "This host's shards: memory, event-loop lag (window since the shard started) and uptime, asked of each ready shard",
      tags: ['admin'],
      auth: { scopes: ['admin'] },
      responses: { 200: { description: 'Per shard (ok: false when it did not answer within 2 s)', schema: z.object({ shards: z.array(shardStatsSchema) }) } },
      handler: async (ctx) => {
        const shards = await Promise.all(
          deps.shards.list().map(async (s): Promise<z.output<typeof shardStatsSchema>> => {
            if (s.state !== 'ready') return { index: s.index, ok: false, error: s.state };
            try {
              const st = await deps.shards.call(s.index, { kind: 'stats' }, { timeoutMs: 2000, requestId: ctx.state.reqId });
              return {
                index: s.index,
                ok: true,
                uptimeMs: st.uptimeMs,
                sessions: st.sessions,
                rssBytes: st.memory.rss,
                heapUsedBytes: st.memory.heapUsed,
                lagP99Ms: st.eventLoop.lagP99Ms,
                lagMaxMs: st.eventLoop.lagMaxMs,
                loopUtilization: st.eventLoop.utilization,
              };
            } catch (err) {
              const code = (err as { code?: unknown }).code;
              return { index: s.index, ok: false, error: typeof code === 'string' ? code : 'INTERNAL' };
            }
          }),
        );
        ctx.body = { shards };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/me',
      summary: 'Who the credential is: its scopes and the sessions it is limited to (the console hides what it cannot do)',
      tags: ['console'],
      auth: { scopes: [] },
      responses: { 200: { description: 'The principal', schema: meSchema }, 401: { description: 'No or bad credentials', schema: errorSchema } },
      handler: (ctx) => {
        const p = ctx.state.principal ?? ANONYMOUS;
        ctx.body = { kind: p.kind, subject: p.subject, scopes: [...p.scopes], sessions: p.sessions === undefined ? null : [...p.sessions] };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/events',
      summary: 'Server-Sent Events of every session the credential may see (status, qr, deleted of every host; message, message-status of this host)',
      description:
        "Each event names its session (`id` or `sessionId`). In a cluster, the status, qr and deleted events of other hosts' sessions are relayed here over Redis pub/sub (each with an SSE `id`, delivered once, at most once); message events only from this host's sessions (docs/console.md, \"Live updates\").",
      tags: ['sessions'],
      auth: { scopes: ['sessions:read'] },
      responses: {
        200: { description: 'An event stream', contentTypes: { 'text/event-stream': 'event: status|qr|message|message-status|deleted, data: JSON' } },
        429: { description: 'Too many event streams (TOO_MANY_STREAMS)', schema: errorSchema },
        503: { description: 'The gateway is shutting down (SHUTTING_DOWN)', schema: errorSchema },
      },
      handler: (ctx) => {
        const principal = ctx.state.principal ?? ANONYMOUS;
        const stream = deps.hub.subscribeAll((topic) => sessionAllowed(principal, topic), `${principal.kind}:${principal.subject}`);
        respondWithEvents(ctx, stream);
      },
    }),
  ];
}

const scanBody = z.object({ qr: z.string().min(1).max(1024) }).strict().meta({ id: 'SimulatorScanRequest' });

/** Only mounted when a simulator is wired in (GatewayRouterOptions.simulator): never in production. */
export function simulatorRoutes(control: SimulatorControl): RouteDefinition[] {
  return [
    defineRoute({
      method: 'post',
      path: '/api/v1/simulator/scan',
      summary: 'Simulator only: a new simulated phone scans this QR (demo and tests)',
      tags: ['simulator'],
      auth: { scopes: ['sessions:write'] },
      body: scanBody,
      responses: {
        200: { description: 'Scanned', schema: z.object({ phone: z.string() }) },
        400: { description: 'Not a QR the simulator issued (VALIDATION_FAILED)', schema: errorSchema },
      },
      handler: async (ctx, { body }) => {
        try {
          ctx.body = await control.scanQr(body.qr);
        } catch (err) {
          throw new GatewayError('VALIDATION_FAILED', `The simulated phone could not scan this QR: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/simulator/contacts',
      summary: 'Simulator only: simulated contacts who answer messages',
      tags: ['simulator'],
      auth: { scopes: ['messages:read'] },
      responses: { 200: { description: 'Contacts', schema: z.object({ data: z.array(z.object({ number: z.string(), name: z.string() })) }) } },
      handler: (ctx) => {
        ctx.body = { data: control.contacts() };
      },
    }),
  ];
}
