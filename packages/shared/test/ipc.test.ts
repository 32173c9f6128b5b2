import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isRouterToShard, isShardToRouter } from '../src/ipc.ts';

describe('IPC envelope checks (issue #10 item 16)', () => {
  it('accept well-formed messages', () => {
    assert.ok(isShardToRouter({ kind: 'reply', id: 1, ok: true, value: null }));
    assert.ok(isShardToRouter({ kind: 'replies', replies: [{ kind: 'reply', id: 1, ok: false, error: { code: 'INTERNAL', message: 'x' } }] }));
    assert.ok(isShardToRouter({ kind: 'init-failed', protocolVersion: 3, pid: 1, retryable: true, error: { code: 'CONFIG_INVALID', message: 'm' } }));
    assert.ok(isRouterToShard({ kind: 'reply', id: 4, ok: false, error: { code: 'SHARD_UNAVAILABLE', message: 'm', details: { a: 1 } } }));
    assert.ok(isRouterToShard({ kind: 'ping', id: 4 }));
  });

  it('refuse every field the receiver would read and throw on', () => {
    for (const bad of [
      { kind: 'replies', replies: [null] },
      { kind: 'replies', replies: [{ kind: 'reply', id: 1, ok: false }] },
      { kind: 'reply', id: 1, ok: false, error: null },
      { kind: 'reply', id: 1, ok: false, error: { code: 'X' } },
      { kind: 'reply', id: 1, ok: false, error: { code: 'X', message: 'm', details: 'no' } },
      { kind: 'init-failed', protocolVersion: 3, pid: 1, retryable: false },
      { kind: 'init-failed', protocolVersion: 3, pid: 1, error: { code: 'X', message: 'm' } },
      { kind: 'ready', protocolVersion: 3 },
      { kind: 'exiting', code: 0 },
      { kind: 'request', id: 'x', request: { kind: 'a' } },
      null,
      [],
    ]) {
      assert.equal(isShardToRouter(bad), false, JSON.stringify(bad));
    }
    assert.equal(isRouterToShard({ kind: 'reply', id: 1, ok: false }), false);
    assert.equal(isRouterToShard({ kind: 'init', protocolVersion: 3, shardIndex: 0 }), false);
    assert.equal(isRouterToShard({ kind: 'ping', id: 1, reqId: 5 }), false);
  });
});
