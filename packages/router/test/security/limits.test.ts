import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertJsonDepth, assertJsonTextDepth, readJsonBody, uploadLimits } from '../../src/security/index.ts';
import { call, captureLogger, securityApp, serve } from './helpers.ts';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('request limits', () => {
  it('assertJsonDepth counts arrays and objects; scalars do not add depth', () => {
    assert.doesNotThrow(() => assertJsonDepth({ a: [{ b: 1 }] }, 3));
    assert.throws(() => assertJsonDepth({ a: [{ b: {} }] }, 3), (e: unknown) => (e as { code?: string }).code === 'BAD_REQUEST');
    assert.doesNotThrow(() => assertJsonDepth('x', 0));
    assert.doesNotThrow(() => assertJsonDepth(JSON.parse(nested(32)), 32));
    assert.throws(() => assertJsonDepth(JSON.parse(nested(33)), 32), /deeper than 32/);
  });

  it('assertJsonTextDepth skips brackets inside strings and escapes', () => {
    assert.doesNotThrow(() => assertJsonTextDepth(JSON.stringify({ s: '[[[[[[{{{{{', t: 'a\\"[[[[' }), 2));
    assert.throws(() => assertJsonTextDepth(nested(100_000), 32), /deeper than 32/);
  });

  it('readJsonBody: 413 beyond the size, 400 too deep or invalid, 415 not JSON, parsed value otherwise', async () => {
    const cap = captureLogger();
    const served = await serve(
      securityApp(cap.logger, (_a, router) => {
        router.post('/echo', async (ctx) => {
          ctx.body = { ok: true, principal: null, got: (await readJsonBody(ctx.req, { bodyBytes: 1024, jsonMaxDepth: 8 })) ?? null };
        });
      }),
    );
    const post = (body: string, type = 'application/json') => call(served.base, '/echo', { 'content-type': type }, { method: 'POST', body });
    try {
      assert.equal((await post('{"a":[1,2]}')).status, 200);
      const big = await post(JSON.stringify({ s: 'x'.repeat(2000) }));
      assert.equal(big.status, 413);
      assert.equal(big.body.error?.code, 'PAYLOAD_TOO_LARGE');
      const deep = await post(nested(9));
      assert.equal(deep.status, 400);
      assert.match(deep.body.error?.message ?? '', /deeper than 8/);
      const bad = await post('{"a":');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error?.code, 'INVALID_JSON');
      assert.equal((await post('a=b', 'application/x-www-form-urlencoded')).status, 415);
      assert.equal((await post(nested(200_000).slice(0, 1000))).status, 400);
    } finally {
      await served.close();
    }
  });

  it('uploadLimits gives busboy one file of at most the upload limit', () => {
    assert.deepEqual({ ...uploadLimits({ uploadBytes: 5000 }), fields: 0 }, { fileSize: 5000, files: 1, fields: 0, fieldSize: 65536, parts: 52, headerPairs: 50 });
  });
});
