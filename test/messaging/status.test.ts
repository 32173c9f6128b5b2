// A send is `sent` when WhatsApp acked it (the event is in the outbox when the API answers 201); receipts from
// the phone move its stored status forward (sent -> delivered -> read -> played, never back). Each step fires one
// `message-status` webhook (deterministic id `mst_{session}_{message}_{status}`, in order) and SSE event. Every delivery carries, as `x-request-id`, the id
// of the API request that caused it (the create behind qr/connected, the send behind its receipts); an inbound
// message, which no request caused, carries none.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { waitFor } from '../harness/index.ts';
import { openSse } from '../sessions/helpers.ts';
import { startWebhookGateway } from './fixture.ts';

describe('messaging: status', () => {
  test('sent, delivered, read and played: stored status, message-status webhooks in order and SSE, never backwards, with correlation ids', async (t) => {
    const { sim, gw, receiver } = await startWebhookGateway(t);
    const owner = sim.createPhone({ number: '6281234567831', name: 'Owner' });
    const dewi = sim.createPhone({ number: '6281234567832', name: 'Dewi' });
    const created = await gw.api.call('POST', '/api/v1/sessions', { id: 'st', webhookUrl: receiver.url }, { 'x-request-id': 'req-create-st' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('x-request-id'), 'req-create-st');
    await sim.scanQr(owner, await gw.api.waitQr('st'));
    await gw.api.waitStatus('st', 'connected');
    const sse = openSse(t, `${gw.url}/api/v1/sessions/st/events`);

    const sent = await gw.api.call<{ id: string }>('POST', '/api/v1/sessions/st/messages', { to: dewi.jid, type: 'text', text: 'status please' }, { 'x-request-id': 'req-send-st' });
    assert.equal(sent.status, 201, sent.raw.toString());
    const id = sent.body.id;
    // `sent` is written with the row, before the 201: already in the outbox now.
    const queued = await gw.stores.sql.query<{ event_id: string }>(`SELECT event_id FROM webhook_outbox WHERE event_id LIKE $1`, [`mst_st_${id}_%`]);
    assert.deepEqual(queued.rows.map((r) => r.event_id), [`mst_st_${id}_sent`]);
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
    // The whole sequence, in order (one ordered stream per message), each under its deterministic id.
    assert.deepEqual(hookStatuses(), ['sent', 'delivered', 'read']);
    const statusHookIds = receiver.hits.filter((h) => (h.body['data'] as { messageId?: string } | undefined)?.messageId === id).map((h) => h.body['id']);
    assert.deepEqual(statusHookIds, ['sent', 'delivered', 'read'].map((s) => `mst_st_${id}_${s}`));
    await waitFor(() => sse.events.filter((e) => e.type === 'message-status' && e.data['messageId'] === id).length >= 3, { what: 'message-status on SSE', timeoutMs: 10_000 });
    assert.deepEqual(sse.events.filter((e) => e.type === 'message-status' && e.data['messageId'] === id).map((e) => e.data['status']), ['sent', 'delivered', 'read']);

    // A late delivery receipt does not move read back.
    const store = gw.stores.sql;
    await store.query(`SELECT 1`);
    dewi.markRead(id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await statusOf(), 'read');
    const events = await store.query<{ status: string }>(`SELECT status FROM message_status_events WHERE session_id = 'st' AND message_id = $1 ORDER BY id`, [id]);
    assert.deepEqual(events.rows.map((r) => r.status), ['sent', 'delivered', 'read']);
    assert.deepEqual(hookStatuses(), ['sent', 'delivered', 'read']);

    // A voice note goes one step further: played.
    const voice = await gw.api.post<{ id: string }>('/api/v1/sessions/st/messages', { to: dewi.jid, type: 'audio', media: { base64: randomBytes(2000).toString('base64') } });
    assert.equal(voice.status, 201, voice.raw.toString());
    const vid = voice.body.id;
    const note = await dewi.waitForMessage((m) => m.id === vid, 10_000);
    assert.equal(note.message?.audioMessage?.ptt, true);
    dewi.markRead(vid);
    dewi.markPlayed(vid);
    await waitFor(async () => (await gw.api.get<{ status: string }>(`/api/v1/sessions/st/messages/${vid}`)).body.status === 'played', { what: 'played', timeoutMs: 15_000, intervalMs: 100 });
    await waitFor(() => receiver.hits.some((h) => (h.body['data'] as { messageId?: string; status?: string } | undefined)?.messageId === vid && (h.body['data'] as { status?: string }).status === 'played'), {
      what: 'the played webhook',
      timeoutMs: 15_000,
      intervalMs: 100,
    });

    // Correlation ids: the send's request id on its receipts, the create's on the statuses it caused.
    const hooksOf = (pred: (b: Record<string, unknown>) => boolean) => receiver.hits.filter((h) => pred(h.body));
    const receipts = hooksOf((b) => b['type'] === 'message-status' && (b['data'] as { messageId?: string }).messageId === id);
    assert.equal(receipts.length, 3);
    for (const h of receipts) assert.equal(h.headers['x-request-id'], 'req-send-st');
    const statusHooks = (status: string) => hooksOf((b) => b['type'] === 'session-status' && (b['data'] as { status?: string }).status === status);
    assert.ok(statusHooks('qr').length >= 1);
    for (const status of ['qr', 'connected']) for (const h of statusHooks(status)) assert.equal(h.headers['x-request-id'], 'req-create-st', status);
    const inbound = await dewi.sendText(owner.jid, 'no request caused this');
    const rx = await waitFor(() => hooksOf((b) => b['type'] === 'messages' && (b['data'] as { id?: string }).id === inbound.id)[0], { what: 'the inbound messages webhook', timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(rx.headers['x-request-id'], undefined);
    const logout = await gw.api.call('POST', '/api/v1/sessions/st/logout', undefined, { 'x-request-id': 'req-logout-st' });
    assert.equal(logout.status, 200, logout.raw.toString());
    const out = await waitFor(() => statusHooks('logged_out')[0], { what: 'the logged_out webhook', timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(out.headers['x-request-id'], 'req-logout-st');
  });
});
