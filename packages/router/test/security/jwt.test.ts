import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import { ConfigError } from '@wagw/shared';
import { createAuthenticator } from '../../src/security/index.ts';
import { call, captureLogger, config, ok, securityApp, serve } from './helpers.ts';
import type { Served } from './helpers.ts';

const SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
const ISS = 'https://backend.example';
const AUD = 'wagw';
const key = new TextEncoder().encode(SECRET);

interface TokenOptions {
  claims?: JWTPayload;
  secret?: Uint8Array;
  iss?: string;
  aud?: string;
  exp?: number | string;
  nbf?: number;
  sub?: string | null;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT({ scope: 'sessions:read messages:send', ...o.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(o.iss ?? ISS)
    .setAudience(o.aud ?? AUD)
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '5m');
  if (o.sub !== null) jwt.setSubject(o.sub ?? 'backend-1');
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(o.secret ?? key);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

describe('bearer tokens (HS256)', () => {
  let served: Served;
  const cap = captureLogger('debug');
  before(async () => {
    const cfg = config({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD, AUTH_CLOCK_SKEW_MS: '30000' });
    const auth = createAuthenticator(cfg, { logger: cap.logger });
    const app = securityApp(cap.logger, (a, router) => {
      a.use(auth.authenticate());
      router.get('/health', ok);
      router.get('/metrics', ok);
      router.get('/api/v1/sessions', auth.requireAuth({ scopes: ['sessions:read'] }), ok);
      router.post('/api/v1/sessions', auth.requireAuth({ scopes: ['sessions:write'] }), ok);
      router.post('/api/v1/sessions/:id/messages', auth.requireAuth({ scopes: ['messages:send'], sessionParam: 'id' }), ok);
      router.get('/api/v1/admin/shards', auth.requireAuth({ scopes: ['admin'] }), ok);
    });
    served = await serve(app);
  });
  after(() => served.close());

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  const table: { name: string; headers: () => Promise<Record<string, string>>; path?: string; method?: string; status: number; code: string; message: RegExp; challenge?: RegExp }[] = [
    { name: 'no token', headers: async () => ({}), status: 401, code: 'UNAUTHORIZED', message: /Authorization: Bearer/, challenge: /^Bearer realm="wagw"$/ },
    { name: 'not a Bearer scheme', headers: async () => ({ authorization: 'Basic dXNlcjpwYXNz' }), status: 401, code: 'UNAUTHORIZED', message: /Bearer <token>/, challenge: /error="invalid_request"/ },
    { name: 'Bearer without a token', headers: async () => ({ authorization: 'Bearer' }), status: 401, code: 'UNAUTHORIZED', message: /Bearer <token>/ },
    { name: 'malformed token', headers: async () => bearer('abc.def'), status: 401, code: 'INVALID_TOKEN', message: /malformed/, challenge: /error="invalid_token"/ },
    { name: 'garbage segments', headers: async () => bearer('!!!.@@@.###'), status: 401, code: 'INVALID_TOKEN', message: /malformed/ },
    { name: 'wrong signature', headers: async () => bearer(await token({ secret: new TextEncoder().encode('another-secret-0123456789abcdef0123456789') })), status: 401, code: 'INVALID_TOKEN', message: /signature/ },
    {
      name: 'alg: none',
      headers: async () => bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', iss: ISS, aud: AUD, exp: now() + 300, scope: 'admin' })}.`),
      status: 401,
      code: 'INVALID_TOKEN',
      message: /algorithm is not accepted|malformed/,
    },
    {
      name: 'HS512 when only HS256 is pinned',
      headers: async () => bearer(await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS512' }).setIssuer(ISS).setAudience(AUD).setSubject('x').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET + SECRET))),
      status: 401,
      code: 'INVALID_TOKEN',
      message: /algorithm is not accepted \(accepted: HS256\)/,
    },
    { name: 'wrong issuer', headers: async () => bearer(await token({ iss: 'https://evil.example' })), status: 401, code: 'INVALID_TOKEN', message: /issuer/ },
    { name: 'wrong audience', headers: async () => bearer(await token({ aud: 'someone-else' })), status: 401, code: 'INVALID_TOKEN', message: /audience/ },
    { name: 'expired beyond the skew', headers: async () => bearer(await token({ exp: now() - 31 })), status: 401, code: 'TOKEN_EXPIRED', message: /expired at \d{4}-/ },
    { name: 'not yet valid beyond the skew', headers: async () => bearer(await token({ nbf: now() + 120 })), status: 401, code: 'INVALID_TOKEN', message: /not valid yet/ },
    { name: 'no sub claim', headers: async () => bearer(await token({ sub: null })), status: 401, code: 'INVALID_TOKEN', message: /no "sub" claim/ },
    {
      name: 'no exp claim',
      headers: async () => bearer(await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISS).setAudience(AUD).setSubject('x').sign(key)),
      status: 401,
      code: 'INVALID_TOKEN',
      message: /no "exp" claim/,
    },
    { name: 'missing scope', path: '/api/v1/admin/shards', headers: async () => bearer(await token()), status: 403, code: 'INSUFFICIENT_SCOPE', message: /requires the scope admin/, challenge: /error="insufficient_scope", scope="admin"/ },
    {
      name: 'session not in the token list',
      method: 'POST',
      path: '/api/v1/sessions/card-2/messages',
      headers: async () => bearer(await token({ claims: { sessions: ['card-1'] } })),
      status: 403,
      code: 'SESSION_NOT_ALLOWED',
      message: /session "card-2"/,
    },
    {
      name: 'sessions claim of the wrong type fails closed',
      method: 'POST',
      path: '/api/v1/sessions/card-1/messages',
      headers: async () => bearer(await token({ claims: { sessions: 'card-1' } })),
      status: 401,
      code: 'INVALID_TOKEN',
      message: /"sessions" claim must be an array/,
    },
    { name: 'both a token and an API key', headers: async () => ({ ...bearer(await token()), 'x-api-key': 'k' }), status: 401, code: 'UNAUTHORIZED', message: /not both/ },
    { name: 'an API key when none are configured', headers: async () => ({ 'x-api-key': 'k' }), status: 401, code: 'INVALID_API_KEY', message: /not enabled/ },
  ];

  for (const row of table) {
    it(`${row.name} -> ${row.status} ${row.code}`, async () => {
      const r = await call(served.base, row.path ?? '/api/v1/sessions', await row.headers(), { method: row.method ?? 'GET' });
      assert.equal(r.status, row.status, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, row.code);
      assert.match(r.body.error?.message ?? '', row.message);
      if (row.challenge) assert.match(r.headers.get('www-authenticate') ?? '', row.challenge);
      if (row.status === 401) assert.ok(r.headers.get('www-authenticate')?.startsWith('Bearer realm="wagw"'), 'every 401 carries a Bearer challenge');
      assert.ok(!JSON.stringify(r.body).includes(SECRET), 'the secret never appears in a response');
    });
  }

  it('a valid token -> 2xx, its principal on ctx.state and in the request log', async () => {
    const r = await call(served.base, '/api/v1/sessions', bearer(await token()));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.principal, { kind: 'jwt', subject: 'backend-1', scopes: ['sessions:read', 'messages:send'] });
    const line = cap.lines.findLast((l) => l['msg'] === 'request' && l['path'] === '/api/v1/sessions' && l['status'] === 200);
    assert.deepEqual(line?.['principal'], { kind: 'jwt', subject: 'backend-1' });
  });

  it('expired within the clock skew is still accepted', async () => {
    const r = await call(served.base, '/api/v1/sessions', bearer(await token({ exp: now() - 10 })));
    assert.equal(r.status, 200);
  });

  it('scopes from a `scopes` array claim; admin implies every scope', async () => {
    const arr = await token({ claims: { scope: undefined, scopes: ['sessions:write'] } });
    assert.equal((await call(served.base, '/api/v1/sessions', bearer(arr), { method: 'POST' })).status, 200);
    assert.equal((await call(served.base, '/api/v1/sessions', bearer(arr))).status, 403);
    const admin = await token({ claims: { scope: 'admin' } });
    for (const [method, path] of [
      ['GET', '/api/v1/sessions'],
      ['POST', '/api/v1/sessions'],
      ['POST', '/api/v1/sessions/any/messages'],
      ['GET', '/api/v1/admin/shards'],
    ] as const) {
      assert.equal((await call(served.base, path, bearer(admin), { method })).status, 200, `${method} ${path}`);
    }
  });

  it('a session in the token list is allowed; unknown scope strings are ignored', async () => {
    const t = await token({ claims: { sessions: ['card-1'], scope: 'messages:send other:thing' } });
    const r = await call(served.base, '/api/v1/sessions/card-1/messages', bearer(t), { method: 'POST' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.principal?.['sessions'], ['card-1']);
    assert.deepEqual(r.body.principal?.['scopes'], ['messages:send']);
  });

  it('public paths stay open', async () => {
    assert.equal((await call(served.base, '/health')).status, 200);
    assert.equal((await call(served.base, '/metrics')).status, 200);
  });

  it('no log line carries the token or the secret', async () => {
    const t = await token();
    await call(served.base, '/api/v1/sessions', bearer(t));
    await call(served.base, '/api/v1/sessions', bearer(t + 'x'));
    assert.ok(!cap.text().includes(t), 'token not logged');
    assert.ok(!cap.text().includes(SECRET), 'secret not logged');
  });
});

describe('metrics token', () => {
  it('METRICS_TOKEN protects /metrics only; compared against the configured token', async () => {
    const cap = captureLogger();
    const metricsToken = 'metrics-token-0123456789';
    const auth = createAuthenticator(config({ METRICS_TOKEN: metricsToken }), { logger: cap.logger });
    const served = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.get('/metrics', ok);
        router.get('/health', ok);
      }),
    );
    try {
      assert.equal((await call(served.base, '/health')).status, 200);
      const none = await call(served.base, '/metrics');
      assert.equal(none.status, 401);
      assert.equal(none.body.error?.code, 'UNAUTHORIZED');
      assert.equal((await call(served.base, '/metrics', { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
      assert.equal((await call(served.base, '/metrics', { authorization: `Bearer ${metricsToken}` })).status, 200);
    } finally {
      await served.close();
    }
  });
});

describe('no credential source configured', () => {
  it('production refuses to start, naming the variables', () => {
    const cap = captureLogger();
    const cfg = config({ NODE_ENV: 'production' });
    assert.throws(
      () => createAuthenticator(cfg, { logger: cap.logger }),
      (err: unknown) => err instanceof ConfigError && /AUTH_JWT_SECRET/.test(err.message) && /AUTH_API_KEYS/.test(err.message) && /AUTH_DISABLED=true/.test(err.message),
    );
  });

  it('production with AUTH_DISABLED=true starts, anonymous, with a warning', async () => {
    const cap = captureLogger();
    const auth = createAuthenticator(config({ NODE_ENV: 'production', AUTH_DISABLED: 'true' }), { logger: cap.logger });
    auth.logStartup();
    assert.equal(auth.mode, 'disabled');
    assert.ok(cap.lines.some((l) => l['level'] === 40 && /AUTH_DISABLED=true/.test(String(l['msg']))));
  });

  it('development allows anonymous admin callers and warns at start', async () => {
    const cap = captureLogger();
    const auth = createAuthenticator(config({ NODE_ENV: 'development' }), { logger: cap.logger });
    auth.logStartup();
    assert.equal(auth.mode, 'anonymous');
    assert.ok(cap.lines.some((l) => l['level'] === 40 && /no authentication configured/.test(String(l['msg']))));
    const served = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.get('/api/v1/admin/shards', auth.requireAuth({ scopes: ['admin'] }), ok);
      }),
    );
    try {
      const r = await call(served.base, '/api/v1/admin/shards');
      assert.equal(r.status, 200);
      assert.equal(r.body.principal?.['kind'], 'anonymous');
    } finally {
      await served.close();
    }
  });

  it('anonymous admin only on a loopback HOST (or NODE_ENV=test): a public HOST refuses to start unless AUTH_DISABLED=true (issue 10 item 4)', () => {
    const cap = captureLogger();
    const starts = (env: Record<string, string>) => createAuthenticator(config(env), { logger: cap.logger }).mode;
    for (const HOST of ['0.0.0.0', '::', '192.168.1.20', 'gateway.example']) {
      assert.throws(
        () => starts({ NODE_ENV: 'development', HOST }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(`HOST=${HOST} (not a loopback address)`) && /AUTH_DISABLED=true/.test(err.message),
        HOST,
      );
      assert.equal(starts({ NODE_ENV: 'development', HOST, AUTH_DISABLED: 'true' }), 'disabled', HOST);
      assert.equal(starts({ NODE_ENV: 'test', HOST }), 'anonymous', HOST);
    }
    // A proxy in front of a loopback listener forwards other machines' calls.
    assert.throws(() => starts({ NODE_ENV: 'development', TRUST_PROXY: 'true' }), /TRUST_PROXY=true/);
    for (const HOST of ['127.0.0.1', '127.0.0.53', '::1', '[::1]', 'localhost']) assert.equal(starts({ NODE_ENV: 'development', HOST }), 'anonymous', HOST);
  });

  it('AUTH_DISABLED=true together with credentials is a config error', () => {
    assert.throws(() => config({ AUTH_DISABLED: 'true', AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD }), /AUTH_DISABLED/);
  });

  it('JWT config problems are reported together and never echo the secret', () => {
    assert.throws(
      () => config({ AUTH_JWT_SECRET: 'short-secret', AUTH_JWKS_URL: 'http://127.0.0.1/jwks' }),
      (err: unknown) => err instanceof ConfigError && /AUTH_JWT_SECRET, AUTH_JWKS_URL: set only one/.test(err.message) && !err.message.includes('short-secret'),
    );
    assert.throws(
      () => config({ AUTH_JWT_SECRET: 'short-secret' }),
      (err: unknown) =>
        err instanceof ConfigError && err.problems.length === 2 && /at least 32 bytes/.test(err.message) && /AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE/.test(err.message) && !err.message.includes('short-secret'),
    );
    assert.throws(() => config({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD, AUTH_JWT_ALGORITHMS: 'RS256' }), /AUTH_JWT_ALGORITHMS/);
    assert.throws(() => config({ NODE_ENV: 'production', AUTH_JWKS_URL: 'http://idp.example/jwks', AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD }), /must be https/);
  });
});
