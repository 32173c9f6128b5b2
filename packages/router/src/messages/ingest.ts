/**
 * The router's side of the shards' requests (`ShardRequestMap`): inbound messages are inserted once
 * (ON CONFLICT DO NOTHING: WhatsApp re-deliveries and retries after a crash store nothing twice) with their
 * `messages` webhook in the same transaction, then published on SSE; `message.get` serves Baileys' retry
 * requests from the stored raw proto (a miss is an empty answer, never an empty message).
 */
import type { GroupUpdateWire, Logger, MessageStatusWire, MessagesReceivedParams, ShardRequestHandlers, ShardRequestResult, SqlTransaction, StoredContent, SqlDatabase, WebhookEvent, WebhookOutbox, WireMessage } from '@wagw/shared';
import type { EventHub } from '../api/sse.ts';
import type { MessageMetrics } from './metrics.ts';
import { MessageStore } from './store.ts';
import { GroupCommit } from './group-commit.ts';
import type { BulkWrite } from './group-commit.ts';

export interface MessageIngestOptions {
  sql: SqlDatabase;
  /** Group commit for inbound messages and status changes (messages/group-commit.ts); absent: one transaction per request. */
  writer?: Pick<GroupCommit, 'submit'>;
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
 * The `message-status` webhook of an own message's `sent` status, written with the row that first stores it (the
 * API send's row once WhatsApp acked it, or the socket's echo of an own message, whichever stores it first; its
 * history row is written by the row's own INSERT statement: `MessageStore.insertMany` with `sentEvent`). In that
 * transaction because a receipt's `delivered` waits for the row, so `sent` is always enqueued before it in the
 * message's ordered stream (docs/webhooks.md).
 */
function sentStatus(sessionId: string, message: Pick<WireMessage, 'id' | 'chat' | 'timestamp'>, requestId: string | undefined): { data: SentStatus; event: WebhookEvent } {
  const data = { messageId: message.id, chat: message.chat, status: 'sent' as const, at: message.timestamp };
  const event: WebhookEvent = { id: messageStatusEventId(sessionId, message.id, 'sent'), topic: 'message-status', sessionId, occurredAt: message.timestamp, data };
  return { data, event: requestId === undefined ? event : { ...event, requestId } };
}

type SentStatus = { messageId: string; chat: string; status: 'sent'; at: string };

/** What `storeMessages` wrote: the content as stored (with `applied` on an edit/revoke) and the `sent` status of an own message. */
export interface StoredWrite {
  message: StoredContent;
  sent?: SentStatus;
}

/** One message for `storeMessages`: `requestId` is the API send that sent it (its echo carries it). */
export interface MessageWrite {
  sessionId: string;
  message: StoredContent;
  raw: string | undefined;
  requestId?: string | undefined;
}

/**
 * The one writer of message rows: inserts each once (ON CONFLICT DO NOTHING; all in one statement) with, in the
 * same transaction `tx`, what it changes on its target (reaction, poll vote, edit, revoke; in the order given,
 * after every row of the call is in), its `messages` webhook and, for an own message, its `sent` status (the
 * webhook rows in one statement, in the order given). Every row, received or sent, is written here, through the
 * shard's `message.received`: an API send's message too (the shard stores it right after relaying it, before
 * answering the send: messages/sender.ts writes nothing). Undefined for a row that existed (a re-delivery or a
 * retried send): nothing is written for it.
 */
export async function storeMessages(tx: SqlTransaction, deps: { store: MessageStore; outbox?: WebhookOutbox | undefined }, writes: readonly MessageWrite[]): Promise<(StoredWrite | undefined)[]> {
  const { store, outbox } = deps;
  const rows = await store.insertMany(
    writes.map((w) => ({ sessionId: w.sessionId, message: w.message, status: w.message.fromMe ? 'sent' : 'received', raw: w.raw, requestId: w.requestId, sentEvent: w.message.fromMe })),
    tx,
  );
  const out: (StoredWrite | undefined)[] = [];
  const events: { event: WebhookEvent; sessionWebhookUrl: string | null }[] = [];
  for (const [i, w] of writes.entries()) {
    const row = rows[i];
    if (row?.inserted !== true) {
      out.push(undefined);
      continue;
    }
    const { sessionId } = w;
    let message = w.message;
    if (message.type === 'reaction') await store.applyReaction(sessionId, message, tx);
    if (message.type === 'poll-vote') await store.applyPollVote(sessionId, message, tx);
    if (message.type === 'edit' || message.type === 'revoke') {
      // The row, its webhook and SSE say whether the target changed (same chat, same author: store.ts).
      const applied = message.type === 'edit' ? await store.applyEdit(sessionId, message, tx) : await store.applyRevoke(sessionId, message, tx);
      const field = message.type;
      message = { ...message, [field]: { ...message[field], applied } };
      await tx.query(`UPDATE messages SET content = jsonb_set(content, '{${field}}', $3::jsonb) WHERE session_id = $1 AND id = $2`, [sessionId, message.id, JSON.stringify(message[field])]);
    }
    events.push({ event: { id: `msg_${sessionId}_${message.id}`, topic: 'messages', sessionId, occurredAt: message.timestamp, data: message }, sessionWebhookUrl: row.webhookUrl });
    if (!message.fromMe) {
      out.push({ message });
      continue;
    }
    const sent = sentStatus(sessionId, message, w.requestId);
    events.push({ event: sent.event, sessionWebhookUrl: row.webhookUrl });
    out.push({ message, sent: sent.data });
  }
  if (outbox !== undefined && events.length > 0) await outbox.enqueueMany(tx, events);
  return out;
}

type StatusOutcome = { messageId: string; chat: string; status: MessageStatusWire['status']; at: string } | 'same' | 'missing';

export class MessageIngest {
  readonly #o: MessageIngestOptions;
  readonly #store: MessageStore;
  readonly #writer: Pick<GroupCommit, 'submit'>;
  /** The messages of one `message.received` request (one input: they commit together), with every other request's of the batch. */
  readonly #storeOp: BulkWrite<MessageWrite[], (StoredWrite | undefined)[]>;
  /** The updates of one `message.status` request, with every other request's of the batch. */
  readonly #statusOp: BulkWrite<{ sessionId: string; update: MessageStatusWire }[], StatusOutcome[]>;

