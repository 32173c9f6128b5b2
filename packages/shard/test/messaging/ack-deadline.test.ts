// WhatsApp's ack deadline starts before Baileys relays the message. When the relay itself outlasts the deadline
// (an auth-state read waiting out a blob-store outage), the ack's rejection arrived with no handler attached yet:
// an unhandled rejection, logged as fatal by the shard (seen in CI during the fault tests). The send must fail
// with WA_TIMEOUT and leave no unhandled rejection behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayError, MessageSendParams } from '@wagw/shared';
import type { WASocket } from '@whiskeysockets/baileys';
import { AckTracker, sendOne } from '../../src/messaging/send.ts';
import { fakeSendDeps } from './send-deps.ts';

test('a relay slower than the ack deadline fails the send with WA_TIMEOUT and no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const socket = {
      async sendMessage(jid: string, _content: unknown, options: { messageId: string }) {
        await sleep(200); // the relay outlasts the 50 ms ack deadline
        return { key: { id: options.messageId, remoteJid: jid, fromMe: true }, message: { conversation: 'hi' } };
      },
    } as unknown as WASocket;
    const deps = fakeSendDeps(socket, { ackTimeoutMs: 50 });
    const params = { sessionId: 's1', request: { to: { jid: '6281@s.whatsapp.net' }, type: 'text', text: 'hi' } } as unknown as MessageSendParams;
    await assert.rejects(sendOne(params, deps), (e: GatewayError) => e.code === 'WA_TIMEOUT');
    await sleep(20); // unhandled rejections are reported after the microtask queue drains
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

// blob-outage.test.ts "sent once: 2 !== 1": the relay outlasted the ack deadline (auth state waiting out the
// outage), WhatsApp acknowledged it after the deadline, the send answered WA_TIMEOUT (504, key released) and the
// backend's retry sent the message again. A relay that outlasts the deadline now waits for its ack from the relay.
test('a relay slower than the ack deadline that WhatsApp then acknowledges is a success, relayed once', async () => {
  const acks = new AckTracker();
  let relays = 0;
  const socket = {
    async sendMessage(jid: string, _content: unknown, options: { messageId: string }) {
      await sleep(200);
      relays++;
      setTimeout(() => acks.onAck({ id: options.messageId }), 10);
      return { key: { id: options.messageId, remoteJid: jid, fromMe: true }, message: { conversation: 'hi' } };
    },
  } as unknown as WASocket;
  const deps = fakeSendDeps(socket, { acks, ackTimeoutMs: 50 });
  const params = { sessionId: 's1', messageId: 'SLOW1', request: { to: { jid: '6281@s.whatsapp.net' }, type: 'text', text: 'hi' } } as unknown as MessageSendParams;
  const r = await sendOne(params, deps);
  assert.equal(r.id, 'SLOW1');
  assert.equal(relays, 1);
});
