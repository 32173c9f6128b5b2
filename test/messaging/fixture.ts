// One gateway for a whole messaging suite: the simulator (receipts without delay), a gateway with one shard,
// the governor wide open, signed webhooks to a local receiver, one session paired by QR to the first phone and
// an SSE stream on it. Call inside `describe`: it registers the suite's before/after hooks and fills the
// returned object in `before`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import type { SimPhone, WaSimulator } from '@wagw/wa-sim';
import { tempDir, waitFor } from '../harness/index.ts';
import type { Cleanup } from '../harness/index.ts';
import { openSse, sessionTestEnv, startGateway, startReceiver, startSim } from '../sessions/helpers.ts';
import type { Gateway, SseEvent } from '../sessions/helpers.ts';

export type Hit = Awaited<ReturnType<typeof startReceiver>>['hits'][number];

/** The fields every stored message has in GET .../messages/:id (suites extend it with what they check). */
export interface StoredMessage {
  id: string;
  type: string;
  status: string;
  fromMe: boolean;
  chat: string;
  text?: string;
  caption?: string;
}

export interface MessagingSuite {
  gw: Gateway;
  sim: WaSimulator;
  /** The phones in the order given; the first one owns the session. */
  phones: SimPhone[];
  sse: { events: SseEvent[] };
  /** Webhook deliveries the receiver got (the session's webhookUrl). */
  hits: Hit[];
  /** The WEBHOOK_SECRET the deliveries are signed with. */
  secret: string;
  /** GET .../messages/:id once it answers 200 (waited for). */
  stored<T>(id: string): Promise<T>;
  /** SSE `message` events of a message id. */
  sseOf(id: string): SseEvent[];
  /** `messages` webhooks of a message id. */
  hooksOf(id: string): Hit[];
}

/**
 * The simulator, a local webhook receiver and a gateway (one shard) that signs webhooks with a fresh secret and
 * may deliver to the receiver's private address; `overrides` adds to the gateway's environment.
 */
export async function startWebhookGateway(
  t: Cleanup,
  overrides: Record<string, string> = {},
): Promise<{ sim: WaSimulator; gw: Gateway; receiver: Awaited<ReturnType<typeof startReceiver>>; secret: string }> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const dir = await tempDir(t);
  const { sim, env } = await startSim(t, dir.path);
  const receiver = await startReceiver(t);
  const gw = await startGateway(t, {
    env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', WEBHOOK_SECRET: secret, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_POLL_INTERVAL_MS: '100', ...overrides }),
    webhooks: true,
  });
  return { sim, gw, receiver, secret };
}

export function messagingSuite(session: string, phones: readonly { number: string; name: string }[]): MessagingSuite {
  const suite = {
    stored: <T>(id: string): Promise<T> =>
      waitFor(
        async () => {
          const r = await suite.gw.api.get<T>(`/api/v1/sessions/${session}/messages/${id}`);
          return r.status === 200 ? r.body : null;
        },
        { what: `message ${id} stored`, timeoutMs: 20_000, intervalMs: 100 },
      ),
    sseOf: (id: string) => suite.sse.events.filter((e) => e.type === 'message' && e.data['id'] === id),
    hooksOf: (id: string) => suite.hits.filter((h) => h.body['type'] === 'messages' && (h.body['data'] as { id?: string } | undefined)?.id === id),
  } as MessagingSuite;
  const cleanups: (() => Promise<void>)[] = [];
  const t0 = { after: (fn: () => Promise<void>) => cleanups.push(fn) };
  before(async () => {
    // MEDIA_URL_ALLOW_PRIVATE: the suites' media.url files are served by loopback servers of the test.
    const { sim, gw, receiver, secret } = await startWebhookGateway(t0, { SEND_RATE_PER_SEC: '50', SEND_BURST: '50', SEND_PER_RECIPIENT_INTERVAL_MS: '0', MEDIA_URL_ALLOW_PRIVATE: 'true' });
    sim.receiptDelayMs = 0;
    const created = phones.map((p) => sim.createPhone(p));
    const owner = created[0];
    assert.ok(owner, 'a suite needs at least the phone that owns the session');
    const res = await gw.api.post('/api/v1/sessions', { id: session, webhookUrl: receiver.url });
    assert.equal(res.status, 201, res.raw.toString());
    await sim.scanQr(owner, await gw.api.waitQr(session));
    await gw.api.waitStatus(session, 'connected');
    const sse = openSse(t0, `${gw.url}/api/v1/sessions/${session}/events`);
    await waitFor(() => sse.events.length > 0, { what: 'the SSE stream to open', timeoutMs: 5000 });
    Object.assign(suite, { gw, sim, secret, phones: created, sse, hits: receiver.hits });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });
  return suite;
}
