import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Anything with node:test's `after(fn)`: a TestContext, a SuiteContext wrapper, or a hand-made list. */
export interface Cleanup {
  after(fn: () => Promise<void>): void;
}

/** A short random id safe in database names, Redis keys and bucket names (lowercase hex). */
export function randomId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/** A fresh directory under the OS temp dir, removed (recursively) by remove() or at the test's end. */
export async function tempDir(cleanup?: Cleanup, prefix = 'wagw-test-'): Promise<TempDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  let removed = false;
  const handle: TempDir = {
    path: dir,
    async remove() {
      if (removed) return;
      removed = true;
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  cleanup?.after(() => handle.remove());
  return handle;
}

export interface WaitForOptions {
  /** What is awaited, in words: it is the failure message ("timed out after 5000 ms waiting for <what>"). */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the time is up. A predicate that
 * throws counts as "not yet"; its last error is quoted in the timeout message.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  { what, timeoutMs = 5000, intervalMs = 50 }: WaitForOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') {
        return value as NonNullable<T>;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(intervalMs);
  }
}
