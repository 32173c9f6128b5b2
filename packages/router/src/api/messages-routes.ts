/**
 * The message REST API (docs/messaging.md): POST /api/v1/sessions/:id/messages sends through the owning
 * shard (IPC `message.send`: governor, Baileys, server ack), with `Idempotency-Key` handled here against the
 * `idempotency_keys` table and the sent message stored in `messages`.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  GatewayError,
  IDEMPOTENCY_HEADER,
  createMessageSchemas,
  deriveMessageId,
  parseIdempotencyKey,
  requestFingerprint,
  shouldStoreOutcome,
  toErrorBody,
} from '@wagw/shared';
import type { BlobStore, MessageRefWire, MessagingConfig, SendMessageRequest, SqlDatabase } from '@wagw/shared';
import type { SessionManager } from '../sessions/manager.ts';
import type { ShardSupervisor } from '../supervisor.ts';
import { MessageStore, toApiMessage } from '../messages/store.ts';
import type { MessageMetrics } from '../messages/metrics.ts';
import { defineRoute } from './define-route.ts';
import type { RouteDefinition } from './define-route.ts';
import { errorSchema, idParams } from './schemas.ts';

export interface MessageRoutesDeps {
  manager: SessionManager;
  shards: Pick<ShardSupervisor, 'call'>;
  sql: SqlDatabase;
  blobs: BlobStore;
  messaging: MessagingConfig;
  metrics?: MessageMetrics;
}

const err = (description: string) => ({ description, schema: errorSchema });

export const sendResponseSchema = z
  .object({
    id: z.string().meta({ description: 'WhatsApp message id' }),
    status: z.enum(['sent']),
    chat: z.string(),
    timestamp: z.string(),
    type: z.string(),
  })
  .meta({ id: 'SendMessageResponse' });

export const storedMessageSchema = z
  .looseObject({ id: z.string(), chat: z.string(), from: z.string().optional(), fromMe: z.boolean(), timestamp: z.string(), type: z.string(), status: z.string() })
  .meta({ id: 'Message' });

const SESSIONS = '/api/v1/sessions';
/** Time beyond the governor's queue timeout an IPC send may take (media, encryption, server ack). */
const SEND_MARGIN_MS = 30_000;

/** `upload:` id of router-decoded base64 media (the shard reads it from the blob store). */
function uploadKey(sessionId: string, uploadId: string): string {
  return `uploads/${sessionId}/${uploadId}`;
}

/** Blob key of a received message's media (the shard writes it: messaging/inbound.ts). */
function mediaKey(sessionId: string, messageId: string): string {
  return `media/${sessionId}/${messageId}`;
}

