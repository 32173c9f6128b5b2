/** A session's lifecycle: a string union of states with the transitions allowed between them. */
export const SESSION_STATES = [
  'starting',
  'qr',
  'pairing',
  'connected',
  'reconnecting',
  'disconnected',
  'logged_out',
  'failed',
] as const;

export type SessionState = (typeof SESSION_STATES)[number];

const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  starting: ['qr', 'pairing', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'],
  qr: ['qr', 'pairing', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'],
  pairing: ['qr', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'],
  connected: ['reconnecting', 'disconnected', 'logged_out', 'failed'],
  reconnecting: ['starting', 'qr', 'connected', 'reconnecting', 'disconnected', 'logged_out', 'failed'],
  disconnected: ['starting'],
  logged_out: ['starting'],
  failed: ['starting'],
};

export function isSessionState(value: unknown): value is SessionState {
  return typeof value === 'string' && (SESSION_STATES as readonly string[]).includes(value);
}

/** The transitions of TRANSITIONS; the session runner (shard) checks every change against it. */
export function canTransition(from: SessionState, to: SessionState): boolean {
  return TRANSITIONS[from].includes(to);
}
