// The router's real Koa app (createApp, with its request-context and error middleware) with fake shards, and
// the security middleware mounted the way docs/security.md describes, for integration tests and the fuzz.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Lifecycle, RouterMetrics, createApp, security } from '@wagw/router';
import type { ShardsView } from '@wagw/router';
import { createRootLogger } from '@wagw/shared';
import type { GatewayConfig, Logger } from '@wagw/shared';

const { RateLimits, createAuthenticator, readJsonBody } = security;
type Authenticator = security.Authenticator;
type SecurityState = security.SecurityState;
type RateLimits = security.RateLimits;

const shards: ShardsView = {
  list: () => [],
  pendingCount: () => 0,
  call: () => Promise.reject(Object.assign(new Error('no shards in this test'), { code: 'SHARD_UNAVAILABLE' })),
};

export interface SecuredApp {
  app: ReturnType<typeof createApp>;
  auth: Authenticator;
  limits: RateLimits;
  close(): Promise<void>;
}

/**
 * createApp() plus, behind its own routes, the security chain: per-IP limiter -> authenticate -> per-principal
 * limiter -> stand-in API routes with requireAuth and readJsonBody.
 */
export async function securedApp(config: GatewayConfig, logger: Logger, options: { keyPrefix?: string } = {}): Promise<SecuredApp> {
  const lifecycle = new Lifecycle();
  lifecycle.markReady();
  const app = createApp({
    logger,
    shards,
    lifecycle,
    metrics: new RouterMetrics({ defaultMetrics: false }),
    hostId: 'h-test',
    dependencies: async () => ({}),
  });
  const auth = createAuthenticator(config, { logger });
  const limits = await RateLimits.create(config, { logger, keyPrefix: options.keyPrefix });
  app.use(limits.perIp);
  app.use(auth.authenticate());
  app.use(limits.perPrincipal);
  const read = auth.requireAuth({ scopes: ['sessions:read'] });
  const write = auth.requireAuth({ scopes: ['sessions:write'] });
  const send = auth.requireAuth({ scopes: ['messages:send'], sessionParam: 'id' });
  app.use(async (ctx, next) => {
    const m = /^\/api\/v1\/sessions(?:\/([^/]+)(\/messages)?)?$/.exec(ctx.path);
    if (m === null) return next();
    const id = m[1];
    let decoded = id;
    try {
      decoded = id === undefined ? undefined : decodeURIComponent(id);
    } catch {
      // malformed percent-encoding: keep it raw, as @koa/router does
    }
    (ctx as { params?: Record<string, string> }).params = decoded === undefined ? {} : { id: decoded };
    const guard = m[2] !== undefined ? send : ctx.method === 'GET' ? read : write;
    await guard(ctx, async () => {
      const body = ctx.method === 'GET' ? undefined : await readJsonBody(ctx.req, config.limits, (ctx.state as SecurityState).forwarded);
      ctx.status = ctx.method === 'POST' ? 201 : 200;
      ctx.body = { ok: true, kind: (ctx.state as SecurityState).principal?.kind ?? null, got: body === undefined ? null : typeof body };
    });
  });
  return { app, auth, limits, close: () => limits.close() };
}

export function silentLogger(): Logger {
  return createRootLogger({ proc: 'test', level: 'silent' });
}

export async function listen(app: { callback(): http.RequestListener }): Promise<{ base: string; port: number; close(): Promise<void> }> {
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
