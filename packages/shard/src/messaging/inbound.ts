/**
 * Inbound messages of one session socket -> the router (IPC request `message.received`, acknowledged only after
 * the rows committed), in arrival order. Media is copied to the blob store first when INBOUND_MEDIA_DOWNLOAD
 * is eager. Also `getMessage` for Baileys' retry requests, answered from the router's store.
 *
 * Messages decrypted from the wire go through `persist` (Baileys' `beforeReceipt` hook, patches/): the
 * delivery receipt is sent only after the router committed the row, so a shard killed at any instant never
 * loses a message WhatsApp believes delivered. Their `messages.upsert` that follows is then skipped here.
 */
import { normalizeMessageContent, proto } from '@whiskeysockets/baileys';
import type { WAMessage, WAMessageKey, WAMessageUpdate, WASocket } from '@whiskeysockets/baileys';
import type { BaseLookup, BlobStore, InboundMessageWire, Logger, MessageStatus, MessageStatusWire, ShardRequestBody, ShardRequestKind, ShardRequestResult } from '@wagw/shared';
import { normalizeInbound } from './content.ts';
import { downloadInboundMedia } from './inbound-media.ts';
import { createLidResolver } from './lid.ts';
import { decodePollVote, jidCandidates, pollProto } from './poll.ts';
import { backoffDelay } from '../sessions/disconnect.ts';

/** Sends a request to the router and resolves with its reply (rejects with the router's error or a timeout). */
export type ShardRequester = <K extends ShardRequestKind>(body: ShardRequestBody<K>, timeoutMs?: number) => Promise<ShardRequestResult<K>>;

/** Blob key of a message's media. */
export function mediaBlobKey(sessionId: string, messageId: string): string {
  return `media/${sessionId}/${messageId}`;
}

export interface InboundOptions {
  sessionId: string;
  epoch: number;
  request: ShardRequester;
  blobs: BlobStore;
  logger: Logger;
  mediaDownload: 'eager' | 'lazy';
  mediaMaxBytes: number;
  /** Longest wait for an inbound media download (MEDIA_FETCH_TIMEOUT_MS); it is served lazily after that. */
  mediaFetchTimeoutMs?: number;
  /** How long a store outage is waited out before a message is left for WhatsApp to deliver again. */
  storeDeadlineMs?: number;
  /** WA_MEDIA_HOST in simulator mode: the one non-WhatsApp host media is fetched from (inbound-media.ts). */
  mediaSimulatorHost?: string;
  /** DNS resolution of media hosts (tests); default dns.lookup. */
  mediaLookup?: BaseLookup;
}

/** Attempts for an answer that is not a transient outage (a bug or a refusal: retrying will not help much). */
const RETRIES = 5;
/**
 * Router answers that mean "the store is down or slow right now": waited out with backoff (equal jitter, capped)
 * until STORE_DEADLINE_MS. Meanwhile the receipts of these messages wait too, so WhatsApp keeps them; past the
 * deadline the hook rejects, no receipt goes out, and WhatsApp delivers them again at the next login.
 */
const TRANSIENT = new Set(['DEPENDENCY_UNAVAILABLE', 'IPC_TIMEOUT']);
const STORE_DEADLINE_MS = 120_000;
const RETRY_BASE_MS = 200;
const RETRY_MAX_MS = 5_000;

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Batch {
  sock: WASocket;
  upsert: string;
  messages: WAMessage[];
  /** `persist` callers of messages in this batch (their receipts wait for the commit). */
  waiters: Waiter[];
  /** Eager media is fetched after the commit, so the receipt never waits for a download (`persist` batches). */
  deferMedia: boolean;
}

/** proto.WebMessageInfo.Status -> the stored status (PENDING and SERVER_ACK before the send returned are skipped). */
const STATUS_OF: Partial<Record<number, MessageStatus>> = {
  [proto.WebMessageInfo.Status.ERROR]: 'failed',
  [proto.WebMessageInfo.Status.SERVER_ACK]: 'sent',
  [proto.WebMessageInfo.Status.DELIVERY_ACK]: 'delivered',
  [proto.WebMessageInfo.Status.READ]: 'read',
  [proto.WebMessageInfo.Status.PLAYED]: 'played',
};

export class InboundForwarder {
  readonly #o: InboundOptions;
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;
  #draining = false;
  readonly #queue: Batch[] = [];
  /** Ids stored by `persist` whose `messages.upsert` has not been seen yet (it follows at once). */
  readonly #persisted = new Set<string>();
  /** Ids of sends through the API -> their request id, until the send stores its message (`storeSent`). */
  readonly #apiSends = new Map<string, string | undefined>();
  /** Ids of sends through the API whose echo in `messages.upsert` is dropped (the send stores the message itself). */
  readonly #echoes = new Set<string>();
  /** Media fetches started after a `persist` batch committed. */
  readonly #background = new Set<Promise<void>>();

  constructor(options: InboundOptions) {
    this.#o = options;
  }

