// Disk full for the embedded data directory (DATA_DIR on a small tmpfs mounted by the test; it runs as root):
// while the disk is full the gateway answers with clear errors and does not crash; once space returns it works
// again, and a restart from the same directory restores its session without a QR (no corrupted state).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { tempDir, waitFor } from '../harness/index.ts';
import { sessionTestEnv, startGateway, startSim } from '../sessions/helpers.ts';
import type { Gateway } from '../sessions/helpers.ts';

const SIZE = process.env['WAGW_TEST_DISK_SIZE'] ?? '256m';

/** Writes files (`filler`, `filler2`) until the file system is full. */
function fill(dir: string): void {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // The last partial blocks too: the disk must be really full.
  const small = Buffer.alloc(512, 1);
  const fd2 = openSync(path.join(dir, 'filler2'), 'w');
  try {
    for (;;) writeSync(fd2, small);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd2);
  }
}

describe('Disk full', () => {
  test('embedded DATA_DIR full: clear errors, no crash; afterwards works and restores its session without QR', async (t) => {
    const simDir = await tempDir(t);
    const { sim, env } = await startSim(t, simDir.path);
    sim.receiptDelayMs = 0;
    // Not a tempDir: its removal would delete the data directory under a running gateway. Cleaned up in the
    // finally below, in order: space back, gateway stopped, file system unmounted, mount point removed.
    const mount = { path: mkdtempSync(path.join(os.tmpdir(), 'wagw-disk-')) };
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', mount.path]);
    const free = () => {
      rmSync(path.join(mount.path, 'filler'), { force: true });
      rmSync(path.join(mount.path, 'filler2'), { force: true });
    };
    let current: Gateway | undefined;
    try {
      const dataDir = path.join(mount.path, 'data');
      const envFor = () => sessionTestEnv(dataDir, { ...env, SHARD_COUNT: '1' });
      let gw = await startGateway(t, { env: envFor() });
      current = gw;
      const me = sim.createPhone({ name: 'disk' });
      const friend = sim.createPhone({ name: 'friend' });
      await waitFor(async () => (await gw.api.post('/api/v1/sessions', { id: 'disk' })).status === 201, { what: 'session created', timeoutMs: 30_000, intervalMs: 250 });
      await sim.scanQr(me, await gw.api.waitQr('disk'));
      await gw.api.waitStatus('disk', 'connected');
      const first = await friend.sendText(me.jid, 'before the disk filled');
      await waitFor(async () => (await gw.api.get(`/api/v1/sessions/disk/messages/${first.id}`)).status === 200, { what: 'first message stored', timeoutMs: 20_000 });
      const pairings = sim.snapshot().pairings;

      fill(mount.path);
      const during: string[] = [];
      for (let i = 0; i < 3; i++) during.push((await friend.sendText(me.jid, `while full ${i}`)).id);
      // API calls while full: an answer, never a 500 or a hang.
      const send = await fetch(`${gw.url}/api/v1/sessions/disk/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'disk-1' },
        body: JSON.stringify({ to: friend.jid, type: 'text', text: 'sent while full' }),
        signal: AbortSignal.timeout(30_000),
      });
      const sendBody = await send.text();
      t.diagnostic(`send while full: ${send.status} ${sendBody}`);
      // PGlite cannot extend its files (SQLSTATE 53100): a 503 naming the dependency and "disk full", not a 500.
      assert.equal(send.status, 503, sendBody);
      assert.match(sendBody, /DEPENDENCY_UNAVAILABLE.*disk full/);
      const get = await fetch(`${gw.url}/api/v1/sessions/disk`, { signal: AbortSignal.timeout(30_000) });
      const getBody = await get.text();
      t.diagnostic(`get while full: ${get.status} ${getBody}`);
      assert.notEqual(get.status, 500, getBody);

      free();
      await waitFor(
        async () => {
          for (const id of during) if ((await gw.api.get(`/api/v1/sessions/disk/messages/${id}`)).status !== 200) return false;
          return true;
        },
        { what: 'messages sent while the disk was full stored once space returned', timeoutMs: 60_000, intervalMs: 500 },
      );

      // No corrupted state: a fresh gateway on the same directory restores the session without a QR.
      await gw.stop();
      gw = await startGateway(t, { env: envFor() });
      current = gw;
      const restarted = gw;
      await restarted.api.waitStatus('disk', 'connected', 60_000).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify((await restarted.api.session('disk')))}`);
      });
      const after = await friend.sendText(me.jid, 'after the restart');
      await waitFor(async () => (await gw.api.get(`/api/v1/sessions/disk/messages/${after.id}`)).status === 200, { what: 'a message after the restart stored', timeoutMs: 30_000 });
      const snap = sim.snapshot();
      assert.equal(snap.pairings, pairings, 'not paired again');
      assert.equal(snap.concurrentLoginViolations, 0);
    } finally {
      free();
      await current?.stop();
      execFileSync('umount', ['-l', mount.path]);
      rmSync(mount.path, { recursive: true, force: true });
    }
  });
});