  constructor(options: MessageIngestOptions) {
    this.#o = options;
    this.#writer = options.writer ?? new GroupCommit(options.sql, { writers: 0 });
    this.#store = new MessageStore(options.sql);
    const deps = { store: this.#store, outbox: options.outbox };
    // Rows first, receipts after: a receipt in the same batch as its row finds it.
    this.#storeOp = { order: -1, run: async (tx, inputs) => split(inputs, await storeMessages(tx, deps, inputs.flat())) };
    this.#statusOp = { order: 1, run: async (tx, inputs) => split(inputs, await this.#applyStatuses(tx, inputs.flat())) };
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
      const outcomes = await this.#writer.submit(this.#statusOp, missing.map((update) => ({ sessionId, update })));
      const next: MessageStatusWire[] = [];
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome === 'missing') next.push(missing[i] as MessageStatusWire);
        else if (outcome !== 'same') {
          changed++;
          this.#o.hub.publish(sessionId, { type: 'message-status', data: { sessionId, ...outcome } });
        }
      }
      missing = next;
    }
    return { changed };
  }

  /** The status changes of a batch in one statement (`MessageStore.applyStatuses`) and their webhook rows in another. */
  async #applyStatuses(tx: SqlTransaction, updates: readonly { sessionId: string; update: MessageStatusWire }[]): Promise<StatusOutcome[]> {
    const outbox = this.#o.outbox;
    const changes = await this.#store.applyStatuses(updates, tx);
    const events: { event: WebhookEvent; sessionWebhookUrl: string | null }[] = [];
    const outcomes = updates.map(({ sessionId, update: u }, i): StatusOutcome => {
      const c = changes[i];
      if (c?.changed === undefined) return c?.found === true ? 'same' : 'missing';
      const data = { messageId: u.id, chat: c.changed.chat, status: u.status, at: u.at };
      const event: WebhookEvent = { id: messageStatusEventId(sessionId, u.id, u.status), topic: 'message-status', sessionId, occurredAt: u.at, data };
      events.push({ event: c.changed.requestId === null ? event : { ...event, requestId: c.changed.requestId }, sessionWebhookUrl: c.changed.webhookUrl });
      return data;
    });
    if (outbox !== undefined && events.length > 0) await outbox.enqueueMany(tx, events);
    return outcomes;
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
    const writes = req.messages.map((item) => ({
      sessionId,
      message: item.mediaKey === undefined ? item.message : { ...item.message, mediaStored: true },
      raw: item.raw,
      requestId: item.requestId,
    }));
    const results = await this.#writer.submit(this.#storeOp, writes);
    const written = results.flatMap((w, i) => (w === undefined ? [] : [{ ...w, apiSend: writes[i]?.requestId !== undefined }]));
    for (const w of written) {
      // An API send's own row is counted by wagw_message_sends_total, not as received.
      if (!w.apiSend) this.#o.metrics?.received.inc();
      this.#o.hub.publish(sessionId, { type: 'message', data: { sessionId, shard, epoch: req.epoch, upsert: req.upsert, ...w.message } });
    }
    for (const w of written) if (w.sent !== undefined) this.#o.hub.publish(sessionId, { type: 'message-status', data: { sessionId, ...w.sent } });
    return { stored: written.length };
  }
}

/** `flat` (the results of every input's items, flattened) cut back into one list per input. */
function split<T, R>(inputs: readonly (readonly T[])[], flat: readonly R[]): R[][] {
  let at = 0;
  return inputs.map((input) => flat.slice(at, (at += input.length)));
}