  /** Messages still being forwarded (the stop drain waits for them). */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Queues one upsert batch. Batches reach the router in order; while one request is in flight the next
   * upserts are merged into one request (one IPC round trip and one transaction for a burst).
   */
  push(sock: WASocket, messages: readonly WAMessage[], upsert: string): void {
    const fresh = messages.filter((m) => !(m.key.id && (this.#persisted.delete(m.key.id) || (m.key.fromMe === true && this.#echoes.delete(m.key.id)))));
    if (fresh.length > 0) this.#enqueue(sock, fresh, upsert, false);
  }

  /**
   * Stores one decrypted message before its receipt (Baileys' `beforeReceipt`): resolves once the router
   * committed it (merged with other queued messages into one request), rejects when it could not be handed
   * over, in which case Baileys sends no receipt and WhatsApp delivers it again at the next login.
   */
  persist(sock: WASocket, message: WAMessage, upsert: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#enqueue(sock, [message], upsert, true, {
        resolve: () => {
          if (message.key.id) {
            if (this.#persisted.size >= 10_000) this.#persisted.clear();
            this.#persisted.add(message.key.id);
          }
          resolve();
        },
        reject,
      });
    });
  }

  #enqueue(sock: WASocket, messages: readonly WAMessage[], upsert: string, deferMedia: boolean, waiter?: Waiter): void {
    this.#pending += messages.length;
    const last = this.#queue.at(-1);
    if (last !== undefined && last.sock === sock && last.upsert === upsert && last.deferMedia === deferMedia) {
      last.messages.push(...messages);
      if (waiter !== undefined) last.waiters.push(waiter);
    } else {
      this.#queue.push({ sock, upsert, messages: [...messages], waiters: waiter === undefined ? [] : [waiter], deferMedia });
    }
    if (this.#draining) return;
    this.#draining = true;
    this.#chain = this.#chain.then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const batch = this.#queue.shift();
        if (batch === undefined) return;
        try {
          await this.#forward(batch.sock, batch.messages, batch.upsert, batch.deferMedia);
          for (const w of batch.waiters) w.resolve();
        } catch (err) {
          this.#o.logger.error({ err, sessionId: this.#o.sessionId, count: batch.messages.length }, 'inbound messages could not be handed to the router');
          for (const w of batch.waiters) w.reject(err instanceof Error ? err : new Error(String(err)));
        } finally {
          this.#pending -= batch.messages.length;
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /** An API send is about to go out with this id: `storeSent` stores it with the request id; Baileys' echo is dropped. */
  noteApiSend(messageId: string, requestId: string | undefined): void {
    if (this.#apiSends.size >= 10_000) this.#apiSends.clear();
    if (this.#echoes.size >= 10_000) this.#echoes.clear();
    this.#apiSends.set(messageId, requestId);
    this.#echoes.add(messageId);
  }

  /**
   * Stores the message of an API send (the one writer of its row: the router's `message.received`, like any
   * message), queued right after the relay so that it reaches the router before any receipt of it (receipts
   * take this same ordered chain); resolves once the router committed it, and the send answers only then.
   * Its media, if any, is fetched after the commit, off the send's path.
   */
  storeSent(sock: WASocket, sent: WAMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#enqueue(sock, [sent], 'append', true, { resolve, reject });
    });
  }

  /** Queues the receipts among `messages.update` (status changes of this session's own messages). */
  pushStatus(updates: readonly WAMessageUpdate[]): void {
    const wire: MessageStatusWire[] = [];
    const at = new Date().toISOString();
    for (const u of updates) {
      const code = u.update.status;
      if (typeof code !== 'number' || !u.key.id || u.key.fromMe !== true) continue;
      const status = STATUS_OF[code];
      if (status === undefined) continue;
      wire.push({ id: u.key.id, chat: u.key.remoteJid ?? '', status, at });
    }
    if (wire.length === 0) return;
    this.#chain = this.#chain
      .then(() => this.#retry(() => this.#o.request({ kind: 'message.status', sessionId: this.#o.sessionId, epoch: this.#o.epoch, updates: wire })))
      .catch((err: unknown) => this.#o.logger.error({ err, sessionId: this.#o.sessionId }, 'message status could not be handed to the router'));
  }

  async #retry(fn: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + (this.#o.storeDeadlineMs ?? STORE_DEADLINE_MS);
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const delay = backoffDelay(attempt, RETRY_BASE_MS, RETRY_MAX_MS);
        if (typeof code === 'string' && TRANSIENT.has(code) ? Date.now() + delay >= deadline : attempt >= RETRIES) throw err;
        if (attempt === 1 || attempt % 10 === 0) this.#o.logger.warn({ sessionId: this.#o.sessionId, attempt, err: code ?? String(err) }, 'router could not take inbound facts; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Resolves when every queued batch was acknowledged (or given up) and every deferred media fetch ended. */
  async idle(): Promise<void> {
    await this.#chain;
    await Promise.all(this.#background);
  }

  async #forward(sock: WASocket, messages: readonly WAMessage[], upsert: string, deferMedia: boolean): Promise<void> {
    const resolver = createLidResolver(sock.signalRepository.lidMapping);
    const items: InboundMessageWire[] = [];
    const later: { m: WAMessage; id: string; mimetype: string | undefined }[] = [];
    for (const m of messages) {
      if (!m.key.id) continue;
      const normalized = await normalizeInbound(m, resolver, sock.user);
      if (normalized === undefined) continue;
      if (normalized.type === 'poll-vote' && normalized.pollVote !== undefined) {
        const options = await this.#pollVote(sock, m, normalized.pollVote.pollId, normalized.from, normalized.fromLid);
        if (options !== undefined) normalized.pollVote.options = options;
      }
      const raw = m.message === null || m.message === undefined ? '' : Buffer.from(proto.Message.encode(m.message).finish()).toString('base64');
      const item: InboundMessageWire = { message: normalized, raw };
      const requestId = m.key.fromMe === true ? this.#apiSends.get(m.key.id) : undefined;
      if (m.key.fromMe === true) this.#apiSends.delete(m.key.id);
      if (requestId !== undefined) item.requestId = requestId;
      if (normalized.media !== undefined && this.#o.mediaDownload === 'eager' && (normalized.media.size ?? 0) <= this.#o.mediaMaxBytes) {
        if (deferMedia) later.push({ m, id: normalized.id, mimetype: normalized.media.mimetype });
        else if (await this.#fetchMedia(sock, m, normalized.id, normalized.media.mimetype)) item.mediaKey = mediaBlobKey(this.#o.sessionId, normalized.id);
      }
      items.push(item);
    }
    if (items.length === 0) return;
    await this.#retry(() => this.#o.request({ kind: 'message.received', sessionId: this.#o.sessionId, epoch: this.#o.epoch, upsert, messages: items }));
    if (later.length === 0) return;
    // Stored and about to be receipted: fetch the media now, off the receipt's path (GET .../media finds the
    // blob at the same key, or has the shard fetch it when this has not finished or failed).
    const job = (async () => {
      for (const l of later) await this.#fetchMedia(sock, l.m, l.id, l.mimetype);
    })();
    this.#background.add(job);
    void job.finally(() => this.#background.delete(job));
  }

  /** Downloads a message's media into the blob store; false (logged) when it failed: it is then served lazily. */
  async #fetchMedia(_sock: WASocket, m: WAMessage, id: string, mimetype: string | undefined): Promise<boolean> {
    try {
      // Only from WhatsApp's media hosts, bounded in bytes and time and really aborted (inbound-media.ts).
      const data = await downloadInboundMedia(m, {
        maxBytes: this.#o.mediaMaxBytes,
        timeoutMs: this.#o.mediaFetchTimeoutMs ?? 30_000,
        ...(this.#o.mediaSimulatorHost === undefined ? {} : { simulatorHost: this.#o.mediaSimulatorHost }),
        ...(this.#o.mediaLookup === undefined ? {} : { lookup: this.#o.mediaLookup }),
      });
      await this.#o.blobs.put(mediaBlobKey(this.#o.sessionId, id), data, mimetype);
      return true;
    } catch (err) {
      this.#o.logger.warn({ err, messageId: id }, 'inbound media download failed; served lazily');
      return false;
    }
  }

  /**
   * The option names a poll vote selects, decoded with the stored poll's messageSecret; undefined when the poll
   * is not stored (or has no secret) or the vote does not decrypt. Creator and voter may be known by phone
   * number or LID, so both forms are tried (poll.ts).
   */
  async #pollVote(sock: WASocket, m: WAMessage, pollId: string, from: string, fromLid: string | undefined): Promise<string[] | undefined> {
    const update = normalizeMessageContent(m.message)?.pollUpdateMessage;
    if (update === null || update === undefined || pollId === '') return undefined;
    try {
      const stored = await this.#o.request({ kind: 'message.get', sessionId: this.#o.sessionId, id: pollId }, 10_000);
      const poll = pollProto(stored);
      if (poll === undefined) return undefined;
      const me = jidCandidates(sock.user?.id, sock.user?.lid);
      const creators = stored.fromMe === true ? me : jidCandidates(stored.from, stored.fromLid);
      const voters = m.key.fromMe === true ? me : jidCandidates(from, fromLid, m.key.participant, m.key.participantAlt, m.key.remoteJid, m.key.remoteJidAlt);
      return decodePollVote(update, pollId, poll, creators, voters);
    } catch (err) {
      this.#o.logger.warn({ err, pollId }, 'poll vote could not be decoded');
      return undefined;
    }
  }
}

/** Baileys' `getMessage`: the stored proto from the router, undefined when unknown (never an empty message). */
export function getMessageFromRouter(sessionId: string, request: ShardRequester, logger: Logger): (key: WAMessageKey) => Promise<proto.IMessage | undefined> {
  return async (key) => {
    if (!key.id) return undefined;
    try {
      const r = await request({ kind: 'message.get', sessionId, id: key.id }, 10_000);
      return r.raw === undefined || r.raw === '' ? undefined : proto.Message.decode(Buffer.from(r.raw, 'base64'));
    } catch (err) {
      logger.warn({ err, messageId: key.id }, 'getMessage lookup failed');
      return undefined;
    }
  };
}
