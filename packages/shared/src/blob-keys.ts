/**
 * Every blob store key layout, in one place (like `redisKeys` in @wagw/stores for Redis). The router writes
 * uploads and deletes a session's objects; the shard writes auth state and inbound media and reads uploads:
 * both sides must agree on these strings, so neither builds them by hand.
 */
export const blobKeys = {
  /** Everything that belongs to one session's login (removed on logout and delete). */
  session: (sessionId: string): string => `sessions/${sessionId}/`,
  /** The session's auth state: snapshots and logs (layout in shard/src/auth/blob-auth-state.ts). */
  auth: (sessionId: string): string => `sessions/${sessionId}/auth/`,
  /** Every upload of every session (the expiry sweep walks this). */
  uploadsRoot: (): string => 'uploads/',
  /** The uploads of one session. */
  uploads: (sessionId: string): string => `uploads/${sessionId}/`,
  /** One upload (a file sent with `POST /uploads`, or a group picture) the shard reads by id; `.meta` beside it. */
  upload: (sessionId: string, uploadId: string): string => `uploads/${sessionId}/${uploadId}`,
  /** The media of one stored message (inbound downloads and sent media). */
  media: (sessionId: string, messageId: string): string => `media/${sessionId}/${messageId}`,
} as const;
