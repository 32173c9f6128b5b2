// A property-based fuzz of an HTTP app with fast-check: random methods, paths, headers (Authorization
// variants, X-Api-Key, garbage) and bodies (random JSON, deep nesting, invalid JSON, wrong content types).
// The property: every request gets an answer with status < 500, and nothing escapes as an uncaught error.
// Point it at any app with a `callback()` (the real createApp() once its routes exist).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';

export interface FuzzRoute {
  method: string;
  /** Path template; `:param` segments are replaced by fuzzed values. */
  path: string;
}

export interface FuzzRequest {
  method: string;
  path: string;
  /** The route template this request was made from; undefined for the random unknown paths. */
  route: FuzzRoute | undefined;
  headers: Record<string, string>;
  body: string | undefined;
}

export interface FuzzOptions {
  routes: readonly FuzzRoute[];
  /** Credentials that are valid for the app (so the fuzz also gets past authentication). */
  validAuthorization?: readonly string[];
  validApiKeys?: readonly string[];
  numRuns?: number;
  seed?: number;
  /** Status codes at or above this fail the property (default 500). */
  maxStatus?: number;
  /** Answers at or above maxStatus that are legitimate (e.g. 503 SHARD_UNAVAILABLE); counted in `allowed`. */
  allow?: (request: FuzzRequest, response: FuzzResponse) => boolean;
  /** Checks every answer (e.g. against the OpenAPI document): a returned string fails the property with it. */
  check?: (request: FuzzRequest, response: FuzzResponse) => string | undefined;
}

// Header values node's http client accepts: tab, printable ASCII and latin-1 (no CR/LF).
const headerChar = fc.oneof(
  fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\t', '\u00e9', '\u00ff', '\u0080'),
);
const headerValue = fc.string({ unit: headerChar, maxLength: 200 });
const b64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 120 });
const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function authorization(valid: readonly string[]): fc.Arbitrary<string> {
  const variants: fc.Arbitrary<string>[] = [
    headerValue,
    headerValue.map((v) => `Bearer ${v}`),
    fc.tuple(b64url, b64url, b64url).map(([a, b, c]) => `Bearer ${a}.${b}.${c}`),
    fc.jsonValue({ maxDepth: 3 }).map((p) => `Bearer ${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(p)}.`),
    fc.tuple(fc.constantFrom('HS256', 'RS256', 'none', 'ES256', 'HS512', ''), fc.jsonValue({ maxDepth: 3 }), b64url).map(([alg, p, sig]) => `Bearer ${b64json({ alg })}.${b64json(p)}.${sig}`),
    fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic dXNlcjpwYXNz', 'Bearer a b', 'Bearer ' + 'x'.repeat(9000)),
  ];
  if (valid.length > 0) variants.push(fc.constantFrom(...valid));
  return fc.oneof(...variants);
}

const segment = fc.oneof(
  fc.constantFrom('s1', 'card-1', '..', '%00', '%2F', '%E0%A4%A', 'x'.repeat(300), '%F0%9F%98%80', '+6287733760363'),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.~%'), minLength: 1, maxLength: 40 }),
);

