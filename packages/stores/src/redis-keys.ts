/**
 * Every Redis key the stores use, in one place. `prefix` (default `wagw:`) namespaces a deployment or a
 * test run. Keys of one session share the `{sessionId}` hash tag so a future Redis Cluster port keeps a
 * session's lease and epoch in one slot.
 */
export const DEFAULT_REDIS_PREFIX = 'wagw:';

export interface RedisKeys {
  readonly prefix: string;
  /** Hash {owner, epoch, expiresAt} with a PEXPIRE: the live lease of a session. */
  lease(sessionId: string): string;
  /** Counter of the last epoch handed out for a session. Never expires, never reset by release or expiry. */
  epoch(sessionId: string): string;
  /** Sorted set of session ids scored by lease expiry: the leases one owner holds (may hold stale members). */
  owner(owner: string): string;
  /** String with PX expiry: the session's current QR code (JSON). */
  qr(sessionId: string): string;
  /** Hash host id -> JSON record: the routers of the cluster. */
  hosts(): string;
  /** Pub/sub channel of session events relayed between the routers (RelayedEvent as JSON). */
  events(): string;
  /** `lease(id)` is `leaseKeyParts[0] + id + leaseKeyParts[1]` (the owner-listing script builds keys so). */
  readonly leaseKeyParts: readonly [string, string];
}

export function redisKeys(prefix: string = DEFAULT_REDIS_PREFIX): RedisKeys {
  return {
    prefix,
    lease: (sessionId) => `${prefix}lease:{${sessionId}}`,
    epoch: (sessionId) => `${prefix}epoch:{${sessionId}}`,
    owner: (owner) => `${prefix}owner:${owner}`,
    qr: (sessionId) => `${prefix}qr:{${sessionId}}`,
    hosts: () => `${prefix}hosts`,
    events: () => `${prefix}events`,
    leaseKeyParts: [`${prefix}lease:{`, '}'],
  };
}
