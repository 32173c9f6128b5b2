// A session's keyed message id is relayed to WhatsApp at most once per shard process (relayed-sends.ts): a retry of a keyed send
// (the router released its key after a 5xx) joins the attempt that runs, or stores the row of one that was
// relayed and acknowledged, and never sends it again. The end-to-end case is test/messaging/ipc-backup.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '@wagw/shared';
import type { MessageSendParams } from '@wagw/shared';
import type { WAMessage, WASocket } from '@whiskeysockets/baileys';
import { RelayedSends } from '../../src/messaging/relayed-sends.ts';
import { AckTracker, sendOne } from '../../src/messaging/send.ts';
import { fakeSendDeps } from './send-deps.ts';

function fixture(opts: { ack?: boolean } = {}) {
  const relays: string[] = [];
  const stores: string[] = [];
  let storeResults: (() => Promise<void>)[] = [];
  const acks = new AckTracker();
  const socket = {
    user: { id: '6280@s.whatsapp.net' },
    async sendMessage(jid: string, _content: unknown, options: { messageId: string }) {
      relays.push(options.messageId);
      if (opts.ack !== false) setImmediate(() => acks.onAck({ id: options.messageId }));
      return { key: { id: options.messageId, remoteJid: jid, fromMe: true }, message: { conversation: 'hi' }, messageTimestamp: 1 };
    },
  } as unknown as WASocket;
  const deps = fakeSendDeps(socket, {
    acks,
    storeSent: async (_sock: WASocket, sent: WAMessage) => {
      stores.push(sent.key.id ?? '');
      const next = storeResults.shift();
      if (next !== undefined) await next();
    },
    relayed: new RelayedSends(),
  });
  const params = { sessionId: 's1', messageId: 'KEYED1', request: { to: { jid: '6281@s.whatsapp.net' }, type: 'text', text: 'hi' } } as unknown as MessageSendParams;
  return { relays, stores, deps, params, setStores: (fns: (() => Promise<void>)[]) => void (storeResults = fns) };
}

test('a retry while the first attempt waits for its row joins it: relayed once, both answer the same message', async () => {
  const f = fixture();
  let commit!: () => void;
  f.setStores([() => new Promise<void>((resolve) => (commit = resolve))]);
  const first = sendOne(f.params, f.deps);
  await sleep(20);
  const retry = sendOne(f.params, f.deps);
  await sleep(20);
  commit();
  const [a, b] = await Promise.all([first, retry]);
  assert.deepEqual(f.relays, ['KEYED1']);
  assert.equal(a.id, 'KEYED1');
  assert.equal(b.id, 'KEYED1');
});

test('relayed and acknowledged but its row write failed: the retry stores the row again and does not relay', async () => {
  const f = fixture();
  f.setStores([() => Promise.reject(new GatewayError('IPC_TIMEOUT', 'held'))]);
  await assert.rejects(sendOne(f.params, f.deps), (e: GatewayError) => e.code === 'IPC_TIMEOUT');
  const again = await sendOne(f.params, f.deps);
  assert.equal(again.id, 'KEYED1');
  assert.deepEqual(f.relays, ['KEYED1'], 'never relayed a second time');
  assert.deepEqual(f.stores, ['KEYED1', 'KEYED1'], 'the row write was retried');
  // and a later retry answers with it at once
  assert.equal((await sendOne(f.params, f.deps)).id, 'KEYED1');
  assert.deepEqual(f.relays, ['KEYED1']);
});

test('an attempt that ended before WhatsApp acknowledged it is forgotten: its retry sends (unchanged behaviour)', async () => {
  const f = fixture({ ack: false });
  await assert.rejects(sendOne(f.params, f.deps), (e: GatewayError) => e.code === 'WA_TIMEOUT');
  await assert.rejects(sendOne(f.params, f.deps), (e: GatewayError) => e.code === 'WA_TIMEOUT');
  assert.deepEqual(f.relays, ['KEYED1', 'KEYED1']);
  assert.equal(f.deps.relayed?.size, 0);
});

test('sends without a derived id are not tracked', async () => {
  const f = fixture();
  const plain: Partial<MessageSendParams> = { ...f.params };
  delete plain.messageId;
  await sendOne(plain as MessageSendParams, f.deps);
  await sendOne(plain as MessageSendParams, f.deps);
  assert.equal(f.relays.length, 2);
  assert.equal(f.deps.relayed?.size, 0);
});

test('entries are capped and expire', () => {
  let now = 0;
  const r = new RelayedSends({ maxEntries: 2, ttlMs: 1000, now: () => now });
  const p = new Promise<never>(() => undefined);
  r.begin('a', p);
  r.begin('b', p);
  r.begin('c', p);
  assert.equal(r.get('a'), undefined);
  assert.equal(r.size, 2);
  now = 1500;
  assert.equal(r.get('c'), undefined);
  assert.equal(r.size, 0);
});
