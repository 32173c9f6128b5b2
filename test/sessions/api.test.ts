// Bad input of every kind gets a 4xx with a clear code and message, never a 5xx; every Koa route is in the
// OpenAPI document.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from './helpers.ts';
import type { Gateway } from './helpers.ts';

interface ErrorBody {
  error: { code: string; message: string; details?: { fields?: { field: string; message: string }[] } };
}

describe('session API: bad inputs and the OpenAPI document', () => {
  let gw: Gateway;
  /** The Koa router's layers (structural: @koa/router is not a dependency of the tests). */
  let koaRouter: { stack: { path: string | RegExp; methods: string[] }[] } | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  const t0 = { after: (fn: () => Promise<void>) => cleanups.push(fn) };

  before(async () => {
    const dir = await tempDir(t0);
    const { env } = await startSim(t0, dir.path);
    gw = await startGateway(t0, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1' }),
      inspect: (router) => {
        koaRouter = router as unknown as { stack: { path: string | RegExp; methods: string[] }[] };
      },
    });
    assert.equal((await gw.api.post('/api/v1/sessions', { id: 'dup' })).status, 201);
  });

  const expectError = async (res: Promise<{ status: number; body: unknown; raw: Buffer }>, status: number, code: string): Promise<ErrorBody> => {
    const r = await res;
    assert.equal(r.status, status, r.raw.toString());
    const body = r.body as ErrorBody;
    assert.equal(body.error.code, code, r.raw.toString());
    assert.ok(body.error.message.length > 0);
    return body;
  };

  test('unknown session -> 404 SESSION_NOT_FOUND on every route', async () => {
    await expectError(gw.api.get('/api/v1/sessions/nope'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.get('/api/v1/sessions/nope/qr'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.get('/api/v1/sessions/nope/events'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.get('/api/v1/sessions/nope/history'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.post('/api/v1/sessions/nope/restart'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.post('/api/v1/sessions/nope/logout'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.post('/api/v1/sessions/nope/migrate', {}), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.post('/api/v1/sessions/nope/pairing-code', { phone: '+6281234567890' }), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.call('DELETE', '/api/v1/sessions/nope'), 404, 'SESSION_NOT_FOUND');
    await expectError(gw.api.get('/api/v1/nothing-here'), 404, 'NOT_FOUND');
  });

  test('duplicate id -> 409 SESSION_EXISTS', async () => {
    await expectError(gw.api.post('/api/v1/sessions', { id: 'dup' }), 409, 'SESSION_EXISTS');
  });

  test('malformed JSON -> 400 INVALID_JSON; wrong content type -> 415', async () => {
    await expectError(gw.api.call('POST', '/api/v1/sessions', '{"id": "x",'), 400, 'INVALID_JSON');
    await expectError(gw.api.call('POST', '/api/v1/sessions', 'id=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('wrong types and unknown fields -> 400 VALIDATION_FAILED naming each field', async () => {
    const e = await expectError(gw.api.post('/api/v1/sessions', { id: 42, webhookUrl: 'ftp://x', metadata: 'no', extra: true }), 400, 'VALIDATION_FAILED');
    const fields = (e.error.details?.fields ?? []).map((f) => f.field);
    assert.ok(fields.includes('body.id'), JSON.stringify(fields));
    assert.ok(fields.includes('body.webhookUrl'), JSON.stringify(fields));
    assert.ok(fields.includes('body.metadata'), JSON.stringify(fields));
    assert.match(e.error.message, /body\.id/);
    await expectError(gw.api.post('/api/v1/sessions', [1, 2]), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions', 'null'), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions/dup/pairing-code', { phone: 'call me' }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions/dup/migrate', { shard: 'one' }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions/dup/migrate', { shard: 7 }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.get('/api/v1/sessions/dup/qr?format=gif'), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.get('/api/v1/sessions?limit=-3'), 400, 'VALIDATION_FAILED');
    const history = await expectError(gw.api.get('/api/v1/sessions/dup/history?limit=500&cursor=abc'), 400, 'VALIDATION_FAILED');
    assert.deepEqual((history.error.details?.fields ?? []).map((f) => f.field).sort(), ['query.cursor', 'query.limit']);
    await expectError(gw.api.get('/api/v1/sessions/dup/history?cursor=99999999999999999999'), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.call('PUT', '/api/v1/admin/shards', { count: 0 }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.call('PUT', '/api/v1/admin/shards', { count: 1e9 }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.get(`/api/v1/sessions/${encodeURIComponent('../etc/passwd')}`), 400, 'VALIDATION_FAILED');
  });

  test('absurd sizes -> 400 or 413, never 5xx', async () => {
    await expectError(gw.api.post('/api/v1/sessions', { id: 'x'.repeat(10_000) }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.get(`/api/v1/sessions/${'y'.repeat(5000)}`), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions', { metadata: { blob: 'z'.repeat(40_000) } }), 400, 'VALIDATION_FAILED');
    await expectError(gw.api.post('/api/v1/sessions', { metadata: { blob: 'z'.repeat(200_000) } }), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(gw.api.post('/api/v1/sessions', { metadata: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])) }), 400, 'VALIDATION_FAILED');
  });

  test('a session waiting for its QR serves it and restarts; its stored history shows it', async () => {
    const qr = await gw.api.waitQr('dup');
    assert.ok(qr.length > 10);
    const restarted = await gw.api.post('/api/v1/sessions/dup/restart');
    assert.equal(restarted.status, 200, restarted.raw.toString());
    const history = await gw.api.get<{ data: { seq: number; status: string; host: string | null; shard: number | null; epoch: number | null }[]; nextCursor: number | null }>(
      '/api/v1/sessions/dup/history?limit=1',
    );
    assert.equal(history.status, 200, history.raw.toString());
    assert.equal(history.body.data.length, 1);
    assert.notEqual(history.body.nextCursor, null, 'more than one change: a next page');
    const rest = await gw.api.get<{ data: { seq: number; status: string; host: string | null; epoch: number | null }[] }>(`/api/v1/sessions/dup/history?cursor=${history.body.nextCursor}`);
    const all = [...history.body.data, ...rest.body.data];
    assert.ok(all.some((e) => e.status === 'qr' && e.host === 'test-host' && e.epoch !== null), JSON.stringify(all));
    assert.deepEqual(all.map((e) => e.seq), [...all.map((e) => e.seq)].sort((a, b) => b - a), 'newest first');
  });

  test('every registered Koa route is in /openapi.json, and /docs answers', async () => {
    assert.ok(koaRouter, 'inspect hook ran');
    const doc = (await gw.api.get<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    const missing: string[] = [];
    for (const layer of koaRouter.stack) {
      const path = String(layer.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      for (const method of layer.methods) {
        if (method === 'HEAD') continue;
        if (!doc.paths[path]?.[method.toLowerCase()]) missing.push(`${method} ${path}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(doc.paths['/api/v1/sessions/{id}/qr']?.['get']);
    const docs = await gw.api.get('/docs');
    assert.equal(docs.status, 200);
    assert.match(docs.raw.toString(), /openapi\.json/);
  });

  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
});
