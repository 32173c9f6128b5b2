/**
 * A real HTTP test backend: the worker registry (`POST /api/admin/workers/register`,
 * `PUT /api/admin/workers/:id/heartbeat`, `GET /api/v1/workers/:id/sessions/assigned`) and the webhook
 * receivers (`POST /api/webhooks/session-status|message-status|messages`, and any other POST path for
 * sessions' own webhookUrls). It records every request, verifies Standard Webhooks signatures with the
 * `standardwebhooks` library, and can fail on demand:
 *   'ok'      answer normally (webhooks 204 after verification, 401 when the signature is wrong)
 *   'down'    the listener is closed and every connection destroyed: connection refused
 *   'error'   answer 500 to everything
 *   'hang'    accept and never answer (connections are destroyed on the next mode change or stop)
 *   'slow'    answer normally after `delayMs`
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Cleanup } from './util.ts';

export type BackendMode = 'ok' | 'down' | 'error' | 'hang' | 'slow';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The mode that answered it. */
  mode: BackendMode;
  at: number;
}

export interface ReceivedWebhook {
  path: string;
  /** `webhook-id` header. */
  id: string;
  timestamp: string;
  /** True when `standardwebhooks` verified the signature (else answered 401 and not counted as accepted). */
  verified: boolean;
  json: unknown;
  body: string;
  headers: http.IncomingHttpHeaders;
  at: number;
}

export interface TestBackendOptions {
  /** `whsec_...` used to verify webhook signatures. */
  secret: string;
  /**
   * The secret of any other path (a session's own webhookUrl on this server), given the request path and the
   * unverified `sessionId` of the body; default `secret`. The backend's `/api/webhooks/...` always use `secret`.
   */
  secretFor?: (path: string, sessionId: string) => string;
  /** Fixed port (default: a free one chosen at start). */
  port?: number;
  /** What `GET .../sessions/assigned` returns under `data.sessions` (default []). */
  assignedSessions?: unknown[];
  /** Bearer token the worker endpoints require (default: none required). */
  apiKey?: string;
}

export interface TestBackend {
  url: string;
  port: number;
  readonly mode: BackendMode;
  /** Switches the behaviour; 'down' closes the listener, leaving 'down' listens again on the same port. */
  setMode(mode: BackendMode, options?: { delayMs?: number }): Promise<void>;
  /** Every request that reached the server, in arrival order. */
  requests: RecordedRequest[];
  /** Webhooks answered 2xx (accepted), in arrival order, including duplicates. */
  accepted: ReceivedWebhook[];
  /** Webhooks whose signature did not verify. */
  rejected: ReceivedWebhook[];
  registrations: unknown[];
  heartbeats: { at: number; workerId: string; body: unknown }[];
  assignedCalls: number;
  assignedSessions: unknown[];
  /** Forgets every registered worker: their heartbeats get 404 until they register again. */
  forgetWorkers(): void;
  stop(): Promise<void>;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function header(req: http.IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export async function startTestBackend(options: TestBackendOptions, cleanup?: Cleanup): Promise<TestBackend> {
  const verifier = new Webhook(options.secret);
  let mode: BackendMode = 'ok';
  let delayMs = 0;
  const hanging = new Set<http.ServerResponse>();
  /** Worker ids registered (heartbeats of others get 404, as a backend that lost its registry would answer). */
  const known = new Set<string>();
  const backend: TestBackend = {
    url: '',
    port: 0,
    get mode() {
      return mode;
    },
    setMode,
    requests: [],
    accepted: [],
    rejected: [],
    registrations: [],
    heartbeats: [],
    assignedCalls: 0,
    assignedSessions: options.assignedSessions ?? [],
    forgetWorkers: () => known.clear(),
    stop,
  };

  const send = (res: http.ServerResponse, status: number, body?: unknown): void => {
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const answeredBy = mode;
    backend.requests.push({ method: req.method ?? '', path, headers: req.headers, body, mode: answeredBy, at: Date.now() });
    if (answeredBy === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (answeredBy === 'error') {
      send(res, 500, { error: 'test backend answers 500' });
      return;
    }
    if (answeredBy === 'slow') await new Promise((r) => setTimeout(r, delayMs));
    const worker = /^\/api\/admin\/workers\/([^/]+)\/heartbeat$/.exec(path);
    const assigned = /^\/api\/v1\/workers\/([^/]+)\/sessions\/assigned$/.exec(path);
    const isWorkerCall = path === '/api/admin/workers/register' || worker !== null || assigned !== null;
    if (isWorkerCall && options.apiKey !== undefined && header(req, 'authorization') !== `Bearer ${options.apiKey}`) {
      send(res, 401, { error: 'bad api key' });
      return;
    }
    if (req.method === 'POST' && path === '/api/admin/workers/register') {
      const registration = JSON.parse(body) as { id?: unknown };
      backend.registrations.push(registration);
      known.add(String(registration.id));
      send(res, 201, { data: { ok: true } });
      return;
    }
    if (req.method === 'PUT' && worker !== null) {
      if (!known.has(decodeURIComponent(worker[1] ?? ''))) {
        send(res, 404, { error: 'unknown worker' });
        return;
      }
      backend.heartbeats.push({ at: Date.now(), workerId: decodeURIComponent(worker[1] ?? ''), body: JSON.parse(body) as unknown });
      send(res, 200, { data: { ok: true } });
      return;
    }
    if (req.method === 'GET' && assigned !== null) {
      backend.assignedCalls++;
      send(res, 200, { data: { sessions: backend.assignedSessions, total: backend.assignedSessions.length }, meta: { extra: true } });
      return;
    }
    if (req.method === 'POST') {
      const record: ReceivedWebhook = {
        path,
        id: header(req, 'webhook-id'),
        timestamp: header(req, 'webhook-timestamp'),
        verified: false,
        json: undefined,
        body,
        headers: req.headers,
        at: Date.now(),
      };
      let v = verifier;
      if (options.secretFor !== undefined && !path.startsWith('/api/webhooks/')) {
        let sessionId = '';
        try {
          sessionId = String((JSON.parse(body) as { sessionId?: unknown }).sessionId);
        } catch {
          sessionId = '';
        }
        v = new Webhook(options.secretFor(path, sessionId));
      }
      try {
        record.json = v.verify(body, {
          'webhook-id': record.id,
          'webhook-timestamp': record.timestamp,
          'webhook-signature': header(req, 'webhook-signature'),
        });
        record.verified = true;
      } catch {
        backend.rejected.push(record);
        send(res, 401, { error: 'bad signature' });
        return;
      }
      backend.accepted.push(record);
      send(res, 204);
      return;
    }
    send(res, 404, { error: 'no such route' });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 400, { error: 'bad request' });
    });
  });
  server.keepAliveTimeout = 5000;

  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });
  const releaseHanging = (): void => {
    for (const res of hanging) res.destroy();
    hanging.clear();
  };

  async function setMode(next: BackendMode, opts: { delayMs?: number } = {}): Promise<void> {
    delayMs = opts.delayMs ?? delayMs;
    const previous = mode;
    mode = next;
    if (previous === 'hang' && next !== 'hang') releaseHanging();
    if (next === 'down' && previous !== 'down') {
      releaseHanging();
      await close();
    } else if (previous === 'down' && next !== 'down') {
      await listen(backend.port);
    }
  }

  let stopped = false;
  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    releaseHanging();
    await close();
  }

  await listen(options.port ?? 0);
  backend.port = (server.address() as AddressInfo).port;
  backend.url = `http://127.0.0.1:${backend.port}`;
  cleanup?.after(stop);
  return backend;
}
