import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { constants, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { readdir, writeFile, mkdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { tempDir, waitFor } from '../../../test/harness/index.ts';
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

/** This process's descriptors open on `file` (Linux: /proc/self/fd). */
function openOn(file: string): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // closed since the listing
    }
  });
}

test('local blobs: appends keep one file open per key; a put or delete of the key, idleness and the cap close it', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(dir.path, { maxOpenAppends: 2, appendIdleMs: 200, appendRecheckMs: 60_000 });
  t.after(() => store.close());
  const file = (key: string): string => path.join(dir.path, 'objects', ...key.split('/'));
  await store.append('s/j1', Buffer.from('a\n'));
  const fd = openOn(file('s/j1'));
  assert.equal(fd.length, 1, 'open after the first append');
  // Durable on return: each append is one write to a file opened O_DSYNC (no fdatasync after it), and O_APPEND.
  const flags = Number.parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd[0] ?? ''}`, 'utf8'))?.[1] ?? '0', 8);
  assert.equal(flags & constants.O_DSYNC, constants.O_DSYNC, `opened O_DSYNC (flags ${flags.toString(8)})`);
  assert.equal(flags & constants.O_APPEND, constants.O_APPEND, 'opened O_APPEND');
  await store.append('s/j1', Buffer.from('b\n'));
  assert.deepEqual(openOn(file('s/j1')), fd, 'the same descriptor serves the next append');

  // A delete closes it: the next append creates a new file holding only its own bytes (not the deleted file's inode).
  await store.delete('s/j1');
  await store.append('s/j1', Buffer.from('c\n'));
  assert.equal((await store.get('s/j1'))?.toString(), 'c\n');
  // A put replaces the file: the next append goes to the new one.
  await store.put('s/j1', Buffer.from('p\n'));
  await store.append('s/j1', Buffer.from('d\n'));
  assert.equal((await store.get('s/j1'))?.toString(), 'p\nd\n');

  // The cap: the least recently used file is closed; every append still lands.
  await store.append('s/j2', Buffer.from('x\n'));
  await store.append('s/j3', Buffer.from('y\n'));
  await waitFor(() => (openOn(file('s/j1')).length === 0 ? true : undefined), { what: 's/j1 closed beyond the cap of 2', timeoutMs: 2000 });
  assert.equal(openOn(file('s/j3')).length, 1);
  await store.append('s/j1', Buffer.from('e\n'));
  assert.equal((await store.get('s/j1'))?.toString(), 'p\nd\ne\n');

  assert.equal(openOn(file('s/j2')).length, 0, 's/j2 closed beyond the cap');

  // Files unused for appendIdleMs close; close() closes the rest.
  assert.equal(openOn(file('s/j1')).length + openOn(file('s/j3')).length, 2);
  const idleFrom = performance.now();
  await waitFor(() => (openOn(file('s/j1')).length + openOn(file('s/j3')).length === 0 ? true : undefined), { what: 'the idle files closed', timeoutMs: 3000 });
  assert.ok(performance.now() - idleFrom >= 150, 'not before they were idle');
  await store.append('s/j2', Buffer.from('z\n'));
  assert.equal(openOn(file('s/j2')).length, 1);
  await store.close();
  for (const key of ['s/j1', 's/j2', 's/j3']) assert.deepEqual(openOn(file(key)), [], `${key} closed by close()`);
  assert.equal((await store.get('s/j2'))?.toString(), 'x\nz\n');
  assert.equal((await store.get('s/j3'))?.toString(), 'y\n');
});

test('local blobs: an open append file another process deleted or replaced is opened again before the next append', async (t) => {
  const dir = await tempDir(t);
  const store = await LocalBlobStore.create(dir.path, { appendRecheckMs: 50 });
  t.after(() => store.close());
  const file = path.join(dir.path, 'objects', 's', 'j');
  await store.append('s/j', Buffer.from('a\n'));
  assert.equal(openOn(file).length, 1);
  // Another process (here: the file system directly, not this store) deletes the file while it is open here.
  await unlink(file);
  await sleep(100);
  await store.append('s/j', Buffer.from('b\n'));
  assert.equal((await store.get('s/j'))?.toString(), 'b\n', 'the append went to a new file, not the deleted one');
  // ... or replaces it by a rename.
  await writeFile(`${file}.new`, 'p\n');
  await rename(`${file}.new`, file);
  await sleep(100);
  await store.append('s/j', Buffer.from('c\n'));
  assert.equal((await store.get('s/j'))?.toString(), 'p\nc\n');
});
