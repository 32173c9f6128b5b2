/**
 * The file-system half of `LocalBlobStore.put`, run on a worker thread (piscina): the temp file is written and
 * fsynced, renamed over the target and the directory fsynced, all with synchronous calls in one task. On the
 * event loop the same steps are eight asynchronous calls, and each one's completion waits for a turn of the
 * caller's loop: on a busy shard that made the put, which a send waits for (the ratchet step is durable before
 * the stanza leaves), cost p50 6 ms and p99 50 ms where the calls themselves take about 1 ms (docs/benchmarks.md).
 *
 * Errors come back as their `code` (a thrown error crosses the thread boundary without it).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface PutTask {
  temp: string;
  target: string;
  data: Uint8Array;
}

/** `ok`, or why not: the `code` of the failing call (undefined for an error without one) and its message. */
export type PutOutcome = { ok: true } | { ok: false; code: string | undefined; message: string; step: 'write' | 'rename' | 'sync' };

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function put(task: PutTask): PutOutcome {
  const { temp, target, data } = task;
  try {
    writeFileSync(temp, data, { flag: 'wx', flush: true });
  } catch (err) {
    rmSync(temp, { force: true });
    return { ok: false, code: codeOf(err), message: (err as Error).message, step: 'write' };
  }
  for (let attempt = 0; ; attempt++) {
    try {
      // The directory usually exists (a session's auth log writes one object per send into it): rename first,
      // create the directory only when the rename says it is missing.
      if (attempt > 0) mkdirSync(path.dirname(target), { recursive: true });
      renameSync(temp, target);
      break;
    } catch (err) {
      const code = codeOf(err);
      // A missing parent directory, or one a concurrent delete pruned between mkdir and rename.
      if (code === 'ENOENT' && attempt < 3) continue;
      rmSync(temp, { force: true });
      return { ok: false, code, message: (err as Error).message, step: 'rename' };
    }
  }
  try {
    syncDir(path.dirname(target));
  } catch (err) {
    return { ok: false, code: codeOf(err), message: (err as Error).message, step: 'sync' };
  }
  return { ok: true };
}

/** Loads the module (the pool's start-up check). */
export function warmUp(): true {
  return true;
}
