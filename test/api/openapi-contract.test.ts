// The served document's contract as a generated client needs it: an operationId on every operation (unique),
// servers, security: [] on the public routes, the responses the route layer gives listed on every operation
// (401/403/429 with credentials, 400 with validated input, 413/415 with a body), the multipart upload body,
// and the response check the route fuzz uses (test/security/gateway-fuzz.test.ts) catching an unlisted status.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { fuzzApp } from '../security/fuzz.ts';
import type { FuzzRoute } from '../security/fuzz.ts';
import { gatewayWithDocument, responseProblem } from './document.ts';
import type { OpenApiDocument } from './document.ts';

const KEY = 'wagw_contract_key_0123456789';
// Public: operations, the document, and the static pages of the API reference and the console (no data in them;
// every API call those pages make carries the user's own credential).
const PUBLIC = ['/health', '/ready', '/metrics', '/openapi.json', '/docs', '/docs/{file}', '/console', '/console/{file}'];

function operations(doc: OpenApiDocument) {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
}

test('the document a client generator needs', { timeout: 120_000 }, async (t) => {
  const { gw, doc } = await gatewayWithDocument(t, { AUTH_API_KEYS: `contract:${createHash('sha256').update(KEY).digest('hex')}:admin` });
  const ops = operations(doc);
  assert.ok(ops.length >= 30, `operations: ${ops.length}`);

  await t.test('servers and a global security requirement; public operations opt out with security: []', () => {
    assert.deepEqual(doc.servers?.map((s) => s.url), ['/']);
    assert.deepEqual(doc.security, [{ bearerAuth: [] }, { apiKey: [] }]);
    for (const { path, method, op } of ops) {
      if (PUBLIC.includes(path)) assert.deepEqual(op.security, [], `${method} ${path}`);
      else assert.ok((op.security ?? []).length === 2, `${method} ${path} names its scopes`);
    }
  });

  await t.test('every operation has a unique operationId', () => {
    const ids = ops.map((o) => o.op.operationId);
    assert.ok(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id)), ids.join(','));
    assert.equal(new Set(ids).size, ids.length, 'unique');
    const byRoute = Object.fromEntries(ops.map((o) => [`${o.method} ${o.path}`, o.op.operationId]));
    assert.equal(byRoute['post /api/v1/sessions/{id}/messages'], 'postSessionMessages');
    assert.equal(byRoute['get /api/v1/sessions/{id}'], 'getSession');
    assert.equal(byRoute['get /api/v1/sessions'], 'getSessions');
  });

  await t.test('the responses the route layer gives are listed, with the Error body', () => {
    for (const { path, method, op } of ops) {
      const listed = Object.keys(op.responses).map(Number);
      const need: number[] = [];
      if (!PUBLIC.includes(path)) need.push(401, 403, 429);
      if (op.requestBody !== undefined) need.push(400, 413, 415);
      if (path.includes('{') && !PUBLIC.includes(path)) need.push(400);
      for (const status of need) {
        assert.ok(listed.includes(status), `${method} ${path} lists ${status} (has ${listed.join(',')})`);
        assert.ok(op.responses[String(status)]?.content?.['application/json'], `${method} ${path} ${status} has the Error body`);
      }
      if (!PUBLIC.includes(path)) assert.ok(JSON.stringify(op.responses['429']).includes('Retry-After'), `${method} ${path} 429 names Retry-After`);
    }
  });

  await t.test("every operation on a session lists 404: its session may not exist (SESSION_NOT_FOUND)", async () => {
    for (const { path, method, op } of ops) {
      if (!path.startsWith('/api/v1/sessions/{id}')) continue;
      assert.ok(op.responses['404']?.content?.['application/json'], `${method} ${path} lists 404 with the Error body (has ${Object.keys(op.responses).join(',')})`);
    }
    // The two the route fuzz found unlisted (a seed of test/security/gateway-fuzz.test.ts in CI), answered as listed.
    const presence = await gw.api.call('POST', '/api/v1/sessions/no-such-session/presence', { state: 'available' }, { 'x-api-key': KEY });
    const exists = await gw.api.call('GET', '/api/v1/sessions/no-such-session/contacts/+6281234567890/exists', undefined, { 'x-api-key': KEY });
    for (const [route, res] of [[{ method: 'post', path: '/api/v1/sessions/{id}/presence' }, presence], [{ method: 'get', path: '/api/v1/sessions/{id}/contacts/{phone}/exists' }, exists]] as const) {
      assert.equal(res.status, 404, res.raw.toString());
      assert.match(res.raw.toString(), /SESSION_NOT_FOUND/);
      assert.equal(responseProblem(doc, route.method, route.path, res.status, res.raw.toString()), undefined);
    }
  });

  await t.test('the multipart upload has a requestBody', () => {
    const upload = doc.paths['/api/v1/sessions/{id}/uploads']?.['post'];
    const multipart = upload?.requestBody?.content['multipart/form-data'] as { schema?: { properties?: Record<string, { format?: string }>; required?: string[] } } | undefined;
    assert.equal(multipart?.schema?.properties?.['file']?.format, 'binary');
    assert.deepEqual(multipart?.schema?.required, ['file']);
  });

  await t.test('answers are checked: an unlisted status or a body off the Error schema is a problem', () => {
    const err = (code: string) => JSON.stringify({ error: { code, message: 'm' } });
    assert.equal(responseProblem(doc, 'GET', '/api/v1/sessions/:id', 404, err('SESSION_NOT_FOUND')), undefined);
    assert.match(responseProblem(doc, 'GET', '/api/v1/sessions/:id', 409, err('CONFLICT')) ?? '', /409 is not listed for getSession/);
    assert.match(responseProblem(doc, 'GET', '/api/v1/sessions/:id', 404, err('NOPE')) ?? '', /not in the registry/);
    assert.match(responseProblem(doc, 'GET', '/api/v1/sessions/:id', 404, err('UNAUTHORIZED')) ?? '', /is a 401, answered as 404/);
    assert.match(responseProblem(doc, 'GET', '/api/v1/sessions/:id', 404, '') ?? '', /not JSON/);
  });

  await t.test('the fuzz with the response check fails on a document that leaves out a status the routes give', async () => {
    // The same document without 401 anywhere: half the fuzzed requests carry bad credentials, so it must fail.
    const crippled = structuredClone(doc);
    for (const item of Object.values(crippled.paths)) for (const op of Object.values(item)) delete op.responses['401'];
    const routes: FuzzRoute[] = ops.filter((o) => !o.path.endsWith('/events')).map((o) => ({ method: o.method.toUpperCase(), path: o.path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1') }));
    await assert.rejects(
      fuzzApp(gw.router.app, {
        routes,
        validApiKeys: [KEY],
        numRuns: 200,
        check: (req, res) => (req.route === undefined ? undefined : responseProblem(crippled, req.route.method, req.route.path, res.status, res.body)),
        allow: (_req, res) => res.status === 503,
      }),
      (e: unknown) => /status 401 is not listed/.test(String((e as { cause?: unknown }).cause)),
    );
  });
});
