// A small Koa app with the gateway's request-context and error middleware (as app.ts has them), for
// exercising the security middleware without shards.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import type { Middleware } from 'koa';
import { Router } from '@koa/router';
import { pino } from 'pino';
import { REDACT_PATHS, loadConfig } from '@wagw/shared';
import type { GatewayConfig, Logger } from '@wagw/shared';
import { errorResponse } from '../../src/app.ts';
import type { SecurityState } from '../../src/security/index.ts';

export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
  text: () => string;
}

/** A pino logger with the gateway's redaction, writing its lines into memory. */
export function captureLogger(level = 'info'): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      raw += chunk.toString();
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
  return { logger, lines, text: () => raw };
}

export function config(env: Record<string, string>): GatewayConfig {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env });
}

export type SecApp = Koa<SecurityState & { reqId: string }>;

/** request context + error middleware as app.ts; `mount` adds the middleware under test and routes. */
export function securityApp(logger: Logger, mount: (app: SecApp, router: Router<SecurityState & { reqId: string }>) => void): SecApp {
  const app: SecApp = new Koa();
  app.use(async (ctx, next) => {
    ctx.state.reqId = 'r1';
    ctx.state.log = logger.child({ reqId: 'r1' });
    try {
      await next();
    } finally {
      ctx.state.log.info({ method: ctx.method, path: ctx.path, status: ctx.status }, 'request');
    }
  });
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.body === undefined && ctx.status === 404) ctx.throw(404);
    } catch (err) {
      const { status, body } = errorResponse(err);
      ctx.status = status;
      ctx.body = body;
      if (status >= 500) ctx.state.log.error({ err }, 'request failed');
    }
  });
  const router = new Router<SecurityState & { reqId: string }>();
  mount(app, router);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

export const ok: Middleware<SecurityState> = (ctx) => {
  ctx.body = { ok: true, principal: ctx.state.principal ?? null };
};

export interface Served {
  base: string;
  close: () => Promise<void>;
}

export async function serve(app: { callback(): http.RequestListener }): Promise<Served> {
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details?: Record<string, unknown> }; ok?: boolean; principal?: Record<string, unknown> | null };
}

export async function call(base: string, path: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(base + path, { ...init, headers });
  const text = await res.text();
  let body: Reply['body'] = {};
  try {
    body = JSON.parse(text) as Reply['body'];
  } catch {
    body = {};
  }
  return { status: res.status, headers: res.headers, body };
}
