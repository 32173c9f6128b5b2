// Where a draining host sends a new session (packages/router/src/sessions/placement-host.ts): the least-loaded
// live host by load ratio, never itself, a draining or dead host, one without a ready shard or without room.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { placementHost } from '@wagw/router';
import type { HostRecord } from '@wagw/shared';

const NOW = 1_000_000;

function host(hostId: string, sessions: number, capacity: number, more: Partial<HostRecord> = {}): HostRecord {
  return { hostId, url: `http://${hostId}`, shards: 1, shardsReady: 1, sessions, capacity, draining: false, updatedAt: new Date(NOW).toISOString(), expiresAt: NOW + 3000, ...more };
}

describe('placementHost', () => {
  it('picks the lowest load ratio, not the fewest sessions', () => {
    assert.equal(placementHost([host('a', 10, 100), host('b', 5, 20), host('c', 30, 1000)], 'self', NOW), 'c');
  });

  it('never picks itself, a draining or dead host, one without a ready shard or one that is full', () => {
    const hosts = [
      host('self', 0, 100),
      host('draining', 0, 100, { draining: true }),
      host('dead', 0, 100, { expiresAt: NOW }),
      host('no-shard', 0, 100, { shardsReady: 0 }),
      host('full', 100, 100),
      host('busy', 90, 100),
    ];
    assert.equal(placementHost(hosts, 'self', NOW), 'busy');
    assert.equal(placementHost(hosts.slice(0, 5), 'self', NOW), null);
    assert.equal(placementHost([], 'self', NOW), null);
  });
});
