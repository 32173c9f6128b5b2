/** The one conformance suite of BlobStore. Every implementation must pass it unchanged. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { BlobStore } from '@wagw/shared';

export type BlobFactory = (t: TestContext) => Promise<BlobStore>;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function blobConformance(name: string, factory: BlobFactory): void {
  describe(`BlobStore conformance: ${name}`, () => {
    test('put then get returns the same bytes; overwrite replaces them', async (t) => {
      const blobs = await factory(t);
      await blobs.put('auth/s1/creds.json', Buffer.from('{"v":1}'), 'application/json');
      assert.equal((await blobs.get('auth/s1/creds.json'))?.toString('utf8'), '{"v":1}');
      await blobs.put('auth/s1/creds.json', Buffer.from('{"v":2,"longer":true}'), 'application/json');
      assert.equal((await blobs.get('auth/s1/creds.json'))?.toString('utf8'), '{"v":2,"longer":true}');
      await blobs.put('auth/s1/creds.json', new Uint8Array(0));
      assert.equal((await blobs.get('auth/s1/creds.json'))?.length, 0, 'an empty object is not a missing one');
    });

    test('a missing key reads as null, as a buffer and as a stream', async (t) => {
      const blobs = await factory(t);
      assert.equal(await blobs.get('nope/never-written'), null);
      assert.equal(await blobs.getStream('nope/never-written'), null);
      await blobs.put('dir/file', Buffer.from('x'));
      assert.equal(await blobs.get('dir'), null, 'a prefix of keys is not an object');
    });

    test('binary bytes survive intact (all byte values, a Uint8Array view with an offset)', async (t) => {
      const blobs = await factory(t);
      const all = Buffer.alloc(256 * 4);
      for (let i = 0; i < all.length; i++) all[i] = i % 256;
      await blobs.put('bin/all-bytes', all);
      assert.deepEqual(await blobs.get('bin/all-bytes'), all);
      const backing = randomBytes(1000);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 500);
      await blobs.put('bin/view', view);
      assert.deepEqual(await blobs.get('bin/view'), Buffer.from(backing.subarray(100, 600)));
    });

    test('streams in and out, counting the bytes', async (t) => {
      const blobs = await factory(t);
      const parts = Array.from({ length: 20 }, () => randomBytes(50_000));
      const expected = Buffer.concat(parts);
      const written = await blobs.putStream('media/s1/video.bin', Readable.from(parts), 'video/mp4');
      assert.equal(written, expected.length);
      const stream = await blobs.getStream('media/s1/video.bin');
      assert.ok(stream !== null);
      assert.deepEqual(await readAll(stream), expected);
      assert.deepEqual(await blobs.get('media/s1/video.bin'), expected);
      assert.equal(await blobs.putStream('media/s1/empty', Readable.from([])), 0);
      assert.equal((await blobs.get('media/s1/empty'))?.length, 0);
    });

    test('a failing input stream stores nothing', async (t) => {
      const blobs = await factory(t);
      const failing = new Readable({
        read() {
          this.push(Buffer.from('partial'));
          this.destroy(new Error('upload aborted'));
        },
      });
      await assert.rejects(blobs.putStream('media/s1/broken', failing));
      assert.equal(await blobs.get('media/s1/broken'), null);
    });

    test('list returns the keys under a prefix, sorted; delete and deletePrefix remove them', async (t) => {
      const blobs = await factory(t);
      const keys = ['auth/s2/pre-key-10', 'auth/s2/pre-key-2', 'auth/s2/creds.json', 'auth/s20/creds.json', 'auth/s3/creds.json', 'media/s2/a'];
      for (const key of keys) await blobs.put(key, Buffer.from(key));
      assert.deepEqual(await blobs.list('auth/s2/'), ['auth/s2/creds.json', 'auth/s2/pre-key-10', 'auth/s2/pre-key-2']);
      assert.deepEqual(await blobs.list('auth/s2/pre-'), ['auth/s2/pre-key-10', 'auth/s2/pre-key-2'], 'a prefix need not end at a /');
      assert.deepEqual(await blobs.list('auth/s2'), ['auth/s2/creds.json', 'auth/s2/pre-key-10', 'auth/s2/pre-key-2', 'auth/s20/creds.json']);
      assert.deepEqual(await blobs.list(''), [...keys].sort());
      assert.deepEqual(await blobs.list('none/'), []);

      await blobs.delete('auth/s3/creds.json');
      await blobs.delete('auth/s3/creds.json'); // deleting a missing key is fine
      assert.equal(await blobs.get('auth/s3/creds.json'), null);
      assert.deepEqual(await blobs.list('auth/s3/'), []);

      assert.equal(await blobs.deletePrefix('auth/s2/'), 3);
      assert.deepEqual(await blobs.list('auth/'), ['auth/s20/creds.json'], 'a sibling with a longer name survives');
      assert.equal(await blobs.deletePrefix('auth/s2/'), 0);
      await assert.rejects(blobs.deletePrefix(''), /non-empty prefix/);
      assert.deepEqual(await blobs.list(''), ['auth/s20/creds.json', 'media/s2/a']);
    });

    test('listModified gives each key under a prefix with its write time', async (t) => {
      const blobs = await factory(t);
      const t0 = Date.now();
      await blobs.put('uploads/s1/u_b', Buffer.from('b'));
      await blobs.put('uploads/s1/u_a', Buffer.from('a'));
      await blobs.put('uploads/s10/u_c', Buffer.from('c'));
      const t1 = Date.now();
      const listed = await blobs.listModified('uploads/s1/');
      assert.deepEqual(listed.map((e) => e.key), ['uploads/s1/u_a', 'uploads/s1/u_b']);
      // S3 keeps whole seconds: allow a second either side of the writes.
      for (const e of listed) assert.ok(e.modifiedAt >= t0 - 1000 && e.modifiedAt <= t1 + 1000, `${e.key} at ${e.modifiedAt}, written ${t0}-${t1}`);
      assert.deepEqual(await blobs.listModified('none/'), []);
    });

    test('keys with unusual but valid characters round-trip', async (t) => {
      const blobs = await factory(t);
      const keys = ["auth/s1/app-state-sync-key-AAAA_b-=.json", 'auth/s1/sender-key-123@g.us--456@s.whatsapp.net', "x/(it's)~!*,:"];
      for (const key of keys) await blobs.put(key, Buffer.from(key));
      for (const key of keys) assert.equal((await blobs.get(key))?.toString('utf8'), key);
      assert.deepEqual(await blobs.list('auth/s1/'), keys.slice(0, 2).sort());
    });

    test('bad keys are rejected before any I/O', async (t) => {
      const blobs = await factory(t);
      const bad = ['', '/abs', 'trailing/', 'a//b', '../escape', 'a/../../etc/passwd', 'a/./b', '.', '..', 'back\\slash', 'nul\u0000byte', 'plus+sign', 'space here', 'pct%2F', 'ünï', 'x'.repeat(1025)];
      for (const key of bad) {
        await assert.rejects(blobs.put(key, Buffer.from('x')), RangeError, `put ${JSON.stringify(key)}`);
        await assert.rejects(blobs.get(key), RangeError, `get ${JSON.stringify(key)}`);
        await assert.rejects(blobs.delete(key), RangeError, `delete ${JSON.stringify(key)}`);
      }
      await assert.rejects(blobs.list('../'), RangeError);
      await assert.rejects(blobs.deletePrefix('a/../'), RangeError);
      await blobs.ping();
    });
  });
}
