/**
 * The router's SQL for messages (docs/messaging.md): the `messages` rows (outbound after the server ack,
 * inbound from the shards) and the `idempotency_keys` records of POST /messages.
 */
import { IDEMPOTENCY_TTL_MS, bareJid, decideIdempotency, isStoredMessageType } from '@wagw/shared';
import type { IdempotencyDecision, IdempotencyRecord, MessageRefWire, MessageStatusWire, SqlClient, SqlDatabase, StoredContent, StoredMessage, WireMessage } from '@wagw/shared';

export interface StoredMessageRow {
  session_id: string;
  id: string;
  chat_jid: string;
  from_me: boolean;
  sender_jid: string | null;
  type: string;
  status: string;
  content: StoredContent | string;
  quoted_id: string | null;
  sent_at: Date | string;
  raw: string | null;
  updated_at: Date | string;
}

/** One entry of a message's `reactions` (see `applyReaction`). */
export interface MessageReaction {
  from: string;
  fromMe: boolean;
  emoji: string;
  /** ISO-8601 time of the reaction message. */
  at: string;
}

/** One voter's current vote on a poll (see `applyPollVote`). */
export interface PollVote {
  from: string;
  fromMe: boolean;
  options: string[];
  /** ISO-8601 time of the vote message. */
  at: string;
}

/** A message to insert (`MessageStore.insertMany`). */
export interface MessageRowWrite {
  sessionId: string;
  message: StoredContent;
  /** The stored status: `sent` for an own message, `received` otherwise. */
  status: string;
  raw?: string | undefined;
  requestId?: string | undefined;
  /** Also write the inserted row's `sent` history row. */
  sentEvent?: boolean;
}

/** What `MessageStore.applyStatuses` did to one update: `changed` when the status moved (with what its webhook needs). */
export interface StatusChange {
  found: boolean;
  changed?: { chat: string; requestId: string | null; webhookUrl: string | null };
}

/** Order of the statuses of a sent message; `failed` ranks above all so it is only set from pending/sent (checked in SQL). */
const STATUS_RANK: Record<MessageStatusWire['status'], number> = { sent: 1, delivered: 2, read: 3, played: 4, failed: 5 };

const messageKey = (sessionId: string, id: string): string => `${sessionId}\u0000${id}`;

/**
 * `fn` over `items` in rounds in which every key occurs once (a key's second occurrence goes to the next round,
 * and so on; order kept within a round): a statement over unnested arrays must not touch one row twice. The
 * results come back in `items`' order.
 */
export async function inUniqueRounds<T, R>(items: readonly T[], key: (item: T) => string, fn: (round: T[]) => Promise<R[]>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let pending = items.map((item, i) => ({ item, i }));
  while (pending.length > 0) {
    const seen = new Set<string>();
    const round: { item: T; i: number }[] = [];
    const later: { item: T; i: number }[] = [];
    for (const p of pending) {
      const k = key(p.item);
      if (seen.has(k)) later.push(p);
      else {
        seen.add(k);
        round.push(p);
      }
    }
    const out = await fn(round.map((p) => p.item));
    round.forEach((p, k) => (results[p.i] = out[k] as R));
    pending = later;
  }
  return results;
}

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());

/** The API shape of a stored message: its normalized content with the stored status. */
export function toApiMessage(row: StoredMessageRow): StoredMessage {
  const content = typeof row.content === 'string' ? (JSON.parse(row.content) as StoredContent) : row.content;
  // The column is written from the content's own `type` (insert), so the fallback is for a hand-edited row only.
  const type = isStoredMessageType(row.type) ? row.type : 'unsupported';
  return { ...content, id: row.id, chat: row.chat_jid, fromMe: row.from_me, type, timestamp: iso(row.sent_at), status: row.status };
}

export function encodeCursor(at: string, id: string): string {
  return Buffer.from(`${at}|${id}`, 'utf8').toString('base64url');
}

/** A `before` value: a cursor from `encodeCursor`, or an ISO-8601 time (everything strictly older). */
export function decodeBefore(value: string): { at: string; id: string } | undefined {
  const text = Buffer.from(value, 'base64url').toString('utf8');
  const sep = text.indexOf('|');
  if (sep > 0) {
    const at = text.slice(0, sep);
    if (!Number.isNaN(Date.parse(at))) return { at, id: text.slice(sep + 1) };
  }
  const t = Date.parse(value);
  return Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(value) ? undefined : { at: new Date(t).toISOString(), id: '' };
}

