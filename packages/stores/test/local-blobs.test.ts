import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
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

test('local blobs: a put makes no file-system call on the caller\'s thread (one task on a put worker), so a busy event loop does not stretch it', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(dir.path);
  t.after(() => store.close());
  await store.put('warm/up', Buffer.from('x')); // starts the worker
  // Each file-system call made on this thread creates an FSREQ* (or FILEHANDLE) async resource. Made here, the put's eight
  // calls (write, fsync, close, rename, open, fsync, close of the temp file and the directory) each waited for a turn of
  // this loop between them: on a busy shard, p50 6 ms and p99 50 ms for about 1 ms of work (docs/benchmarks.md).
  const seen: string[] = [];
  const hook = createHook({
    init(_id, type) {
      if (type.startsWith('FSREQ') || type === 'FILEHANDLE') seen.push(type);
    },
  });
  hook.enable();
  try {
    for (let i = 0; i < 5; i++) await store.put(`sessions/s1/auth/${i}-log.json`, Buffer.from(`{"seq":${i}}`));
  } finally {
    hook.disable();
  }
  assert.deepEqual(seen, [], 'no file-system request was made on the caller\'s thread');
  assert.equal(String(await store.get('sessions/s1/auth/4-log.json')), '{"seq":4}');
});

test('local blobs: put writes exactly the bytes of a view, leaves the caller\'s buffer alone, and keeps a failing call\'s code', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir.path, 'blobs');
  const store = await LocalBlobStore.create(root);
  t.after(() => store.close());
  const big = Buffer.alloc(64 * 1024, 0x61);
  big.write('hello', 1000);
  const view = big.subarray(1000, 1005);
  await store.put('v', view);
  assert.equal(String(await store.get('v')), 'hello', 'only the view\'s bytes');
  assert.equal(big.length, 64 * 1024, 'the caller\'s buffer is not moved away');
  assert.equal(String(view), 'hello');
  // The temp directory gone (a disk swapped under a running store): the write fails with the file system's own code.
  await rm(path.join(root, 'tmp'), { recursive: true });
  await assert.rejects(store.put('w', Buffer.from('x')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && /no such file/.test(err.message));
  assert.equal(await store.get('w'), null, 'nothing was stored');
  // After close, a put starts the worker again.
  await store.close();
  await mkdir(path.join(root, 'tmp'));
  await store.put('after-close', Buffer.from('y'));
  assert.equal(String(await store.get('after-close')), 'y');
});
