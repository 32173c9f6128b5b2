// Prekeys held packed in memory (auth/key-packing.ts): Baileys still gets Buffers, the store still gets the same
// JSON, and 812 prekeys no longer cost 1,624 Buffers per session.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import { BlobAuthState } from '@wagw/shard/auth';
import { createRootLogger } from '@wagw/shared';
import { LocalBlobStore } from '@wagw/stores';
import { packKey, unpackKey } from '../src/auth/key-packing.ts';

const logger = createRootLogger({ proc: 'test', level: 'silent' });
const always = async (): Promise<boolean> => true;

function preKeys(count: number): Record<string, { private: Buffer; public: Buffer }> {
  const out: Record<string, { private: Buffer; public: Buffer }> = {};
  for (let i = 0; i < count; i++) out[String(i + 1)] = { private: Buffer.alloc(32, i % 251), public: Buffer.alloc(32, (i * 7) % 253) };
  return out;
}

test('a prekey pair packs into one 64-character string and back; other keys and other shapes stay as they are', () => {
  const pair = { private: Buffer.alloc(32, 1), public: Buffer.alloc(32, 255) };
  const packed = packKey('pre-key', pair);
  assert.equal(typeof packed, 'string');
  assert.equal((packed as string).length, 64);
  assert.deepEqual(unpackKey('pre-key', packed), pair);
  const session = Buffer.from('ratchet');
  assert.equal(packKey('session', session), session);
  const odd = { private: Buffer.alloc(31), public: Buffer.alloc(32) };
  assert.equal(packKey('pre-key', odd), odd);
  assert.equal(unpackKey('pre-key', odd), odd);
});

test('812 prekeys are held as strings: Baileys gets equal Buffers, the snapshot keeps the Buffer JSON, and a reload gets them back', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wagw-keypack-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const blobs = await LocalBlobStore.create(dir);
  const keys = preKeys(812);
  const a = await BlobAuthState.load({ blobs, sessionId: 'kp', epoch: 1, isCurrent: always, logger });
  await a.state.keys.set({ 'pre-key': keys });
  const got = await a.state.keys.get('pre-key', ['1', '400', '812', '999']);
  assert.deepEqual(Object.keys(got).sort(), ['1', '400', '812']);
  assert.deepEqual(got['400'], keys['400']);
  assert.ok(Buffer.isBuffer(got['812']?.private));
  await a.close();

  // The next owner loads the log, holds the keys packed, and its fencing snapshot stores them as Buffer JSON.
  const uint8Before = v8.queryObjects(Uint8Array, { format: 'count' });
  const b = await BlobAuthState.load({ blobs, sessionId: 'kp', epoch: 2, isCurrent: always, logger });
  const held = v8.queryObjects(Uint8Array, { format: 'count' }) - uint8Before;
  assert.ok(held < 100, `${held} Uint8Arrays more after loading 812 prekeys (unpacked would be over 1,600)`);
  assert.deepEqual((await b.state.keys.get('pre-key', ['5']))['5'], keys['5']);
  const names = await blobs.list('sessions/kp/auth/');
  const snap = names.find((k) => k.endsWith('-snap.json') && k.includes(String(2).padStart(16, '0')));
  assert.ok(snap !== undefined, `no snapshot of epoch 2 in ${names.join(', ')}`);
  const body = JSON.parse((await blobs.get(snap))?.toString('utf8') ?? 'null') as { keys: { 'pre-key': Record<string, { private: { type: string; data: string } }> } };
  assert.deepEqual(body.keys['pre-key']['7']?.private, { type: 'Buffer', data: keys['7']?.private.toString('base64') });
  await b.close();
  await blobs.close();
});