function deepJson(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

const body: fc.Arbitrary<{ type: string | undefined; body: string | undefined }> = fc.oneof(
  fc.record({ type: fc.constant('application/json'), body: fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)) }),
  fc.record({ type: fc.constant('application/json'), body: fc.integer({ min: 1, max: 5000 }).map((d) => deepJson(d, '[', ']')) }),
  fc.record({ type: fc.constant('application/json'), body: fc.integer({ min: 1, max: 5000 }).map((d) => deepJson(d, '{"a":', '}').replace(/}+$/, (m) => m)) }),
  fc.record({ type: fc.constantFrom('application/json', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/vnd.x+json'), body: fc.string({ maxLength: 300 }) }),
  fc.record({ type: fc.constant(undefined), body: fc.option(fc.string({ maxLength: 100 }), { nil: undefined }) }),
);

/** Requests over the given routes (and some unknown paths) with hostile headers and bodies. */
export function requestArbitrary(options: Pick<FuzzOptions, 'routes' | 'validAuthorization' | 'validApiKeys'>): fc.Arbitrary<FuzzRequest> {
  const route = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...options.routes) },
    { weight: 1, arbitrary: fc.record({ method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), path: segment.map((s) => `/${s}`), unknown: fc.constant(true) }) },
  );
  const withParams = fc.tuple(route, fc.array(segment, { minLength: 4, maxLength: 4 }), fc.option(fc.string({ maxLength: 60 }).map(encodeURIComponent), { nil: undefined })).map(([r, segs, query]) => {
    let i = 0;
    const path = r.path.replace(/:[A-Za-z]+/g, () => segs[i++ % segs.length] ?? 'x');
    const template = 'unknown' in r ? undefined : { method: r.method, path: r.path };
    return { method: r.method, path: query === undefined ? path : `${path}?q=${query}&limit=${query}`, route: template };
  });
  // Credentials: hostile ones always; when valid ones exist, half of the requests carry exactly one valid
  // credential and nothing else, so the fuzz reaches past authentication into validation and the handlers.
  const hostileAuth = fc.record(
    {
      authorization: authorization(options.validAuthorization ?? []),
      'x-api-key': fc.oneof(headerValue, ...(options.validApiKeys?.length ? [fc.constantFrom(...options.validApiKeys)] : [])),
    },
    { requiredKeys: [] },
  );
  const validAuth: fc.Arbitrary<Record<string, string>>[] = [];
  if (options.validAuthorization?.length) validAuth.push(fc.constantFrom(...options.validAuthorization).map((v) => ({ authorization: v })));
  if (options.validApiKeys?.length) validAuth.push(fc.constantFrom(...options.validApiKeys).map((v) => ({ 'x-api-key': v })));
  const auth: fc.Arbitrary<Record<string, string>> =
    validAuth.length === 0 ? hostileAuth : fc.oneof({ weight: 1, arbitrary: hostileAuth }, { weight: 1, arbitrary: fc.oneof(...validAuth) });
  const headers = fc.record(
    {
      'x-request-id': headerValue,
      'idempotency-key': headerValue,
      'content-encoding': fc.constantFrom('gzip', 'identity', 'br', 'x'),
      'x-forwarded-for': headerValue,
      accept: headerValue,
    },
    { requiredKeys: [] },
  );
  return fc.tuple(withParams, auth, headers, body).map(([r, a, h, b]) => {
    const hdrs: Record<string, string> = { ...a, ...h };
    if (b.type !== undefined) hdrs['content-type'] = b.type;
    const hasBody = b.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
    // Framed, always: Node's client sends a DELETE/OPTIONS body with neither Content-Length nor chunking, and the
    // server's HTTP parser then answers the unframed bytes as a second, malformed request (a bare 400 that no
    // route gave).
    if (hasBody && b.body !== undefined) hdrs['content-length'] = String(Buffer.byteLength(b.body));
    return { method: r.method, path: r.path, route: r.route, headers: hdrs, body: hasBody ? b.body : undefined };
  });
}

export interface FuzzResponse {
  status: number;
  body: string;
}

/** Sends one fuzzed request over a real socket. */
export function send(port: number, r: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (text.length < 4096) text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/**
 * Runs the fuzz against `app` on a private port: throws (with fast-check's shrunk counterexample) when a request
 * gets a status >= maxStatus, the connection fails, or an error escapes to the process.
 */
export async function fuzzApp(
  app: { callback(): http.RequestListener; on?: (event: 'error', listener: (err: unknown) => void) => unknown },
  options: FuzzOptions,
): Promise<{ runs: number; statuses: Record<number, number>; appErrors: string[]; allowed: string[] }> {
  // Koa emits socket-level errors (a client that keeps sending a body after a 401) as 'error' events and
  // prints them to stderr when nobody listens; collect them instead (they never change the status).
  const appErrors: string[] = [];
  app.on?.('error', (err: unknown) => appErrors.push(err instanceof Error ? err.message : String(err)));
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const statuses: Record<number, number> = {};
  const allowed: string[] = [];
  let runs = 0;
  const maxStatus = options.maxStatus ?? 500;
  try {
    await fc.assert(
      fc.asyncProperty(requestArbitrary(options), async (r) => {
        runs++;
        const res = await send(port, r);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status >= maxStatus && options.allow?.(r, res) === true) allowed.push(`${r.method} ${r.path} -> ${res.status} ${res.body.slice(0, 120)}`);
        else if (res.status >= maxStatus) throw new Error(`${r.method} ${r.path} -> ${res.status} ${res.body.slice(0, 300)}`);
        if (escaped.length > 0) throw new Error(`error escaped: ${String(escaped[0])}`);
        const problem = options.check?.(r, res);
        if (problem !== undefined) throw new Error(`${r.method} ${r.path} -> ${res.status}: ${problem}; body ${res.body.slice(0, 300)}`);
      }),
      { numRuns: options.numRuns ?? 300, ...(options.seed !== undefined ? { seed: options.seed } : {}) },
    );
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return { runs, statuses, appErrors, allowed };
}
