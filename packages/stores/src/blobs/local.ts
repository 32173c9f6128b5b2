import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '@wagw/shared';
import { assertBlobKey, assertBlobPrefix, BlobKeyError, compareKeys } from './keys.ts';

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Blobs as files under a data directory, for single-host embedded mode.
 *
 * Layout: `<root>/objects/<key>` holds the objects, `<root>/tmp/` the writes in flight. A write goes to a
 * temp file, is fsynced, renamed over the target (atomic on one filesystem) and the directory is fsynced:
 * after a kill -9 a reader sees the old object or the new one, never a torn one. Leftover temp files are
 * removed at start. Content types are not kept (the interface never returns them).
 *
 * Unlike S3, a key cannot be both an object and a prefix of other objects (`a` and `a/b`): such a put fails.
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local' as const;
  readonly root: string;
  readonly #objects: string;
  readonly #tmp: string;

  private constructor(root: string) {
    this.root = root;
    this.#objects = path.join(root, 'objects');
    this.#tmp = path.join(root, 'tmp');
  }

  /**
   * Opens (creating when missing) the store under `root` and clears writes a crash left behind. Several
   * processes may share one root (the router and its shards): only the first opener clears, the others pass
   * `keepTemp` so they never delete a peer's write in flight.
   */
  static async create(root: string, options: { keepTemp?: boolean } = {}): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(path.resolve(root));
    await mkdir(store.#objects, { recursive: true });
    if (options.keepTemp !== true) await rm(store.#tmp, { recursive: true, force: true });
    await mkdir(store.#tmp, { recursive: true });
    return store;
  }

  #path(key: string): string {
    assertBlobKey(key);
    const full = path.join(this.#objects, ...key.split('/'));
    // Belt and braces: validation already rules out escaping, this proves it.
    if (!full.startsWith(this.#objects + path.sep)) throw new BlobKeyError('key', key, 'escapes the data directory');
    return full;
  }

  #tempPath(): string {
    return path.join(this.#tmp, `${Date.now()}-${randomBytes(6).toString('hex')}`);
  }

  async #syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Moves a complete, fsynced temp file into place. */
  async #commit(temp: string, key: string, target: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // The directory usually exists (a session's auth log writes one object per send into it): rename first,
        // create the directory only when the rename says it is missing (one file-system call fewer per put).
        if (attempt > 0) await mkdir(path.dirname(target), { recursive: true });
        await rename(temp, target);
        break;
      } catch (err) {
        const code = errCode(err);
        // A missing parent directory, or one a concurrent delete pruned between mkdir and rename.
        if (code === 'ENOENT' && attempt < 3) continue;
        await rm(temp, { force: true });
        if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
          throw new BlobKeyError('key', key, 'conflicts with an existing key (a key cannot also be a prefix of other keys here)');
        }
        throw err;
      }
    }
    await this.#syncDir(path.dirname(target));
  }

  async put(key: string, data: Uint8Array, _contentType?: string): Promise<void> {
    const target = this.#path(key);
    const temp = this.#tempPath();
    await writeFile(temp, data, { flag: 'wx', flush: true });
    await this.#commit(temp, key, target);
  }

  /**
   * Appends to the object (its directories and the file created when missing): one write and one fdatasync, and an
   * fsync of the directory only when the file is new. No temp file: a crash may leave a prefix of the last append,
   * which readers of appended objects recognise (BlobStore.append).
   */
  async append(key: string, data: Uint8Array): Promise<void> {
    const target = this.#path(key);
    let handle;
    try {
      handle = await open(target, 'a').catch(async (err: unknown) => {
        if (errCode(err) !== 'ENOENT') throw err;
        await mkdir(path.dirname(target), { recursive: true });
        return await open(target, 'a');
      });
    } catch (err) {
      const code = errCode(err);
      if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
        throw new BlobKeyError('key', key, 'conflicts with an existing key (a key cannot also be a prefix of other keys here)');
      }
      throw err;
    }
    let created: boolean;
    try {
      created = (await handle.stat()).size === 0;
      await handle.writeFile(data);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    if (created) await this.#syncDir(path.dirname(target));
  }

  async putStream(key: string, body: Readable, _contentType?: string): Promise<number> {
    const target = this.#path(key);
    const temp = this.#tempPath();
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(temp, { flags: 'wx', flush: true }));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.#commit(temp, key, target);
    return bytes;
  }

  async get(key: string): Promise<Buffer | null> {
    const target = this.#path(key);
    try {
      return await readFile(target);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return null;
      throw err;
    }
  }

  async getStream(key: string): Promise<Readable | null> {
    const target = this.#path(key);
    try {
      const handle = await open(target, 'r');
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        return null;
      }
      return handle.createReadStream();
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dirPart = slash === -1 ? '' : prefix.slice(0, slash);
    const dir = dirPart === '' ? this.#objects : path.join(this.#objects, ...dirPart.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { recursive: true, withFileTypes: true });
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
    const keys: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const key = path.relative(this.#objects, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys.sort(compareKeys);
  }

  async listModified(prefix: string): Promise<{ key: string; modifiedAt: number }[]> {
    const out: { key: string; modifiedAt: number }[] = [];
    for (const key of await this.list(prefix)) {
      try {
        out.push({ key, modifiedAt: (await stat(this.#path(key))).mtimeMs });
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err; // deleted since the listing
      }
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    const target = this.#path(key);
    try {
      await unlink(target);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw err;
    }
    await this.#prune(path.dirname(target));
  }

  /** Removes empty directories from `dir` up to (not including) the objects root. */
  async #prune(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.#objects + path.sep)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, already gone, or in use: stop
      }
      current = path.dirname(current);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw new BlobKeyError('prefix', prefix, 'deletePrefix needs a non-empty prefix');
    const keys = await this.list(prefix);
    for (const key of keys) await this.delete(key);
    return keys.length;
  }

  async ping(): Promise<void> {
    const s = await stat(this.#objects);
    if (!s.isDirectory()) throw new Error(`${this.#objects} is not a directory`);
  }

  async close(): Promise<void> {}
}
