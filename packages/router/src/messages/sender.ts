/**
 * The send flow of POST /api/v1/sessions/:id/messages (moved out of api/messages-routes.ts, issue #11 item 3):
 * base64 media to the blob store, quoted/reacted-to references, the owning shard's `message.send` (governor,
 * Baileys, the stored row, server ack), and the `Idempotency-Key` record around all of it. The route keeps HTTP:
 * forwarding to the owning host, headers (Location, Retry-After, Idempotent-Replayed) and the status code.
 *
 * One writer per row: this flow writes no message. The shard stores the sent message right after relaying it,
 * through `message.received` like every message (messages/ingest.ts `storeMessage`: the row, its `sent` status
 * with this request id, a reaction's change on its target and the `messages` webhook, in one transaction), and
 * answers `message.send` only after that committed: so a 201 means the row is stored, and no receipt of the
 * message reaches the router before its row (both take the shard's one ordered inbound chain).
 */
import { randomUUID } from 'node:crypto';
import { GatewayError, deriveMessageId, requestFingerprint, shouldStoreOutcome, toErrorBody } from '@wagw/shared';
import type { BlobStore, MessageRefWire, MessagingConfig, SendMessageRequest } from '@wagw/shared';
import type { SessionManager } from '../sessions/manager.ts';
import type { ShardSupervisor } from '../supervisor.ts';
import type { MessageMetrics } from './metrics.ts';
import { toApiMessage } from './store.ts';
import type { MessageStore } from './store.ts';

/** What a send answers (the API's SendMessageResponse). */
export interface SendResponse {
  id: string;
  status: 'sent';
  chat: string;
  timestamp: string;
  type: string;
}

export type SendOutcome = { status: number; body: SendResponse; replayed?: false } | { status: number; body: unknown; replayed: true };

export interface MessageSenderDeps {
  manager: Pick<SessionManager, 'ownership'>;
  shards: Pick<ShardSupervisor, 'call'>;
  blobs: BlobStore;
  messaging: MessagingConfig;
  store: MessageStore;
  metrics?: MessageMetrics;
  /** Blob key of a session's upload (the route's uploads live there). */
  uploadKey: (sessionId: string, uploadId: string) => string;
}

export class MessageSender {
  readonly #d: MessageSenderDeps;
  readonly sendTimeoutMs: number;

  constructor(deps: MessageSenderDeps) {
    this.#d = deps;
    // The governor's queue timeout, then the time the send itself may take (media, encryption, server ack).
    this.sendTimeoutMs = deps.messaging.send.queueTimeoutMs + deps.messaging.send.replyMarginMs;
  }

  async #localShard(id: string): Promise<number> {
    const own = await this.#d.manager.ownership(id);
    if (own.kind === 'local') return own.shard;
    if (own.kind === 'foreign') throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} runs on host ${own.hostId}; send through that host.`, { host: own.hostId });
    throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} is not running.`);
  }

  /** Sends once (no idempotency); base64 media goes to the blob store first and is removed afterwards. */
  async send(id: string, request: SendMessageRequest, messageId: string | undefined, reqId: string): Promise<{ status: number; body: SendResponse }> {
    const d = this.#d;
    const shard = await this.#localShard(id);
    let req = request;
    let temp: string | undefined;
    if ('media' in req && 'base64' in req.media) {
      const bytes = Buffer.from(req.media.base64, 'base64');
      if (bytes.length > d.messaging.media.maxBytes) throw new GatewayError('PAYLOAD_TOO_LARGE', `media.base64 decodes to more than ${d.messaging.media.maxBytes} bytes.`);
      const upload = `b64-${randomUUID()}`;
      temp = d.uploadKey(id, upload);
      await d.blobs.put(temp, bytes);
      req = { ...req, media: { upload } } as SendMessageRequest;
    }
    const refs: MessageRefWire[] = [];
    const refId = req.type === 'reaction' ? req.messageId : req.quotedId;
    if (refId !== undefined) {
      const ref = await d.store.ref(id, refId);
      if (ref !== undefined) refs.push(ref);
    }
    const t0 = performance.now();
    try {
      const result = await d.shards.call(
        shard,
        { kind: 'message.send', sessionId: id, request: req, ...(messageId === undefined ? {} : { messageId }), ...(refs.length === 0 ? {} : { refs }) },
        { requestId: reqId, timeoutMs: this.sendTimeoutMs },
      );
      // The row is stored (by the shard, before its reply): nothing to write here.
      d.metrics?.observeSend('sent', (performance.now() - t0) / 1000, result.waitMs / 1000);
      return { status: 201, body: { id: result.id, status: 'sent', chat: result.message.chat, timestamp: result.message.timestamp, type: result.message.type } };
    } catch (e) {
      d.metrics?.observeSend(e instanceof GatewayError ? e.code : 'INTERNAL', (performance.now() - t0) / 1000);
      throw e;
    } finally {
      if (temp !== undefined) await d.blobs.delete(temp).catch(() => undefined);
    }
  }

  /**
   * A send under an Idempotency-Key (docs/messaging.md): a completed key replays its stored answer, a running
   * one is refused, a key whose first attempt died after sending answers with the stored message; otherwise
   * it sends with the message id derived from the key and records the outcome (or releases the key when the
   * outcome must not be replayed). `path` is the request path the fingerprint covers.
   */
  async sendWithKey(id: string, request: SendMessageRequest, key: string, path: string, reqId: string): Promise<SendOutcome> {
    const { store } = this.#d;
    const fingerprint = requestFingerprint({ method: 'POST', path, body: request });
    const messageId = deriveMessageId(id, key);
    const decision = await store.beginIdempotent(id, key, fingerprint, messageId, this.sendTimeoutMs + 5000);
    if (decision.action === 'replay') return { status: decision.status, body: decision.body, replayed: true };
    if (decision.action === 'reject') throw decision.error;
    if (decision.takeover) {
      // The first attempt died after the send: if its message is stored, answer with it.
      const row = await store.get(id, messageId);
      if (row !== undefined) {
        const m = toApiMessage(row);
        const response: SendResponse = { id: m.id, status: 'sent', chat: m.chat, timestamp: m.timestamp, type: m.type };
        await store.completeIdempotent(id, key, 201, response);
        return { status: 201, body: response };
      }
    }
    try {
      const out = await this.send(id, request, messageId, reqId);
      await store.completeIdempotent(id, key, out.status, out.body);
      return out;
    } catch (e) {
      const errBody = toErrorBody(e);
      const status = e instanceof GatewayError ? e.status : 500;
      if (shouldStoreOutcome(status, errBody.code)) await store.completeIdempotent(id, key, status, { error: errBody });
      else await store.releaseIdempotent(id, key);
      throw e;
    }
  }
}
