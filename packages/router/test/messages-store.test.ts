// The router's message SQL on embedded PostgreSQL (PGlite) with the real migrations: idempotency records
// (proceed, in progress, replay, reuse, takeover of an expired lock), insert-once, history pages, reactions
// listed on their target, edits and revokes applied to their target (same chat, same author only), decoded poll votes tallied on their poll.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRootLogger } from '@wagw/shared';
import type { WireMessage } from '@wagw/shared';
import { PgliteDatabase, migrate } from '@wagw/stores';
import { seedEmbeddedDb } from '../../../test/harness/index.ts';
import { MessageStore, decodeBefore, encodeCursor } from '../src/messages/store.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });

describe('MessageStore', () => {
  let dir: string;
  let db: PgliteDatabase;
  let store: MessageStore;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-msgstore-'));
    await seedEmbeddedDb(dir);
    db = await PgliteDatabase.open({ dataDir: path.join(dir, 'pglite'), port: 0, logger });
    await migrate(db, { logger });
    store = new MessageStore(db);
  });

  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('idempotency: proceed, in progress, replay, reused with another body, takeover after the lock expired', async () => {
    assert.deepEqual(await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000), { action: 'proceed', takeover: false });
    const busy = await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000);
    assert.equal(busy.action, 'reject');
    assert.equal(busy.action === 'reject' ? busy.error.code : '', 'IDEMPOTENCY_IN_PROGRESS');
    await store.completeIdempotent('s1', 'k1', 201, { id: '3EB0AA', status: 'sent' });
    assert.deepEqual(await store.beginIdempotent('s1', 'k1', 'fp-a', '3EB0AA', 60_000), { action: 'replay', status: 201, body: { id: '3EB0AA', status: 'sent' } });
    const reused = await store.beginIdempotent('s1', 'k1', 'fp-b', '3EB0AA', 60_000);
    assert.equal(reused.action === 'reject' ? reused.error.code : '', 'IDEMPOTENCY_KEY_REUSED');
    // Another session has its own key space.
    assert.equal((await store.beginIdempotent('s2', 'k1', 'fp-b', '3EB0BB', 60_000)).action, 'proceed');
    // A lock that expired (its shard died) is taken over once; a released key starts afresh.
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 1), { action: 'proceed', takeover: false });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000), { action: 'proceed', takeover: true });
    assert.equal((await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000)).action, 'reject');
    await store.releaseIdempotent('s1', 'k2');
    assert.deepEqual(await store.beginIdempotent('s1', 'k2', 'fp-c', '3EB0CC', 60_000), { action: 'proceed', takeover: false });
  });

  test('insert once; history newest first in pages chained by the cursor', async () => {
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 7; i++) {
      const m = { id: `M${i}`, chat: i % 2 === 0 ? 'a@s.whatsapp.net' : 'b@s.whatsapp.net', from: 'x@s.whatsapp.net', fromMe: false, type: 'text' as const, text: `t${i}`, timestamp: new Date(base + Math.floor(i / 2) * 1000).toISOString() };
      assert.equal(await store.insert('h', m, 'received', 'AAAA'), true);
      assert.equal(await store.insert('h', m, 'received', 'AAAA'), false);
    }
    const ids: string[] = [];
    let before: { at: string; id: string } | undefined;
    for (;;) {
      const page = await store.list('h', { limit: 3, ...(before === undefined ? {} : { before }) });
      ids.push(...page.rows.map((r) => r.id));
      if (page.next === null) break;
      before = decodeBefore(page.next);
    }
    assert.deepEqual(ids, ['M6', 'M5', 'M4', 'M3', 'M2', 'M1', 'M0']);
    const chatA = await store.list('h', { limit: 10, chat: 'a@s.whatsapp.net' });
    assert.deepEqual(chatA.rows.map((r) => r.id), ['M6', 'M4', 'M2', 'M0']);
    const older = await store.list('h', { limit: 10, before: decodeBefore('2026-01-01T00:00:01Z') as { at: string; id: string } });
    assert.deepEqual(older.rows.map((r) => r.id), ['M1', 'M0']);
    assert.equal(decodeBefore('yesterday'), undefined);
    assert.deepEqual(decodeBefore(encodeCursor('2026-01-01T00:00:00.000Z', 'M0')), { at: '2026-01-01T00:00:00.000Z', id: 'M0' });
    assert.equal((await store.ref('h', 'M0'))?.raw, 'AAAA');
    assert.equal(await store.ref('h', 'nope'), undefined);
  });

  test("the request id of a send: recorded by whichever insert comes first, added once to an echo stored without it, never replaced", async () => {
    const m = { id: 'R1', chat: 'a@s.whatsapp.net', from: '', fromMe: true, type: 'text' as const, text: 'x', timestamp: new Date().toISOString() };
    const reqOf = async (id: string) => (await db.query<{ request_id: string | null }>(`SELECT request_id FROM messages WHERE session_id = 'r' AND id = $1`, [id])).rows[0]?.request_id;
    assert.equal(await store.insert('r', m, 'sent', undefined), true); // an echo without the request id
    assert.equal(await reqOf('R1'), null);
    assert.equal(await store.insert('r', m, 'sent', undefined, undefined, 'req-a'), false);
    assert.equal(await reqOf('R1'), 'req-a');
    assert.equal(await store.insert('r', m, 'sent', undefined, undefined, 'req-b'), false);
    assert.equal(await reqOf('R1'), 'req-a');
    const m2 = { ...m, id: 'R2' };
    assert.equal(await store.insert('r', m2, 'sent', undefined, undefined, 'req-c'), true);
    assert.equal(await store.insert('r', m2, 'sent', undefined), false);
    assert.equal(await reqOf('R2'), 'req-c');
  });

  test('insertMany: one statement for many sessions, a message listed twice inserted once, the session webhook URL per inserted row, sent history rows for own messages', async () => {
    await db.query(`INSERT INTO sessions (id, webhook_url) VALUES ('im1', 'http://127.0.0.1:9/hook'), ('im2', NULL)`);
    const at = new Date().toISOString();
    const m = (id: string, fromMe: boolean) => ({ id, chat: 'a@s.whatsapp.net', from: fromMe ? '' : 'a@s.whatsapp.net', fromMe, type: 'text' as const, text: id, timestamp: at });
    await store.insert('im1', m('IM-OLD', false), 'received', undefined);
    const out = await store.insertMany([
      { sessionId: 'im1', message: m('IM-A', false), status: 'received' },
      { sessionId: 'im2', message: m('IM-A', true), status: 'sent', requestId: 'req-1', sentEvent: true },
      { sessionId: 'im1', message: m('IM-A', false), status: 'received' },
      { sessionId: 'im1', message: m('IM-OLD', false), status: 'received' },
      { sessionId: 'im-none', message: m('IM-B', false), status: 'received' },
    ]);
    assert.deepEqual(out, [
      { inserted: true, webhookUrl: 'http://127.0.0.1:9/hook' },
      { inserted: true, webhookUrl: null },
      { inserted: false, webhookUrl: null },
      { inserted: false, webhookUrl: null },
      { inserted: true, webhookUrl: null },
    ]);
    const rows = await db.query<{ session_id: string; id: string; request_id: string | null }>(`SELECT session_id, id, request_id FROM messages WHERE id IN ('IM-A', 'IM-B') ORDER BY session_id, id`);
    assert.deepEqual(rows.rows, [
      { session_id: 'im-none', id: 'IM-B', request_id: null },
      { session_id: 'im1', id: 'IM-A', request_id: null },
      { session_id: 'im2', id: 'IM-A', request_id: 'req-1' },
    ]);
    const events = await db.query<{ session_id: string; status: string }>(`SELECT session_id, status FROM message_status_events WHERE message_id = 'IM-A'`);
    assert.deepEqual(events.rows, [{ session_id: 'im2', status: 'sent' }], 'only the own message got its sent history row');
  });

  test('applyStatuses: forward only, two updates of one message in one call both applied in order, an unknown id reported as not found', async () => {
    await db.query(`INSERT INTO sessions (id, webhook_url) VALUES ('as1', 'http://127.0.0.1:9/as')`);
    const at = (s: number) => new Date(Date.parse('2026-03-01T00:00:00Z') + s * 1000).toISOString();
    const m = (id: string) => ({ id, chat: 'c@s.whatsapp.net', from: '', fromMe: true, type: 'text' as const, text: id, timestamp: at(0) });
    await store.insertMany([
      { sessionId: 'as1', message: m('S1'), status: 'sent', requestId: 'req-s1' },
      { sessionId: 'as1', message: m('S2'), status: 'sent' },
      { sessionId: 'as1', message: { ...m('S3'), fromMe: false, from: 'c@s.whatsapp.net' }, status: 'received' },
    ]);
    const u = (id: string, status: 'delivered' | 'read' | 'sent' | 'failed', s: number) => ({ sessionId: 'as1', update: { id, chat: 'c@s.whatsapp.net', status, at: at(s) } });
    const out = await store.applyStatuses([u('S1', 'delivered', 1), u('S1', 'read', 2), u('S2', 'read', 1), u('S2', 'delivered', 2), u('NOPE', 'read', 1), u('S3', 'read', 1), u('S1', 'failed', 3)]);
    assert.deepEqual(out, [
      { found: true, changed: { chat: 'c@s.whatsapp.net', requestId: 'req-s1', webhookUrl: 'http://127.0.0.1:9/as' } },
      { found: true, changed: { chat: 'c@s.whatsapp.net', requestId: 'req-s1', webhookUrl: 'http://127.0.0.1:9/as' } },
      { found: true, changed: { chat: 'c@s.whatsapp.net', requestId: null, webhookUrl: 'http://127.0.0.1:9/as' } },
      { found: true },
      { found: false },
      { found: true },
      { found: true },
    ]);
    const status = await db.query<{ id: string; status: string }>(`SELECT id, status FROM messages WHERE session_id = 'as1' ORDER BY id`);
    assert.deepEqual(status.rows, [{ id: 'S1', status: 'read' }, { id: 'S2', status: 'read' }, { id: 'S3', status: 'received' }], 'never backwards; failed only from pending or sent');
    const history = await db.query<{ message_id: string; status: string }>(`SELECT message_id, status FROM message_status_events WHERE session_id = 'as1' ORDER BY message_id, id`);
    assert.deepEqual(history.rows, [
      { message_id: 'S1', status: 'delivered' },
      { message_id: 'S1', status: 'read' },
      { message_id: 'S2', status: 'read' },
    ]);
  });

  test('reactions on their target: one per reactor, newest wins, empty removes, other chats and unknown targets ignored', async () => {
    await db.query(`INSERT INTO sessions (id, me) VALUES ('rs', $1::jsonb)`, [JSON.stringify({ jid: '6281111111111:4@s.whatsapp.net', phone: '+6281111111111' })]);
    const dewi = '6282222222222@s.whatsapp.net';
    const eko = '6283333333333@s.whatsapp.net';
    const at = (s: number) => new Date(Date.parse('2026-02-01T00:00:00Z') + s * 1000).toISOString();
    const msg = (id: string, chat: string, fromMe: boolean, extra: Partial<WireMessage>, t: number): WireMessage => ({ id, chat, from: chat, fromMe, timestamp: at(t), type: 'text', ...extra });
    const react = (id: string, chat: string, fromMe: boolean, target: string, emoji: string, t: number) =>
      msg(id, chat, fromMe, { type: 'reaction', reaction: { messageId: target, emoji, removed: emoji === '' } }, t);
    const reactionsOf = async (id: string) => {
      const row = await store.get('rs', id);
      const content = (typeof row?.content === 'string' ? JSON.parse(row.content) : row?.content) as { reactions?: { from: string; fromMe: boolean; emoji: string }[] };
      return content.reactions?.map((r) => [r.from, r.fromMe, r.emoji]);
    };
    await store.insert('rs', msg('T1', dewi, true, { text: 'hi' }, 0), 'sent', undefined);
    await store.insert('rs', msg('T2', eko, true, { text: 'other chat' }, 0), 'sent', undefined);

    assert.equal(await store.applyReaction('rs', react('R1', dewi, false, 'T1', '👍', 10)), true);
    assert.equal(await store.applyReaction('rs', react('R2', dewi, true, 'T1', '🎉', 11)), true);
    assert.deepEqual(await reactionsOf('T1'), [
      [dewi, false, '👍'],
      ['6281111111111@s.whatsapp.net', true, '🎉'],
    ]);
    // Dewi changes her reaction; an older one arriving late changes nothing.
    assert.equal(await store.applyReaction('rs', react('R3', dewi, false, 'T1', '❤️', 20)), true);
    assert.equal(await store.applyReaction('rs', react('R0', dewi, false, 'T1', '😢', 5)), false);
    assert.deepEqual(await reactionsOf('T1'), [
      ['6281111111111@s.whatsapp.net', true, '🎉'],
      [dewi, false, '❤️'],
    ]);
    // A reaction from Dewi's chat cannot touch a message of Eko's chat; unknown targets and non-reactions are ignored.
    assert.equal(await store.applyReaction('rs', react('R4', dewi, false, 'T2', '👎', 30)), false);
    assert.equal(await reactionsOf('T2'), undefined);
    assert.equal(await store.applyReaction('rs', react('R5', dewi, false, 'NOPE', '👍', 30)), false);
    assert.equal(await store.applyReaction('rs', msg('X', dewi, false, { text: 'not a reaction' }, 30)), false);
    // An empty emoji removes the reactor's entry.
    assert.equal(await store.applyReaction('rs', react('R6', dewi, false, 'T1', '', 40)), true);
    assert.deepEqual(await reactionsOf('T1'), [['6281111111111@s.whatsapp.net', true, '🎉']]);
  });
  test('edits and revokes on their target: same chat and same author only, older edits ignored, history kept', async () => {
    const dewi = '6282222222222@s.whatsapp.net';
    const eko = '6283333333333@s.whatsapp.net';
    const at = (s: number) => new Date(Date.parse('2026-03-01T00:00:00Z') + s * 1000).toISOString();
    const msg = (id: string, chat: string, from: string, fromMe: boolean, extra: Partial<WireMessage>, t: number): WireMessage => ({ id, chat, from, fromMe, timestamp: at(t), type: 'text', ...extra });
    const edit = (id: string, chat: string, from: string, fromMe: boolean, target: string, text: string, t: number) => msg(id, chat, from, fromMe, { type: 'edit', edit: { messageId: target, text } }, t);
    const revoke = (id: string, chat: string, from: string, fromMe: boolean, target: string, t: number) => msg(id, chat, from, fromMe, { type: 'revoke', revoke: { messageId: target } }, t);
    const content = async (id: string) => {
      const row = await store.get('er', id);
      return (typeof row?.content === 'string' ? JSON.parse(row.content) : row?.content) as Record<string, unknown>;
    };
    const group = '120363000000000001@g.us';
    await store.insert('er', msg('E1', dewi, dewi, false, { text: 'v1' }, 0), 'received', undefined);
    await store.insert('er', msg('E2', dewi, dewi, false, { type: 'image', caption: 'cap' }, 0), 'received', undefined);
    await store.insert('er', msg('E3', dewi, dewi, true, { text: 'mine' }, 0), 'sent', undefined);
    await store.insert('er', msg('G1', group, dewi, false, { text: 'in group' }, 0), 'received', undefined);

    assert.equal(await store.applyEdit('er', edit('X1', dewi, dewi, false, 'E1', 'v2', 10)), true);
    assert.equal(await store.applyEdit('er', edit('X2', dewi, dewi, false, 'E1', 'v3', 20)), true);
    // An older edit arriving late, and an edit that changes nothing, are ignored.
    assert.equal(await store.applyEdit('er', edit('X0', dewi, dewi, false, 'E1', 'v1.5', 15)), false);
    assert.equal(await store.applyEdit('er', edit('X3', dewi, dewi, false, 'E1', 'v3', 25)), false);
    const e1 = await content('E1');
    assert.equal(e1['text'], 'v3');
    assert.equal(e1['edited'], true);
    assert.equal(e1['editedAt'], at(20));
    assert.deepEqual(e1['editHistory'], [
      { text: 'v1', at: at(0) },
      { text: 'v2', at: at(10) },
    ]);
    // Media: the caption is edited.
    assert.equal(await store.applyEdit('er', edit('X4', dewi, dewi, false, 'E2', 'new cap', 10)), true);
    assert.equal((await content('E2'))['caption'], 'new cap');
    // Forged: Dewi cannot edit this session's own message, Eko's chat cannot reach Dewi's message, in a group
    // another participant cannot edit or revoke Dewi's message; this session edits its own.
    assert.equal(await store.applyEdit('er', edit('X5', dewi, dewi, false, 'E3', 'hacked', 30)), false);
    assert.equal(await store.applyEdit('er', edit('X6', eko, eko, false, 'E1', 'hacked', 30)), false);
    assert.equal(await store.applyEdit('er', edit('X7', group, eko, false, 'G1', 'hacked', 30)), false);
    assert.equal(await store.applyRevoke('er', revoke('X8', group, eko, false, 'G1', 30)), false);
    assert.equal((await content('G1'))['text'], 'in group');
    assert.equal(await store.applyEdit('er', edit('X9', dewi, dewi, true, 'E3', 'mine, edited', 30)), true);
    assert.equal((await content('E3'))['text'], 'mine, edited');
    assert.equal(await store.applyEdit('er', edit('XA', group, dewi, false, 'G1', 'group edited', 30)), true);
    // Revoke: once, same author; a revoked message takes no more edits.
    assert.equal(await store.applyRevoke('er', revoke('XB', dewi, dewi, true, 'E1', 40)), false);
    assert.equal(await store.applyRevoke('er', revoke('XC', dewi, dewi, false, 'E1', 40)), true);
    assert.equal(await store.applyRevoke('er', revoke('XD', dewi, dewi, false, 'E1', 41)), false);
    const revoked = await content('E1');
    assert.equal(revoked['revoked'], true);
    assert.equal(revoked['revokedAt'], at(40));
    assert.equal(await store.applyEdit('er', edit('XE', dewi, dewi, false, 'E1', 'after revoke', 50)), false);
    assert.equal(await store.applyEdit('er', edit('XF', dewi, dewi, false, 'NOPE', 'x', 50)), false);
  });
  test('poll votes on their poll: newest per voter wins, [] takes it back, undecoded votes and other chats ignored, tally', async () => {
    await db.query(`INSERT INTO sessions (id, me) VALUES ('pv', $1::jsonb)`, [JSON.stringify({ jid: '6281111111111:4@s.whatsapp.net' })]);
    const dewi = '6282222222222@s.whatsapp.net';
    const eko = '6283333333333@s.whatsapp.net';
    const at = (s: number) => new Date(Date.parse('2026-04-01T00:00:00Z') + s * 1000).toISOString();
    const vote = (id: string, chat: string, fromMe: boolean, pollId: string, options: string[] | undefined, t: number): WireMessage => ({
      id,
      chat,
      from: chat,
      fromMe,
      timestamp: at(t),
      type: 'poll-vote',
      pollVote: options === undefined ? { pollId } : { pollId, options },
    });
    const pollOf = async (id: string) => {
      const row = await store.get('pv', id);
      const c = (typeof row?.content === 'string' ? JSON.parse(row.content) : row?.content) as { poll: { name: string; votes?: { from: string; options: string[] }[]; tally?: { option: string; count: number }[] } };
      return { name: c.poll.name, votes: c.poll.votes?.map((v) => [v.from, v.options]), tally: c.poll.tally?.map((x) => [x.option, x.count]) };
    };
    await store.insert('pv', { id: 'P1', chat: dewi, from: dewi, fromMe: true, timestamp: at(0), type: 'poll', poll: { name: 'Q', options: ['A', 'B'], selectableCount: 0 } }, 'sent', undefined);
    assert.equal(await store.applyPollVote('pv', vote('V1', dewi, false, 'P1', ['A', 'B'], 10)), true);
    assert.equal(await store.applyPollVote('pv', vote('V2', dewi, true, 'P1', ['B'], 11)), true);
    assert.deepEqual(await pollOf('P1'), {
      name: 'Q',
      votes: [
        [dewi, ['A', 'B']],
        ['6281111111111@s.whatsapp.net', ['B']],
      ],
      tally: [
        ['A', 1],
        ['B', 2],
      ],
    });
    assert.equal(await store.applyPollVote('pv', vote('V0', dewi, false, 'P1', ['A'], 5)), false, 'older vote');
    assert.equal(await store.applyPollVote('pv', vote('V3', dewi, false, 'P1', undefined, 20)), false, 'not decoded');
    assert.equal(await store.applyPollVote('pv', vote('V4', eko, false, 'P1', ['A'], 20)), false, 'another chat');
    assert.equal(await store.applyPollVote('pv', vote('V5', dewi, false, 'P1', [], 30)), true);
    assert.deepEqual((await pollOf('P1')).tally, [
      ['A', 0],
      ['B', 1],
    ]);
  });
});
