/**
 * A cluster of real router processes on one Redis + PostgreSQL + S3, each host on its own loopback address
 * (127.0.0.2, .3, ...; all of 127.0.0.0/8 is local on Linux) with its own HOST_ID and PUBLIC_URL, and its
 * own process group (router + shards), so a test can SIGKILL or SIGSTOP a whole host at once.
 *
 * Redis isolation: the router processes use the default key prefix, so the cluster gets a Redis database
 * index of its own (REDIS_URL path) that no other test uses at the same time; its keys are deleted at the end.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createTestDatabase, randomId, startS3, tempDir, testRedisUrl, waitFor } from '../harness/index.ts';
import type { Cleanup } from '../harness/index.ts';
import { Api, ROUTER_MAIN, sessionTestEnv, startSim } from '../sessions/helpers.ts';
import type { Sim } from '../sessions/helpers.ts';

export interface Host {
  id: string;
  ip: string;
  url: string;
  api: Api;
  child: ChildProcess;
  stdout(): string;
  /** Signals the host's whole process group (router and its shards). */
  signal(sig: NodeJS.Signals): void;
  /** Waits for the router to exit; its exit code (null when killed by a signal). */
  exited(): Promise<number | null>;
  alive(): boolean;
  /** Only for a host started with `{ redisProxy: true }`: cuts (true) or restores (false) its Redis connections. */
  cutRedis(cut: boolean): void;
}

/**
 * A TCP proxy to Redis that the test controls: `cut(true)` destroys every connection through it and refuses new
 * ones (the host is cut off from Redis, not killed); `cut(false)` lets connections through again.
 */
async function startRedisProxy(t: Cleanup, target: URL): Promise<{ port: number; cut(on: boolean): void }> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as net.AddressInfo).port,
    cut(on) {
      cut = on;
      if (on) for (const sock of sockets) sock.destroy();
    },
  };
}

export interface Cluster {
  sim: Sim['sim'];
  hosts: Host[];
  /** The cluster's PostgreSQL database (to count stored rows directly). */
  sql: pg.Pool;
  /** The stores the hosts share (DATABASE_URL, REDIS_URL, S3_*): bench/cluster.ts provisions sessions with them. */
  storesEnv: Record<string, string>;
  /** Starts one more host (e.g. a fourth, empty one). */
  addHost(overrides?: Record<string, string>, options?: { redisProxy?: boolean }): Promise<Host>;
}

