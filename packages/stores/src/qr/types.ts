/**
 * QR codes of sessions waiting to be linked. They live only in a cache with their TTL (Redis in production,
 * the router's memory embedded), never in SQL: a QR is worthless once it expires.
 */
export interface CachedQr {
  /** The QR string Baileys produced (what the phone scans). */
  qr: string;
  /** Lease epoch of the socket that produced it (a QR of an older owner is ignored). */
  epoch: number;
  /** 0 for the first QR of a login attempt. */
  index: number;
  /** Epoch milliseconds at which the QR expires. */
  expiresAt: number;
}

export interface QrCache {
  readonly kind: 'redis' | 'memory';
  /** Stores the session's current QR for `ttlMs` (replacing any previous one). */
  set(sessionId: string, entry: CachedQr, ttlMs: number): Promise<void>;
  /** The current QR, or null when none or expired. */
  get(sessionId: string): Promise<CachedQr | null>;
  delete(sessionId: string): Promise<void>;
}
