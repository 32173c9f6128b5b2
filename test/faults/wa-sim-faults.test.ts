// The WhatsApp simulator's own faults while traffic flows: stream errors 515 (restart required), 440 (replaced),
// 408 (connection lost) and 500 (server error) on live sockets, rate-limited sends, added latency, and a server
// restart that drops every socket at once. Every session comes back (from its stored state: no QR), nothing
// sent or received is lost or doubled, never two sockets for one device, and the reconnects after the restart
// are spread out: the reconnect attempts per second the simulator sees stay under the bound the login gate's
// configuration sets (SESSION_LOGIN_RATE_PER_SECOND per shard), however fast the refused attempts fail.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir, waitFor } from '../harness/index.ts';
import { mapLimit, sessionTestEnv, startGateway, startReceiver, startSim } from '../sessions/helpers.ts';
import type { KickMode } from '@wagw/wa-sim';

const SHARDS = 2;
const RATE = 2; // SESSION_LOGIN_RATE_PER_SECOND
const SESSIONS = 8;
const DOWN_MS = 4_000;

type Text = { message: { conversation?: string | null; extendedTextMessage?: { text?: string | null } | null } | undefined };
const textOf = (m: Text) => m.message?.conversation ?? m.message?.extendedTextMessage?.text;

describe('WhatsApp simulator faults during traffic', () => {
  test('515, 440, 408, 500, rate limits, latency and a server restart: all back, nothing lost or doubled, no reconnect storm', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    sim.receiptDelayMs = 0;
    const receiver = await startReceiver(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, {
        ...env,
        SHARD_COUNT: String(SHARDS),
        SESSION_LOGIN_CONCURRENCY: '4',
        SESSION_LOGIN_RATE_PER_SECOND: String(RATE),
        SESSION_RECONNECT_BASE_MS: '200',
        SESSION_RECONNECT_MAX_MS: '1000',
        // The restart refuses logins for DOWN_MS; the sessions must keep trying through it, not give up.
        SESSION_RECONNECT_MAX_ATTEMPTS: '100',
        WEBHOOK_SECRET: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
        WEBHOOK_POLL_INTERVAL_MS: '100',
      }),
      webhooks: true,
    });
    const ids = Array.from({ length: SESSIONS }, (_, i) => `f${i}`);
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    const friend = sim.createPhone({ name: 'friend' });
    await mapLimit(ids, 4, async (id, i) => {
      // 503 SHARD_UNAVAILABLE until the shard finished starting (on a loaded machine it can take a while).
      await waitFor(async () => (await gw.api.post('/api/v1/sessions', { id, webhookUrl: receiver.url })).status === 201, { what: `session ${id} created`, timeoutMs: 30_000, intervalMs: 250 });
      await sim.scanQr(phones[i]!, await gw.api.waitQr(id));
      await gw.api.waitStatus(id, 'connected');
    });
    const pairings = sim.snapshot().pairings;

    // Traffic: inbound from the friend and sends to it with Idempotency-Keys, retried per key until 201.
    const inbound: { session: string; id: string }[] = [];
    const sends: { session: string; key: string; text: string }[] = [];
    const statuses = new Map<number, number>();
    const send = async (s: { session: string; key: string; text: string }): Promise<number> => {
      const r = await fetch(`${gw.url}/api/v1/sessions/${s.session}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': s.key },
        body: JSON.stringify({ to: friend.jid, type: 'text', text: s.text }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = await r.text();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.ok(r.status !== 500, `send ${s.key}: 500 ${body}`);
      return r.status;
    };
    const unsent = new Set<{ session: string; key: string; text: string }>();
    let n = 0;
    const traffic = async (label: string): Promise<void> => {
      for (const [k, id] of ids.entries()) {
        inbound.push({ session: id, id: (await friend.sendText(phones[k]!.jid, `${label} in ${n}`)).id });
        const s = { session: id, key: `sim-${n}`, text: `${label} out ${n}` };
        n++;
        sends.push(s);
        void send(s).then((st) => (st === 201 ? undefined : unsent.add(s)), () => unsent.add(s));
      }
    };
    const connected = async (since: number): Promise<boolean> => {
      const list = await gw.api.get<{ data: { id: string; status: string; connectedAt: string | null }[] }>('/api/v1/sessions?limit=100');
      return list.body.data.filter((s) => ids.includes(s.id) && s.status === 'connected' && Date.parse(s.connectedAt ?? '') >= since).length === ids.length;
    };

    // 1. Stream errors on live sockets, a different one per session, while messages flow.
    const modes: KickMode[] = ['restart', 'replaced', 'timeout', 'server-error'];
    const kickedAt = Date.now();
    await traffic('before kicks');
    for (const [k, phone] of phones.entries()) {
      const device = sim.devices().find((d) => d.kind === 'companion' && d.number === phone.number && !d.removed);
      assert.ok(device, `${ids[k]}: a linked device`);
      assert.equal(sim.kickDevice(device.jid, modes[k % modes.length]), 1, `${ids[k]}: one socket kicked`);
    }
    await traffic('after kicks');
    await waitFor(() => connected(kickedAt), { what: 'every session connected again after 515/440/408/500', timeoutMs: 30_000, intervalMs: 250 });

    // 2. Rate-limited sends (WhatsApp's 429 ack: the API answers 429, the backend retries the key) and latency.
    const limit = sim.injectFault({ kind: 'rate-limit', count: 4 });
    const slow = sim.injectFault({ kind: 'latency', ms: 300 });
    await traffic('rate limited');
    await sleep(1_000);
    sim.clearFault(limit);
    await traffic('slow');
    sim.clearFault(slow);

    // 3. The server restarts: every socket dropped at once, new connections dropped for DOWN_MS.
    await sleep(500);
    const restartAt = Date.now();
    assert.equal(sim.restart(DOWN_MS), SESSIONS, 'every session socket dropped');
    await traffic('during restart');
    await waitFor(() => connected(restartAt), { what: 'every session connected again after the restart', timeoutMs: 45_000, intervalMs: 250 });
    const attempts = sim.connectionAttempts(restartAt);
    const perWindow = Math.max(...attempts.map((at) => attempts.filter((x) => x >= at && x < at + 1_000).length));
    // Each shard's login gate starts at most RATE per second, spaced by its own clock: over a span of S seconds
    // at most floor(S * RATE) + 1 per shard. The simulator sees each start a connect later; 1 s of slack covers
    // that latency varying. Without the spacing, 8 sessions whose refused attempts fail in milliseconds, with a
    // 200 ms-based backoff, come by the dozen per second (several times this bound over the restart).
    const spanS = (attempts.at(-1)! - attempts[0]!) / 1000;
    const bound = SHARDS * (Math.floor((spanS + 1) * RATE) + 1);
    t.diagnostic(`after the restart: ${attempts.length} connection attempts over ${spanS} s (bound ${bound}), at most ${perWindow} in any 1 s`);
    assert.ok(attempts.length > SESSIONS, 'the sessions kept trying while the server was down');
    assert.ok(attempts.length <= bound, `${attempts.length} reconnect attempts over ${spanS} s > ${bound} (${SHARDS} shards x ${RATE}/s)`);

    // Nothing lost, nothing doubled, nobody paired again, never two sockets.
    await waitFor(
      async () => {
        for (const s of [...unsent]) if ((await send(s)) === 201) unsent.delete(s);
        return unsent.size === 0 && sends.every((s) => friend.received().some((m) => textOf(m) === s.text));
      },
      { what: 'every send answered 201 (retried with its key) and delivered', timeoutMs: 60_000, intervalMs: 1_000 },
    );
    for (const s of sends) assert.equal(friend.received().filter((m) => textOf(m) === s.text).length, 1, `${s.key} delivered once`);
    t.diagnostic(`send answers: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok((statuses.get(429) ?? 0) > 0, 'the rate limit was seen by the API as 429');
    await waitFor(
      async () => {
        for (const m of inbound) if ((await gw.api.get(`/api/v1/sessions/${m.session}/messages/${m.id}`)).status !== 200) return false;
        return true;
      },
      { what: 'every inbound message stored', timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const id of ids) {
      const history = await gw.api.get<{ data: { id: string }[] }>(`/api/v1/sessions/${id}/messages?limit=100`);
      for (const m of inbound.filter((x) => x.session === id)) assert.equal(history.body.data.filter((x) => x.id === m.id).length, 1, `${m.id} stored once`);
    }
    await waitFor(
      () => inbound.every((m) => receiver.hits.some((h) => h.body['type'] === 'messages' && (h.body['data'] as { id?: string }).id === m.id)),
      { what: 'a webhook for every inbound message', timeoutMs: 30_000, intervalMs: 200 },
    );
    const snap = sim.snapshot();
    assert.equal(snap.pairings, pairings, 'no session paired again');
    assert.equal(snap.concurrentLoginViolations, 0, JSON.stringify(snap.violationsByDevice));
  });
});
