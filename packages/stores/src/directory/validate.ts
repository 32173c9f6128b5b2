export function assertTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`Lease TTL must be a positive integer of ms (got ${ttlMs})`);
}

export function assertSessionId(sessionId: string): void {
  if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 256) {
    throw new RangeError('Session id must be a non-empty string of at most 256 characters');
  }
}
