// An own message (fromMe) is from the session's own account: `from` and `fromPhone` are the owner's, never the
// chat it went to, in history (GET .../messages/:id and the list), on the `messages` webhook and on SSE; an own
// reaction is listed on its target as from the owner too. Rows stored before the fix: migration 007
// (packages/stores/test/migration-007.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../harness/index.ts';
import { messagingSuite } from './fixture.ts';
import type { StoredMessage } from './fixture.ts';

const suite = messagingSuite('own', [
  { number: '6281234567851', name: 'Owner' },
  { number: '6281234567852', name: 'Dewi' },
]);

interface WithSender extends StoredMessage {
  from: string;
  fromPhone?: string;
  reactions?: { from: string; fromMe: boolean; emoji: string }[];
}

describe('messaging: own messages are from the session', () => {
  test('a sent message and an own reaction carry the owner as from', async () => {
    const [owner, dewi] = suite.phones;
    assert.ok(owner && dewi);
    const sent = await suite.gw.api.post<{ id: string }>('/api/v1/sessions/own/messages', { to: dewi.jid, type: 'text', text: 'from me' });
    assert.equal(sent.status, 201, sent.raw.toString());
    const id = sent.body.id;
    const row = await suite.stored<WithSender>(id);
    assert.equal(row.fromMe, true);
    assert.equal(row.chat, dewi.jid);
    assert.equal(row.from, owner.jid);
    assert.equal(row.fromPhone, `+${owner.number}`);
    const page = await suite.gw.api.get<{ data: WithSender[] }>(`/api/v1/sessions/own/messages?chat=${encodeURIComponent(dewi.jid)}`);
    assert.equal(page.body.data.find((m) => m.id === id)?.from, owner.jid, 'in the history list too');
    // The webhook and SSE copies (whichever of the send and its echo stored the row) say the same.
    await waitFor(() => suite.sseOf(id).length > 0 || suite.hooksOf(id).length > 0, { what: 'the own message on SSE or webhook', timeoutMs: 10_000 }).catch(() => undefined);
    for (const e of suite.sseOf(id)) assert.equal(e.data['from'], owner.jid);
    for (const h of suite.hooksOf(id)) assert.equal((h.body['data'] as { from?: string }).from, owner.jid);

    const inbound = await dewi.sendText(owner.jid, 'react to this');
    await suite.stored<WithSender>(inbound.id);
    const reacted = await suite.gw.api.post<{ id: string }>('/api/v1/sessions/own/messages', { to: dewi.jid, type: 'reaction', messageId: inbound.id, emoji: '👍' });
    assert.equal(reacted.status, 201, reacted.raw.toString());
    const target = await waitFor(
      async () => {
        const m = (await suite.gw.api.get<WithSender>(`/api/v1/sessions/own/messages/${inbound.id}`)).body;
        return (m.reactions?.length ?? 0) > 0 ? m : null;
      },
      { what: 'the reaction on its target', timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.deepEqual(target.reactions?.map((r) => [r.from, r.fromMe, r.emoji]), [[owner.jid, true, '👍']]);
    assert.equal(target.from, dewi.jid, 'an inbound message stays from its sender');
  });
});
