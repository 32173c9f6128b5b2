/**
 * The router as operators run it: `node packages/router/src/main.ts` with real shards and embedded stores.
 * Request ids reach the shard's logs; SIGTERM exits 0 in time with no child left; bad config exits 1.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROUTER_MAIN, alive, until } from './helpers.ts';

interface Running {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  text: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

function startRouter(env: Record<string, string>): Running {
  const child = spawn(process.execPath, [ROUTER_MAIN], { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const running: Running = {
    child,
    lines: [],
    text: [],
    stderr: [],
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  let buf = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        running.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        running.text.push(line);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => running.stderr.push(chunk.toString()));
  return running;
}

describe('router process', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'wagw-router-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('propagates x-request-id to the shard logs, and exits 0 on SIGTERM leaving no child behind', async () => {
    const r = startRouter({
      NODE_ENV: 'test',
      LOG_LEVEL: 'debug',
      HOST: '127.0.0.1',
      PORT: '0',
      SHARD_COUNT: '2',
      WORKER_THREADS: '1',
      DATA_DIR: dataDir,
      SHARD_STOP_TIMEOUT_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    try {
      await until(() => r.text.some((t) => t.includes('listening on')) || r.child.exitCode !== null, 60_000, 'router listening');
      const url = /listening on (\S+)/.exec(r.text.find((t) => t.includes('listening on')) ?? '')?.[1];
      assert.ok(url, `router printed its address; stderr: ${r.stderr.join('')}`);

      const res = await fetch(`${url}/health`, { headers: { 'x-request-id': 'abc' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-request-id'), 'abc');
      const health = (await res.json()) as { shards: { pid: number; state: string }[]; dependencies: Record<string, { ok: boolean }> };
      assert.deepEqual(health.shards.map((s) => s.state), ['ready', 'ready']);
      assert.ok(Object.values(health.dependencies).length >= 1 && Object.values(health.dependencies).every((d) => d.ok));
      const pids = health.shards.map((s) => s.pid);
      assert.deepEqual(pids.map(alive), [true, true]);

      // The same id in the router's line for the request and in each shard's line for the IPC call it made.
      await until(() => r.lines.filter((l) => l['proc'] === 'shard' && l['reqId'] === 'abc').length >= 2, 3000, 'shard log lines with reqId');
      const shardLines = r.lines.filter((l) => l['proc'] === 'shard' && l['reqId'] === 'abc');
      assert.deepEqual(new Set(shardLines.map((l) => l['shard'])), new Set([0, 1]));
      assert.ok(shardLines.every((l) => l['msg'] === 'ipc request' && l['kind'] === 'ping'));
      // The router's access line may reach stdout after the shards' lines (buffered log writes): wait, do not race.
      await until(() => r.lines.some((l) => l['proc'] === 'router' && l['reqId'] === 'abc' && l['msg'] === 'request'), 3000, 'the router access line with reqId');

      const t0 = performance.now();
      r.child.kill('SIGTERM');
      const exit = await r.exited;
      const ms = performance.now() - t0;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(ms < 5000, `exited within SHUTDOWN_TIMEOUT_MS (${ms.toFixed(0)} ms)`);
      assert.deepEqual(pids.map(alive), [false, false], 'no shard process left behind');
      assert.ok(r.lines.some((l) => l['msg'] === 'router stopped'));
      const stoppedShards = r.lines.filter((l) => l['proc'] === 'router' && l['msg'] === 'shard stopped');
      assert.deepEqual(stoppedShards.map((l) => l['code']).sort(), [0, 0], 'each shard exited 0 after its shutdown request');
    } finally {
      if (r.child.exitCode === null) r.child.kill('SIGKILL');
    }
  });

  it('exits 1 naming every bad variable, without a stack trace', async () => {
    const r = startRouter({ SHARD_COUNT: 'abc', PORT: 'http', DATA_DIR: dataDir });
    const exit = await r.exited;
    assert.equal(exit.code, 1);
    const err = r.stderr.join('');
    assert.match(err, /SHARD_COUNT/);
    assert.match(err, /PORT/);
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
    assert.equal(r.lines.length, 0, 'nothing started');
  });

  it('refuses to start in production without authentication: CONFIG_INVALID printed, exit 1, nothing listens', async () => {
    const r = startRouter({ NODE_ENV: 'production', DATA_DIR: dataDir, PORT: '0', SHARD_COUNT: '1' });
    const exit = await r.exited;
    assert.equal(exit.code, 1);
    const err = r.stderr.join('');
    assert.match(err, /Invalid configuration/);
    assert.match(err, /AUTH_JWT_SECRET, AUTH_JWKS_URL, AUTH_API_KEYS/);
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
    assert.ok(!r.text.some((t) => t.includes('listening on')), 'never listened');
  });
});
