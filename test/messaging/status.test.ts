// Receipts from the phone move a sent message's stored status forward (sent -> delivered -> read -> played,
// never back) and fire `message-status` webhooks and SSE events.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { openSse, sessionTestEnv, startGateway, startReceiver, startSim } from '../sessions/helpers.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('messaging: status', () => {
  test('delivered and read receipts: stored status, message-status webhooks and SSE, never backwards', async (t) => {
    const dir = await tempDir(t);
    const { sim, env } = await startSim(t, dir.path);
    const receiver = await startReceiver(t);
    const gw = await startGateway(t, {
      env: sessionTestEnv(dir.path, { ...env, SHARD_COUNT: '1', WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_POLL_INTERVAL_MS: '100' }),
      webhooks: true,
    });
    const owner = sim.createPhone({ number: '6281234567831', name: 'Owner' });
    const dewi = sim.createPhone({ number: '6281234567832', name: 'Dewi' });
    assert.equal((await gw.api.post('/api/v1/sessions', { id: 'st', webhookUrl: receiver.url })).status, 201);
    await sim.scanQr(owner, await gw.api.waitQr('st'));
    await gw.api.waitStatus('st', 'connected');
    const sse = openSse(t, `${gw.url}/api/v1/sessions/st/events`);

    const sent = await gw.api.post<{ id: string }>('/api/v1/sessions/st/messages', { to: dewi.jid, type: 'text', text: 'status please' });
    assert.equal(sent.status, 201, sent.raw.toString());
    const id = sent.body.id;
    const statusOf = async (): Promise<string> => (await gw.api.get<{ status: string }>(`/api/v1/sessions/st/messages/${id}`)).body.status;
    await dewi.waitForMessage((m) => m.id === id, 10_000);
    await waitFor(async () => (await statusOf()) === 'delivered', { what: 'delivered', timeoutMs: 15_000, intervalMs: 100 });
    dewi.markRead(id);
    await waitFor(async () => (await statusOf()) === 'read', { what: 'read', timeoutMs: 15_000, intervalMs: 100 });

    const hookStatuses = (): string[] =>
      receiver.hits
        .filter((h) => (h.body['data'] as { messageId?: string } | undefined)?.messageId === id)
        .map((h) => String((h.body['data'] as { status: string }).status));
    await waitFor(() => hookStatuses().includes('delivered') && hookStatuses().includes('read'), { what: 'message-status webhooks', timeoutMs: 15_000, intervalMs: 100 });
    await waitFor(() => sse.events.filter((e) => e.type === 'message-status' && e.data['messageId'] === id).length >= 2, { what: 'message-status on SSE', timeoutMs: 10_000 });

    // A late delivery receipt does not move read back.
    const store = gw.stores.sql;
    await store.query(`SELECT 1`);
    dewi.markRead(id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await statusOf(), 'read');
    const events = await store.query<{ status: string }>(`SELECT status FROM message_status_events WHERE session_id = 'st' AND message_id = $1 ORDER BY id`, [id]);
    assert.deepEqual(events.rows.map((r) => r.status), ['delivered', 'read']);
    assert.deepEqual(hookStatuses().sort(), ['delivered', 'read']);
  });
});
