/**
 * What a session does when its socket closes, by WhatsApp disconnect reason: one exhaustive table.
 * 401 logged out: wipe and stop; 515 restart required: reconnect now; 440 replaced: back off, never fight;
 * 408/428/500/503 and the rest: reconnect with capped backoff, then `failed`.
 */
export type DisconnectAction =
  | { kind: 'logged-out' }
  | { kind: 'reconnect-now' }
  | { kind: 'reconnect-backoff' }
  | { kind: 'replaced' }
  | { kind: 'stop'; reason: string };

/** Status codes Baileys reports in `lastDisconnect.error.output.statusCode` (its DisconnectReason). */
export const DISCONNECT_CODES = {
  connectionClosed: 428,
  connectionLost: 408,
  connectionReplaced: 440,
  loggedOut: 401,
  badSession: 500,
  restartRequired: 515,
  multideviceMismatch: 411,
  forbidden: 403,
  unavailableService: 503,
} as const;

type KnownCode = (typeof DISCONNECT_CODES)[keyof typeof DISCONNECT_CODES];

const TABLE: Readonly<Record<KnownCode, DisconnectAction>> = {
  401: { kind: 'logged-out' },
  403: { kind: 'stop', reason: 'forbidden: WhatsApp refused this account (403)' },
  408: { kind: 'reconnect-backoff' },
  411: { kind: 'stop', reason: 'multi-device mismatch (411): the account must be linked again' },
  428: { kind: 'reconnect-backoff' },
  440: { kind: 'replaced' },
  500: { kind: 'reconnect-backoff' },
  503: { kind: 'reconnect-backoff' },
  515: { kind: 'reconnect-now' },
};

export function disconnectAction(statusCode: number | undefined): DisconnectAction {
  if (statusCode !== undefined && Object.hasOwn(TABLE, statusCode)) return TABLE[statusCode as KnownCode];
  return { kind: 'reconnect-backoff' };
}

// The backoff (equal jitter) lives in @wagw/shared; re-exported because messaging/inbound.ts imports it from here.
export { backoffDelay } from '@wagw/shared';
