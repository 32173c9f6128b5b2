// The reference deployment's one entrypoint: HAProxy (deploy/haproxy/haproxy.cfg) in front of three real router
// processes on 127.0.0.2, 127.0.0.3 and 127.0.0.4, each with its own HOST_ID, PUBLIC_URL, shards and data dir,
// on Redis + PostgreSQL + S3 and the simulator. Sessions are created, paired and messaged through the LB; every
// router answers for every session (forwarding); a router that owns sessions is drained (API) and then SIGTERMed
// while a client keeps calling through the LB: it leaves the rotation through its failing /ready check, its
// sessions move to the others, and the client's calls all succeed within bounded retries.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { startPrivateRedis, tempDir, waitFor } from '../harness/index.ts';
import { Api, pairByQr, productionStores, sessionTestEnv, startRouterProcess, startSim } from '../sessions/helpers.ts';
import type { RouterProcess, SessionBody } from '../sessions/helpers.ts';
import type { ReceivedMessage } from '@wagw/wa-sim';
import { startHaproxy } from './haproxy.ts';

const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;

/** A free port on one loopback address (the routers each bind their own). */
async function freePortOn(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function textOf(m: ReceivedMessage): string | undefined {
  return m.message?.conversation ?? m.message?.extendedTextMessage?.text ?? undefined;
}

interface Tally {
  ok: number;
  /** 5xx answers and connection errors the client saw (each then retried). */
  fiveXx: number;
  /** 409 SESSION_NOT_CONNECTED / IDEMPOTENCY_IN_PROGRESS answers (a session between sockets while it moves; retried). */
  notConnected: number;
  /** Calls that still failed after the bounded retries. */
  failed: string[];
}

const RETRIED_409 = new Set(['SESSION_NOT_CONNECTED', 'IDEMPOTENCY_IN_PROGRESS']);

/**
 * One call with bounded client retries, as an operator's client would do: on 5xx / connection errors, and on
 * 409 SESSION_NOT_CONNECTED while a session moves (about one login; docs/deployment.md). At most 40 attempts
 * 250 ms apart (10 s); any other 4xx is an answer (and a failure when the test expects 2xx).
 */
async function callWithRetry(api: Api, tally: Tally, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<number> {
  let last = '';
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      const r = await api.call<{ error?: { code?: string } }>(method, path, body, headers);
      last = `${r.status} ${r.raw.toString('utf8').slice(0, 200)}`;
      if (r.status === 409 && RETRIED_409.has(r.body.error?.code ?? '')) tally.notConnected++;
      else if (r.status < 300) {
        tally.ok++;
        return r.status;
      } else if (r.status < 500) break;
      else tally.fiveXx++;
    } catch (err) {
      last = (err as Error).message;
      tally.fiveXx++;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  tally.failed.push(`${method} ${path}: ${last}`);
  return 0;
}

describe('reference deployment: HAProxy in front of three routers', () => {
  test('pair and send through the LB, any router answers any call, a drained then SIGTERMed router leaves the rotation without failed calls', async (t) => {
    const dir = await tempDir(t);
    const [{ sim, env: simEnv }, prod, redis] = await Promise.all([startSim(t, dir.path), productionStores(t), startPrivateRedis(t)]);
    // Router processes use the default Redis key prefix: they share a private redis-server (as one cluster).
    const stores = { ...prod.env, REDIS_URL: redis.url };

    const routers: RouterProcess[] = [];
    const hostIds = ADDRESSES.map((_, i) => `lb-host-${i + 1}`);
    const binds: string[] = [];
    for (const [i, address] of ADDRESSES.entries()) {
      const port = await freePortOn(address);
      const hostDir = await tempDir(t);
      binds.push(`${address}:${port}`);
      routers.push(
        await startRouterProcess(
          t,
          sessionTestEnv(hostDir.path, { ...simEnv, ...stores, HOST: address, PORT: String(port), HOST_ID: hostIds[i]!, PUBLIC_URL: `http://${address}:${port}` }),
        ),
      );
    }
    const lb = await startHaproxy(t, binds as unknown as [string, string, string]);
    await waitFor(async () => (await lb.stats()).every((s) => s.status === 'UP'), { what: 'haproxy to see three routers UP on /ready', timeoutMs: 15_000 });
    const api = new Api(lb.url);

    // Two sessions created and paired through the LB: round robin spreads the calls over the routers.
    const ids = ['lb-a', 'lb-b'];
    const phones = ids.map((id) => sim.createPhone({ name: id }));
    const friend = sim.createPhone({ name: 'friend' });
    const paired: SessionBody[] = [];
    for (const [i, id] of ids.entries()) paired.push(await pairByQr(api, sim, phones[i]!, id));
    for (const s of paired) assert.ok(s.host !== null && hostIds.includes(s.host), `placed on one of the routers: ${s.host}`);

    // Forwarding: each router answers for each session, whichever owns it.
    for (const r of routers) {
      const direct = new Api(r.url);
      for (const [i, id] of ids.entries()) {
        const s = await direct.session(id);
        assert.equal(s.status, 'connected', `${id} through ${r.url}`);
        assert.equal(s.host, paired[i]!.host);
        assert.equal(s.me?.jid, phones[i]!.jid);
      }
    }

    // Messages through the LB reach the phone, whichever router took the call.
    for (const id of ids) {
      const sent = await api.post<{ id: string }>(`/api/v1/sessions/${id}/messages`, { to: friend.jid, type: 'text', text: `hello from ${id}` });
      assert.ok(sent.status >= 200 && sent.status < 300, `send via LB: ${sent.status} ${sent.raw.toString()}`);
    }
    await waitFor(() => ids.every((id) => friend.received().some((m) => textOf(m) === `hello from ${id}`)), { what: 'the friend to receive both messages', timeoutMs: 20_000 });

    // Drain (API, through the LB) and then SIGTERM a router that owns a session, while a client keeps calling
    // through the LB: its sessions move to the others (about one login each) and no call fails.
    const victim = hostIds.indexOf(paired[0]!.host!);
    const victimHost = hostIds[victim]!;
    const moving = ids.filter((_, i) => paired[i]!.host === victimHost);
    const tally: Tally = { ok: 0, fiveXx: 0, notConnected: 0, failed: [] };
    let sendCount = 0;
    let running = true;
    // A failed assertion below must not leave this loop calling a stopped LB forever (the file never ended).
    t.after(() => {
      running = false;
    });
    const load = (async () => {
      while (running) {
        const id = ids[sendCount % ids.length]!;
        const n = sendCount++;
        await Promise.all([
          callWithRetry(api, tally, 'GET', `/api/v1/sessions/${id}`),
          callWithRetry(api, tally, 'GET', `/api/v1/sessions`),
          // The Idempotency-Key makes a client retry of a send that did run return the first result, not a second message.
          callWithRetry(api, tally, 'POST', `/api/v1/sessions/${id}/messages`, { to: friend.jid, type: 'text', text: `load ${n}` }, { 'idempotency-key': `lb-load-${n}` }),
        ]);
      }
    })();
    await waitFor(() => tally.ok >= 30, { what: 'calls through the LB before the stop', timeoutMs: 20_000 });
    const okBefore = tally.ok;
    // L7OK: the checks are HTTP GET /ready answered 200 (a plain TCP check would read L4OK).
    assert.deepEqual((await lb.stats()).map((s) => s.check), ['L7OK', 'L7OK', 'L7OK']);
    // Round robin: every router took calls from the LB (the health checks are not counted here).
    for (const s of await lb.stats()) assert.ok(s.requests > 0, `${s.name} served calls through the LB`);
    const t0 = Date.now();
    const drained = await api.post<{ hostId: string; moved: number; remaining: number }>(`/api/v1/admin/hosts/${victimHost}/drain`);
    assert.equal(drained.status, 200, drained.raw.toString());
    assert.deepEqual(drained.body, { hostId: victimHost, moved: moving.length, remaining: 0 });
    const survivor = new Api(routers[(victim + 1) % routers.length]!.url);
    await waitFor(
      async () => {
        for (const id of moving) {
          const s = await survivor.session(id);
          if (s.status !== 'connected' || s.host === victimHost) return false;
        }
        return true;
      },
      { what: `the sessions of ${victimHost} connected on the other routers`, timeoutMs: 30_000, intervalMs: 100 },
    );
    const moveMs = Date.now() - t0;
    assert.equal(await routers[victim]!.stop('SIGTERM'), 0, routers[victim]!.stderr());
    const victimName = `gateway-${victim + 1}`;
    const down = await waitFor(
      async () => {
        const s = (await lb.stats()).find((x) => x.name === victimName);
        return s !== undefined && s.status.startsWith('DOWN') ? s : null;
      },
      { what: `haproxy to mark ${victimName} DOWN`, timeoutMs: 15_000, intervalMs: 100 },
    );
    // Keep calling after it is down: the two others carry every call.
    await waitFor(() => tally.ok >= okBefore + 60, { what: 'calls through the LB after the stop', timeoutMs: 30_000 });
    running = false;
    await load;

    const states = await lb.stats();
    t.diagnostic(
      `${tally.ok} calls ok, ${tally.fiveXx} 5xx/connection errors and ${tally.notConnected} 409 SESSION_NOT_CONNECTED retried by the client, ${tally.failed.length} failed; ` +
        `${moving.length} session(s) of ${victimHost} moved in ${moveMs} ms (drain call to connected elsewhere); ${victimName} ${down.status} (${down.check})`,
    );
    assert.deepEqual(tally.failed, [], 'every call through the LB succeeded within the bounded retries');
    assert.deepEqual(
      states.map((s) => [s.name, s.status.split(' ')[0]]),
      [1, 2, 3].map((n) => [`gateway-${n}`, n === victim + 1 ? 'DOWN' : 'UP']),
    );
    // Every load send reached the phone exactly once (retries with the same key did not send twice).
    const loadTexts = (): string[] => friend.received().map(textOf).filter((x): x is string => x?.startsWith('load ') === true);
    await waitFor(() => new Set(loadTexts()).size >= sendCount, { what: `all ${sendCount} load messages received`, timeoutMs: 20_000 });
    const all = loadTexts();
    assert.equal(new Set(all).size, all.length, 'no load message twice');
    assert.equal(all.length, sendCount);

    for (const [i, r] of routers.entries()) if (i !== victim) assert.equal(await r.stop('SIGTERM'), 0, r.stderr());
    assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  });
});
