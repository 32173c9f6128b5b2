/**
 * HAProxy from deploy/haproxy/haproxy.cfg as a child process in front of routers, for the deployment tests.
 * The config is templated through HAProxy's own "${NAME}" expansion, so the test passes the same variables an
 * operator (or docker-compose.yml) does, with loopback addresses.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../harness/index.ts';
import type { Cleanup } from '../harness/index.ts';

export const HAPROXY_CFG = fileURLToPath(new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url));

/** The haproxy binary, or a failure that says how to get it (the test fails rather than skips without it). */
export function haproxyBin(): string {
  const bin = process.env['HAPROXY_BIN'] ?? 'haproxy';
  const probe = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `haproxy is not installed (${bin} -v: ${probe.error?.message ?? probe.stderr}). Install it with ` +
        '`apt-get install -y haproxy` (.ci/run does this) or point HAPROXY_BIN at the binary.',
    );
  }
  return bin;
}

export interface ServerState {
  name: string;
  /** HAProxy's status column: UP, DOWN, "UP 1/2", "DOWN 1/2", MAINT, ... */
  status: string;
  /** The last check's result, e.g. L7OK, L7STS (wrong status), L4CON (connection refused); HAProxy's "* " prefix of a check in progress is stripped. */
  check: string;
  /** Requests (HTTP sessions) HAProxy sent to this server so far. */
  requests: number;
}

export interface HaproxyProcess {
  url: string;
  stats(): Promise<ServerState[]>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts haproxy with the reference config; `gateways` are host:port of the three routers. */
export async function startHaproxy(t: Cleanup, gateways: readonly [string, string, string], checkInter = '300ms'): Promise<HaproxyProcess> {
  const bin = haproxyBin();
  const [port, statsPort] = [await freePort(), await freePort()];
  const env = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    LB_BIND: `127.0.0.1:${port}`,
    LB_STATS_BIND: `127.0.0.1:${statsPort}`,
    LB_CHECK_INTER: checkInter,
    GATEWAY_1: gateways[0],
    GATEWAY_2: gateways[1],
    GATEWAY_3: gateways[2],
  };
  // -db: foreground, no daemon, so the test owns the process and its exit.
  const child = spawn(bin, ['-f', HAPROXY_CFG, '-db'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  const statsUrl = `http://127.0.0.1:${statsPort}/stats;csv`;
  const stats = async (): Promise<ServerState[]> => {
    const text = await (await fetch(statsUrl)).text();
    const [header, ...rows] = text.replace(/^# /, '').trim().split('\n');
    const cols = (header ?? '').split(',');
    const at = (name: string) => cols.indexOf(name);
    return rows
      .map((r) => r.split(','))
      .filter((c) => c[at('pxname')] === 'routers' && c[at('svname')] !== 'BACKEND' && c[at('svname')] !== 'FRONTEND')
      .map((c) => ({ name: c[at('svname')] ?? '', status: c[at('status')] ?? '', check: (c[at('check_status')] ?? '').replace(/^\* /, ''), requests: Number(c[at('stot')] ?? 0) }));
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${err}`);
      return await stats().then((s) => s.length === 3, () => false);
    },
    { what: 'haproxy to serve its stats page', timeoutMs: 10_000, intervalMs: 50 },
  );
  return { url: `http://127.0.0.1:${port}`, stats, stderr: () => err, stop };
}
