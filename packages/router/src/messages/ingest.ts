/**
 * The router's side of the shards' requests (`ShardRequestMap`): inbound messages are inserted once
 * (ON CONFLICT DO NOTHING: WhatsApp re-deliveries and retries after a crash store nothing twice) with their
 * `messages` webhook in the same transaction, then published on SSE; `message.get` serves Baileys' retry
 * requests from the stored raw proto (a miss is an empty answer, never an empty message).
 */
import type { GroupUpdateWire, Logger, MessageStatusWire, MessagesReceivedParams, ShardRequestHandlers, ShardRequestResult, SqlClient, StoredContent, SqlDatabase, WebhookOutbox, WireMessage } from '@wagw/shared';
import type { EventHub } from '../api/sse.ts';
import type { MessageMetrics } from './metrics.ts';
import { MessageStore } from './store.ts';
import type { TransactionRunner } from './group-commit.ts';

export interface MessageIngestOptions {
  sql: SqlDatabase;
  /** Group commit for inbound messages and status changes (messages/group-commit.ts); absent: sql. */
  writer?: TransactionRunner;
  hub: EventHub;
  outbox?: WebhookOutbox;
  metrics?: MessageMetrics;
  logger: Logger;
}

/** The `message-status` event id of `status` for a message: one per status, so a retry or a second writer is a no-op. */
export function messageStatusEventId(sessionId: string, messageId: string, status: MessageStatusWire['status']): string {
  return `mst_${sessionId}_${messageId}_${status}`;
}

/**
 * The `sent` status of an own message, in the transaction that first stores its row (the API send once WhatsApp
 * acked it, or the socket's echo of an own message, whichever stores it first): its `message-status` webhook
 * (its history row is written by the row's own INSERT statement: `MessageStore.insert` with `sentEvent`). In
 * that transaction because a receipt's `delivered` waits for the row, so `sent` is always enqueued before it in
 * the message's ordered stream (docs/webhooks.md).
 */
export async function recordSentStatus(
  tx: SqlClient,
  outbox: WebhookOutbox | undefined,
  sessionId: string,
  message: Pick<WireMessage, 'id' | 'chat' | 'timestamp'>,
  requestId: string | undefined,
  webhookUrl?: string | null,
): Promise<{ messageId: string; chat: string; status: 'sent'; at: string }> {
  const data = { messageId: message.id, chat: message.chat, status: 'sent' as const, at: message.timestamp };
  if (outbox !== undefined) {
    const url = webhookUrl !== undefined ? webhookUrl : ((await tx.query<{ webhook_url: string | null }>(`SELECT webhook_url FROM sessions WHERE id = $1`, [sessionId])).rows[0]?.webhook_url ?? null);
    const event = { id: messageStatusEventId(sessionId, message.id, 'sent'), topic: 'message-status' as const, sessionId, occurredAt: message.timestamp, data };
    await outbox.enqueue(tx, requestId === undefined ? event : { ...event, requestId }, url);
  }
  return data;
}

/** What `storeMessage` wrote: the content as stored (with `applied` on an edit/revoke) and the `sent` status of an own message. */
export interface StoredWrite {
  message: StoredContent;
  sent?: { messageId: string; chat: string; status: 'sent'; at: string };
}

/**
 * The one writer of a message row: inserts it once (ON CONFLICT DO NOTHING) with, in the same transaction `tx`,
 * what it changes on its target (reaction, poll vote, edit, revoke), its `messages` webhook and, for an own
 * message, its `sent` status (`recordSentStatus`). Every row, received or sent, is written here, through the
 * shard's `message.received`: an API send's message too (the shard stores it right after relaying it, before
 * answering the send: messages/sender.ts writes nothing). Undefined when the row existed (a re-delivery or a
 * retried send): nothing is written. `hook` caches the session's webhook URL across the calls of one transaction.
 */
