// The security middleware chain under a property-based fuzz: no 5xx, no escaped error, for any headers and
// bodies. Runs in production mode (rate limits on, in memory with a high budget) with JWT and API keys.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import { loadConfig } from '@wagw/shared';
import { fuzzApp } from './fuzz.ts';
import { securedApp, silentLogger } from './app.ts';

const SECRET = 'fuzz-secret-0123456789abcdef0123456789abcdef';
const KEY = 'wagw_fuzz_key_0123456789';

it('fuzzed headers and bodies through the security chain never get a 5xx', async () => {
  const config = loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    AUTH_JWT_SECRET: SECRET,
    AUTH_JWT_ISSUER: 'https://backend.example',
    AUTH_JWT_AUDIENCE: 'wagw',
    AUTH_API_KEYS: `fuzz:${createHash('sha256').update(KEY).digest('hex')}:sessions:read+sessions:write`,
    RATE_LIMIT_PER_IP: '100000',
    RATE_LIMIT_PER_PRINCIPAL: '100000',
    BODY_LIMIT_BYTES: '65536',
    JSON_MAX_DEPTH: '32',
  });
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://backend.example').setAudience('wagw').setSubject('fuzzer').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  const valid = [
    `Bearer ${await token({ scope: 'admin' })}`,
    `Bearer ${await token({ scope: 'messages:send', sessions: ['s1'] })}`,
    `Bearer ${await token({ scopes: ['sessions:read'], sessions: 's1' })}`,
  ];
  const s = await securedApp(config, silentLogger());
  try {
    const result = await fuzzApp(s.app, {
      routes: [
        { method: 'GET', path: '/api/v1/sessions' },
        { method: 'POST', path: '/api/v1/sessions' },
        { method: 'GET', path: '/api/v1/sessions/:id' },
        { method: 'POST', path: '/api/v1/sessions/:id/messages' },
        { method: 'GET', path: '/ready' },
        { method: 'GET', path: '/metrics' },
      ],
      validAuthorization: valid,
      validApiKeys: [KEY],
      numRuns: 400,
    });
    assert.equal(result.runs, 400);
    const codes = Object.keys(result.statuses).map(Number);
    assert.ok(codes.some((c) => c >= 200 && c < 300), `some requests got through: ${JSON.stringify(result.statuses)}`);
    assert.ok(codes.includes(401), `some were refused: ${JSON.stringify(result.statuses)}`);
  } finally {
    await s.close();
  }
});
