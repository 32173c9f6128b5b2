import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiKeyStore, constantTimeEqual, createAuthenticator, generateApiKey, hashApiKey } from '../../src/security/index.ts';
import { call, captureLogger, config, ok, securityApp, serve } from './helpers.ts';

describe('API keys', () => {
  const ops = generateApiKey();
  const sender = generateApiKey();

  it('the right key -> 2xx with its scopes; a wrong key -> 401; the key is never logged', async () => {
    const cap = captureLogger('debug');
    const cfg = config({ AUTH_API_KEYS: `ops:${ops.sha256}:sessions:read+sessions:write, sender:${sender.sha256}:messages:send` });
    const auth = createAuthenticator(cfg, { logger: cap.logger });
    const served = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.get('/api/v1/sessions', auth.requireAuth({ scopes: ['sessions:read'] }), ok);
        router.post('/api/v1/sessions/:id/messages', auth.requireAuth({ scopes: ['messages:send'], sessionParam: 'id' }), ok);
      }),
    );
    try {
      const r = await call(served.base, '/api/v1/sessions', { 'x-api-key': ops.key });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.principal, { kind: 'api-key', subject: 'ops', scopes: ['sessions:read', 'sessions:write'] });
      const wrong = await call(served.base, '/api/v1/sessions', { 'x-api-key': ops.key.slice(0, -1) + (ops.key.endsWith('A') ? 'B' : 'A') });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error?.code, 'INVALID_API_KEY');
      assert.match(wrong.headers.get('www-authenticate') ?? '', /invalid_token/);
      const scope = await call(served.base, '/api/v1/sessions', { 'x-api-key': sender.key });
      assert.equal(scope.status, 403);
      assert.equal(scope.body.error?.code, 'INSUFFICIENT_SCOPE');
      assert.equal((await call(served.base, '/api/v1/sessions/s1/messages', { 'x-api-key': sender.key }, { method: 'POST' })).status, 200);
      const huge = await call(served.base, '/api/v1/sessions', { 'x-api-key': 'x'.repeat(9000) });
      assert.equal(huge.status, 401);
      assert.ok(!cap.text().includes(ops.key) && !cap.text().includes(sender.key), 'keys never logged');
    } finally {
      await served.close();
    }
  });

  it('keys from AUTH_API_KEYS_FILE may be limited to sessions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wagw-keys-'));
    const file = path.join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify([{ name: 'card-1-key', sha256: sender.sha256, scopes: ['messages:send'], sessions: ['card-1'] }]));
    const cap = captureLogger();
    const auth = createAuthenticator(config({ AUTH_API_KEYS_FILE: file }), { logger: cap.logger });
    const served = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.post('/api/v1/sessions/:id/messages', auth.requireAuth({ scopes: ['messages:send'], sessionParam: 'id' }), ok);
      }),
    );
    try {
      assert.equal((await call(served.base, '/api/v1/sessions/card-1/messages', { 'x-api-key': sender.key }, { method: 'POST' })).status, 200);
      const other = await call(served.base, '/api/v1/sessions/card-2/messages', { 'x-api-key': sender.key }, { method: 'POST' });
      assert.equal(other.status, 403);
      assert.equal(other.body.error?.code, 'SESSION_NOT_ALLOWED');
    } finally {
      await served.close();
    }
  });

  it('compares with the constant-time function against every configured hash', () => {
    const calls: [Buffer, Buffer][] = [];
    const spy = (a: Buffer, b: Buffer) => {
      calls.push([a, b]);
      return constantTimeEqual(a, b);
    };
    const store = new ApiKeyStore(
      [
        { name: 'a', sha256: ops.sha256, scopes: ['admin'], sessions: undefined },
        { name: 'b', sha256: sender.sha256, scopes: ['admin'], sessions: undefined },
      ],
      spy,
    );
    assert.equal(store.lookup(ops.key)?.subject, 'a');
    assert.equal(calls.length, 2, 'no early exit after a match');
    assert.ok(calls.every(([x, y]) => x.length === 32 && y.length === 32), 'fixed-length digests are compared, never the raw key');
    assert.equal(store.lookup('nope'), undefined);
    // The default compare is crypto.timingSafeEqual behind a length check.
    assert.match(constantTimeEqual.toString(), /timingSafeEqual/);
  });

  it('config refuses bad entries and names them; hashes are the SHA-256 of the key', () => {
    assert.equal(hashApiKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.throws(() => config({ AUTH_API_KEYS: `ops:${ops.key}:admin` }), /entry 1: key "ops": hash must be 64 hex digits/);
    assert.throws(() => config({ AUTH_API_KEYS: `ops:${ops.sha256}:root` }), /scopes must be one or more of/);
    assert.throws(() => config({ AUTH_API_KEYS: `ops:${ops.sha256}:admin,ops:${sender.sha256}:admin` }), /duplicate key names ops/);
    assert.throws(() => config({ AUTH_API_KEYS_FILE: '/nonexistent/keys.json' }), /AUTH_API_KEYS_FILE: cannot read/);
  });
});
