/**
 * A preload for memory benches (bench/shard-memory.ts), never loaded in production:
 *
 *   NODE_OPTIONS="--import /abs/path/bench/mem-probe.ts"
 *
 * On SIGUSR2 the process writes `process.memoryUsage()`, V8's heap spaces and malloc's view (from /proc) to
 * `<os.tmpdir()>/wagw-mem-probe/<pid>.json`, and, when that directory holds a file named `snapshot-<pid>`, a heap
 * snapshot to `<pid>.heapsnapshot` first. NODE_OPTIONS and TMPDIR are the two variables a shard inherits from
 * the router (shardEnvironment), so the router, its shards and bench/scale-bare.ts can all be asked the same way.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import v8 from 'node:v8';

export const PROBE_DIR = path.join(os.tmpdir(), 'wagw-mem-probe');

function status(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const m = /^(VmRSS|RssAnon|RssFile|VmData|Threads):\s+(\d+)/.exec(line);
      if (m?.[1] !== undefined) out[m[1]] = Number(m[2]);
    }
  } catch {
    // not Linux
  }
  return out;
}

if (isMainThread) {
  process.on('SIGUSR2', () => {
    mkdirSync(PROBE_DIR, { recursive: true });
    const file = path.join(PROBE_DIR, `${process.pid}.json`);
    if (existsSync(path.join(PROBE_DIR, `snapshot-${process.pid}`))) {
      globalThis.gc?.();
      v8.writeHeapSnapshot(path.join(PROBE_DIR, `${process.pid}.heapsnapshot`));
    }
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
    const body = { pid: process.pid, argv: process.argv.slice(1), memory: process.memoryUsage(), heap: v8.getHeapStatistics(), spaces, proc: status(), handles: process.getActiveResourcesInfo().reduce<Record<string, number>>((acc, k) => ((acc[k] = (acc[k] ?? 0) + 1), acc), {}) };
    writeFileSync(`${file}.tmp`, JSON.stringify(body));
    renameSync(`${file}.tmp`, file);
  });
}