async function freePortOn(ip: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, ip, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no TCP address'));
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * A Redis database index for this run, claimed with a marker key (NX) so two runs never share one; `release`
 * empties it (marker included) once every host of the run is dead.
 */
async function freeRedisDb(): Promise<{ url: string; release(): Promise<void> }> {
  const base = testRedisUrl().replace(/\/\d*$/, '');
  for (const db of [11, 12, 13, 14, 15, 10, 9, 8].sort(() => Math.random() - 0.5)) {
    const client = new Redis(`${base}/${db}`, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    // A marker key claims the index for this run (NX): two runs never share one.
    const mine = await client.set('wagw-cluster-test:lock', randomId(), 'PX', 600_000, 'NX');
    if (mine === 'OK') {
      // Left by a run that died before its release: not ours, gone.
      for (const key of await client.keys('wagw:*')) await client.del(key);
      return {
        url: `${base}/${db}`,
        async release() {
          await client.flushdb();
          client.disconnect();
        },
      };
    }
    client.disconnect();
  }
  throw new Error('no free Redis database index for the cluster test');
}

export async function startCluster(t: Cleanup, count: number, overrides: Record<string, string> = {}): Promise<Cluster> {
  const dir = await tempDir(t);
  const sim = await startSim(t, dir.path);
  // Cleanups run in the order they were registered: this one first kills every host (a live router would
  // announce itself again into the emptied database), then releases the Redis database.
  const killers: (() => Promise<void>)[] = [];
  let releaseRedis: () => Promise<void> = async () => undefined;
  t.after(async () => {
    for (const kill of killers) await kill();
    await releaseRedis();
  });
  const [redis, db, s3] = await Promise.all([freeRedisDb(), createTestDatabase(t), startS3(t)]);
  const redisUrl = redis.url;
  releaseRedis = () => redis.release();
  const sql = new pg.Pool({ connectionString: db.url, max: 2 });
  // The database may be dropped (cleanup) before the pool ends: its idle clients then report an error.
  sql.on('error', () => undefined);
  t.after(() => sql.end());
  const run = randomId(3);
  const hosts: Host[] = [];
  const addHost = async (more: Record<string, string> = {}, options: { redisProxy?: boolean } = {}): Promise<Host> => {
    const n = hosts.length;
    let hostRedisUrl = redisUrl;
    let cutRedis: (cut: boolean) => void = () => {
      throw new Error(`host ${n} has no Redis proxy`);
    };
    if (options.redisProxy === true) {
      const target = new URL(redisUrl);
      const proxy = await startRedisProxy(t, target);
      hostRedisUrl = `redis://127.0.0.1:${proxy.port}${target.pathname}`;
      cutRedis = (cut) => proxy.cut(cut);
    }
    const ip = `127.0.0.${n + 2}`;
    const id = `h${n}-${run}`;
    const port = await freePortOn(ip);
    const url = `http://${ip}:${port}`;
    const hostDir = await tempDir(t);
    const env = sessionTestEnv(hostDir.path, {
      ...sim.env,
      REDIS_URL: hostRedisUrl,
      DATABASE_URL: db.url,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: s3.bucket,
      HOST: ip,
      PORT: String(port),
      PUBLIC_URL: url,
      HOST_ID: id,
      SHARD_COUNT: '1',
      LEASE_TTL_MS: '4000',
      LEASE_RENEW_INTERVAL_MS: '1000',
      HOST_DEAD_AFTER_MS: '3000',
      SESSION_LOGIN_CONCURRENCY: '4',
      ...overrides,
      ...more,
    });
    // Its own process group (detached): a signal to -pid reaches the router and every shard it forked.
    const child = spawn(process.execPath, [ROUTER_MAIN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const signal = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-(child.pid as number), sig);
      } catch {
        // the group is gone already
      }
    };
    killers.push(async () => {
      signal('SIGCONT');
      signal('SIGKILL');
      await exit;
    });
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`host ${id} exited ${child.exitCode}: ${err}`);
        return /listening on http/.test(out);
      },
      { what: `host ${id} to listen`, timeoutMs: 60_000, intervalMs: 50 },
    );
    const host: Host = {
      id,
      ip,
      url,
      api: new Api(url),
      child,
      stdout: () => out,
      signal,
      exited: () => exit,
      alive: () => child.exitCode === null && child.signalCode === null,
      cutRedis,
    };
    hosts.push(host);
    return host;
  };
  for (let i = 0; i < count; i++) await addHost();
  const storesEnv = { REDIS_URL: redisUrl, DATABASE_URL: db.url, S3_ENDPOINT: s3.endpoint, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_BUCKET: s3.bucket };
  return { sim: sim.sim, hosts, sql, storesEnv, addHost };
}

export interface HostListEntry {
  hostId: string;
  state: 'alive' | 'draining' | 'dead';
  sessions: number;
  capacity: number;
  shardsReady: number;
  draining: boolean;
  lastHeartbeatAt: string;
}

export async function listHosts(api: Api): Promise<HostListEntry[]> {
  const r = await api.get<{ hosts: HostListEntry[] }>('/api/v1/admin/hosts');
  if (r.status !== 200) throw new Error(`GET hosts: ${r.status} ${r.raw.toString()}`);
  return r.body.hosts;
}

/** Rows of the sessions table by id: where each runs according to PostgreSQL. */
export async function sessionRows(sql: pg.Pool, ids: readonly string[]): Promise<Map<string, { host: string | null; status: string; connectedAt: Date | null }>> {
  const res = await sql.query<{ id: string; host_id: string | null; status: string; connected_at: Date | null }>(
    'SELECT id, host_id, status, connected_at FROM sessions WHERE id = ANY($1::text[])',
    [ids],
  );
  return new Map(res.rows.map((r) => [r.id, { host: r.host_id, status: r.status, connectedAt: r.connected_at }]));
}



/** An SSE stream read in the background (e.g. `GET /api/v1/events` of one host): its text so far; close() ends it. */
export function openEventStream(url: string): { text(): string; close(): void } {
  const controller = new AbortController();
  let text = '';
  void (async () => {
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
      if (res.body === null) return;
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) text += chunk;
    } catch {
      // aborted by close(), or the host went away: the text so far stays readable
    }
  })();
  return { text: () => text, close: () => controller.abort() };
}