export function messageRoutes(deps: MessageRoutesDeps): RouteDefinition[] {
  const { manager, shards, blobs, messaging } = deps;
  const schemas = createMessageSchemas({ defaultCountry: messaging.defaultCountry, mediaMaxBytes: messaging.media.maxBytes });
  const store = new MessageStore(deps.sql);
  const sendTimeoutMs = messaging.send.queueTimeoutMs + SEND_MARGIN_MS;

  const localShard = async (id: string): Promise<number> => {
    const own = await manager.ownership(id);
    if (own.kind === 'local') return own.shard;
    if (own.kind === 'foreign') throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} runs on host ${own.hostId}; send through that host.`, { host: own.hostId });
    throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} is not running.`);
  };

  /** Sends once (no idempotency); base64 media goes to the blob store first and is removed afterwards. */
  const send = async (id: string, request: SendMessageRequest, messageId: string | undefined, reqId: string): Promise<{ status: number; body: z.output<typeof sendResponseSchema> }> => {
    const shard = await localShard(id);
    let req = request;
    let temp: string | undefined;
    if ('media' in req && 'base64' in req.media) {
      const bytes = Buffer.from(req.media.base64, 'base64');
      if (bytes.length > messaging.media.maxBytes) throw new GatewayError('PAYLOAD_TOO_LARGE', `media.base64 decodes to more than ${messaging.media.maxBytes} bytes.`);
      const upload = `b64-${randomUUID()}`;
      temp = uploadKey(id, upload);
      await blobs.put(temp, bytes);
      req = { ...req, media: { upload } } as SendMessageRequest;
    }
    const refs: MessageRefWire[] = [];
    const refId = req.type === 'reaction' ? req.messageId : req.quotedId;
    if (refId !== undefined) {
      const ref = await store.ref(id, refId);
      if (ref !== undefined) refs.push(ref);
    }
    const t0 = performance.now();
    try {
      const result = await shards.call(
        shard,
        { kind: 'message.send', sessionId: id, request: req, ...(messageId === undefined ? {} : { messageId }), ...(refs.length === 0 ? {} : { refs }) },
        { requestId: reqId, timeoutMs: sendTimeoutMs },
      );
      await store.insert(id, result.message, 'sent', result.raw);
      deps.metrics?.observeSend('sent', (performance.now() - t0) / 1000, result.waitMs / 1000);
      return { status: 201, body: { id: result.id, status: 'sent', chat: result.message.chat, timestamp: result.message.timestamp, type: result.message.type } };
    } catch (e) {
      deps.metrics?.observeSend(e instanceof GatewayError ? e.code : 'INTERNAL', (performance.now() - t0) / 1000);
      throw e;
    } finally {
      if (temp !== undefined) await blobs.delete(temp).catch(() => undefined);
    }
  };

  const setRetryAfter = (ctx: { set(name: string, value: string): void }, e: unknown): void => {
    const ms = e instanceof GatewayError ? e.details?.['retryAfterMs'] : undefined;
    if (typeof ms === 'number') ctx.set('retry-after', String(Math.max(1, Math.ceil(ms / 1000))));
    else if (e instanceof GatewayError && (e.code === 'QUEUE_FULL' || e.code === 'QUEUE_TIMEOUT' || e.code === 'WA_RATE_LIMITED')) ctx.set('retry-after', '1');
  };

  return [
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/messages`,
      summary: 'Send a message (text, media, location, contact, reaction, poll); 201 after WhatsApp acknowledged it',
      description: 'Optional `Idempotency-Key` header: a retry returns the first result and never sends twice (docs/messaging.md).',
      tags: ['messages'],
      auth: { scopes: ['messages:send'], sessionParam: 'id' },
      params: idParams,
      body: schemas.sendMessage,
      bodyLimitBytes: 'config',
      responses: {
        201: { description: 'Sent and acknowledged by WhatsApp', schema: sendResponseSchema },
        400: err('Invalid request (VALIDATION_FAILED, INVALID_PHONE, INVALID_IDEMPOTENCY_KEY)'),
        404: err('No session, or the quoted message is unknown (SESSION_NOT_FOUND, MESSAGE_NOT_FOUND)'),
        409: err('Not connected, or the same Idempotency-Key is still running (SESSION_NOT_CONNECTED, IDEMPOTENCY_IN_PROGRESS)'),
        413: err('Media too large (PAYLOAD_TOO_LARGE)'),
        422: err('Idempotency-Key reused with another body (IDEMPOTENCY_KEY_REUSED)'),
        429: err('Send queue full or WhatsApp rate limit (QUEUE_FULL, QUEUE_TIMEOUT, WA_RATE_LIMITED); see Retry-After'),
        503: err('Shard unavailable or the queue closed (SHARD_UNAVAILABLE, QUEUE_CLOSED)'),
        504: err('WhatsApp did not acknowledge in time (WA_TIMEOUT, IPC_TIMEOUT)'),
      },
      handler: async (ctx, { params, body }) => {
        const id = params.id;
        await manager.get(id); // 404 for an unknown session
        const key = parseIdempotencyKey(ctx.req.headers[IDEMPOTENCY_HEADER]);
        if (key === undefined) {
          try {
            const out = await send(id, body, undefined, ctx.state.reqId);
            ctx.status = out.status;
            ctx.body = out.body;
          } catch (e) {
            setRetryAfter(ctx, e);
            throw e;
          }
          return;
        }
        const fingerprint = requestFingerprint({ method: 'POST', path: `${SESSIONS}/${id}/messages`, body });
        const messageId = deriveMessageId(id, key);
        const decision = await store.beginIdempotent(id, key, fingerprint, messageId, sendTimeoutMs + 5000);
        if (decision.action === 'replay') {
          ctx.set('idempotent-replayed', 'true');
          ctx.status = decision.status;
          ctx.body = decision.body;
          return;
        }
        if (decision.action === 'reject') {
          setRetryAfter(ctx, decision.error);
          throw decision.error;
        }
        if (decision.takeover) {
          // The first attempt died after the send: if its message is stored, answer with it.
          const row = await store.get(id, messageId);
          if (row !== undefined) {
            const m = toApiMessage(row);
            const response = { id: m.id, status: 'sent' as const, chat: m.chat, timestamp: m.timestamp, type: m.type };
            await store.completeIdempotent(id, key, 201, response);
            ctx.status = 201;
            ctx.body = response;
            return;
          }
        }
        try {
          const out = await send(id, body, messageId, ctx.state.reqId);
          await store.completeIdempotent(id, key, out.status, out.body);
          ctx.status = out.status;
          ctx.body = out.body;
        } catch (e) {
          const errBody = toErrorBody(e);
          const status = e instanceof GatewayError ? e.status : 500;
          if (shouldStoreOutcome(status, errBody.code)) await store.completeIdempotent(id, key, status, { error: errBody });
          else await store.releaseIdempotent(id, key);
          setRetryAfter(ctx, e);
          throw e;
        }
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/messages/:msgId`,
      summary: 'A stored message (sent or received) with its status',
      tags: ['messages'],
      auth: { scopes: ['messages:read'], sessionParam: 'id' },
      params: idParams.extend({ msgId: schemas.messageParams.shape.msgId }),
      responses: { 200: { description: 'The message', schema: storedMessageSchema }, 404: err('No such message (MESSAGE_NOT_FOUND)') },
      handler: async (ctx, { params }) => {
        const row = await store.get(params.id, params.msgId);
        if (row === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `No message ${params.msgId} in session ${params.id}.`, { messageId: params.msgId });
        ctx.body = toApiMessage(row);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/messages/:msgId/media`,
      summary: 'The media file of a received message (downloaded on arrival with INBOUND_MEDIA_DOWNLOAD=eager)',
      tags: ['messages'],
      auth: { scopes: ['messages:read'], sessionParam: 'id' },
      params: idParams.extend({ msgId: schemas.messageParams.shape.msgId }),
      responses: {
        200: { description: 'The file', contentTypes: { 'application/octet-stream': 'The media bytes (Content-Type of the media)' } },
        404: err('No such message, or no stored media (MESSAGE_NOT_FOUND)'),
      },
      handler: async (ctx, { params }) => {
        const row = await store.get(params.id, params.msgId);
        if (row === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `No message ${params.msgId} in session ${params.id}.`, { messageId: params.msgId });
        const m = toApiMessage(row);
        const media = m['media'] as { mimetype?: string; fileName?: string } | undefined;
        const stream = media === undefined ? null : await blobs.getStream(mediaKey(params.id, params.msgId));
        if (stream === null || media === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `Message ${params.msgId} has no stored media.`, { messageId: params.msgId });
        ctx.type = media.mimetype ?? 'application/octet-stream';
        if (media.fileName !== undefined) ctx.set('content-disposition', `attachment; filename="${media.fileName.replace(/["\\\r\n]/g, '_')}"`);
        ctx.body = stream;
      },
    }),
  ];
}
