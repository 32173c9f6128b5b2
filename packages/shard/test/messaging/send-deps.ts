// The send dependencies of a shard session with a fake socket, for unit tests of sendOne: governor off, no media,
// a 1 MiB media budget. `overrides` replace any field (the ack deadline, storeSent, relayed sends...).
import type { WASocket } from '@whiskeysockets/baileys';
import { ByteBudget } from '../../src/messaging/byte-budget.ts';
import { SendGovernor } from '../../src/messaging/governor.ts';
import { AckTracker } from '../../src/messaging/send.ts';
import type { SendDeps } from '../../src/messaging/send.ts';

export function fakeSendDeps(socket: WASocket, overrides: Partial<SendDeps> = {}): SendDeps {
  return {
    sessionId: 's1',
    socket: () => socket,
    connected: () => true,
    acks: new AckTracker(),
    governor: new SendGovernor({ ratePerSec: 0, burst: 1, perRecipientIntervalMs: 0, queueMax: 10, queueTimeoutMs: 60_000 }),
    blobs: { get: () => Promise.resolve(null) } as unknown as SendDeps['blobs'],
    media: { maxBytes: 1 << 20, timeoutMs: 1000, allowPrivate: false } as unknown as SendDeps['media'],
    mediaBudget: new ByteBudget(1 << 20),
    ackTimeoutMs: 100,
    ...overrides,
  };
}
