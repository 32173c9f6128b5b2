import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { createRootLogger } from '@wagw/shared';
import { installProcessHandlers } from '../src/process-handlers.ts';
import type { ProcessEvents } from '../src/process-handlers.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createRootLogger({ proc: 'router', level: 'info', destination }) };
}

describe('router process handlers (issue #10 item 16)', () => {
  it('a stray rejection is logged at error and nothing stops', () => {
    const { lines, logger } = capture();
    const proc = new EventEmitter();
    const fatal: Error[] = [];
    installProcessHandlers(proc as unknown as ProcessEvents, logger, (e) => fatal.push(e));
    proc.emit('unhandledRejection', new Error('lost background write'));
    assert.equal(fatal.length, 0);
    const line = lines.find((l) => l['msg'] === 'unhandled promise rejection; the router keeps running');
    assert.equal(line?.['level'], 50);
    assert.match(JSON.stringify(line?.['err']), /lost background write/);
  });

  it('an uncaught exception is logged at fatal and stops the router once', () => {
    const { lines, logger } = capture();
    const proc = new EventEmitter();
    const fatal: Error[] = [];
    installProcessHandlers(proc as unknown as ProcessEvents, logger, (e) => fatal.push(e));
    proc.emit('uncaughtException', new Error('state unknown'));
    proc.emit('uncaughtException', new Error('again'));
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]?.message, 'state unknown');
    assert.equal(lines.filter((l) => l['level'] === 60).length, 2);
  });

  it('without handlers an unhandled rejection would end the process (Node default): the handler is what keeps it', () => {
    const proc = new EventEmitter();
    assert.equal(proc.listenerCount('unhandledRejection'), 0);
    installProcessHandlers(proc as unknown as ProcessEvents, capture().logger, () => undefined);
    assert.equal(proc.listenerCount('unhandledRejection'), 1);
    assert.equal(proc.listenerCount('uncaughtException'), 1);
  });
});
