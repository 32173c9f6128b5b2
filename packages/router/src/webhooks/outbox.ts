/**
 * The outbox writer: `WebhookOutbox.enqueue(tx, event, sessionWebhookUrl)` records one row per endpoint in
 * the caller's transaction. Re-enqueueing the same event id is a no-op per endpoint (unique (event_id,
 * endpoint), ON CONFLICT DO NOTHING).
 */
import { WEBHOOK_TOPICS } from '@wagw/shared';
import type { Logger, SqlClient, WebhookEvent, WebhookOutbox, WebhookTopic } from '@wagw/shared';

/** The JSON body every receiver gets (and the only thing stored as payload: never a secret or key). */
export interface WebhookPayload {
  id: string;
  type: WebhookTopic;
  sessionId: string;
  timestamp: string;
  data: unknown;
}

export function toPayload(event: WebhookEvent): WebhookPayload {
  return { id: event.id, type: event.topic, sessionId: event.sessionId, timestamp: event.occurredAt, data: event.data };
}

/**
 * The ordering stream of an event at one endpoint (rows of one stream are delivered one at a time, oldest
 * first); null when order does not matter:
 * - `session-status`: one stream per session (qr -> connected -> logged_out must not overtake each other);
 * - `message-status`: one stream per message when `data.messageId` (or `data.id`) is a string, so
 *   sent -> delivered -> read arrive in order while different messages flow in parallel;
 * - `messages`: none (each carries WhatsApp's timestamp; a busy session must not be throttled to one
 *   round trip per message);
 * - `group-update`: one stream per group of a session.
 */
export function orderingKeyFor(event: WebhookEvent): string | null {
  switch (event.topic) {
    case 'session-status':
      return `${event.sessionId}|session-status`;
    case 'message-status': {
      const data = event.data as { messageId?: unknown; id?: unknown } | null;
      const messageId = typeof data?.messageId === 'string' ? data.messageId : typeof data?.id === 'string' ? data.id : undefined;
      return messageId === undefined ? null : `${event.sessionId}|message-status|${messageId}`;
    }
    case 'messages':
      return null;
    case 'group-update': {
      // one stream per group: add -> promote -> remove of one member must not overtake each other
      const group = (event.data as { group?: unknown } | null)?.group;
      return typeof group === 'string' ? `${event.sessionId}|group-update|${group}` : `${event.sessionId}|group-update`;
    }
  }
}

export interface OutboxWriterOptions {
  /** `{BACKEND_URL}` without a trailing slash, or undefined in standalone mode. */
  backendUrl: string | undefined;
  /** False when WEBHOOK_SECRET is unset: nothing is written (unsigned webhooks are never sent). */
  signingConfigured: boolean;
  logger: Logger;
  /** Called after each enqueue that wrote rows (the dispatcher wakes shortly after, once the tx committed). */
  onEnqueued?: () => void;
}

const EVENT_ID = /^[\x21-\x7e]{1,255}$/;

export function backendEndpoint(backendUrl: string, topic: WebhookTopic): string {
  return `${backendUrl}/api/webhooks/${topic}`;
}

export class OutboxWriter implements WebhookOutbox {
  readonly #options: OutboxWriterOptions;
  #warnedUnsigned = false;

  constructor(options: OutboxWriterOptions) {
    this.#options = options;
  }

  /** The endpoints an event goes to. */
  endpointsFor(topic: WebhookTopic, sessionWebhookUrl?: string | null): string[] {
    const endpoints: string[] = [];
    if (this.#options.backendUrl !== undefined) endpoints.push(backendEndpoint(this.#options.backendUrl, topic));
    if (sessionWebhookUrl !== undefined && sessionWebhookUrl !== null && sessionWebhookUrl !== '') {
      let ok = false;
      try {
        const u = new URL(sessionWebhookUrl);
        ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
      } catch {
        ok = false;
      }
      if (ok && !endpoints.includes(sessionWebhookUrl)) endpoints.push(sessionWebhookUrl);
      else if (!ok) this.#options.logger.warn({ topic }, 'session webhookUrl is not a valid http(s) URL without credentials; skipped');
    }
    return endpoints;
  }

  async enqueue(tx: SqlClient, event: WebhookEvent, sessionWebhookUrl?: string | null): Promise<void> {
    if (!EVENT_ID.test(event.id)) throw new TypeError(`webhook event id must be 1-255 printable ASCII characters, got ${JSON.stringify(event.id)}`);
    if (!(WEBHOOK_TOPICS as readonly string[]).includes(event.topic)) throw new TypeError(`unknown webhook topic ${JSON.stringify(event.topic)}`);
    if (!this.#options.signingConfigured) {
      if (!this.#warnedUnsigned && sessionWebhookUrl) {
        this.#warnedUnsigned = true;
        this.#options.logger.warn('a session has a webhookUrl but WEBHOOK_SECRET is unset: no webhook is written');
      }
      return;
    }
    const endpoints = this.endpointsFor(event.topic, sessionWebhookUrl);
    if (endpoints.length === 0) return;
    const payload = JSON.stringify(toPayload(event));
    const orderingKey = orderingKeyFor(event);
    const values: string[] = [];
    const params: unknown[] = [event.id, event.sessionId, event.topic, payload, orderingKey, event.requestId ?? null];
    for (const endpoint of endpoints) {
      params.push(endpoint);
      values.push(`($1, $2, $${params.length}, $3, $4::jsonb, $5, $6)`);
    }
    await tx.query(
      `INSERT INTO webhook_outbox (event_id, session_id, endpoint, event_type, payload, ordering_key, request_id)
       VALUES ${values.join(', ')}
       ON CONFLICT (event_id, endpoint) DO NOTHING`,
      params,
    );
    this.#options.onEnqueued?.();
  }
}
