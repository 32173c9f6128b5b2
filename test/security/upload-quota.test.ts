// Issue #10 item 17 through the real gateway: a per-session upload quota (429 UPLOAD_QUOTA_EXCEEDED) and a byte
// budget for large JSON bodies in flight (503 BODY_BUDGET_EXHAUSTED with Retry-After).
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';

const MEDIA_MAX = 100_000;

describe('upload quota and large-body budget (issue #10 item 17)', () => {
  let gw: Gateway;
  const cleanups: (() => Promise<void>)[] = [];
  const t0 = { after: (fn: () => Promise<void>) => cleanups.push(fn) };

  before(async () => {
    const dir = await tempDir(t0);
    const s = await startSim(t0, dir.path);
    gw = await startGateway(t0, {
      env: sessionTestEnv(dir.path, { ...s.env, SHARD_COUNT: '1', MEDIA_MAX_BYTES: String(MEDIA_MAX), UPLOAD_QUOTA_BYTES: '250000', BODY_BUDGET_BYTES: '200000' }),
    });
    for (const id of ['quota-a', 'quota-b']) assert.equal((await gw.api.post('/api/v1/sessions', { id })).status, 201);
  });

  after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });

  const upload = async (session: string, size: number) => {
    const form = new FormData();
    form.append('file', new Blob([randomBytes(size)], { type: 'application/octet-stream' }), 'f.bin');
    const res = await fetch(`${gw.url}/api/v1/sessions/${session}/uploads`, { method: 'POST', body: form });
    return { status: res.status, body: (await res.json()) as { size?: number; error?: { code: string; message: string } } };
  };

  test('a session cannot hold more than UPLOAD_QUOTA_BYTES of uploads; other sessions are not affected', async () => {
    assert.equal((await upload('quota-a', 90_000)).status, 201);
    assert.equal((await upload('quota-a', 90_000)).status, 201);
    // 70 000 bytes of quota left: a 90 000-byte file is cut off at the quota, not at MEDIA_MAX_BYTES.
    const over = await upload('quota-a', 90_000);
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.equal(over.body.error?.code, 'UPLOAD_QUOTA_EXCEEDED');
    assert.match(over.body.error?.message ?? '', /Session quota-a holds 180000 bytes of uploads \(quota 250000 bytes/);
    assert.equal((await upload('quota-a', 70_000)).status, 201, 'a file that fills exactly the rest is taken');
    const full = await upload('quota-a', 1);
    assert.equal(full.status, 429);
    assert.equal(full.body.error?.code, 'UPLOAD_QUOTA_EXCEEDED');
    // Over MEDIA_MAX_BYTES is still the 413 it was; another session has its own quota.
    assert.equal((await upload('quota-b', MEDIA_MAX + 10)).status, 413);
    assert.equal((await upload('quota-b', MEDIA_MAX)).status, 201, 'a file of exactly MEDIA_MAX_BYTES is accepted (busboy marked it truncated)');
  });

  test('large JSON bodies in flight past BODY_BUDGET_BYTES get 503 BODY_BUDGET_EXHAUSTED; small ones never do', async () => {
    const url = new URL(`${gw.url}/api/v1/sessions/quota-a/messages`);
    // Holds 150 000 bytes of the 200 000 budget: headers and a first chunk sent, the rest withheld.
    const held = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '150000' } });
    held.on('error', () => undefined);
    held.write('{"to":"6281234567802","type":"text","text":"');
    const big = JSON.stringify({ to: '6281234567802', type: 'text', text: 'x'.repeat(100_000) });
    const post = async (body: string) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: { code: string; message: string } } };
    };
    const refused = await waitFor(
      async () => {
        const r = await post(big);
        return r.status === 503 ? r : null;
      },
      { what: 'a second large body refused while the first is held', timeoutMs: 10_000, intervalMs: 50 },
    );
    assert.equal(refused.body.error?.code, 'BODY_BUDGET_EXHAUSTED');
    assert.equal(refused.retryAfter, '1');
    const small = await post(JSON.stringify({ to: '6281234567802', type: 'text', text: 'hi' }));
    assert.notEqual(small.status, 503, 'a small body is not counted');
    held.destroy();
    // The aborted body gives its bytes back: the large body is admitted again (whatever the send's own outcome).
    await waitFor(async () => ((await post(big)).status !== 503 ? true : null), { what: 'budget released', timeoutMs: 10_000, intervalMs: 50 });
  });
});
