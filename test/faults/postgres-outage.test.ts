// PostgreSQL cut off for 30 s (a TCP proxy the test controls black-holes every connection: the worst case,
// since only timeouts notice it) while traffic flows: API calls fail fast with 503 DEPENDENCY_UNAVAILABLE
// (never hang, never 500); inbound messages are not receipted to WhatsApp until stored, so all arrive once
// afterwards; a send retried with its Idempotency-Key across the outage reaches the phone once; the outbox
// delivers every webhook afterwards.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, redisNamespace, startS3, tempDir, waitFor } from '../harness/index.ts';
import { startTcpProxy } from '../harness/tcp-proxy.ts';
import { sessionTestEnv, startGateway, startReceiver, startSim } from '../sessions/helpers.ts';

const OUTAGE_MS = Number(process.env['WAGW_TEST_OUTAGE_MS'] ?? 30_000);

describe('PostgreSQL outage', () => {
  test('30 s black-holed: 503 fast, inbound stored once afterwards, idempotent send once, every webhook delivered', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    sim.receiptDelayMs = 0;
    const [ns, db, s3] = await Promise.all([redisNamespace(t), createTestDatabase(t), startS3(t)]);
    const pgUrl = new URL(db.url);
    const proxy = await startTcpProxy(t, { host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    pgUrl.port = String(proxy.port);
    const receiver = await startReceiver(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, {
        ...env,
        SHARD_COUNT: '1',
        REDIS_URL: ns.url,
        DATABASE_URL: pgUrl.toString(),
        S3_ENDPOINT: s3.endpoint,
        S3_ACCESS_KEY: s3.accessKey,
        S3_SECRET_KEY: s3.secretKey,
        S3_BUCKET: s3.bucket,
        WEBHOOK_SECRET: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_POLL_INTERVAL_MS: '100',
      }),
      redisPrefix: ns.prefix,
      webhooks: true,
    });
    const me = sim.createPhone({ name: 'gateway' });
    const friend = sim.createPhone({ name: 'friend' });
    const created = await gw.api.post('/api/v1/sessions', { id: 'pg', webhookUrl: receiver.url });
    assert.equal(created.status, 201, created.raw.toString());
    await sim.scanQr(me, await gw.api.waitQr('pg'));
    await gw.api.waitStatus('pg', 'connected');
    const first = await friend.sendText(me.jid, 'before the outage');
    await waitFor(async () => (await gw.api.get(`/api/v1/sessions/pg/messages/${first.id}`)).status === 200, { what: 'first message stored', timeoutMs: 20_000 });

    proxy.set('blackhole');
    const cutAt = Date.now();
    const inbound: string[] = [];
    for (let i = 0; i < 10; i++) inbound.push((await friend.sendText(me.jid, `during the outage ${i}`)).id);

    // API calls during the outage: a clear 503, never a hang (the abort turns a hang into a failure) or a 500.
    const key = 'outage-send-1';
    const body = { to: friend.jid, type: 'text', text: 'sent across the outage' };
    const send = () =>
      fetch(`${gw.url}/api/v1/sessions/pg/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
    const during = await send();
    const duringBody = (await during.json()) as { error?: { code?: string } };
    assert.equal(during.status, 503, JSON.stringify(duringBody));
    assert.equal(duringBody.error?.code, 'DEPENDENCY_UNAVAILABLE');
    const get = await fetch(`${gw.url}/api/v1/sessions/pg`, { signal: AbortSignal.timeout(20_000) });
    assert.equal(get.status, 503, await get.text());

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - cutAt)));
    proxy.set('pass');

    // After: the retried send goes out once; every inbound message stored once; every webhook delivered.
    const after = await waitFor(
      async () => {
        const r = await send();
        return r.status === 201 ? ((await r.json()) as { id: string }) : null;
      },
      { what: 'the retried send to succeed', timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.equal((await send()).status, 201, 'a replay of the same key answers the stored result');
    await friend.waitForMessage((m) => m.id === after.id, 20_000);
    await sleep(500);
    const textOf = (m: { message: { conversation?: string | null; extendedTextMessage?: { text?: string | null } | null } | undefined }) => m.message?.conversation ?? m.message?.extendedTextMessage?.text;
    assert.equal(friend.received().filter((m) => textOf(m) === 'sent across the outage').length, 1, 'sent once');

    await waitFor(
      async () => {
        for (const id of inbound) if ((await gw.api.get(`/api/v1/sessions/pg/messages/${id}`)).status !== 200) return false;
        return true;
      },
      { what: 'every message sent during the outage stored', timeoutMs: 90_000, intervalMs: 500 },
    );
    const history = await gw.api.get<{ data: { id: string }[] }>(`/api/v1/sessions/pg/messages?limit=100`);
    const ids = history.body.data.map((m) => m.id);
    for (const id of inbound) assert.equal(ids.filter((x) => x === id).length, 1, `${id} stored once`);
    await waitFor(
      () => inbound.every((id) => receiver.hits.some((h) => h.body['type'] === 'messages' && (h.body['data'] as { id?: string }).id === id)),
      { what: 'a webhook for every inbound message', timeoutMs: 30_000, intervalMs: 200 },
    );
    assert.equal((await gw.api.session('pg')).status, 'connected');
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });
});
