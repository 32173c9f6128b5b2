import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { createAuthenticator } from '../../src/security/index.ts';
import { call, captureLogger, config, ok, securityApp, serve } from './helpers.ts';
import type { Served } from './helpers.ts';

const ISS = 'https://idp.example';
const AUD = 'wagw';

interface Pair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function pair(kid: string, alg: 'RS256' | 'ES256'): Promise<Pair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const sign = (p: Pair, scope = 'sessions:read') =>
  new SignJWT({ scope }).setProtectedHeader({ alg: p.alg, kid: p.kid }).setIssuer(ISS).setAudience(AUD).setSubject('svc').setExpirationTime('5m').sign(p.privateKey);

describe('bearer tokens from a JWKS', () => {
  let jwksServer: http.Server;
  let served: Served;
  let published: JWK[] = [];
  let fetches = 0;
  let rsa: Pair;
  let ec: Pair;
  let rotated: Pair;

  before(async () => {
    [rsa, ec, rotated] = await Promise.all([pair('k1', 'RS256'), pair('k2', 'ES256'), pair('k3', 'ES256')]);
    published = [rsa.jwk, ec.jwk];
    jwksServer = http.createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    const cfg = config({ AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD, AUTH_JWKS_COOLDOWN_MS: '0' });
    const cap = captureLogger();
    const auth = createAuthenticator(cfg, { logger: cap.logger });
    served = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.get('/api/v1/sessions', auth.requireAuth({ scopes: ['sessions:read'] }), ok);
      }),
    );
  });
  after(async () => {
    await served.close();
    await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  });

  const get = async (t: string) => call(served.base, '/api/v1/sessions', { authorization: `Bearer ${t}` });

  it('accepts RS256 and ES256 tokens signed by published keys', async () => {
    assert.equal((await get(await sign(rsa))).status, 200);
    assert.equal((await get(await sign(ec))).status, 200);
  });

  it('refuses an HS256 token (algorithm confusion with the public key) and an unknown kid', async () => {
    const hs = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISS).setAudience(AUD).setSubject('x').setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(32)));
    const r1 = await get(hs);
    assert.equal(r1.status, 401);
    assert.equal(r1.body.error?.code, 'INVALID_TOKEN');
    const r2 = await get(await sign(rotated));
    assert.equal(r2.status, 401);
    assert.match(r2.body.error?.message ?? '', /kid/);
  });

  it('key rotation: a token with a new kid makes the gateway refetch the JWKS', async () => {
    published = [ec.jwk, rotated.jwk]; // k1 retired, k3 added
    const before = fetches;
    const r = await get(await sign(rotated));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(fetches > before, 'the JWKS was fetched again');
  });

  it('a JWKS that cannot be reached is a 503 (not the caller\'s fault), never a 500', async () => {
    const cap = captureLogger();
    const cfg = config({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks', AUTH_JWT_ISSUER: ISS, AUTH_JWT_AUDIENCE: AUD, AUTH_JWKS_TIMEOUT_MS: '500' });
    const auth = createAuthenticator(cfg, { logger: cap.logger });
    const s = await serve(
      securityApp(cap.logger, (a, router) => {
        a.use(auth.authenticate());
        router.get('/x', ok);
      }),
    );
    try {
      const r = await call(s.base, '/x', { authorization: `Bearer ${await sign(rsa)}` });
      assert.equal(r.status, 503);
      assert.equal(r.body.error?.code, 'DEPENDENCY_UNAVAILABLE');
    } finally {
      await s.close();
    }
  });
});
