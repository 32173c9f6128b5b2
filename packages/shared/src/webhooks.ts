/**
 * Webhook events the gateway reports to the backend (`{BACKEND_URL}/api/webhooks/{topic}`) and to a
 * session's own `webhookUrl`. They are written to a durable outbox in the same transaction as the state they
 * report and delivered at-least-once, signed with Standard Webhooks headers.
 */
import type { SessionState } from './session-state.ts';
import type { SqlTransaction } from './stores.ts';

export const WEBHOOK_TOPICS = ['session-status', 'message-status', 'messages', 'group-update'] as const;
export type WebhookTopic = (typeof WEBHOOK_TOPICS)[number];

export interface WebhookEvent<T = unknown> {
  /** Deterministic: the same fact always yields the same id, so receivers can de-duplicate on it. */
  id: string;
  topic: WebhookTopic;
  sessionId: string;
  /** ISO-8601 time the fact happened. */
  occurredAt: string;
  data: T;
  /**
   * Correlation id: the `x-request-id` of the API request that caused the event (a send behind a
   * message-status, the create behind a QR), sent as the `x-request-id` header of every delivery. Not part of
   * the payload or of the event id: the same fact keeps one id whoever caused it.
   */
  requestId?: string;
}

export interface SessionStatusData {
  status: SessionState;
  reason?: string;
  me?: { phone: string; jid: string; lid?: string; name?: string };
  /** Present when status is `qr`: the QR string and when it expires. */
  qr?: string;
  qrExpiresAt?: string;
}

export interface WebhookOutbox {
  /**
   * Records `event` for every endpoint that must receive it (the backend, when configured, and the session's
   * own webhook URL, when given) inside the caller's transaction `tx`. Enqueuing the same event id twice for
   * one endpoint is a no-op.
   */
  enqueue(tx: SqlTransaction, event: WebhookEvent, sessionWebhookUrl?: string | null): Promise<void>;
  /**
   * `enqueue` for many events in one statement (the group-committed message writes: docs/benchmarks.md), in the
   * order given: rows of one ordering stream keep that order.
   */
  enqueueMany(tx: SqlTransaction, events: readonly { event: WebhookEvent; sessionWebhookUrl?: string | null }[]): Promise<void>;
}
