/**
 * Session end-to-end helpers: a gateway (GatewayRouter in-process with real forked shards, or a real router
 * process) pointed at a WaSimulator started by the test, real stores, an HTTP client, an SSE reader and a
 * webhook receiver.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeGateway } from '@wagw/router';
import type { GatewayRouter } from '@wagw/router';
import type { GatewayRouterOptions } from '@wagw/router';
import { createRootLogger, loadConfig } from '@wagw/shared';
import type { GatewayConfig, Logger, WebhookOutbox } from '@wagw/shared';
import { openStores } from '@wagw/stores';
import type { Stores } from '@wagw/stores';
import { WaSimulator } from '@wagw/wa-sim';
import type { SimPhone } from '@wagw/wa-sim';
import { createTestDatabase, redisNamespace, startS3, seedEmbeddedDb, tempDir, waitFor } from '../harness/index.ts';
import type { Cleanup } from '../harness/index.ts';
import { SHARD_MAIN } from '../router/helpers.ts';

export const ROUTER_MAIN = fileURLToPath(import.meta.resolve('@wagw/router/main'));

export interface Sim {
  sim: WaSimulator;
  /** Environment variables pointing a gateway at this simulator. */
  env: Record<string, string>;
}

export async function startSim(t: Cleanup, dir?: string): Promise<Sim> {
  const sim = await WaSimulator.create();
  t.after(() => sim.close());
  const base = dir ?? (await tempDir(t)).path;
  const caFile = path.join(base, 'wa-sim-ca.pem');
  await writeFile(caFile, sim.mediaCaPem);
  return {
    sim,
    env: {
      WA_WEBSOCKET_URL: sim.urls.ws,
      WA_ROOT_PUBLIC_KEY: sim.rootPublicKey.toString('base64'),
      WA_EXTRA_CA_FILE: caFile,
      // Inbound media is fetched only from WhatsApp's hosts and, in simulator mode, this exact host:port.
      WA_MEDIA_HOST: sim.media.hostPort,
    },
  };
}

/** Quick, test-sized settings; `overrides` are environment variables. */
export function sessionTestEnv(dataDir: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env['WAGW_TEST_LOG'] ?? 'fatal',
    HOST: '127.0.0.1',
    PORT: '0',
    HOST_ID: 'test-host',
    DATA_DIR: dataDir,
    SHARD_COUNT: '2',
    WORKER_THREADS: '1',
    SHARD_READY_TIMEOUT_MS: '20000',
    IPC_CALL_TIMEOUT_MS: '20000',
    SHARD_STOP_TIMEOUT_MS: '8000',
    SHARD_RESTART_BACKOFF_MS: '100',
    SHARD_RESTART_BACKOFF_MAX_MS: '1000',
    SHUTDOWN_TIMEOUT_MS: '20000',
    LEASE_TTL_MS: '6000',
    LEASE_RENEW_INTERVAL_MS: '1500',
    SESSION_RECONNECT_BASE_MS: '200',
    SESSION_RECONNECT_MAX_MS: '2000',
    SESSION_RECONNECT_MAX_ATTEMPTS: '5',
    ...overrides,
  };
}

export interface ProductionStores {
  env: Record<string, string>;
  redisPrefix: string;
}

/** Redis (namespaced), a fresh PostgreSQL database and s3rver. */
export async function productionStores(t: Cleanup): Promise<ProductionStores> {
  const [ns, db, s3] = await Promise.all([redisNamespace(t), createTestDatabase(t), startS3(t)]);
  return {
    env: {
      REDIS_URL: ns.url,
      DATABASE_URL: db.url,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: s3.bucket,
    },
    redisPrefix: ns.prefix,
  };
}

export interface Gateway {
  router: GatewayRouter;
  stores: Stores;
  config: GatewayConfig;
  url: string;
  api: Api;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  env: Record<string, string>;
  redisPrefix?: string;
  outbox?: (stores: Stores) => WebhookOutbox;
  /** The real webhook system (outbox + dispatcher) from the env's WEBHOOK_* / BACKEND_URL settings. */
  webhooks?: boolean;
  logger?: Logger;
  inspect?: GatewayRouterOptions['inspect'];
  /** The console's simulated-phone control (wa-sim's DemoPeople): mounts /api/v1/simulator/*. */
  simulator?: GatewayRouterOptions['simulator'];
  /** Shard entry file (a test fixture wrapping `@wagw/shard/main`); default the real one. */
  shardEntry?: string;
}

export async function startGateway(t: Cleanup, options: GatewayOptions): Promise<Gateway> {
  const config = loadConfig(options.env);
  const logger = options.logger ?? createRootLogger({ proc: 'test', level: config.logLevel });
  if (config.database === undefined) await seedEmbeddedDb(config.dataDir);
  const stores = await openStores(config, logger, options.redisPrefix === undefined ? {} : { redisPrefix: options.redisPrefix });
  let router: GatewayRouter;
  try {
    ({ router } = await composeGateway({
      config,
      logger,
      stores,
      shardEntry: options.shardEntry ?? SHARD_MAIN,
      webhooks: options.webhooks === true,
      ...(options.outbox === undefined ? {} : { outbox: options.outbox(stores) }),
      defaultMetrics: false,
      ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
      ...(options.simulator === undefined ? {} : { simulator: options.simulator }),
    }));
  } catch (err) {
    await stores.close();
    throw err;
  }
  let stopped = false;
  const gw: Gateway = {
    router,
    stores,
    config,
    url: router.url,
    api: new Api(router.url),
    async stop() {
      if (stopped) return;
      stopped = true;
      await router.stop('test done');
    },
  };
  t.after(() => gw.stop());
  return gw;
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
  raw: Buffer;
}

