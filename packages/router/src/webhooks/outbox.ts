/**
 * The outbox writer: `WebhookOutbox.enqueue(tx, event, sessionWebhookUrl)` records one row per endpoint in
 * the caller's transaction. Re-enqueueing the same event id is a no-op per endpoint (unique (event_id,
 * endpoint), ON CONFLICT DO NOTHING).
 */
import { WEBHOOK_TOPICS } from '@wagw/shared';
import type { Logger, SqlTransaction, WebhookEvent, WebhookOutbox, WebhookTopic } from '@wagw/shared';

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

  async enqueue(tx: SqlTransaction, event: WebhookEvent, sessionWebhookUrl?: string | null): Promise<void> {
    await this.enqueueMany(tx, [{ event, sessionWebhookUrl }]);
  }

  /**
   * One INSERT for every row of `events` (one per event and endpoint), as arrays unnested in the given order, so
   * the rows' ids (the delivery order of an ordering stream) follow it; no bound on the count of parameters. A `write`:
   * on PostgreSQL it goes out with the transaction's COMMIT, and its failure fails the transaction.
   */
  async enqueueMany(tx: SqlTransaction, events: readonly { event: WebhookEvent; sessionWebhookUrl?: string | null }[]): Promise<void> {
    for (const { event } of events) {
      if (!EVENT_ID.test(event.id)) throw new TypeError(`webhook event id must be 1-255 printable ASCII characters, got ${JSON.stringify(event.id)}`);
      if (!(WEBHOOK_TOPICS as readonly string[]).includes(event.topic)) throw new TypeError(`unknown webhook topic ${JSON.stringify(event.topic)}`);
    }
    if (!this.#options.signingConfigured) {
      if (!this.#warnedUnsigned && events.some((e) => e.sessionWebhookUrl)) {
        this.#warnedUnsigned = true;
        this.#options.logger.warn('a session has a webhookUrl but WEBHOOK_SECRET is unset: no webhook is written');
      }
      return;
    }
    const cols: [string[], string[], string[], string[], string[], (string | null)[], (string | null)[]] = [[], [], [], [], [], [], []];
    for (const { event, sessionWebhookUrl } of events) {
      const endpoints = this.endpointsFor(event.topic, sessionWebhookUrl);
      if (endpoints.length === 0) continue;
      const payload = JSON.stringify(toPayload(event));
      const orderingKey = orderingKeyFor(event);
      for (const endpoint of endpoints) {
        cols[0].push(event.id);
        cols[1].push(event.sessionId);
        cols[2].push(endpoint);
        cols[3].push(event.topic);
        cols[4].push(payload);
        cols[5].push(orderingKey);
        cols[6].push(event.requestId ?? null);
      }
    }
    if (cols[0].length === 0) return;
    tx.write(
      `INSERT INTO webhook_outbox (event_id, session_id, endpoint, event_type, payload, ordering_key, request_id)
       SELECT event_id, session_id, endpoint, event_type, payload, ordering_key, request_id
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[])
              WITH ORDINALITY AS r(event_id, session_id, endpoint, event_type, payload, ordering_key, request_id, n)
        ORDER BY n
       ON CONFLICT (event_id, endpoint) DO NOTHING`,
      cols,
      { name: 'wagw_outbox_enqueue_many' },
    );
    this.#options.onEnqueued?.();
  }
}