export class MessageStore {
  readonly #sql: SqlDatabase;
  readonly #idempotencyTtlMs: number;

  /** `idempotencyTtlMs`: IDEMPOTENCY_TTL_MS (a completed key older than this is forgotten; default 24 h). */
  constructor(sql: SqlDatabase, options: { idempotencyTtlMs?: number } = {}) {
    this.#sql = sql;
    this.#idempotencyTtlMs = options.idempotencyTtlMs ?? IDEMPOTENCY_TTL_MS;
  }

  get sql(): SqlDatabase {
    return this.#sql;
  }

  /** `insertMany` of one message (tests, tools): true when this call inserted it. */
  async insert(sessionId: string, message: StoredContent, status: string, raw: string | undefined, tx: SqlClient = this.#sql, requestId?: string, sentEvent = false): Promise<boolean> {
    const [row] = await this.insertMany([{ sessionId, message, status, raw, requestId, sentEvent }], tx);
    return row?.inserted === true;
  }

  /**
   * Inserts each message once (primary key session_id, id), all in one statement (a statement per message cost
   * PostgreSQL and node-postgres 2-5x the CPU at batches of 4-16: docs/benchmarks.md); `inserted` says whether
   * this call inserted it, `webhookUrl` is its session's (for the webhook rows the caller enqueues). `requestId` is the API request that sent it (the
   * correlation id its receipts' webhooks carry); a send whose own echo was stored first without it still
   * records it. A row that exists with its request id writes nothing (no row lock, no WAL). `sentEvent`: an
   * inserted row also gets its `sent` history row (message_status_events) in the same statement. A message
   * listed twice is inserted by its first entry (the second is a later statement: `inUniqueRounds`).
   */
  async insertMany(rows: readonly MessageRowWrite[], tx: SqlClient = this.#sql): Promise<{ inserted: boolean; webhookUrl: string | null }[]> {
    return await inUniqueRounds(rows, (w) => messageKey(w.sessionId, w.message.id), async (round) => {
      const r = await tx.query<{ session_id: string; id: string; webhook_url: string | null }>(
        `WITH input AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::text[],
                                $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::boolean[])
             AS t(session_id, id, chat_jid, from_me, sender_jid, type, status, content, quoted_id, sent_at, raw, chat_lid, request_id, sent_event)
         ), ins AS (
           INSERT INTO messages (session_id, id, chat_jid, from_me, sender_jid, type, status, content, quoted_id, sent_at, raw, chat_lid, request_id)
           SELECT session_id, id, chat_jid, from_me, sender_jid, type, status, content, quoted_id, sent_at, raw, chat_lid, request_id FROM input
           ON CONFLICT (session_id, id) DO NOTHING RETURNING session_id, id
         ), upd AS (
           UPDATE messages m SET request_id = i.request_id FROM input i
            WHERE m.session_id = i.session_id AND m.id = i.id AND m.request_id IS NULL AND i.request_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.session_id = i.session_id AND ins.id = i.id)
         ), ev AS (
           INSERT INTO message_status_events (session_id, message_id, status, recipient_jid, occurred_at)
           SELECT i.session_id, i.id, 'sent', i.chat_jid, i.sent_at FROM input i JOIN ins ON ins.session_id = i.session_id AND ins.id = i.id WHERE i.sent_event
         )
         SELECT ins.session_id, ins.id, s.webhook_url FROM ins LEFT JOIN sessions s ON s.id = ins.session_id`,
        [
          round.map((w) => w.sessionId),
          round.map((w) => w.message.id),
          round.map((w) => w.message.chat),
          round.map((w) => w.message.fromMe),
          round.map((w) => (w.message.from === '' ? null : w.message.from)),
          round.map((w) => w.message.type),
          round.map((w) => w.status),
          round.map((w) => JSON.stringify(w.message)),
          round.map((w) => w.message.quotedId ?? null),
          round.map((w) => w.message.timestamp),
          round.map((w) => (w.raw === undefined || w.raw === '' ? null : w.raw)),
          round.map((w) => (typeof w.message.chatLid === 'string' ? w.message.chatLid : null)),
          round.map((w) => w.requestId ?? null),
          round.map((w) => w.sentEvent === true),
        ],
        { name: 'wagw_messages_insert_many' },
      );
      const inserted = new Map(r.rows.map((row) => [messageKey(row.session_id, row.id), row.webhook_url]));
      return round.map((w) => {
        const key = messageKey(w.sessionId, w.message.id);
        return { inserted: inserted.has(key), webhookUrl: inserted.get(key) ?? null };
      });
    });
  }

