/**
 * `Idempotency-Key` for POST /messages, after draft-ietf-httpapi-idempotency-key-header: the pure logic the
 * router runs around its `idempotency_keys` table (see docs/messaging.md "Idempotency").
 *
 * - The key is 1-255 printable ASCII characters; a Structured-Field string (`"…"`) is unquoted first.
 * - A request is identified by (session, key); its fingerprint is SHA-256 over the method, the route and the
 *   canonical JSON of the *validated* body, so `087733760363` and `+6287733760363` are the same request.
 * - Same key + different fingerprint -> 422 IDEMPOTENCY_KEY_REUSED (the draft's 422 for key reuse).
 * - Same key while the first is still running -> 409 IDEMPOTENCY_IN_PROGRESS (the draft's 409), with Retry-After.
 * - Same key after completion -> the stored status and body are replayed, nothing is sent again.
 * - An in-progress record whose lock expired (its shard died) is taken over; the retry sends with the same
 *   WhatsApp message id (`deriveMessageId`), so even if the first attempt reached WhatsApp, the recipient
 *   gets one message and the store one row.
 */
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const IDEMPOTENCY_KEY_MAX = 255;
/** How long a completed key is remembered (the draft asks for a published expiry policy). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * The header's value as a key, undefined when absent; INVALID_IDEMPOTENCY_KEY when empty, too long, not
 * printable ASCII, or given twice with different values.
 */
export function parseIdempotencyKey(raw: string | readonly string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const values = typeof raw === 'string' ? [raw] : [...new Set(raw)];
  if (values.length !== 1) throw new GatewayError('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key was given more than once with different values.');
  let key = (values[0] as string).trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX || !/^[\x20-\x7e]+$/.test(key) || key.trim() !== key) {
    throw new GatewayError(
      'INVALID_IDEMPOTENCY_KEY',
      `Idempotency-Key must be 1-${IDEMPOTENCY_KEY_MAX} printable ASCII characters without surrounding spaces (a UUID is a good choice).`,
      { length: key.length },
    );
  }
  return key;
}

/** JSON with object keys sorted at every depth and undefined members dropped: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export interface FingerprintInput {
  method: string;
  /** The route with the session id, e.g. `/api/v1/sessions/s1/messages`. */
  path: string;
  /** The validated (normalized) body. */
  body: unknown;
}

/** SHA-256 hex of method, path and canonical body. */
export function requestFingerprint(input: FingerprintInput): string {
  return createHash('sha256')
    .update(`${input.method.toUpperCase()}\n${input.path}\n${canonicalJson(input.body) ?? ''}`)
    .digest('hex');
}

/**
 * The WhatsApp message id a keyed send uses: `3EB0` + 18 upper-case hex, the shape Baileys generates, derived
 * from (session, key) so every attempt of one request carries the same id.
 */
export function deriveMessageId(sessionId: string, key: string): string {
  return `3EB0${createHash('sha256').update(JSON.stringify([sessionId, key])).digest('hex').slice(0, 18).toUpperCase()}`;
}

export type IdempotencyRecord =
  | { state: 'in-progress'; fingerprint: string; /** epoch ms after which another attempt may take over */ lockedUntil: number }
  | { state: 'done'; fingerprint: string; status: number; body: unknown; completedAt: number };

export type IdempotencyDecision =
  /** No usable record: run the request (insert or take over an in-progress row whose lock expired). */
  | { action: 'proceed'; takeover: boolean }
  /** Completed before: answer with the stored response, add `Idempotent-Replayed: true`. */
  | { action: 'replay'; status: number; body: unknown }
  | { action: 'reject'; error: GatewayError };

/** What to do with a request carrying a key, given the stored record for (session, key). */
export function decideIdempotency(record: IdempotencyRecord | undefined, fingerprint: string, now: number): IdempotencyDecision {
  if (record === undefined) return { action: 'proceed', takeover: false };
  if (record.fingerprint !== fingerprint) {
    return {
      action: 'reject',
      error: new GatewayError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body; use a new key for a new message.'),
    };
  }
  if (record.state === 'done') return { action: 'replay', status: record.status, body: record.body };
  if (record.lockedUntil > now) {
    return {
      action: 'reject',
      error: new GatewayError('IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry later.', {
        retryAfterMs: record.lockedUntil - now,
      }),
    };
  }
  return { action: 'proceed', takeover: true };
}

/** Error codes after which nothing was sent, so the key is released and a retry may run again. */
const RELEASING_CODES = new Set(['QUEUE_FULL', 'QUEUE_TIMEOUT', 'QUEUE_CLOSED', 'RATE_LIMITED', 'SESSION_NOT_CONNECTED', 'SESSION_NOT_FOUND', 'SHUTTING_DOWN', 'LEASE_LOST']);

/**
 * Whether a finished request's response is stored for replay. 2xx and definite 4xx are stored; responses
 * after which a retry should really run again are not: 429 and other "nothing was sent" codes, 408/409/425,
 * and every 5xx (the outcome is unknown; the retry reuses the derived message id, so it cannot duplicate).
 */
export function shouldStoreOutcome(status: number, code?: string): boolean {
  if (code !== undefined && RELEASING_CODES.has(code)) return false;
  if (status >= 200 && status < 300) return true;
  if (status === 408 || status === 409 || status === 425 || status === 429) return false;
  return status >= 400 && status < 500;
}
