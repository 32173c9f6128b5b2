// What every page gets from the shell: the caller, the live session list and the event stream.
import { ApiError } from './api.ts';
import type { SseEvent } from './api.ts';
import type { Session } from './sessions.ts';

export interface Me {
  kind: 'jwt' | 'api-key' | 'anonymous';
  subject: string;
  scopes: string[];
  sessions: string[] | null;
}

export interface Ctx {
  me: Me;
  sessions: Map<string, Session>;
  reload: () => Promise<void>;
  /** The latest QR string of each session (from the stream). */
  qr: Map<string, { qr: string; at: number }>;
  /** Status events of each session seen since sign-in: the session view reads the stored history again on each. */
  history: Map<string, SseEvent[]>;
  /** Bumped on each message or message-status event of a session (the chat view reloads). */
  messageTick: Map<string, number>;
  events: SseEvent[];
  live: boolean;
  simulator: boolean;
  listError: string;
}

/** `admin` implies every scope (the gateway's rule). */
export function can(me: Me, scope: string): boolean {
  return me.scopes.includes('admin') || me.scopes.includes(scope);
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export function time(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}
