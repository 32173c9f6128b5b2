// Zombie safety at the socket: a shard process paused (SIGSTOP) past its lease may, when it wakes, handle
// queued I/O before its lease timer fires. Every frame out and in goes through the lease check first.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { WASocket } from '@whiskeysockets/baileys';
import { fenceSocket } from '../src/sessions/session-runner.ts';

class FakeWs extends EventEmitter {
  readonly sent: unknown[] = [];
  send(data: unknown, cb?: (err?: Error) => void): void {
    this.sent.push(data);
    cb?.();
  }
}

describe('fenceSocket', () => {
  it('sends and delivers frames while the lease is valid, drops both (and reports) once it lapsed', () => {
    const ws = new FakeWs();
    let valid = true;
    let checks = 0;
    fenceSocket({ ws } as unknown as Pick<WASocket, 'ws'>, () => {
      checks++;
      return valid;
    });
    const received: unknown[] = [];
    ws.on('message', (d: unknown) => received.push(d));
    ws.on('close', () => received.push('close'));

    ws.send('frame-1');
    ws.emit('message', 'in-1');
    assert.deepEqual(ws.sent, ['frame-1']);
    assert.deepEqual(received, ['in-1']);

    valid = false; // validUntil passed while the process was stopped
    const errors: (Error | undefined)[] = [];
    ws.send('frame-2', (err) => errors.push(err));
    ws.emit('message', 'in-2');
    assert.deepEqual(ws.sent, ['frame-1'], 'no frame leaves a socket whose lease lapsed');
    assert.deepEqual(received, ['in-1'], 'no frame is handled (no auth write, no event) after the lease lapsed');
    assert.match(String(errors[0]?.message), /lease lapsed/);
    // Other events (close, error) still reach Baileys so the socket is torn down normally.
    ws.emit('close');
    assert.deepEqual(received, ['in-1', 'close']);
    assert.ok(checks >= 4);
  });
});