  /**
   * Moves each own message's status forward (never backwards; `failed` only from pending or sent) with its
   * history row, all in one statement; per update: `found` (the message exists: an unknown id is a receipt that
   * overtook its row) and, when it changed, the row's chat, request id and session webhook URL. An update
   * listed twice for one message runs in a later statement (`inUniqueRounds`), so delivered then read both apply.
   */
  async applyStatuses(updates: readonly { sessionId: string; update: MessageStatusWire }[], tx: SqlClient = this.#sql): Promise<StatusChange[]> {
    return await inUniqueRounds(updates, (u) => messageKey(u.sessionId, u.update.id), async (round) => {
      const r = await tx.query<{ session_id: string; id: string; chat_jid: string | null; request_id: string | null; webhook_url: string | null; found: boolean }>(
        `WITH input AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[]) AS t(session_id, id, status, rank, at)
         ), upd AS (
           UPDATE messages m SET status = i.status, updated_at = now() FROM input i
            WHERE m.session_id = i.session_id AND m.id = i.id AND m.from_me
              AND (CASE m.status WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'played' THEN 4 ELSE 9 END) < i.rank
              AND NOT (i.status = 'failed' AND m.status NOT IN ('pending', 'sent'))
           RETURNING m.session_id, m.id, m.chat_jid, m.request_id
         ), ev AS (
           INSERT INTO message_status_events (session_id, message_id, status, recipient_jid, occurred_at)
           SELECT i.session_id, i.id, i.status, upd.chat_jid, i.at FROM upd JOIN input i ON i.session_id = upd.session_id AND i.id = upd.id
         )
         SELECT i.session_id, i.id, upd.chat_jid, upd.request_id, s.webhook_url,
                (upd.id IS NOT NULL OR EXISTS (SELECT 1 FROM messages x WHERE x.session_id = i.session_id AND x.id = i.id)) AS found
           FROM input i LEFT JOIN upd ON upd.session_id = i.session_id AND upd.id = i.id LEFT JOIN sessions s ON upd.id IS NOT NULL AND s.id = i.session_id`,
        [
          round.map((u) => u.sessionId),
          round.map((u) => u.update.id),
          round.map((u) => u.update.status),
          round.map((u) => STATUS_RANK[u.update.status]),
          round.map((u) => u.update.at),
        ],
        { name: 'wagw_messages_status_many' },
      );
      const byKey = new Map(r.rows.map((row) => [messageKey(row.session_id, row.id), row]));
      return round.map((u): StatusChange => {
        const row = byKey.get(messageKey(u.sessionId, u.update.id));
        if (row === undefined || row.chat_jid === null) return { found: row?.found === true };
        return { found: true, changed: { chat: row.chat_jid, requestId: row.request_id, webhookUrl: row.webhook_url } };
      });
    });
  }

  /**
   * A stored reaction message -> the `reactions` list of its target's content: one entry per reactor
   * (`{from, fromMe, emoji, at}`), a newer reaction replaces the reactor's older one and an empty emoji
   * removes it. An older reaction than the one already listed, or a target that is unknown or in another
   * chat, changes nothing.
   * Call it once per reaction row actually inserted (re-deliveries are not applied twice).
   */
  async applyReaction(sessionId: string, message: WireMessage, tx: SqlClient = this.#sql): Promise<boolean> {
    const reaction = message.reaction;
    if (message.type !== 'reaction' || typeof reaction?.messageId !== 'string' || typeof reaction.emoji !== 'string' || reaction.messageId === '') return false;
    const target = await tx.query<{ reactions: unknown; me: { jid?: unknown } | string | null }>(
      `SELECT m.content->'reactions' AS reactions, (SELECT s.me FROM sessions s WHERE s.id = m.session_id) AS me
         FROM messages m WHERE m.session_id = $1 AND m.id = $2 AND (m.chat_jid IN ($3, $4) OR m.chat_lid IN ($3, $4)) FOR UPDATE`,
      [sessionId, reaction.messageId, message.chat, typeof message.chatLid === 'string' ? message.chatLid : message.chat],
    );
    const row = target.rows[0];
    if (row === undefined) return false;
    const me = typeof row.me === 'string' ? (JSON.parse(row.me) as { jid?: unknown } | null) : row.me;
    const from = message.fromMe ? (typeof me?.jid === 'string' ? bareJid(me.jid) : 'me') : message.from;
    const current = (typeof row.reactions === 'string' ? JSON.parse(row.reactions) : row.reactions) as MessageReaction[] | null;
    const list = Array.isArray(current) ? current : [];
    const previous = list.find((r) => r.fromMe === message.fromMe && (message.fromMe || r.from === from));
    if (previous !== undefined && Date.parse(previous.at) > Date.parse(message.timestamp)) return false;
    const next = list.filter((r) => r !== previous);
    if (reaction.emoji !== '') next.push({ from, fromMe: message.fromMe, emoji: reaction.emoji, at: message.timestamp });
    await tx.query(`UPDATE messages SET content = jsonb_set(content, '{reactions}', $3::jsonb), updated_at = now() WHERE session_id = $1 AND id = $2`, [
      sessionId,
      reaction.messageId,
      JSON.stringify(next),
    ]);
    return true;
  }

