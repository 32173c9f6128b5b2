/**
 * One webhook delivery attempt over node:http(s) with keep-alive agents: signed with Standard Webhooks
 * headers (HMAC-SHA256 of "{id}.{timestamp}.{body}" with node:crypto and a key object made once; receivers
 * verify with the `standardwebhooks` library, as the tests do), bounded by a per-request deadline, the response body
 * drained (so the socket is reused) and discarded. node:http rather than fetch because its Agent takes a
 * `lookup` hook: session targets are refused when they resolve to private addresses (SSRF), checked at connect
 * time, and the backend's own URL is exempt.
 */
import http from 'node:http';
import https from 'node:https';
import { createHmac, createSecretKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { sessionWebhookSecret } from './secrets.ts';
import { TARGET_FORBIDDEN, assertPublicHost, publicOnlyLookup } from './target.ts';

export interface DeliveryRequest {
  endpoint: string;
  eventId: string;
  /** The exact JSON text that is signed and sent. */
  body: string;
  /** Extra headers (Authorization for the backend). */
  headers?: Record<string, string>;
  /** Apply the private-address guard (session webhook URLs unless WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  publicOnly: boolean;
  /** The session of a session's own webhookUrl: signed with that endpoint's derived secret (secrets.ts). Absent: the backend, WEBHOOK_SECRET. */
  sessionId?: string;
}

export type DeliveryResult =
  | { kind: 'ok'; status: number; ms: number }
  /** Answered, not 2xx. */
  | { kind: 'status'; status: number; ms: number }
  /** No answer: refused, reset, DNS, TLS, timeout. */
  | { kind: 'network'; error: string; code: string; ms: number }
  /** Never deliverable as configured (private target, bad URL): dead at once. */
  | { kind: 'forbidden'; error: string; ms: number };

const MAX_RESPONSE_BYTES = 64 * 1024;
const USER_AGENT = 'wagw-webhooks/1';

export interface TransportOptions {
  secret: string;
  timeoutMs: number;
  /** Sockets per origin (keep-alive pool). */
  maxSockets: number;
}

/**
 * The key bytes of a Standard Webhooks secret (`whsec_<base64>`, the prefix optional as in the library). Made
 * once: the `standardwebhooks` library signs in pure JavaScript (fast-sha256), which cost more CPU per delivery
 * than the rest of the signing path.
 */
function signingKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64'));
}

export class WebhookTransport {
  readonly #key: KeyObject;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #agents: { http: http.Agent; https: https.Agent; httpPublic: http.Agent; httpsPublic: https.Agent };

  constructor(options: TransportOptions) {
    this.#key = signingKey(options.secret);
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs;
    const base = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: Math.min(options.maxSockets, 256), scheduling: 'lifo' as const };
    this.#agents = {
      http: new http.Agent(base),
      https: new https.Agent(base),
      httpPublic: new http.Agent({ ...base, lookup: publicOnlyLookup }),
      httpsPublic: new https.Agent({ ...base, lookup: publicOnlyLookup }),
    };
  }

  /**
   * The three Standard Webhooks headers for one attempt (timestamp = now), signed with WEBHOOK_SECRET, or with
   * the derived secret of a session's own endpoint when `session` is given.
   */
  sign(eventId: string, body: string, at: Date = new Date(), session?: { sessionId: string; endpoint: string }): Record<string, string> {
    // A session endpoint's key is derived per delivery (one HMAC of a short string): cheaper than a cache with
    // the bounds it would need.
    const key = session === undefined ? this.#key : signingKey(sessionWebhookSecret(this.#secret, session.sessionId, session.endpoint));
    const timestamp = String(Math.floor(at.getTime() / 1000));
    const mac = createHmac('sha256', key).update(`${eventId}.${timestamp}.`, 'utf8').update(body, 'utf8').digest('base64');
    return { 'webhook-id': eventId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${mac}` };
  }

  deliver(request: DeliveryRequest): Promise<DeliveryResult> {
    const t0 = performance.now();
    const ms = (): number => performance.now() - t0;
    let url: URL;
    try {
      url = new URL(request.endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported scheme ${url.protocol}`);
      if (request.publicOnly) assertPublicHost(url);
    } catch (err) {
      return Promise.resolve({ kind: 'forbidden', error: (err as Error).message, ms: ms() });
    }
    const secure = url.protocol === 'https:';
    const agent = secure
      ? request.publicOnly ? this.#agents.httpsPublic : this.#agents.https
      : request.publicOnly ? this.#agents.httpPublic : this.#agents.http;
    const body = Buffer.from(request.body, 'utf8');
    const headers: Record<string, string> = {
      ...request.headers,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': USER_AGENT,
      ...this.sign(request.eventId, request.body, new Date(), request.sessionId === undefined ? undefined : { sessionId: request.sessionId, endpoint: request.endpoint }),
    };
    return new Promise<DeliveryResult>((resolve) => {
      let settled = false;
      // The deadline is a plain timer cleared on the answer. AbortSignal.timeout() left one timer per delivery
      // running for WEBHOOK_TIMEOUT_MS after the answer and then built a DOMException for each: measurable CPU
      // at thousands of deliveries per second.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(Object.assign(new Error(`no answer within ${this.#timeoutMs} ms`), { code: 'TIMEOUT' }));
      }, this.#timeoutMs);
      const settle = (result: DeliveryResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = (secure ? https : http).request(
        url,
        { method: 'POST', agent, headers },
        (res) => {
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > MAX_RESPONSE_BYTES) res.destroy(); // a receiver streaming forever does not hold us
          });
          const status = res.statusCode ?? 0;
          const done = (): void => settle(status >= 200 && status < 300 ? { kind: 'ok', status, ms: ms() } : { kind: 'status', status, ms: ms() });
          res.on('end', done);
          res.on('close', done);
          res.on('error', done);
        },
      );
      req.on('error', (err: Error & { code?: string }) => {
        const code = timedOut ? 'TIMEOUT' : (err.code ?? 'ERROR');
        if (code === TARGET_FORBIDDEN) settle({ kind: 'forbidden', error: err.message, ms: ms() });
        else settle({ kind: 'network', code, error: code === 'TIMEOUT' ? `no answer within ${this.#timeoutMs} ms` : err.message, ms: ms() });
      });
      req.end(body);
    });
  }

  close(): void {
    for (const agent of Object.values(this.#agents)) agent.destroy();
  }
}
