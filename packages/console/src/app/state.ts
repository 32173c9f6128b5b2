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

/** A status event's fields (the SSE `status` data). */
export interface StatusData {
  status?: string;
  shard?: number | null;
  host?: string | null;
  reason?: string;
  me?: Session['me'];
  at?: string;
}

const instant = (iso: string | undefined): number => {
  const t = iso === undefined ? NaN : Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
};

/**
 * A status event applied to the session it names. An event older than what the page holds (an event relayed late
 * by another host, or one a list read already reflected) changes nothing: the row's `updatedAt` and the event's `at`
 * are the same stored timestamp.
 */
export function applyStatus(s: Session, d: StatusData): Session {
  if (instant(d.at) < instant(s.updatedAt)) return s;
  return withLive(s, { status: d.status ?? s.status, shard: d.shard ?? s.shard, host: d.host ?? s.host, reason: d.reason, me: d.me }, d.at ?? s.updatedAt);
}

/** `base` with the live fields of `from` (status, placement, reason, account) as of `at`: no reason means none. */
function withLive(base: Session, from: Pick<Session, 'status' | 'shard' | 'host' | 'reason' | 'me'>, at: string): Session {
  const updated: Session = { ...base, status: from.status, shard: from.shard, host: from.host, updatedAt: at };
  if (from.reason !== undefined) updated.reason = from.reason;
  else delete updated.reason;
  if (from.me !== undefined) updated.me = from.me;
  return updated;
}

/**
 * The list just read, merged into what the page holds: a read that started before a status event arrived can
 * answer after it, and must not undo it (the session would show a stale status until the next read, a minute later).
 * So each session keeps whichever of the two is newer by `updatedAt`; sessions the read did not return are gone.
 */
export function mergeSessions(held: ReadonlyMap<string, Session>, read: readonly Session[]): Map<string, Session> {
  return new Map(
    read.map((s) => {
      const h = held.get(s.id);
      return [s.id, h === undefined || instant(h.updatedAt) <= instant(s.updatedAt) ? s : withLive(s, h, h.updatedAt)];
    }),
  );
}

export function time(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}
