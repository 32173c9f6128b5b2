// The live session list: a list read and the status events race (the read can start before an event and answer
// after it). Whatever arrives last, the page keeps the newer state by the row's stored `updatedAt`, which is also
// the event's `at`. A console CI run once showed a migrated session as not connected for 30 s: a list read that
// answered after the `connected` event put the older status back until the next read, a minute later.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyStatus, mergeSessions } from '../src/app/state.ts';
import type { Session } from '../src/app/sessions.ts';

const T0 = '2026-12-05T10:00:00.000Z';
const T1 = '2026-12-05T10:00:01.000Z';
const T2 = '2026-12-05T10:00:02.000Z';
const row = (status: string, updatedAt: string, shard = 0): Session => ({ id: 's1', status, shard, host: 'h', updatedAt });

test('a list read older than the status the page holds does not undo it', () => {
  const held = new Map([['s1', applyStatus(row('starting', T0), { status: 'connected', shard: 1, at: T2 })]]);
  const merged = mergeSessions(held, [row('starting', T1)]);
  assert.equal(merged.get('s1')?.status, 'connected');
  assert.equal(merged.get('s1')?.shard, 1);
  assert.equal(merged.get('s1')?.updatedAt, T2);
});

test('a newer list read replaces what the page holds, and a session the read does not return is gone', () => {
  const held = new Map([
    ['s1', row('connected', T0)],
    ['gone', { ...row('connected', T0), id: 'gone' }],
  ]);
  const merged = mergeSessions(held, [row('reconnecting', T1)]);
  assert.equal(merged.get('s1')?.status, 'reconnecting');
  assert.equal(merged.has('gone'), false);
});

test('a status event older than the row is ignored; a newer one applies, reason included', () => {
  const s = { ...row('connected', T1), reason: 'x' };
  assert.equal(applyStatus(s, { status: 'starting', at: T0 }), s);
  const next = applyStatus(s, { status: 'reconnecting', reason: 'lease lost', at: T2 });
  assert.equal(next.status, 'reconnecting');
  assert.equal(next.reason, 'lease lost');
  assert.equal(applyStatus(next, { status: 'connected', at: T2 }).reason, undefined);
});
