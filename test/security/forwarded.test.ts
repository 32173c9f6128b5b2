// Issue #10 item 7: calls forwarded between routers are signed with CLUSTER_SECRET and not counted again by the
// owner's rate limiters; unsigned calls still are; forged, stale, replayed or body-swapped ones get 401.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { loadConfig } from '@wagw/shared';
import { security } from '@wagw/router';
import { listen, securedApp, silentLogger } from './app.ts';

const { signForwarded, ForwardVerifier, FORWARD_VALIDITY_MS } = security;
const KEY = 'wagw_test_key_forward_0123456789';
const SECRET = 'cluster-secret-for-the-forward-test-0123456789';
const sha = (k: string) => createHash('sha256').update(k).digest('hex');

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    AUTH_API_KEYS: `fwd:${sha(KEY)}:admin`,
    RATE_LIMIT_PER_IP: '3',
    RATE_LIMIT_PER_PRINCIPAL: '3',
    RATE_LIMIT_WINDOW_MS: '60000',
    CLUSTER_SECRET: SECRET,
    ...extra,
  });
}

async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(base + path, { method, headers: { 'x-api-key': KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, ...(body === undefined ? {} : { body }) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

async function start(t: { after(fn: () => Promise<void>): void }, extra: Record<string, string> = {}) {
  const s = await securedApp(config(extra), silentLogger());
  const server = await listen(s.app);
  t.after(async () => {
    await server.close();
    await s.close();
  });
  return server.base;
}

describe('forwarded calls between routers (issue #10 item 7)', () => {
  it('signed forwarded calls are not counted again on the owner; unsigned ones from the same address are', async (t) => {
    const base = await start(t);
    // Six clients' calls forwarded by one router: one socket address, one principal. Before: 429 from the 4th.
    for (let i = 0; i < 6; i++) {
      const headers = signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions', by: 'host-a', clientIp: `203.0.113.${i}`, body: '' }, Date.now() - i);
      const res = await call(base, 'GET', '/api/v1/sessions', headers);
      assert.equal(res.status, 200, `forwarded call ${i}: ${JSON.stringify(res.body)}`);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(base, 'GET', '/api/v1/sessions', {})).status);
    assert.deepEqual(statuses, [200, 200, 200, 429], 'direct calls are still limited');
  });

  it('a forged, stale, replayed or body-swapped forwarded call is refused with 401 FORWARD_SIGNATURE_INVALID', async (t) => {
    const base = await start(t, { RATE_LIMIT_PER_IP: '1000', RATE_LIMIT_PER_PRINCIPAL: '1000' });
    const refused = async (method: string, path: string, headers: Record<string, string>, body?: string) => {
      const res = await call(base, method, path, headers, body);
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal(res.body.error?.code, 'FORWARD_SIGNATURE_INVALID');
      return res.body.error?.message ?? '';
    };
    const wrongKey = signForwarded('another-cluster-secret-0123456789-abcdef', { method: 'GET', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: '' });
    assert.match(await refused('GET', '/api/v1/sessions', wrongKey), /does not match/);
    const stale = signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: '' }, Date.now() - FORWARD_VALIDITY_MS - 5000);
    assert.match(await refused('GET', '/api/v1/sessions', stale), /older than/);
    const otherPath = signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions/x', by: 'h', clientIp: '1.2.3.4', body: '' });
    assert.match(await refused('GET', '/api/v1/sessions', otherPath), /does not match/);
    const spoofedClient = { ...signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: '' }), 'x-wagw-forwarded-for': '9.9.9.9' };
    assert.match(await refused('GET', '/api/v1/sessions', spoofedClient), /does not match/);
    assert.match(await refused('GET', '/api/v1/sessions', { 'x-wagw-forward-signature': 'garbage' }), /malformed/);

    const once = signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: '' });
    assert.equal((await call(base, 'GET', '/api/v1/sessions', once)).status, 200);
    assert.match(await refused('GET', '/api/v1/sessions', once), /used already/);

    const signedBody = JSON.stringify({ id: 'card-1' });
    const post = signForwarded(SECRET, { method: 'POST', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: signedBody });
    assert.match(await refused('POST', '/api/v1/sessions', post, JSON.stringify({ id: 'card-2' })), /body does not match/);
    const good = signForwarded(SECRET, { method: 'POST', url: '/api/v1/sessions', by: 'h', clientIp: '1.2.3.4', body: signedBody });
    assert.equal((await call(base, 'POST', '/api/v1/sessions', good, signedBody)).status, 201);
  });

  it('without CLUSTER_SECRET the headers are ignored: the call is counted like any other', async (t) => {
    const base = await start(t, { CLUSTER_SECRET: '' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const headers = signForwarded(SECRET, { method: 'GET', url: '/api/v1/sessions', by: 'h', clientIp: `1.2.3.${i}`, body: '' }, Date.now() - i);
      statuses.push((await call(base, 'GET', '/api/v1/sessions', headers)).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('the verifier accepts what the signer produced, once', () => {
    const v = new ForwardVerifier(SECRET);
    const h = signForwarded(SECRET, { method: 'post', url: '/a?b=1', by: 'h1', clientIp: '::1', body: '{}' });
    const got = v.verify('POST', '/a?b=1', (name) => h[name] ?? '');
    assert.deepEqual(got, { by: 'h1', clientIp: '::1', bodySha256: sha('{}') });
    assert.equal(v.verify('GET', '/a', () => ''), null, 'no signature: an ordinary call');
  });
});