export class Api {
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  async call<T = Record<string, unknown>>(method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(new URL(pathname, this.base), init);
    const raw = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    const parsed = type.includes('json') && raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as T) : ({} as T);
    return { status: res.status, body: parsed, headers: res.headers, raw };
  }

  get<T = Record<string, unknown>>(p: string): Promise<ApiResponse<T>> {
    return this.call<T>('GET', p);
  }
  post<T = Record<string, unknown>>(p: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.call<T>('POST', p, body);
  }

  async session(id: string): Promise<SessionBody> {
    const r = await this.get<SessionBody>(`/api/v1/sessions/${id}`);
    if (r.status !== 200) throw new Error(`GET session ${id}: ${r.status} ${r.raw.toString()}`);
    return r.body;
  }

  async waitStatus(id: string, status: string, timeoutMs = 30_000): Promise<SessionBody> {
    return await waitFor(
      async () => {
        const s = await this.session(id);
        return s.status === status ? s : null;
      },
      { what: `session ${id} to be ${status}`, timeoutMs, intervalMs: 100 },
    );
  }

  /** Waits for the session's QR (JSON format) and returns the string. */
  async waitQr(id: string, timeoutMs = 30_000, not?: string): Promise<string> {
    return await waitFor(
      async () => {
        const r = await this.get<{ qr?: string }>(`/api/v1/sessions/${id}/qr?format=json`);
        return r.status === 200 && r.body.qr !== undefined && r.body.qr !== not ? r.body.qr : null;
      },
      { what: `a QR for session ${id}`, timeoutMs, intervalMs: 100 },
    );
  }
}

export interface SessionBody {
  id: string;
  status: string;
  reason?: string;
  me?: { phone: string; jid: string; lid?: string; name?: string };
  shard: number | null;
  host: string | null;
  updatedAt: string;
}

/** Creates a session, waits for its QR, lets `phone` scan it, waits for `connected`. */
export async function pairByQr(api: Api, sim: WaSimulator, phone: SimPhone, id: string, timeoutMs = 60_000): Promise<SessionBody> {
  const created = await api.post(`/api/v1/sessions`, { id });
  if (created.status !== 201) throw new Error(`create ${id}: ${created.status} ${created.raw.toString()}`);
  const qr = await api.waitQr(id, timeoutMs);
  await sim.scanQr(phone, qr);
  return await api.waitStatus(id, 'connected', timeoutMs);
}

/** Runs `fn` over items with at most `limit` at once. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

export interface SseEvent {
  type: string;
  data: Record<string, unknown>;
}

/** Reads a session's SSE stream into `events` until closed. */
export function openSse(t: Cleanup, url: string): { events: SseEvent[]; close(): void; closed: Promise<void> } {
  const events: SseEvent[] = [];
  let req: http.ClientRequest | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  req = http.get(url, (res) => {
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) events.push({ type, data: JSON.parse(data.join('\n')) as Record<string, unknown> });
      }
    });
    res.on('close', () => resolveClosed());
  });
  req.on('error', () => resolveClosed());
  const close = (): void => {
    req?.destroy();
    req = undefined;
  };
  t.after(async () => close());
  return { events, close, closed };
}

/** A tiny webhook receiver: records every POST body with its headers. */
export async function startReceiver(t: Cleanup): Promise<{ url: string; hits: { headers: http.IncomingHttpHeaders; body: Record<string, unknown>; raw: string }[] }> {
  const hits: { headers: http.IncomingHttpHeaders; body: Record<string, unknown>; raw: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      try {
        hits.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown>, raw });
      } catch {
        hits.push({ headers: req.headers, body: {}, raw });
      }
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, hits };
}

/** A real router process (for SIGTERM/restart tests). */
export interface RouterProcess {
  child: ChildProcess;
  url: string;
  stderr(): string;
  /** The router's stdout (its JSON log lines). */
  stdout(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startRouterProcess(t: Cleanup, env: Record<string, string>): Promise<RouterProcess> {
  if (env['DATABASE_URL'] === undefined && env['DATA_DIR'] !== undefined) await seedEmbeddedDb(env['DATA_DIR']);
  const child = spawn(process.execPath, [ROUTER_MAIN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 1_000_000) out = out.slice(-500_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  let url: string;
  try {
    url = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`router exited ${child.exitCode}: ${err}`);
        return /listening on (http:\/\/\S+)/.exec(out)?.[1];
      },
      { what: 'the router to listen', timeoutMs: 60_000, intervalMs: 50 },
    );
  } catch (e) {
    // No handle reaches the caller: a router that never listened would run on (its shards too), and its pipes
    // would keep the test process alive after its clean-up (the chaos campaign restarts routers under load).
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    throw e;
  }
  const proc: RouterProcess = {
    child,
    url,
    stderr: () => err,
    stdout: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  return proc;
}
