// The whole router SIGTERMed and started again (a real router process with its shards): every session comes
// back connected from its stored auth state, without a QR. Runs once on the embedded stores and once on
// Redis + PostgreSQL + S3 (s3rver).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startPrivateRedis, tempDir, waitFor } from '../harness/index.ts';
import { Api, mapLimit, pairByQr, productionStores, sessionTestEnv, startRouterProcess, startSim } from './helpers.ts';
import type { Cleanup } from '../harness/index.ts';

async function routerRestart(t: Cleanup & { diagnostic(msg: string): void }, extraEnv: Record<string, string>, label: string): Promise<void> {
  const dir = await tempDir(t);
  const { sim, env } = await startSim(t, dir.path);
  const fullEnv = sessionTestEnv(dir.path, { ...env, ...extraEnv });
  const first = await startRouterProcess(t, fullEnv);
  const api1 = new Api(first.url);
  const ids = [0, 1, 2, 3, 4].map((i) => `${label}-${i}`);
  const phones = ids.map((id) => sim.createPhone({ name: id }));
  await mapLimit(ids, 3, (id, i) => pairByQr(api1, sim, phones[i]!, id)).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\nrouter log:\n${first.stdout().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-10).join('\n')}`);
  });
  const pairings = sim.snapshot().pairings;

  assert.equal(await first.stop('SIGTERM'), 0, first.stderr());
  // Graceful: sockets closed, leases released.
  await waitFor(() => sim.devices().every((d) => d.live === 0), { what: 'every socket closed after SIGTERM', timeoutMs: 10_000 });

  const t0 = Date.now();
  const second = await startRouterProcess(t, fullEnv);
  const api2 = new Api(second.url);
  await waitFor(
    async () => {
      for (const id of ids) {
        const s = await api2.session(id);
        if (s.status !== 'connected' || Date.parse((s as unknown as { connectedAt: string }).connectedAt) < t0) return false;
      }
      return true;
    },
    { what: 'every session connected after the restart', timeoutMs: 60_000, intervalMs: 150 },
  );
  t.diagnostic(`${ids.length} sessions connected ${Date.now() - t0} ms after the second start (${label})`);
  for (const [i, id] of ids.entries()) assert.equal((await api2.session(id)).me?.jid, phones[i]!.jid);
  assert.equal(sim.snapshot().pairings, pairings, 'nothing paired again');
  assert.equal(sim.snapshot().concurrentLoginViolations, 0);
  assert.equal(await second.stop('SIGTERM'), 0, second.stderr());
}

describe('router restart', () => {
  test('SIGTERM the router and start it again: every session back (embedded stores)', async (t) => {
    await routerRestart(t, {}, 'emb');
  });

  test('SIGTERM the router and start it again: every session back (Redis + PostgreSQL + S3)', async (t) => {
    // A router process uses the default key prefix: give it a private redis-server.
    const [prod, redis] = await Promise.all([productionStores(t), startPrivateRedis(t)]);
    await routerRestart(t, { ...prod.env, REDIS_URL: redis.url }, 'prod');
  });
});
