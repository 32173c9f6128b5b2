// The security edge on the real gateway (GatewayRouter with real shards, the simulator, embedded stores): JWT
// (HS256, issuer and audience pinned) and API keys configured; a table over the real routes: 401 without or with
// bad credentials, 403 INSUFFICIENT_SCOPE for a missing scope, 403 SESSION_NOT_ALLOWED outside the token's
// `sessions` claim (and the list filtered), open probe/doc paths, and the OpenAPI document's security.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { tempDir } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';

const SECRET = 'routes-auth-secret-0123456789abcdef0123456789';
const ISSUER = 'https://backend.example';
const AUDIENCE = 'wagw';
const READ_KEY = 'wagw_read_key_0123456789abcdef';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function token(claims: Record<string, unknown>, options: { issuer?: string; audience?: string; exp?: string | number; secret?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject('backend')
    .setIssuedAt(typeof options.exp === 'number' ? options.exp - 60 : undefined)
    .setExpirationTime(options.exp ?? '10m')
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

interface ErrorBody {
  error?: { code: string; message: string };
  data?: { id: string }[];
}

describe('routes behind authentication (JWT + API keys)', () => {
  let gw: Gateway;
  const cleanups: (() => Promise<void>)[] = [];
  const t0 = { after: (fn: () => Promise<void>) => cleanups.push(fn) };
  const bearer: Record<string, string> = {};

  before(async () => {
    const dir = await tempDir(t0);
    const { env } = await startSim(t0, dir.path);
    gw = await startGateway(t0, {
      env: sessionTestEnv(dir.path, {
        ...env,
        SHARD_COUNT: '1',
        AUTH_JWT_SECRET: SECRET,
        AUTH_JWT_ISSUER: ISSUER,
        AUTH_JWT_AUDIENCE: AUDIENCE,
        AUTH_API_KEYS: `reader:${sha(READ_KEY)}:sessions:read`,
      }),
    });
    bearer['admin'] = `Bearer ${await token({ scope: 'admin' })}`;
    bearer['read'] = `Bearer ${await token({ scope: 'sessions:read' })}`;
    bearer['readA'] = `Bearer ${await token({ scopes: ['sessions:read', 'sessions:write'], sessions: ['a'] })}`;
    for (const id of ['a', 'b']) {
      const r: { status: number; raw: Buffer } = await gw.api.call('POST', '/api/v1/sessions', { id }, { authorization: bearer['admin'] ?? '' });
      assert.equal(r.status, 201, r.raw.toString());
    }
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => gw.api.call<ErrorBody>(method, path, body, headers);

  test('table: status and code per credential and route', async () => {
    const expired = `Bearer ${await token({ scope: 'admin' }, { exp: Math.floor(Date.now() / 1000) - 3600 })}`;
    const cases: { name: string; method: string; path: string; headers: Record<string, string>; body?: unknown; status: number; code?: string }[] = [
      { name: 'no token', method: 'GET', path: '/api/v1/sessions', headers: {}, status: 401, code: 'UNAUTHORIZED' },
      { name: 'no token, session', method: 'GET', path: '/api/v1/sessions/a', headers: {}, status: 401, code: 'UNAUTHORIZED' },
      { name: 'no token, admin', method: 'GET', path: '/api/v1/admin/shards', headers: {}, status: 401, code: 'UNAUTHORIZED' },
      { name: 'not Bearer', method: 'GET', path: '/api/v1/sessions', headers: { authorization: 'Basic dXNlcjpwYXNz' }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'malformed token', method: 'GET', path: '/api/v1/sessions', headers: { authorization: 'Bearer abc.def' }, status: 401, code: 'INVALID_TOKEN' },
      { name: 'wrong signature', method: 'GET', path: '/api/v1/sessions', headers: { authorization: `Bearer ${await token({ scope: 'admin' }, { secret: 'x'.repeat(40) })}` }, status: 401, code: 'INVALID_TOKEN' },
      { name: 'wrong issuer', method: 'GET', path: '/api/v1/sessions', headers: { authorization: `Bearer ${await token({ scope: 'admin' }, { issuer: 'https://evil.example' })}` }, status: 401, code: 'INVALID_TOKEN' },
      { name: 'wrong audience', method: 'GET', path: '/api/v1/sessions', headers: { authorization: `Bearer ${await token({ scope: 'admin' }, { audience: 'other' })}` }, status: 401, code: 'INVALID_TOKEN' },
      { name: 'expired', method: 'GET', path: '/api/v1/sessions', headers: { authorization: expired }, status: 401, code: 'TOKEN_EXPIRED' },
      { name: 'read: list', method: 'GET', path: '/api/v1/sessions', headers: { authorization: bearer['read'] ?? '' }, status: 200 },
      { name: 'read: one', method: 'GET', path: '/api/v1/sessions/b', headers: { authorization: bearer['read'] ?? '' }, status: 200 },
      { name: 'read: create', method: 'POST', path: '/api/v1/sessions', headers: { authorization: bearer['read'] ?? '' }, body: { id: 'c' }, status: 403, code: 'INSUFFICIENT_SCOPE' },
      { name: 'read: restart', method: 'POST', path: '/api/v1/sessions/b/restart', headers: { authorization: bearer['read'] ?? '' }, status: 403, code: 'INSUFFICIENT_SCOPE' },
      { name: 'read: admin', method: 'GET', path: '/api/v1/admin/shards', headers: { authorization: bearer['read'] ?? '' }, status: 403, code: 'INSUFFICIENT_SCOPE' },
      { name: 'limited to a: b', method: 'GET', path: '/api/v1/sessions/b', headers: { authorization: bearer['readA'] ?? '' }, status: 403, code: 'SESSION_NOT_ALLOWED' },
      { name: 'limited to a: b qr', method: 'GET', path: '/api/v1/sessions/b/qr', headers: { authorization: bearer['readA'] ?? '' }, status: 403, code: 'SESSION_NOT_ALLOWED' },
      { name: 'limited to a: create b', method: 'POST', path: '/api/v1/sessions', headers: { authorization: bearer['readA'] ?? '' }, body: { id: 'b2' }, status: 403, code: 'SESSION_NOT_ALLOWED' },
      { name: 'limited to a: create without id', method: 'POST', path: '/api/v1/sessions', headers: { authorization: bearer['readA'] ?? '' }, body: {}, status: 403, code: 'SESSION_NOT_ALLOWED' },
      { name: 'limited to a: a', method: 'GET', path: '/api/v1/sessions/a', headers: { authorization: bearer['readA'] ?? '' }, status: 200 },
      { name: 'api key: list', method: 'GET', path: '/api/v1/sessions', headers: { 'x-api-key': READ_KEY }, status: 200 },
      { name: 'api key: create', method: 'POST', path: '/api/v1/sessions', headers: { 'x-api-key': READ_KEY }, body: { id: 'c' }, status: 403, code: 'INSUFFICIENT_SCOPE' },
      { name: 'wrong api key', method: 'GET', path: '/api/v1/sessions', headers: { 'x-api-key': 'wagw_nope' }, status: 401, code: 'INVALID_API_KEY' },
      { name: 'both credentials', method: 'GET', path: '/api/v1/sessions', headers: { 'x-api-key': READ_KEY, authorization: bearer['read'] ?? '' }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'admin: shards', method: 'GET', path: '/api/v1/admin/shards', headers: { authorization: bearer['admin'] ?? '' }, status: 200 },
      { name: 'admin: credentialed webhookUrl', method: 'POST', path: '/api/v1/sessions', headers: { authorization: bearer['admin'] ?? '' }, body: { id: 'w1', webhookUrl: 'http://u:p@example.com/hook' }, status: 400, code: 'VALIDATION_FAILED' },
      { name: 'admin: private webhookUrl', method: 'POST', path: '/api/v1/sessions', headers: { authorization: bearer['admin'] ?? '' }, body: { id: 'w2', webhookUrl: 'http://169.254.169.254/latest' }, status: 400, code: 'VALIDATION_FAILED' },
      { name: 'open: /health', method: 'GET', path: '/health', headers: {}, status: 200 },
      { name: 'open: /ready', method: 'GET', path: '/ready', headers: {}, status: 200 },
      { name: 'open: /openapi.json', method: 'GET', path: '/openapi.json', headers: {}, status: 200 },
      { name: 'open: /docs', method: 'GET', path: '/docs', headers: {}, status: 200 },
      { name: 'open: /metrics (no METRICS_TOKEN)', method: 'GET', path: '/metrics', headers: {}, status: 200 },
    ];
    const failures: string[] = [];
    for (const c of cases) {
      const r = await call(c.method, c.path, c.headers, c.body);
      const code = r.body.error?.code;
      if (r.status !== c.status || (c.code !== undefined && code !== c.code)) failures.push(`${c.name}: ${c.method} ${c.path} -> ${r.status} ${code ?? ''} (want ${c.status} ${c.code ?? ''}) ${r.raw.toString().slice(0, 200)}`);
      if (r.status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="wagw"/, c.name);
    }
    assert.deepEqual(failures, []);
  });

  test('a token limited to session a lists only a', async () => {
    const all = await call('GET', '/api/v1/sessions', { authorization: bearer['admin'] ?? '' });
    assert.deepEqual(all.body.data?.map((s) => s.id), ['a', 'b']);
    const limited = await call('GET', '/api/v1/sessions', { authorization: bearer['readA'] ?? '' });
    assert.equal(limited.status, 200);
    assert.deepEqual(limited.body.data?.map((s) => s.id), ['a']);
  });

  test('a session-limited token pages over its own sessions only: no cursor names a foreign id (issue 10 item 3)', async () => {
    const seen: string[] = [];
    const cursors: string[] = [];
    let after: string | null = '';
    for (let i = 0; i < 5 && after !== null; i++) {
      const r: { status: number; raw: Buffer; body: { data: { id: string }[]; nextCursor: string | null } } = await gw.api.call<{ data: { id: string }[]; nextCursor: string | null }>('GET', `/api/v1/sessions?limit=1${after ? `&after=${encodeURIComponent(after)}` : ''}`, undefined, { authorization: bearer['readA'] ?? '' });
      assert.equal(r.status, 200, r.raw.toString());
      seen.push(...r.body.data.map((s: { id: string }) => s.id));
      if (r.body.nextCursor !== null) cursors.push(r.body.nextCursor);
      after = r.body.nextCursor;
    }
    assert.deepEqual(seen, ['a']);
    assert.deepEqual(cursors.filter((c) => c !== 'a'), [], `cursors: ${cursors.join(', ')}`);
    // Starting after its last session (or anywhere) never reveals what follows in the whole table.
    const past = await gw.api.call<{ data: unknown[]; nextCursor: string | null }>('GET', '/api/v1/sessions?limit=1&after=a', undefined, { authorization: bearer['readA'] ?? '' });
    assert.deepEqual([past.body.data, past.body.nextCursor], [[], null]);
    // An unlimited token still pages over everything.
    const admin = await gw.api.call<{ data: { id: string }[]; nextCursor: string | null }>('GET', '/api/v1/sessions?limit=1&after=a', undefined, { authorization: bearer['admin'] ?? '' });
    assert.deepEqual([admin.body.data.map((s) => s.id), admin.body.nextCursor], [['b'], 'b']);
  });

  test('the OpenAPI document declares bearer JWT and X-Api-Key and the scopes of each route', async () => {
    const r = await gw.api.get<{ components: { securitySchemes: Record<string, Record<string, string>> }; paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>> }>('/openapi.json');
    assert.equal(r.status, 200);
    const schemes = r.body.components.securitySchemes;
    assert.deepEqual(schemes['bearerAuth'], { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    assert.deepEqual(schemes['apiKey'], { type: 'apiKey', in: 'header', name: 'X-Api-Key' });
    const scopesOf = (path: string, method: string) => r.body.paths[path]?.[method]?.security;
    assert.deepEqual(scopesOf('/api/v1/sessions', 'post'), [{ bearerAuth: ['sessions:write'] }, { apiKey: ['sessions:write'] }]);
    assert.deepEqual(scopesOf('/api/v1/sessions/{id}', 'get'), [{ bearerAuth: ['sessions:read'] }, { apiKey: ['sessions:read'] }]);
    assert.deepEqual(scopesOf('/api/v1/admin/shards', 'put'), [{ bearerAuth: ['admin'] }, { apiKey: ['admin'] }]);
    // A global requirement (bearer or API key) with public operations opting out explicitly.
    assert.deepEqual((r.body as { security?: unknown }).security, [{ bearerAuth: [] }, { apiKey: [] }]);
    assert.deepEqual(scopesOf('/health', 'get'), []);
    for (const [path, item] of Object.entries(r.body.paths)) {
      if (!path.startsWith('/api/')) continue;
      for (const [method, op] of Object.entries(item)) assert.ok((op.security?.length ?? 0) > 0, `${method} ${path} declares its security`);
    }
  });
});
