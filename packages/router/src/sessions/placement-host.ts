/**
 * Where a new session goes when this host does not take it (it is draining): the least-loaded live host that
 * takes sessions (not draining, a ready shard, room left), by load ratio. `null` when none exists; the create
 * then answers 503 HOST_UNAVAILABLE with Retry-After (docs/deployment.md, "Drain").
 */
import type { HostRecord } from '@wagw/shared';

/**
 * A host that takes sessions (new ones, orphans of a dead host, hand-offs): alive, not draining, with a ready
 * shard. Room left is the caller's question (orphan sharing counts free room, placement wants some).
 */
export function takesSessions(h: HostRecord, now = Date.now()): boolean {
  return !h.draining && h.expiresAt > now && h.shardsReady > 0;
}

export function placementHost(hosts: readonly HostRecord[], selfId: string, now = Date.now()): string | null {
  let best: HostRecord | undefined;
  for (const h of hosts) {
    if (h.hostId === selfId || !takesSessions(h, now) || h.sessions >= h.capacity) continue;
    if (best === undefined || h.sessions / h.capacity < best.sessions / best.capacity) best = h;
  }
  return best?.hostId ?? null;
}
