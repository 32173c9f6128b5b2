// GET /api/v1/sessions/:id/events through the real route and createApp: one credential cannot take every
// stream slot of a session or of the router (issue 10 item 14). Streams are capped per credential on a session,
// per credential, per session and in total; a refusal is 429 TOO_MANY_STREAMS naming the cap (it said
// SHUTTING_DOWN before), a closed stream frees its slot, and only a closed hub answers SHUTTING_DOWN.
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { HostRegistry } from '@wagw/shared';
import { Lifecycle, createApp } from '../src/app.ts';
import type { AuthHook } from '../src/api/define-route.ts';
import { sessionRoutes } from '../src/api/sessions-routes.ts';
import { EventHub } from '../src/api/sse.ts';
import { RouterMetrics } from '../src/metrics.ts';
import type { SessionManager } from '../src/sessions/manager.ts';
import { serve } from './security/helpers.ts';
import type { Served } from './security/helpers.ts';

const manager = {
  hostId: 'h1',
  ownership: async () => ({ kind: 'local', shard: 0 }),
  initialEvents: async (id: string) => [{ type: 'status', data: { id, status: 'connected' } }],
} as unknown as SessionManager;

// The caller's principal comes from a test header (the authenticator is tested elsewhere).
const auth: AuthHook = (routeAuth) =>
  routeAuth === 'public'
    ? undefined
    : async (ctx, next) => {
        ctx.state.principal = { kind: 'api-key', subject: ctx.get('x-who'), scopes: ['admin'] };
        await next();
      };

/**
 * A full garbage collection, then time for what it finalised: under a loaded test run the collector ran here and
 * closed streams this test still counted as open (see `stream`).
 */
const gc = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();
async function collectGarbage(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  await new Promise((r) => setTimeout(r, 50));
}

describe('event stream caps', () => {
  let served: Served;
  const hub = new EventHub({ maxClientsPerOwner: 10, maxClients: 13 });
  const open: AbortController[] = [];
  const responses: Response[] = [];

  before(async () => {
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createApp({
      logger: pino({ level: 'silent' }),
      shards: { list: () => [], pendingCount: () => 0, call: () => Promise.reject(new Error('no shards')) },
      lifecycle,
      metrics: new RouterMetrics({ defaultMetrics: false }),
      hostId: 'h1',
      dependencies: async () => ({}),
      routes: sessionRoutes({ manager, hub, hosts: {} as HostRegistry }),
      auth,
    });
    served = await serve(app);
  });
  after(async () => {
    for (const c of open) c.abort();
    hub.close();
    await served.close();
  });

  /** Opens a stream; resolves with its status, and the error code when refused. */
  const stream = async (session: string, who: string): Promise<{ status: number; code?: string; limit?: string; controller: AbortController }> => {
    const controller = new AbortController();
    const res = await fetch(`${served.base}/api/v1/sessions/${session}/events`, { headers: { 'x-who': who }, signal: controller.signal });
    if (res.status === 200) {
      open.push(controller);
      // Held until the end: fetch cancels the body of a Response the garbage collector takes, which closes the
      // stream, and the hub would count one fewer than this test (collectGarbage shows it).
      responses.push(res);
      return { status: 200, controller };
    }
    const body = (await res.json()) as { error: { code: string; details?: { limit?: string } } };
    return { status: res.status, code: body.error.code, ...(body.error.details?.limit === undefined ? {} : { limit: body.error.details.limit }), controller };
  };

  const refusal = async (session: string, who: string) => {
    const r = await stream(session, who);
    return { status: r.status, code: r.code, limit: r.limit };
  };

  it('caps streams per credential on a session, per credential and in total with 429 TOO_MANY_STREAMS; a closed stream frees its slot', async () => {
    // mallory takes 8 streams of s1: the ninth is refused, while alice still gets one of s1.
    const mallory: AbortController[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await stream('s1', 'mallory');
      assert.equal(r.status, 200, `stream ${i + 1}`);
      mallory.push(r.controller);
    }
    assert.deepEqual(await refusal('s1', 'mallory'), { status: 429, code: 'TOO_MANY_STREAMS', limit: 'principal-session' });
    assert.equal((await stream('s1', 'alice')).status, 200);
    // Two more on another session reach mallory's 10 in all: the next is refused on any session.
    assert.equal((await stream('s2', 'mallory')).status, 200);
    assert.equal((await stream('s2', 'mallory')).status, 200);
    await collectGarbage();
    assert.deepEqual(await refusal('s3', 'mallory'), { status: 429, code: 'TOO_MANY_STREAMS', limit: 'principal' });
    // 11 open; bob takes the last two slots of the router, then everyone is refused.
    assert.equal((await stream('s3', 'bob')).status, 200);
    assert.equal((await stream('s3', 'bob')).status, 200);
    assert.equal(hub.clientCount, 13);
    assert.deepEqual(await refusal('s4', 'carol'), { status: 429, code: 'TOO_MANY_STREAMS', limit: 'total' });
    // mallory closes one of s1: that slot is free again, for her and then for others.
    mallory[0]?.abort();
    while (hub.clientCount > 12) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await stream('s1', 'mallory')).status, 200);
    assert.deepEqual(await refusal('s4', 'carol'), { status: 429, code: 'TOO_MANY_STREAMS', limit: 'total' });
  });

  it('a closed hub (router shutting down) answers 503 SHUTTING_DOWN', async () => {
    hub.close();
    assert.deepEqual(await refusal('s5', 'dave'), { status: 503, code: 'SHUTTING_DOWN', limit: undefined });
  });
});
