import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import { freePort, randomId, waitFor } from './util.ts';
import type { Cleanup } from './util.ts';

/** The shared Redis of the machine (tests isolate themselves by key prefix, see redisNamespace). */
export function testRedisUrl(): string {
  return process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
}

export interface RedisNamespace {
  url: string;
  /** A unique key prefix for this test run, e.g. `wagw-test:3f9a0c1d2e4b:`. */
  prefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
}

/** A unique key prefix on the shared Redis; its keys are deleted at the test's end. */
export async function redisNamespace(cleanup?: Cleanup): Promise<RedisNamespace> {
  const url = testRedisUrl();
  const prefix = `wagw-test:${randomId()}:`;
  const handle: RedisNamespace = {
    url,
    prefix,
    async clear() {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await client.del(...keys);
        } while (cursor !== '0');
      } finally {
        client.disconnect();
      }
    },
  };
  cleanup?.after(() => handle.clear());
  return handle;
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGTERM and wait for the exit; the instance can be restarted. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit (a crash); the instance can be restarted. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after stop/kill; stops it first when running). Data is gone. */
  restart(): Promise<void>;
  /** True while the server process runs. */
  readonly running: boolean;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test process that dies before its hooks run must not leave redis-server behind.
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString('utf8').startsWith('+PONG')));
  });
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/**
 * Starts a private redis-server (no persistence) on a free port, for fault tests that kill or restart it.
 * Stopped at the test's end when `cleanup` is given.
 */
export async function startPrivateRedis(cleanup?: Cleanup): Promise<PrivateRedis> {
  const port = await freePort();
  const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
  let child: ChildProcess | undefined;
  let stderr = '';

  const start = async () => {
    stderr = '';
    const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    trackChild(proc);
    child = proc;
    const spawnError = once(proc, 'spawn').then(
      () => null,
      (err: unknown) => err,
    );
    if ((await spawnError) !== null) throw new Error(`Could not start ${bin}: ${String(await spawnError)}`);
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${stderr.trim()}`);
        return pingOnce(port);
      },
      { what: `private redis-server on port ${port} to answer PING`, timeoutMs: 5000, intervalMs: 25 },
    );
  };

  await start();
  const handle: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop: () => stopChild(child, 'SIGTERM'),
    kill: () => stopChild(child, 'SIGKILL'),
    async restart() {
      await stopChild(child, 'SIGTERM');
      await start();
    },
  };
  cleanup?.after(() => stopChild(child, 'SIGKILL'));
  return handle;
}
