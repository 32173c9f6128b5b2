import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WAMessageStubType } from '@whiskeysockets/baileys';
import type { GroupMetadata, WAMessage } from '@whiskeysockets/baileys';
import { GroupMetadataCache } from '../src/groups/cache.ts';
import { groupError } from '../src/groups/actions.ts';
import { groupUpdateOf } from '../src/groups/events.ts';

const G = '120363000000000001@g.us';
const meta = (subject: string): GroupMetadata => ({ id: G, subject, participants: [] }) as unknown as GroupMetadata;

describe('group metadata cache', () => {
  test('a hit makes no query; concurrent misses share one query', async () => {
    const cache = new GroupMetadataCache({ ttlMs: 60_000, max: 10 });
    let queries = 0;
    let release: (m: GroupMetadata) => void = () => undefined;
    const fetch = () => {
      queries++;
      return new Promise<GroupMetadata>((r) => (release = r));
    };
    const a = cache.getOrFetch(G, fetch);
    const b = cache.getOrFetch(G, fetch);
    release(meta('one'));
    assert.equal((await a).subject, 'one');
    assert.equal((await b).subject, 'one');
    for (let i = 0; i < 200; i++) await cache.getOrFetch(G, fetch);
    assert.equal(queries, 1);
  });

  test('invalidation drops the entry, and a query running at that moment does not refill it', async () => {
    const cache = new GroupMetadataCache({ ttlMs: 60_000, max: 10 });
    let release: (m: GroupMetadata) => void = () => undefined;
    const slow = cache.getOrFetch(G, () => new Promise<GroupMetadata>((r) => (release = r)));
    cache.invalidate(G);
    release(meta('stale'));
    assert.equal((await slow).subject, 'stale');
    assert.equal(cache.get(G), undefined);
    await cache.getOrFetch(G, async () => meta('fresh'));
    assert.equal(cache.get(G)?.subject, 'fresh');
    cache.invalidate(G);
    assert.equal(cache.get(G), undefined);
  });

  test('TTL and size cap: expired entries are gone, the least recently used goes first', () => {
    let now = 0;
    const cache = new GroupMetadataCache({ ttlMs: 1000, max: 2, now: () => now });
    cache.set('a@g.us', meta('a'));
    cache.set('b@g.us', meta('b'));
    assert.ok(cache.get('a@g.us'));
    cache.set('c@g.us', meta('c'));
    assert.equal(cache.get('b@g.us'), undefined, 'b was the least recently used');
    assert.ok(cache.get('a@g.us') && cache.get('c@g.us'));
    now = 1000;
    assert.equal(cache.get('a@g.us'), undefined);
    assert.equal(cache.stats().size, 1);
  });
});

describe('group updates from stub messages', () => {
  const stub = (type: number, params: string[], id = 'gp2-1'): WAMessage =>
    ({ key: { remoteJid: G, id, participant: '111@s.whatsapp.net', fromMe: false }, messageStubType: type, messageStubParameters: params, messageTimestamp: 1_700_000_000 }) as unknown as WAMessage;
  const me = ['999@s.whatsapp.net'];

  test('participants: action, bare JIDs, and whether it is the session', () => {
    const add = groupUpdateOf(stub(WAMessageStubType.GROUP_PARTICIPANT_ADD, [JSON.stringify({ id: '222:3@s.whatsapp.net' }), JSON.stringify({ id: '999@s.whatsapp.net' })]), me);
    assert.deepEqual(add, {
      id: 'gp2-1',
      group: G,
      at: new Date(1_700_000_000_000).toISOString(),
      author: '111@s.whatsapp.net',
      kind: 'participants',
      action: 'add',
      participants: ['222@s.whatsapp.net', '999@s.whatsapp.net'],
      me: 'added',
    });
    const removed = groupUpdateOf(stub(WAMessageStubType.GROUP_PARTICIPANT_REMOVE, [JSON.stringify({ id: '999@s.whatsapp.net' })]), me);
    assert.equal(removed?.me, 'removed');
    assert.equal(groupUpdateOf(stub(WAMessageStubType.GROUP_PARTICIPANT_PROMOTE, [JSON.stringify({ id: '222@s.whatsapp.net' })]), me)?.action, 'promote');
  });

  test('settings and join requests; the invite code itself is never reported; other messages are not updates', () => {
    assert.deepEqual(groupUpdateOf(stub(WAMessageStubType.GROUP_CHANGE_ANNOUNCE, ['on']), me)?.changes, { announce: true });
    assert.deepEqual(groupUpdateOf(stub(WAMessageStubType.GROUP_CHANGE_SUBJECT, ['New']), me)?.changes, { subject: 'New' });
    assert.deepEqual(groupUpdateOf(stub(WAMessageStubType.GROUP_MEMBER_ADD_MODE, ['all_member_add']), me)?.changes, { memberAddMode: 'all' });
    assert.deepEqual(groupUpdateOf(stub(WAMessageStubType.GROUP_CHANGE_INVITE_LINK, ['SECRETCODE']), me)?.changes, { inviteCodeChanged: true });
    const join = groupUpdateOf(stub(WAMessageStubType.GROUP_MEMBERSHIP_JOIN_APPROVAL_REQUEST_NON_ADMIN_ADD, [JSON.stringify({ lid: '5@lid', pn: '333@s.whatsapp.net' }), 'created', 'invite_link']), me);
    assert.equal(join?.kind, 'join-request');
    assert.deepEqual(join?.participants, ['333@s.whatsapp.net']);
    assert.equal(groupUpdateOf({ key: { remoteJid: G, id: 'x' }, message: { conversation: 'hi' } } as unknown as WAMessage, me), undefined);
    assert.equal(groupUpdateOf({ ...stub(WAMessageStubType.GROUP_CHANGE_SUBJECT, ['x']), key: { remoteJid: '1@s.whatsapp.net', id: 'y' } } as unknown as WAMessage, me), undefined);
  });
});

describe('WhatsApp group refusals', () => {
  test('map to the gateway codes by the code Baileys carries', () => {
    assert.equal(groupError({ data: 401, message: 'not-authorized' }, 'g').code, 'NOT_GROUP_MEMBER');
    assert.equal(groupError({ data: 403, message: 'forbidden' }, 'g').code, 'NOT_GROUP_ADMIN');
    assert.equal(groupError({ output: { statusCode: 404 }, message: 'item-not-found' }, 'g').code, 'GROUP_NOT_FOUND');
    assert.equal(groupError({ data: 429, message: 'rate-overlimit' }, 'g').code, 'WA_RATE_LIMITED');
    assert.equal(groupError({ data: 406, message: 'not-acceptable' }, 'g').code, 'GROUP_REQUEST_REFUSED');
    assert.equal(groupError(new Error('Connection Closed'), 'g').code, 'SESSION_NOT_CONNECTED');
    assert.equal(groupError(new Error('boom'), 'g').code, 'INTERNAL');
  });
});
