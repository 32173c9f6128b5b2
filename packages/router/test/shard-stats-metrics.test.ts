// The shard figures of /metrics (IPC outbox, login gate, send queues) come from one `stats` round per scrape:
// shared by the families of that scrape while it runs, never reused by the next scrape (a cached round showed
// old figures and broke test/messaging/crash.test.ts), and `ipc_pending_calls` is read after it settled, so
// the scrape's own stats calls are not counted as pending.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShardStats } from '@wagw/shared';
import { RouterMetrics } from '../src/metrics.ts';
import { MessageMetrics } from '../src/messages/metrics.ts';

function stats(depth: number): ShardStats {
  return {
    shardIndex: 0,
    pid: 1,
    uptimeMs: 1,
    sessions: 0,
    inFlight: 0,
    memory: { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 },
    eventLoop: { lagP50Ms: 0, lagP99Ms: 0, lagMaxMs: 0, utilization: 0 },
    cpuPool: { threads: 0, queued: 0, completed: 0, utilization: 0 },
    sendQueue: { depth: 2, inFlight: 1 },
    outbox: { depth, highWater: 7, capacity: 1000, waitingRequests: 3, coalescedTotal: 4 },
    loginGate: { waiting: 5, running: 2, rateLimitedWaits: 6 },
    authDurable: { waits: 9, waitSeconds: 0.25, slowWaits: 8 },
  };
}

test('one shard stats round per scrape, shared by its families; ipc_pending_calls read after it', async () => {
  const metrics = new RouterMetrics({ defaultMetrics: false });
  let rounds = 0;
  let pending = 0;
  metrics.trackShards({ list: () => [], pendingCount: () => pending });
  metrics.trackShardStats(async () => {
    rounds++;
    pending++; // the round's own stats call is pending while it runs
    await new Promise((resolve) => setTimeout(resolve, 10));
    pending--;
    return [{ shard: 0, stats: stats(rounds) }];
  });
  new MessageMetrics(metrics.registry, async () => (await metrics.shardStats()).map(({ shard, stats: st }) => ({ shard, ...st.sendQueue! })));
  // A round already running when the scrape starts (a concurrent scrape) is joined, and its stats call is
  // pending while ipc_pending_calls collects: it must be read once the round settled.
  const running = metrics.shardStats();
  const first = await metrics.registry.metrics();
  await running;
  assert.equal(rounds, 1, 'every family of one scrape shared one round');
  assert.match(first, /^wagw_shard_ipc_outbox_depth\{shard="0"\} 1$/m);
  assert.match(first, /^wagw_shard_ipc_outbox_high_water\{shard="0"\} 7$/m);
  assert.match(first, /^wagw_shard_ipc_outbox_capacity\{shard="0"\} 1000$/m);
  assert.match(first, /^wagw_shard_ipc_outbox_waiting_requests\{shard="0"\} 3$/m);
  assert.match(first, /^wagw_shard_ipc_outbox_coalesced_total\{shard="0"\} 4$/m);
  assert.match(first, /^wagw_login_gate_waiting\{shard="0"\} 5$/m);
  assert.match(first, /^wagw_login_gate_running\{shard="0"\} 2$/m);
  assert.match(first, /^wagw_login_gate_rate_limited_waits_total\{shard="0"\} 6$/m);
  assert.match(first, /^wagw_send_queue_depth\{shard="0",state="waiting"\} 2$/m);
  assert.match(first, /^wagw_shard_auth_durable_waits_total\{shard="0"\} 9$/m);
  assert.match(first, /^wagw_shard_auth_durable_wait_seconds_total\{shard="0"\} 0.25$/m);
  assert.match(first, /^wagw_shard_auth_durable_slow_waits_total\{shard="0"\} 8$/m);
  assert.match(first, /^ipc_pending_calls 0$/m, 'the scrape does not count its own stats calls');
  const second = await metrics.registry.metrics();
  assert.equal(rounds, 2, 'the next scrape asks the shards again');
  assert.match(second, /^wagw_shard_ipc_outbox_depth\{shard="0"\} 2$/m);
});