export async function storeMessage(
  tx: SqlClient,
  deps: { store: MessageStore; outbox?: WebhookOutbox | undefined },
  sessionId: string,
  item: { message: StoredContent; raw: string | undefined; requestId?: string | undefined },
  hook: { url?: string | null } = {},
): Promise<StoredWrite | undefined> {
  const { store, outbox } = deps;
  let message = item.message;
  if (!(await store.insert(sessionId, message, message.fromMe ? 'sent' : 'received', item.raw, tx, item.requestId, message.fromMe))) return undefined;
  if (message.type === 'reaction') await store.applyReaction(sessionId, message, tx);
  if (message.type === 'poll-vote') await store.applyPollVote(sessionId, message, tx);
  if (message.type === 'edit' || message.type === 'revoke') {
    // The row, its webhook and SSE say whether the target changed (same chat, same author: store.ts).
    const applied = message.type === 'edit' ? await store.applyEdit(sessionId, message, tx) : await store.applyRevoke(sessionId, message, tx);
    const field = message.type;
    message = { ...message, [field]: { ...message[field], applied } };
    await tx.query(`UPDATE messages SET content = jsonb_set(content, '{${field}}', $3::jsonb) WHERE session_id = $1 AND id = $2`, [sessionId, message.id, JSON.stringify(message[field])]);
  }
  if (outbox !== undefined) {
    // Read once per transaction and only when a row was inserted (a re-delivery needs no lookup).
    if (hook.url === undefined) {
      const r = await tx.query<{ webhook_url: string | null }>(`SELECT webhook_url FROM sessions WHERE id = $1`, [sessionId]);
      hook.url = r.rows[0]?.webhook_url ?? null;
    }
    await outbox.enqueue(tx, { id: `msg_${sessionId}_${message.id}`, topic: 'messages', sessionId, occurredAt: message.timestamp, data: message }, hook.url);
  }
  if (!message.fromMe) return { message };
  return { message, sent: await recordSentStatus(tx, outbox, sessionId, message, item.requestId, hook.url) };
}

/** Order of the statuses of a sent message; `failed` ranks above all so it is only set from pending/sent (checked in SQL). */
const STATUS_RANK: Record<MessageStatusWire['status'], number> = { sent: 1, delivered: 2, read: 3, played: 4, failed: 5 };

export class MessageIngest {
  readonly #o: MessageIngestOptions;
  readonly #store: MessageStore;
  readonly #writer: TransactionRunner;

  constructor(options: MessageIngestOptions) {
    this.#o = options;
    this.#writer = options.writer ?? options.sql;
    this.#store = new MessageStore(options.sql);
  }

  /**
   * The answer to each kind of shard request (`ShardRequestMap`), typed per kind; the supervisor dispatches with
   * `answerShardRequest`. A kind added to the protocol fails to compile here until it is answered.
   */
  readonly handlers: ShardRequestHandlers = {
    'message.received': async (shard, request) => await this.#received(shard, request),
    'message.status': async (_shard, request) => await this.#status(request.sessionId, request.updates),
    'group.updated': async (_shard, request) => await this.#groupUpdates(request.sessionId, request.updates),
    'message.get': async (_shard, request) => await this.#get(request.sessionId, request.id),
  };

