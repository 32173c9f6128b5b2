// The blob store (S3: s3rver behind a TCP proxy the test controls) failing while traffic flows: first with
// errors (every connection reset: a store that is down), then with timeouts (connections accepted, nothing
// answered: a partition). Auth writes are retried until they land (never dropped), so a session is never
// restored from a state older than one it acknowledged messages with: after the outage its shard is
// SIGKILLed, and every session logs in again from the store without a QR and decrypts new messages.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRootLogger } from '@wagw/shared';
import { S3BlobStore } from '@wagw/stores';
import { createTestDatabase, redisNamespace, startS3, tempDir, waitFor } from '../harness/index.ts';
import { startTcpProxy } from '../harness/tcp-proxy.ts';
import { mapLimit, sessionTestEnv, startGateway, startReceiver, startSim } from '../sessions/helpers.ts';

const OUTAGE_MS = Number(process.env['WAGW_TEST_OUTAGE_MS'] ?? 30_000);

type Text = { message: { conversation?: string | null; extendedTextMessage?: { text?: string | null } | null } | undefined };
const textOf = (m: Text) => m.message?.conversation ?? m.message?.extendedTextMessage?.text;

describe('Blob store faults', () => {
  test('a black-holed S3 request fails after S3_REQUEST_TIMEOUT_MS instead of waiting forever', async (t) => {
    const s3 = await startS3(t);
    const target = new URL(s3.endpoint);
    const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port) });
    const blobs = await S3BlobStore.create({ ...s3, endpoint: `http://127.0.0.1:${proxy.port}`, requestTimeoutMs: 2_000 }, { logger: createRootLogger({ proc: 'test', level: 'fatal' }) });
    t.after(() => blobs.close());
    await blobs.put('probe/a', Buffer.from('a'));
    proxy.set('blackhole');
    // Without the limit this put never settles and the test times out.
    await assert.rejects(blobs.put('probe/b', Buffer.from('b')), (err: { code?: string; message?: string }) => err.code === 'ETIMEDOUT' || /no answer/.test(String(err.message)));
    proxy.set('pass');
    await blobs.put('probe/c', Buffer.from('c'));
    assert.deepEqual(await blobs.get('probe/c'), Buffer.from('c'));
  });

  test('errors then timeouts for 30 s with traffic: nothing lost or doubled; after a SIGKILL every session logs in without QR and decrypts', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    sim.receiptDelayMs = 0;
    const [ns, db, s3] = await Promise.all([redisNamespace(t), createTestDatabase(t), startS3(t)]);
    const target = new URL(s3.endpoint);
    const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port) });
    const receiver = await startReceiver(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, {
        ...env,
        SHARD_COUNT: '1',
        REDIS_URL: ns.url,
        DATABASE_URL: db.url,
        S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        S3_ACCESS_KEY: s3.accessKey,
        S3_SECRET_KEY: s3.secretKey,
        S3_BUCKET: s3.bucket,
        S3_REQUEST_TIMEOUT_MS: '2000',
        WEBHOOK_SECRET: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_POLL_INTERVAL_MS: '100',
      }),
      redisPrefix: ns.prefix,
      webhooks: true,
    });
    const ids = ['b0', 'b1', 'b2'];
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    const friend = sim.createPhone({ name: 'friend' });
    await mapLimit(ids, 3, async (id, i) => {
      // 503 SHARD_UNAVAILABLE until the shard finished starting (on a loaded machine it can take a while).
      await waitFor(async () => (await gw.api.post('/api/v1/sessions', { id, webhookUrl: receiver.url })).status === 201, { what: `session ${id} created`, timeoutMs: 30_000, intervalMs: 250 });
      await sim.scanQr(phones[i]!, await gw.api.waitQr(id));
      await gw.api.waitStatus(id, 'connected');
    });
    const pairings = sim.snapshot().pairings;

    // Traffic for the whole outage: a phone writes to every session each second; the backend sends from every
    // session with an Idempotency-Key, retrying a key until it is answered 201 (what a backend does).
    const inbound: { session: string; id: string }[] = [];
    const sends: { session: string; key: string; text: string }[] = [];
    const send = async (s: { session: string; key: string; text: string }): Promise<number> => {
      const r = await fetch(`${gw.url}/api/v1/sessions/${s.session}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': s.key },
        body: JSON.stringify({ to: friend.jid, type: 'text', text: s.text }),
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      assert.ok(r.status < 500 || r.status === 503 || r.status === 504, `send ${s.key}: ${r.status} (never a bare 500)`);
      return r.status;
    };
    const unsent = new Set<{ session: string; key: string; text: string }>();
    const phases: ['refuse' | 'blackhole', number][] = [['refuse', OUTAGE_MS / 2], ['blackhole', OUTAGE_MS / 2]];
    let i = 0;
    for (const [mode, ms] of phases) {
      proxy.set(mode);
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const k = i % ids.length;
        inbound.push({ session: ids[k]!, id: (await friend.sendText(phones[k]!.jid, `${mode} in ${i}`)).id });
        const s = { session: ids[k]!, key: `blob-${i}`, text: `${mode} out ${i}` };
        sends.push(s);
        // Not awaited: a send may wait on the store; the loop keeps the traffic going meanwhile.
        void send(s).then((status) => (status === 201 ? undefined : unsent.add(s)), () => unsent.add(s));
        i++;
        await sleep(Math.min(1_000, Math.max(0, until - Date.now())));
      }
    }
    proxy.set('pass');

    await waitFor(
      async () => {
        for (const s of [...unsent]) if ((await send(s)) === 201) unsent.delete(s);
        return unsent.size === 0 && sends.every((s) => friend.received().some((m) => textOf(m) === s.text));
      },
      { what: 'every send retried with its key answered and delivered', timeoutMs: 60_000, intervalMs: 1_000 },
    );
    const stored = async (m: { session: string; id: string }) => (await gw.api.get(`/api/v1/sessions/${m.session}/messages/${m.id}`)).status === 200;
    await waitFor(async () => (await Promise.all(inbound.map(stored))).every(Boolean), { what: 'every message sent during the outage stored', timeoutMs: 60_000, intervalMs: 500 });
    await waitFor(
      () => inbound.every((m) => receiver.hits.some((h) => h.body['type'] === 'messages' && (h.body['data'] as { id?: string }).id === m.id)),
      { what: 'a webhook for every inbound message', timeoutMs: 30_000, intervalMs: 200 },
    );
    for (const s of sends) assert.equal(friend.received().filter((m) => textOf(m) === s.text).length, 1, `${s.key} sent once`);

    // The state the sessions ran with must be what the store restores: kill the shard without any flush.
    const victim = gw.router.supervisor.info(0)?.pid;
    assert.ok(victim);
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    await waitFor(
      async () => {
        const list = await gw.api.get<{ data: { id: string; status: string; connectedAt: string | null }[] }>('/api/v1/sessions?limit=100');
        return list.body.data.filter((s) => ids.includes(s.id) && s.status === 'connected' && Date.parse(s.connectedAt ?? '') > killedAt).length === ids.length;
      },
      { what: 'every session connected again after the SIGKILL', timeoutMs: 60_000, intervalMs: 250 },
    ).catch(async (err: unknown) => {
      const list = await gw.api.get<{ data: unknown[] }>('/api/v1/sessions?limit=100');
      throw new Error(`${(err as Error).message}: ${JSON.stringify(list.body.data)}`);
    });
    const after: { session: string; id: string }[] = [];
    for (const [k, id] of ids.entries()) after.push({ session: id, id: (await friend.sendText(phones[k]!.jid, `after the kill ${k}`)).id });
    await waitFor(async () => (await Promise.all(after.map(stored))).every(Boolean), { what: 'messages after the restore decrypted and stored', timeoutMs: 60_000, intervalMs: 500 });
    for (const m of [...inbound, ...after]) {
      const history = await gw.api.get<{ data: { id: string }[] }>(`/api/v1/sessions/${m.session}/messages?limit=100`);
      assert.equal(history.body.data.filter((x) => x.id === m.id).length, 1, `${m.id} stored once`);
    }
    const snap = sim.snapshot();
    assert.equal(snap.pairings, pairings, 'no session paired again (no QR)');
    assert.equal(snap.concurrentLoginViolations, 0, JSON.stringify(snap.violationsByDevice));
  });
});