  /**
   * The target of an edit or revoke: the stored message `targetId` in the same chat as `message` and by the
   * same author (both this session's own, or both from the same sender JID or LID), locked for update.
   */
  async #sameAuthorTarget(sessionId: string, message: WireMessage, targetId: string, tx: SqlClient): Promise<{ type: string; content: StoredContent } | undefined> {
    const chatLid = typeof message.chatLid === 'string' ? message.chatLid : message.chat;
    const fromLid = typeof message.fromLid === 'string' ? message.fromLid : message.from;
    const r = await tx.query<{ type: string; content: StoredContent | string }>(
      `SELECT m.type, m.content FROM messages m
         WHERE m.session_id = $1 AND m.id = $2 AND (m.chat_jid IN ($3, $4) OR m.chat_lid IN ($3, $4))
           AND m.type NOT IN ('edit', 'revoke', 'reaction', 'poll-vote')
           AND ${message.fromMe ? 'm.from_me' : `NOT m.from_me AND (m.sender_jid IN ($5, $6) OR m.content->>'fromLid' IN ($5, $6))`}
         FOR UPDATE`,
      message.fromMe ? [sessionId, targetId, message.chat, chatLid] : [sessionId, targetId, message.chat, chatLid, message.from, fromLid],
    );
    const row = r.rows[0];
    if (row === undefined) return undefined;
    return { type: row.type, content: typeof row.content === 'string' ? (JSON.parse(row.content) as StoredContent) : row.content };
  }

  /**
   * A stored edit message (`edit: {messageId, text}`) -> its target's content: `text` (a text message) or
   * `caption` (media) becomes the new text, `edited: true`, `editedAt` (the edit's time) and `editHistory`
   * (`[{text, at}]`, the earlier versions, oldest first; `at` is when that version was written). Applied only to
   * a target in the same chat by the same author that is not revoked; an edit older than the last one applied,
   * or one that changes nothing, is ignored. True when the target changed.
   * Call it once per edit row actually inserted (re-deliveries are not applied twice).
   */
  async applyEdit(sessionId: string, message: WireMessage, tx: SqlClient = this.#sql): Promise<boolean> {
    const edit = message.edit;
    if (message.type !== 'edit' || typeof edit?.messageId !== 'string' || edit.messageId === '' || typeof edit.text !== 'string') return false;
    const target = await this.#sameAuthorTarget(sessionId, message, edit.messageId, tx);
    if (target === undefined || target.content.revoked === true) return false;
    const c = target.content;
    const editedAt = typeof c.editedAt === 'string' ? c.editedAt : undefined;
    if (editedAt !== undefined && Date.parse(editedAt) > Date.parse(message.timestamp)) return false;
    const field = target.type === 'text' ? 'text' : 'caption';
    const previous = typeof c[field] === 'string' ? c[field] : '';
    if (previous === edit.text) return false;
    const history = Array.isArray(c.editHistory) ? c.editHistory : [];
    const patch = { [field]: edit.text, edited: true, editedAt: message.timestamp, editHistory: [...history, { text: previous, at: editedAt ?? c.timestamp }] };
    await tx.query(`UPDATE messages SET content = content || $3::jsonb, updated_at = now() WHERE session_id = $1 AND id = $2`, [sessionId, edit.messageId, JSON.stringify(patch)]);
    return true;
  }

  /**
   * A stored revoke message (`revoke: {messageId}`) -> its target's content gets `revoked: true` and
   * `revokedAt` (the representation DELETE …/messages/:msgId writes); same chat and same author only, once.
   * True when the target changed. Call it once per revoke row actually inserted.
   */
  async applyRevoke(sessionId: string, message: WireMessage, tx: SqlClient = this.#sql): Promise<boolean> {
    const revoke = message.revoke;
    if (message.type !== 'revoke' || typeof revoke?.messageId !== 'string' || revoke.messageId === '') return false;
    const target = await this.#sameAuthorTarget(sessionId, message, revoke.messageId, tx);
    if (target === undefined || target.content.revoked === true) return false;
    await tx.query(`UPDATE messages SET content = content || $3::jsonb, updated_at = now() WHERE session_id = $1 AND id = $2`, [
      sessionId,
      revoke.messageId,
      JSON.stringify({ revoked: true, revokedAt: message.timestamp }),
    ]);
    return true;
  }

  /**
   * A stored poll vote whose options the shard decoded (`pollVote: {pollId, options}`) -> its poll's content:
   * `poll.votes` (`[{from, fromMe, options, at}]`, the current vote of each voter: a newer vote replaces the
   * voter's older one, an empty one takes it back, an older one changes nothing) and `poll.tally`
   * (`[{option, count}]` in the poll's order). The poll must be stored in the same chat. True when it changed.
   * Call it once per vote row actually inserted.
   */
  async applyPollVote(sessionId: string, message: WireMessage, tx: SqlClient = this.#sql): Promise<boolean> {
    const vote = message.pollVote;
    if (message.type !== 'poll-vote' || typeof vote?.pollId !== 'string' || vote.pollId === '' || !Array.isArray(vote.options)) return false;
    const selected = vote.options.filter((o): o is string => typeof o === 'string');
    const target = await tx.query<{ poll: unknown; me: { jid?: unknown } | string | null }>(
      `SELECT m.content->'poll' AS poll, (SELECT s.me FROM sessions s WHERE s.id = m.session_id) AS me
         FROM messages m WHERE m.session_id = $1 AND m.id = $2 AND m.type = 'poll' AND (m.chat_jid IN ($3, $4) OR m.chat_lid IN ($3, $4)) FOR UPDATE`,
      [sessionId, vote.pollId, message.chat, typeof message.chatLid === 'string' ? message.chatLid : message.chat],
    );
    const row = target.rows[0];
    if (row === undefined) return false;
    const poll = (typeof row.poll === 'string' ? JSON.parse(row.poll) : row.poll) as { options?: unknown; votes?: PollVote[] } | null;
    if (poll === null || typeof poll !== 'object') return false;
    const me = typeof row.me === 'string' ? (JSON.parse(row.me) as { jid?: unknown } | null) : row.me;
    const from = message.fromMe ? (typeof me?.jid === 'string' ? bareJid(me.jid) : 'me') : message.from;
    const list = Array.isArray(poll.votes) ? poll.votes : [];
    const previous = list.find((v) => v.fromMe === message.fromMe && (message.fromMe || v.from === from));
    if (previous !== undefined && Date.parse(previous.at) > Date.parse(message.timestamp)) return false;
    const votes = list.filter((v) => v !== previous);
    if (selected.length > 0) votes.push({ from, fromMe: message.fromMe, options: selected, at: message.timestamp });
    const options = Array.isArray(poll.options) ? poll.options.filter((o): o is string => typeof o === 'string') : [];
    const tally = options.map((option) => ({ option, count: votes.filter((v) => v.options.includes(option)).length }));
    await tx.query(`UPDATE messages SET content = jsonb_set(content, '{poll}', content->'poll' || $3::jsonb), updated_at = now() WHERE session_id = $1 AND id = $2`, [
      sessionId,
      vote.pollId,
      JSON.stringify({ votes, tally }),
    ]);
    return true;
  }

  async get(sessionId: string, id: string): Promise<StoredMessageRow | undefined> {
    const r = await this.#sql.query<Record<string, unknown>>(`SELECT * FROM messages WHERE session_id = $1 AND id = $2`, [sessionId, id]);
    return r.rows[0] as StoredMessageRow | undefined;
  }

  /** The key and raw proto of a stored message, for quotes and reactions. */
  async ref(sessionId: string, id: string): Promise<MessageRefWire | undefined> {
    const row = await this.get(sessionId, id);
    if (row === undefined) return undefined;
    const ref: MessageRefWire = { id: row.id, chat: row.chat_jid, fromMe: row.from_me };
    if (row.raw !== null) ref.raw = row.raw;
    if (!row.from_me && row.sender_jid !== null && row.chat_jid.endsWith('@g.us')) ref.participant = row.sender_jid;
    return ref;
  }

  /**
   * History, newest first: `chat` filters one chat, `before` is a cursor (`next` of the previous page) or an
   * ISO time. Ordered by (sent_at, id) so equal timestamps page stably.
   */
  async list(sessionId: string, q: { chat?: string; before?: { at: string; id: string }; limit: number }): Promise<{ rows: StoredMessageRow[]; next: string | null }> {
    const params: unknown[] = [sessionId];
    let where = 'session_id = $1';
    if (q.chat !== undefined) {
      params.push(q.chat);
      where += ` AND chat_jid = $${params.length}`;
    }
    if (q.before !== undefined) {
      params.push(q.before.at, q.before.id);
      where += ` AND (sent_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`;
    }
    params.push(q.limit + 1);
    const r = await this.#sql.query<Record<string, unknown>>(`SELECT * FROM messages WHERE ${where} ORDER BY sent_at DESC, id DESC LIMIT $${params.length}`, params);
    const rows = r.rows.slice(0, q.limit) as unknown as StoredMessageRow[];
    const last = rows.at(-1);
    const next = r.rows.length > q.limit && last !== undefined ? encodeCursor(iso(last.sent_at), last.id) : null;
    return { rows, next };
  }

  // -------------------------------------------------------------------------------------------------------
  // Idempotency-Key records

  /**
   * Claims (session, key) for this request or says what to do instead: replay a stored response, reject
   * (different body, or still running), or proceed (new key, or an expired lock taken over).
   */
  async beginIdempotent(sessionId: string, key: string, fingerprint: string, messageId: string, lockMs: number): Promise<IdempotencyDecision> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = Date.now();
      const lockedUntil = new Date(now + lockMs).toISOString();
      const ins = await this.#sql.query(
        `INSERT INTO idempotency_keys (session_id, key, request_hash, locked_until, message_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (session_id, key) DO NOTHING RETURNING key`,
        [sessionId, key, fingerprint, lockedUntil, messageId],
      );
      if (ins.rowCount > 0) return { action: 'proceed', takeover: false };
      const r = await this.#sql.query<Record<string, unknown>>(
        `SELECT request_hash, response, status_code, locked_until, created_at FROM idempotency_keys WHERE session_id = $1 AND key = $2`,
        [sessionId, key],
      );
      const row = r.rows[0];
      if (row === undefined) continue;
      const created = new Date(row['created_at'] as string | Date).getTime();
      if (now - created > this.#idempotencyTtlMs) {
        await this.#sql.query(`DELETE FROM idempotency_keys WHERE session_id = $1 AND key = $2 AND created_at = $3`, [sessionId, key, row['created_at']]);
        continue;
      }
      const oldLock = row['locked_until'] === null ? null : (row['locked_until'] as string | Date);
      const record: IdempotencyRecord =
        row['status_code'] === null
          ? { state: 'in-progress', fingerprint: row['request_hash'] as string, lockedUntil: oldLock === null ? 0 : new Date(oldLock).getTime() }
          : {
              state: 'done',
              fingerprint: row['request_hash'] as string,
              status: Number(row['status_code']),
              body: typeof row['response'] === 'string' ? (JSON.parse(row['response']) as unknown) : row['response'],
              completedAt: created,
            };
      const decision = decideIdempotency(record, fingerprint, now);
      if (decision.action !== 'proceed' || !decision.takeover) return decision;
      // Take the expired lock over, only if nobody else did in between.
      const upd = await this.#sql.query(
        `UPDATE idempotency_keys SET locked_until = $3 WHERE session_id = $1 AND key = $2 AND status_code IS NULL
           AND locked_until IS NOT DISTINCT FROM $4 RETURNING key`,
        [sessionId, key, lockedUntil, oldLock],
      );
      if (upd.rowCount > 0) return decision;
    }
    return decideIdempotency({ state: 'in-progress', fingerprint, lockedUntil: Date.now() + 1000 }, fingerprint, Date.now());
  }

  async completeIdempotent(sessionId: string, key: string, status: number, body: unknown): Promise<void> {
    await this.#sql.query(`UPDATE idempotency_keys SET response = $3::jsonb, status_code = $4, locked_until = NULL WHERE session_id = $1 AND key = $2`, [
      sessionId,
      key,
      JSON.stringify(body),
      status,
    ]);
  }

  async releaseIdempotent(sessionId: string, key: string): Promise<void> {
    await this.#sql.query(`DELETE FROM idempotency_keys WHERE session_id = $1 AND key = $2 AND status_code IS NULL`, [sessionId, key]);
  }
}