  /** A stored message's raw proto and author for Baileys' retry requests; `{}` when unknown or stored without one. */
  async #get(sessionId: string, id: string): Promise<ShardRequestResult<'message.get'>> {
    const row = await this.#store.get(sessionId, id);
    if (row?.raw === null || row?.raw === undefined) return {};
    const content = typeof row.content === 'string' ? (JSON.parse(row.content) as StoredContent) : row.content;
    const out: ShardRequestResult<'message.get'> = { raw: row.raw, chat: row.chat_jid, fromMe: row.from_me };
    if (row.sender_jid !== null) out.from = row.sender_jid;
    if (typeof content['fromLid'] === 'string') out.fromLid = content['fromLid'];
    return out;
  }

  /**
   * Moves each message's status forward (never backwards), with the `message-status` webhook and history row
   * in the same transaction; then SSE. A receipt can overtake the row of a send that is still being stored:
   * an unknown id is retried briefly.
   */
  async #status(sessionId: string, updates: readonly MessageStatusWire[]): Promise<{ changed: number }> {
    let changed = 0;
    let missing = [...updates];
    for (let attempt = 0; attempt < 10 && missing.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * attempt));
      const next: MessageStatusWire[] = [];
      for (const u of missing) {
        const r = await this.#applyStatus(sessionId, u);
        if (r === 'missing') next.push(u);
        else if (r === 'changed') changed++;
      }
      missing = next;
    }
    return { changed };
  }

  async #applyStatus(sessionId: string, u: MessageStatusWire): Promise<'changed' | 'same' | 'missing'> {
    const rank = STATUS_RANK[u.status];
    const outbox = this.#o.outbox;
    const result = await this.#writer.transaction(async (tx) => {
      // One statement (one round trip): the forward-only move, its history row, and whether the message exists
      // at all (an unknown id is a receipt that overtook its row: retried). Always one result row.
      const upd = await tx.query<{ chat_jid: string | null; request_id: string | null; webhook_url: string | null; found: boolean }>(
        `WITH upd AS (
           UPDATE messages m SET status = $3, updated_at = now()
            WHERE m.session_id = $1 AND m.id = $2 AND m.from_me
              AND (CASE m.status WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'played' THEN 4 ELSE 9 END) < $4
              AND NOT ($3 = 'failed' AND m.status NOT IN ('pending', 'sent'))
           RETURNING m.chat_jid, m.request_id, (SELECT webhook_url FROM sessions s WHERE s.id = m.session_id) AS webhook_url
         ), ev AS (
           INSERT INTO message_status_events (session_id, message_id, status, recipient_jid, occurred_at)
           SELECT $1::text, $2::text, $3::text, upd.chat_jid, $5::timestamptz FROM upd
         )
         SELECT upd.chat_jid, upd.request_id, upd.webhook_url, EXISTS (SELECT 1 FROM messages WHERE session_id = $1 AND id = $2) AS found
           FROM (SELECT 1) AS one LEFT JOIN upd ON true`,
        [sessionId, u.id, u.status, rank, u.at],
      );
      const row = upd.rows[0];
      if (row === undefined || row.chat_jid === null) return row?.found === true ? ('same' as const) : ('missing' as const);
      const data = { messageId: u.id, chat: row.chat_jid, status: u.status, at: u.at };
      if (outbox !== undefined) {
        const event = { id: messageStatusEventId(sessionId, u.id, u.status), topic: 'message-status' as const, sessionId, occurredAt: u.at, data };
        await outbox.enqueue(tx, row.request_id === null ? event : { ...event, requestId: row.request_id }, row.webhook_url);
      }
      return data;
    });
    if (typeof result === 'string') return result;
    this.#o.hub.publish(sessionId, { type: 'message-status', data: { sessionId, ...result } });
    return 'changed';
  }

  /**
   * Group notifications (docs/groups.md): one `group-update` webhook each, id `grp_<session>_<group>_<notification
   * id>` (a notification WhatsApp delivers again is enqueued once), then SSE `group-update`.
   */
  async #groupUpdates(sessionId: string, updates: readonly GroupUpdateWire[]): Promise<{ stored: number }> {
    const outbox = this.#o.outbox;
    if (outbox !== undefined && updates.length > 0) {
      await this.#o.sql.transaction(async (tx) => {
        const hook = await tx.query<{ webhook_url: string | null }>(`SELECT webhook_url FROM sessions WHERE id = $1`, [sessionId]);
        const webhookUrl = hook.rows[0]?.webhook_url ?? null;
        for (const u of updates) {
          await outbox.enqueue(tx, { id: `grp_${sessionId}_${u.group}_${u.id}`, topic: 'group-update', sessionId, occurredAt: u.at, data: u }, webhookUrl);
        }
      });
    }
    for (const u of updates) this.#o.hub.publish(sessionId, { type: 'group-update', data: { sessionId, ...u } });
    return { stored: updates.length };
  }

  async #received(shard: number, req: MessagesReceivedParams): Promise<{ stored: number }> {
    const { sessionId } = req;
    const deps = { store: this.#store, outbox: this.#o.outbox };
    const written = await this.#writer.transaction(async (tx) => {
      const out: (StoredWrite & { apiSend: boolean })[] = [];
      const hook: { url?: string | null } = {};
      for (const item of req.messages) {
        const message: StoredContent = item.mediaKey === undefined ? item.message : { ...item.message, mediaStored: true };
        const w = await storeMessage(tx, deps, sessionId, { message, raw: item.raw, requestId: item.requestId }, hook);
        if (w !== undefined) out.push({ ...w, apiSend: item.requestId !== undefined });
      }
      return out;
    });
    for (const w of written) {
      // An API send's own row is counted by wagw_message_sends_total, not as received.
      if (!w.apiSend) this.#o.metrics?.received.inc();
      this.#o.hub.publish(sessionId, { type: 'message', data: { sessionId, shard, epoch: req.epoch, upsert: req.upsert, ...w.message } });
    }
    for (const w of written) if (w.sent !== undefined) this.#o.hub.publish(sessionId, { type: 'message-status', data: { sessionId, ...w.sent } });
    return { stored: written.length };
  }
}
