import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { tempDir } from '../../../test/harness/index.ts';
import { LocalBlobStore } from '../src/blobs/local.ts';

test('local blobs: a writer killed with SIGKILL mid-write never leaves a torn object', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir.path, 'blobs');
  for (let round = 0; round < 3; round++) {
    const child = fork(path.join(import.meta.dirname, 'fixtures', 'blob-writer.ts'), [root], { stdio: 'ignore' });
    t.after(() => {
      child.kill('SIGKILL');
    });
    await once(child, 'message'); // ready
    await once(child, 'message'); // two whole versions written
    await sleep(20 + round * 15);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const store = await LocalBlobStore.create(root);
    const value = await store.get('auth/s1/creds.json');
    assert.ok(value !== null, 'the object exists');
    const whole = (value.length === 2 * 1024 * 1024 && value.every((b) => b === 0x61)) || (value.length === 3 * 1024 * 1024 && value.every((b) => b === 0x62));
    assert.ok(whole, `round ${round}: the object is one whole version (got ${value.length} bytes)`);
    assert.deepEqual(await readdir(path.join(root, 'tmp')), [], 'leftover temp files are cleared at start');
  }
});

test('local blobs: keys stay inside the data directory, and deletes prune empty directories', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir.path, 'blobs');
  await mkdir(dir.path, { recursive: true });
  await writeFile(path.join(dir.path, 'secret'), 'outside');
  const store = await LocalBlobStore.create(root);
  await assert.rejects(store.get('../secret'), RangeError);
  await assert.rejects(store.get('objects/../../secret'), RangeError);
  await store.put('a/b/c/d', Buffer.from('x'));
  await store.delete('a/b/c/d');
  assert.deepEqual(await readdir(path.join(root, 'objects')), [], 'empty parents are removed');
});

test('local blobs: a key that is also a prefix of other keys is refused clearly', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(dir.path);
  await store.put('a/b', Buffer.from('x'));
  await assert.rejects(store.put('a', Buffer.from('y')), /conflicts with an existing key/);
  await store.put('c', Buffer.from('y'));
  await assert.rejects(store.put('c/d', Buffer.from('z')), /conflicts with an existing key/);
  assert.deepEqual(await store.list(''), ['a/b', 'c']);
});

test('local blobs: append creates the object (and its directories), adds in order, and reads, lists and deletes as any object', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(dir.path);
  await store.append('s/auth/j.jsonl', Buffer.from('one\n'));
  await store.append('s/auth/j.jsonl', Buffer.from('two\n'));
  await store.append('s/auth/j.jsonl', new Uint8Array(Buffer.from('three\n')));
  assert.equal((await store.get('s/auth/j.jsonl'))?.toString(), 'one\ntwo\nthree\n');
  assert.deepEqual(await store.list('s/'), ['s/auth/j.jsonl']);
  await store.put('s/auth/p.json', Buffer.from('{}'));
  await assert.rejects(store.append('s/auth', Buffer.from('x')), /conflicts with an existing key/);
  await assert.rejects(store.append('../outside', Buffer.from('x')), RangeError);
  await store.delete('s/auth/j.jsonl');
  assert.deepEqual(await store.list('s/'), ['s/auth/p.json']);
});
