import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import { PendingCalls, ReplyBatcher, answerShardRequest } from '../src/ipc-peer.ts';
import type { PendingOutcome } from '../src/ipc-peer.ts';
import type { IpcReply, IpcReplyBatch, ShardRequestBody, ShardRequestHandlers } from '../src/ipc.ts';

function calls(unrefTimers = false) {
  const done: [string, PendingOutcome][] = [];
  const sent: number[] = [];
  const pending = new PendingCalls<string>({
    timeoutError: (kind, ms) => new GatewayError('IPC_TIMEOUT', undefined, { kind, timeoutMs: ms }),
    onDone: (kind, outcome) => done.push([kind, outcome]),
    unrefTimers,
  });
  return { pending, done, sent, open: (kind: string, ms = 60_000) => pending.open(kind, ms, (id) => sent.push(id)) };
}

test('each call gets a fresh id and is settled by the reply of that id', async () => {
  const c = calls();
  const a = c.open('ping');
  const b = c.open('stats');
  assert.deepEqual(c.sent, [1, 2]);
  assert.equal(c.pending.size, 2);
  assert.equal(c.pending.settle({ kind: 'reply', id: 2, ok: true, value: 'b' }), true);
  assert.equal(c.pending.settle({ kind: 'reply', id: 1, ok: false, error: { code: 'SESSION_NOT_FOUND', message: 'gone' } }), true);
  assert.equal(await b, 'b');
  await assert.rejects(a, (err: unknown) => (err as GatewayError).code === 'SESSION_NOT_FOUND' && (err as Error).message === 'gone');
  assert.equal(c.pending.size, 0);
  assert.deepEqual(c.done, [['stats', 'ok'], ['ping', 'error']]);
});

test('a late or unknown reply is ignored', () => {
  const c = calls();
  assert.equal(c.pending.settle({ kind: 'reply', id: 7, ok: true, value: null }), false);
});

test('a call whose deadline passes fails with the timeout error and its late reply is ignored', async () => {
  const c = calls(true);
  const p = c.open('message.get', 5);
  await assert.rejects(p, (err: unknown) => (err as GatewayError).code === 'IPC_TIMEOUT' && (err as GatewayError).details?.['kind'] === 'message.get');
  assert.equal(c.pending.settle({ kind: 'reply', id: 1, ok: true, value: 1 }), false);
  assert.deepEqual(c.done, [['message.get', 'timeout']]);
});

test('rejectAll fails every pending call with the error built for it', async () => {
  const c = calls();
  const all = [c.open('a'), c.open('b')];
  assert.equal(c.pending.rejectAll((kind) => new GatewayError('SHARD_CRASHED', undefined, { kind })), 2);
  const results = await Promise.allSettled(all);
  assert.deepEqual(results.map((r) => r.status === 'rejected' && ((r.reason as GatewayError).details?.['kind'] as string)), ['a', 'b']);
  assert.equal(c.pending.size, 0);
  assert.equal(c.pending.rejectAll(() => new Error('never')), 0);
});

test('a send that throws fails its call at once', async () => {
  const pending = new PendingCalls<string>({ timeoutError: () => new Error('timeout') });
  await assert.rejects(pending.open('x', 60_000, () => { throw new Error('channel closed'); }), /channel closed/);
  assert.equal(pending.size, 0);
});

test('replies of one event-loop turn go out as one batch; a single one alone; none mode sends each', async () => {
  const out: (IpcReply | IpcReplyBatch)[] = [];
  const b = new ReplyBatcher((m) => out.push(m));
  b.reply({ kind: 'reply', id: 1, ok: true, value: 1 });
  b.reply({ kind: 'reply', id: 2, ok: true, value: 2 });
  assert.equal(out.length, 0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(out, [{ kind: 'replies', replies: [{ kind: 'reply', id: 1, ok: true, value: 1 }, { kind: 'reply', id: 2, ok: true, value: 2 }] }]);
  b.reply({ kind: 'reply', id: 3, ok: true, value: 3 });
  b.flush();
  assert.deepEqual(out.at(-1), { kind: 'reply', id: 3, ok: true, value: 3 });
  b.mode = 'none';
  b.reply({ kind: 'reply', id: 4, ok: true, value: 4 });
  assert.deepEqual(out.at(-1), { kind: 'reply', id: 4, ok: true, value: 4 });
});

test('answerShardRequest runs the handler of the request kind with the shard index; an unknown kind is BAD_REQUEST naming it', async () => {
  const seen: string[] = [];
  const handlers: ShardRequestHandlers = {
    'message.received': async (shard, r) => (seen.push(`received ${shard} ${r.sessionId}`), { stored: r.messages.length }),
    'message.status': async (shard, r) => (seen.push(`status ${shard}`), { changed: r.updates.length }),
    'message.get': async (shard, r) => (seen.push(`get ${shard} ${r.id}`), { raw: 'AA==', fromMe: true }),
    'group.updated': async (shard, r) => (seen.push(`group ${shard}`), { stored: r.updates.length }),
  };
  assert.deepEqual(await answerShardRequest(handlers, 2, { kind: 'message.get', sessionId: 's1', id: 'M1' }), { raw: 'AA==', fromMe: true });
  assert.deepEqual(await answerShardRequest(handlers, 0, { kind: 'message.received', sessionId: 's1', epoch: 1, upsert: 'notify', messages: [] }), { stored: 0 });
  assert.deepEqual(seen, ['get 2 M1', 'received 0 s1']);
  const unknown = { kind: 'message.frobnicate', sessionId: 's1' } as unknown as ShardRequestBody;
  await assert.rejects(answerShardRequest(handlers, 1, unknown), (err: GatewayError) => err.code === 'BAD_REQUEST' && err.message.includes('message.frobnicate'));
  assert.equal(seen.length, 2);
});
