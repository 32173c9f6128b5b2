// The full-route fuzz: fuzzApp (fast-check) against the real gateway's Koa app (GatewayRouter with live shards,
// the simulator, embedded stores, the webhook system and authentication configured), over every operation of
// its own /openapi.json: random bodies, queries and headers, valid credentials part of the time. The property:
// never a 5xx and nothing escapes, and every answer is one the document lists for its operation (status listed,
// error body of the Error schema with a registered code whose status it is). Allowed 5xx: 503 SHARD_UNAVAILABLE / NO_CAPACITY (a shard legitimately not
// available) and a 503 on /health; each one is reported. GET .../events (an endless SSE stream) is left out.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { tempDir } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import { responseProblem } from '../api/document.ts';
import type { OpenApiDocument } from '../api/document.ts';
import { fuzzApp } from './fuzz.ts';
import type { FuzzRoute } from './fuzz.ts';

const SECRET = 'gateway-fuzz-secret-0123456789abcdef0123456789';
const KEY = 'wagw_gateway_fuzz_key_0123456789';

test('fuzzed requests over every route of the real gateway never get a 5xx, and get only statuses the document lists', { timeout: 55_000 }, async (t) => {
  const dir = await tempDir(t);
  const { env } = await startSim(t, dir.path);
  const gw = await startGateway(t, {
    webhooks: true,
    env: sessionTestEnv(dir.path, {
      ...env,
      SHARD_COUNT: '1',
      AUTH_JWT_SECRET: SECRET,
      AUTH_JWT_ISSUER: 'https://backend.example',
      AUTH_JWT_AUDIENCE: 'wagw',
      AUTH_API_KEYS: `fuzz:${createHash('sha256').update(KEY).digest('hex')}:sessions:read+sessions:write+messages:send`,
      WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      BODY_LIMIT_BYTES: '65536',
      JSON_MAX_DEPTH: '32',
    }),
  });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://backend.example').setAudience('wagw').setSubject('fuzzer').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  const valid = [`Bearer ${await sign({ scope: 'admin' })}`, `Bearer ${await sign({ scope: 'sessions:read sessions:write', sessions: ['s1', 'card-1'] })}`, `Bearer ${await sign({ scopes: ['sessions:read'] })}`];
  // Two sessions the fuzz's path segments name, so some calls reach live sessions.
  for (const id of ['s1', 'card-1']) {
    const r = await gw.api.call('POST', '/api/v1/sessions', { id }, { authorization: valid[0] ?? '' });
    assert.equal(r.status, 201, r.raw.toString());
  }

  const doc = await gw.api.get<OpenApiDocument>('/openapi.json');
  const routes: FuzzRoute[] = [];
  for (const [path, item] of Object.entries(doc.body.paths)) {
    for (const method of Object.keys(item)) {
      if (path.endsWith('/events')) continue; // an SSE stream never ends; its refusals are covered by api.test.ts
      routes.push({ method: method.toUpperCase(), path: path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1') });
    }
  }
  assert.ok(routes.length >= 17, `routes from the document: ${routes.length}`);
  assert.ok(routes.some((r) => r.path === '/api/v1/admin/webhooks/:id/replay'));

  const result = await fuzzApp(gw.router.app, {
    routes,
    validAuthorization: valid,
    validApiKeys: [KEY],
    numRuns: 500,
    check: (req, res) => (req.route === undefined ? undefined : responseProblem(doc.body, req.route.method, req.route.path, res.status, res.body)),
    allow: (req, res) => {
      if (res.status !== 503) return false;
      if (req.path.split('?')[0] === '/health') return true;
      return /"code":"(SHARD_UNAVAILABLE|NO_CAPACITY)"/.test(res.body);
    },
  });
  t.diagnostic(`statuses ${JSON.stringify(result.statuses)}; allowed 5xx: ${result.allowed.length === 0 ? 'none' : result.allowed.join(' | ')}; app errors: ${result.appErrors.length}`);
  assert.equal(result.runs, 500);
  const codes = Object.keys(result.statuses).map(Number);
  assert.ok(codes.some((c) => c >= 200 && c < 300), 'some requests got through');
  assert.ok(codes.includes(401) && codes.includes(400), 'some were refused');
  // The gateway is still healthy afterwards: the shard did not crash.
  // (the webhook check's result is a detail of /health, shown to an admin)
  const health = await gw.api.call<{ status: string; webhooks?: { ok: boolean } }>('GET', '/health', undefined, { authorization: valid[0] ?? '' });
  assert.equal(health.status, 200, health.raw.toString());
  assert.equal(health.body.webhooks?.ok, true);
  assert.equal(gw.router.supervisor.list().every((s) => s.restarts === 0), true, 'no shard restarted');
});
