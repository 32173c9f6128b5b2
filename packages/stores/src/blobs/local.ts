import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '@wagw/shared';
import { assertBlobKey, assertBlobPrefix, BlobKeyError, compareKeys } from './keys.ts';

/** An appended file: 'a' (create, append) with O_DSYNC, so each write is durable when it returns (`append`). */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;

/**
 * A file kept open for appends. `busy`: appends running on it (it is closed only at 0). `dropped`: no new append
 * may use it (evicted, idle, failed, or its key deleted or replaced); the next append opens the file again.
 * `dirSynced`: its directory entry is durable (set once the directory was fsynced after the file's first write).
 */
interface Appender {
  handle: FileHandle;
  dirSynced: boolean;
  busy: number;
  dropped: boolean;
  usedAt: number;
}

export interface LocalBlobStoreOptions {
  /** Only the first opener of a shared root clears its temp files (`create`). */
  keepTemp?: boolean;
  /** Files kept open for appends, least recently used closed first (default 256). */
  maxOpenAppends?: number;
  /** An append file unused this long is closed (ms, default 5000). */
  appendIdleMs?: number;
  /** An append file unused this long is checked to be still in its directory before the next append (ms, default 1000). */
  appendRecheckMs?: number;
}

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The file system's answer when a key's path collides with another key's (a file where a directory must be, or the
 * reverse): `a/b` cannot be stored here beside `a/b/c`. Undefined for any other failure.
 */
function keyConflict(err: unknown, key: string): BlobKeyError | undefined {
  const code = errCode(err);
  if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
    return new BlobKeyError('key', key, 'conflicts with an existing key (a key cannot also be a prefix of other keys here)');
  }
  return undefined;
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
  /** Append files by path, least recently used first (see `append`). */
  readonly #appenders = new Map<string, Promise<Appender>>();
  readonly #maxOpenAppends: number;
  readonly #appendIdleMs: number;
  readonly #appendRecheckMs: number;
  #idleSweep: NodeJS.Timeout | undefined;

  private constructor(root: string, options: LocalBlobStoreOptions) {
    this.root = root;
    this.#objects = path.join(root, 'objects');
    this.#tmp = path.join(root, 'tmp');
    this.#maxOpenAppends = options.maxOpenAppends ?? 256;
    this.#appendIdleMs = options.appendIdleMs ?? 5000;
    this.#appendRecheckMs = options.appendRecheckMs ?? 1000;
  }

  /**
   * Opens (creating when missing) the store under `root` and clears writes a crash left behind. Several
   * processes may share one root (the router and its shards): only the first opener clears, the others pass
   * `keepTemp` so they never delete a peer's write in flight.
   */
  static async create(root: string, options: LocalBlobStoreOptions = {}): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(path.resolve(root), options);
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
        throw keyConflict(err, key) ?? err;
      }
    }
    await this.#syncDir(path.dirname(target));
  }

  async put(key: string, data: Uint8Array, _contentType?: string): Promise<void> {
    const target = this.#path(key);
    void this.#forget(target);
    const temp = this.#tempPath();
    await writeFile(temp, data, { flag: 'wx', flush: true });
    await this.#commit(temp, key, target);
  }

  /**
   * Appends to the object (its directories and the file created when missing): one write to a file opened with
   * O_DSYNC (the write returns once its data and the size that reaches it are on disk, as a write then an fdatasync
   * do, in one call: one trip through libuv's thread pool and one wake-up of the event loop instead of two), and an
   * fsync of the directory only when the file is new. No temp file: a crash may leave a prefix of the last append,
   * which readers of appended objects recognise (BlobStore.append).
   *
   * The file stays open for the next append to it (an auth-state journal gets one per write): opening, checking and
   * closing it each time cost as much again as the write and its fdatasync (docs/benchmarks.md). At most
   * `maxOpenAppends` stay open, each for `appendIdleMs` after its last use. A failed append closes its file, and
   * `put` or `delete` of the key closes it before changing the file. Another process may delete or replace the file
   * (a new owner's compaction, a session deleted by the router) while it is open here: a file unused for
   * `appendRecheckMs` is checked to be still linked (one fstat) before the next append, and opened again if not.
   * Within that time the key's only writer is this process, the lease holder of its session.
   */
  async append(key: string, data: Uint8Array): Promise<void> {
    const target = this.#path(key);
    const appender = await this.#appender(key, target);
    try {
      await appender.handle.writeFile(data); // durable on return: O_DSYNC (APPEND_FLAGS)
      if (!appender.dirSynced) {
        await this.#syncDir(path.dirname(target));
        appender.dirSynced = true;
      }
    } catch (err) {
      this.#drop(target, appender);
      throw err;
    } finally {
      appender.busy--;
      appender.usedAt = performance.now();
      void this.#closeIfDone(appender);
    }
  }

  /** The open file of `target`, counted busy: the cached one, or a new one (closing the least recently used beyond the cap). */
  async #appender(key: string, target: string): Promise<Appender> {
    const cached = this.#appenders.get(target);
    if (cached !== undefined) {
      this.#appenders.delete(target);
      this.#appenders.set(target, cached);
      const appender = await cached.catch(() => undefined);
      if (appender !== undefined && !appender.dropped) {
        appender.busy++;
        if (performance.now() - appender.usedAt < this.#appendRecheckMs || (await this.#stillLinked(appender))) return appender;
        appender.busy--;
        this.#drop(target, appender);
      }
    }
    const opening = this.#openAppender(key, target);
    this.#appenders.set(target, opening);
    let appender: Appender;
    try {
      appender = await opening;
    } catch (err) {
      if (this.#appenders.get(target) === opening) this.#appenders.delete(target);
      throw err;
    }
    appender.busy++;
    this.#evict();
    this.#idleSweep ??= setInterval(() => this.#closeIdle(), Math.max(100, this.#appendIdleMs / 2)).unref();
    return appender;
  }

  /** False when the open file is no longer in the directory (another process deleted it, or replaced it by a rename). */
  async #stillLinked(appender: Appender): Promise<boolean> {
    try {
      return (await appender.handle.stat()).nlink > 0;
    } catch {
      return false;
    }
  }

  async #openAppender(key: string, target: string): Promise<Appender> {
    let handle: FileHandle;
    try {
      handle = await open(target, APPEND_FLAGS, 0o666).catch(async (err: unknown) => {
        if (errCode(err) !== 'ENOENT') throw err;
        await mkdir(path.dirname(target), { recursive: true });
        return await open(target, APPEND_FLAGS, 0o666);
      });
    } catch (err) {
      throw keyConflict(err, key) ?? err;
    }
    try {
      // A file with bytes was written and its directory fsynced by an earlier append; an empty one may be new.
      const dirSynced = (await handle.stat()).size > 0;
      return { handle, dirSynced, busy: 0, dropped: false, usedAt: performance.now() };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** No new append uses this file; it is closed once its running appends ended. */
  #drop(target: string, appender: Appender): void {
    appender.dropped = true;
    const entry = this.#appenders.get(target);
    if (entry !== undefined) {
      // Remove the map's entry only if it is this file's (a newer one may have replaced it).
      void entry.then(
        (current) => {
          if (current === appender && this.#appenders.get(target) === entry) this.#appenders.delete(target);
        },
        () => undefined,
      );
    }
    void this.#closeIfDone(appender);
  }

  /** Closes a dropped file once no append runs on it (the last one to end closes it). */
  async #closeIfDone(appender: Appender): Promise<void> {
    if (appender.dropped && appender.busy === 0) await appender.handle.close().catch(() => undefined);
  }

  /** Before a put or delete of `target`: its open append file (if any) is closed, and the next append opens the new one. */
  #forget(target: string): Promise<void> {
    const entry = this.#appenders.get(target);
    if (entry === undefined) return Promise.resolve();
    this.#appenders.delete(target);
    return entry.then(
      async (appender) => {
        if (appender.dropped) return;
        appender.dropped = true;
        await this.#closeIfDone(appender);
      },
      () => undefined,
    );
  }

  /** Closes the least recently used files beyond `maxOpenAppends` (one with an append running, once it ended). */
  #evict(): void {
    let excess = this.#appenders.size - this.#maxOpenAppends;
    for (const target of this.#appenders.keys()) {
      if (excess <= 0) return;
      void this.#forget(target);
      excess--;
    }
  }

  #closeIdle(): void {
    const before = performance.now() - this.#appendIdleMs;
    for (const [target, entry] of this.#appenders) {
      void entry.then(
        (appender) => {
          if (appender.busy === 0 && appender.usedAt < before && this.#appenders.get(target) === entry) void this.#forget(target);
        },
        () => undefined,
      );
    }
  }

  async putStream(key: string, body: Readable, _contentType?: string): Promise<number> {
    const target = this.#path(key);
    void this.#forget(target);
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
    void this.#forget(target);
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

  /** Closes the files kept open for appends (appends running now end first). */
  async close(): Promise<void> {
    clearInterval(this.#idleSweep);
    this.#idleSweep = undefined;
    await Promise.all([...this.#appenders.keys()].map((target) => this.#forget(target)));
  }
}
