/**
 * The message REST API (docs/messaging.md): POST /api/v1/sessions/:id/messages validates, forwards to the
 * owning host when another one runs the session, and hands the send to messages/sender.ts (IPC `message.send`:
 * governor, Baileys, server ack; the `Idempotency-Key` record; the stored row); history, single messages,
 * media, uploads and message actions.
 */
import { randomUUID } from 'node:crypto';
import busboy from 'busboy';
import { z } from 'zod';
import {
  GatewayError,
  IDEMPOTENCY_HEADER,
  createMessageSchemas,
  parseIdempotencyKey,
  storedMessageSchema,
} from '@wagw/shared';
import type { BlobStore, MessageRefWire, MessagingConfig, SessionAction, SqlDatabase, WireMessage } from '@wagw/shared';
import type { HostRegistry } from '@wagw/stores';
import type { SessionManager } from '../sessions/manager.ts';
import { uploadLimits, uploadTooLarge } from '../security/limits.ts';
import type { AppContext } from '../app.ts';
import type { ShardSupervisor } from '../supervisor.ts';
import { MessageStore, decodeBefore, toApiMessage } from '../messages/store.ts';
import type { MessageMetrics } from '../messages/metrics.ts';
import { MessageSender } from '../messages/sender.ts';
import type { SendOutcome } from '../messages/sender.ts';
import { defineRoute } from './define-route.ts';
import { createForwarder } from './forward.ts';
import { mediaHeaders } from './media-headers.ts';
import type { RouteDefinition } from './define-route.ts';
import { errorSchema, idParams } from './schemas.ts';

export interface MessageRoutesDeps {
  manager: SessionManager;
  shards: Pick<ShardSupervisor, 'call'>;
  sql: SqlDatabase;
  blobs: BlobStore;
  messaging: MessagingConfig;
  /** UPLOAD_LIMIT_BYTES (config.limits.uploadBytes); the file itself is capped at MEDIA_MAX_BYTES too. */
  uploadBytes?: number;
  /** UPLOAD_QUOTA_BYTES (config.limits.uploadQuotaBytes): bytes of uploads one session holds at once. Absent: no quota. */
  uploadQuotaBytes?: number;
  metrics?: MessageMetrics;
  /**
   * Multi-host: the host registry. A call that needs the session's socket (send, read, edit, revoke,
   * presence, number lookup, a media download) is proxied to the host that owns the session; history, single
   * messages, stored media and uploads are served by any host from the shared PostgreSQL and blob store.
   * Absent: such a call answers 409 SESSION_NOT_CONNECTED.
   */
  hosts?: HostRegistry;
  /** CLUSTER_SECRET: forwarded calls are signed with it (security/forwarded.ts). */
  clusterSecret?: string | undefined;
}

interface UploadInfo {
  size: number;
  mimetype: string;
  fileName: string | undefined;
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

const SESSIONS = '/api/v1/sessions';

/** Uploads one session may hold at once whatever their size (each costs a listing entry and a meta read). */
const MAX_UPLOADS_PER_SESSION = 1000;

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
  const store = new MessageStore(deps.sql, { idempotencyTtlMs: messaging.expiry.idempotencyTtlMs });
  const forwarded = deps.hosts === undefined ? async () => false : createForwarder(manager, deps.hosts, deps.clusterSecret);
  const location = (ctx: AppContext, id: string, msgId: string): void => {
    ctx.set('location', `${SESSIONS}/${encodeURIComponent(id)}/messages/${encodeURIComponent(msgId)}`);
  };

  const sender = new MessageSender({
    manager,
    shards,
    blobs,
    messaging,
    store,
    uploadKey,
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
  });
  const { sendTimeoutMs } = sender;
  const localShard = async (id: string): Promise<number> => {
    const own = await manager.ownership(id);
    if (own.kind === 'local') return own.shard;
    if (own.kind === 'foreign') throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} runs on host ${own.hostId}; send through that host.`, { host: own.hostId });
    throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${id} is not running.`);
  };

  const action = async (id: string, act: SessionAction, reqId: string) => {
    const shard = await localShard(id);
    return await shards.call(shard, { kind: 'session.action', sessionId: id, action: act }, { requestId: reqId, timeoutMs: sendTimeoutMs });
  };

  /** The edit/revoke this session just sent, as the stored shape `applyEdit`/`applyRevoke` read. */
  const ownAction = (id: string, chat: string, fields: Pick<WireMessage, 'edit' | 'revoke'> & { type: 'edit' | 'revoke' }): WireMessage => ({
    id,
    chat,
    from: '',
    fromMe: true,
    timestamp: new Date().toISOString(),
    ...fields,
  });

  const refOf = async (id: string, msgId: string): Promise<MessageRefWire> => {
    await manager.get(id);
    const ref = await store.ref(id, msgId);
    if (ref === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `No message ${msgId} in session ${id}.`, { messageId: msgId });
    return ref;
  };

  const msgParams = idParams.extend({ msgId: schemas.messageParams.shape.msgId });
  const READ = { scopes: ['messages:read'], sessionParam: 'id' } as const;
  const SEND = { scopes: ['messages:send'], sessionParam: 'id' } as const;
  const okSchema = z.object({ id: z.string().optional(), ok: z.boolean() }).meta({ id: 'MessageActionResponse' });

  const uploadBytes = Math.min(deps.uploadBytes ?? messaging.media.maxBytes + 1024 * 1024, messaging.media.maxBytes);

  /**
   * Per-session upload quota (issue #10 item 17): what a session's live uploads hold, from their `.meta` files
   * (an older meta without `size` counts as a full-size upload), plus what its uploads in progress on this router
   * reserved. Uploads in progress on another host are not seen: the quota can be passed by at most one upload
   * per host at once.
   */
  const uploadQuota = deps.uploadQuotaBytes;
  const reservedUploads = new Map<string, number>();
  const usedUploadBytes = async (sessionId: string): Promise<{ bytes: number; files: number }> => {
    const metas = (await blobs.list(`uploads/${sessionId}/`)).filter((k) => k.endsWith('.meta'));
    if (metas.length >= MAX_UPLOADS_PER_SESSION) return { bytes: Number.POSITIVE_INFINITY, files: metas.length };
    const sizes = await Promise.all(
      metas.map(async (k) => {
        const meta = await blobs.get(k).catch(() => null);
        if (meta === null) return 0;
        try {
          const size = (JSON.parse(meta.toString('utf8')) as { size?: unknown }).size;
          return typeof size === 'number' && size >= 0 ? size : uploadBytes;
        } catch {
          return uploadBytes;
        }
      }),
    );
    return { bytes: sizes.reduce((a, b) => a + b, 0) + (reservedUploads.get(sessionId) ?? 0), files: metas.length };
  };
  const quotaExceeded = (sessionId: string, used: number, quota: number): GatewayError =>
    new GatewayError(
      'UPLOAD_QUOTA_EXCEEDED',
      `Session ${sessionId} holds ${Number.isFinite(used) ? `${used} bytes` : `${MAX_UPLOADS_PER_SESSION} files`} of uploads (quota ${quota} bytes, ${MAX_UPLOADS_PER_SESSION} files): send them or wait until they expire (UPLOAD_TTL_MS).`,
      { session: sessionId, quotaBytes: quota, maxFiles: MAX_UPLOADS_PER_SESSION },
    );

  /** Streams the one file of a multipart body to the blob store (never buffered whole, never over IPC). */
  const receiveUpload = (ctx: AppContext, key: string, limitBytes = uploadBytes, onTooLarge: () => GatewayError = () => uploadTooLarge({ uploadBytes })): Promise<UploadInfo> =>
    new Promise<UploadInfo>((resolve, reject) => {
      const type = ctx.get('content-type');
      if (!type.toLowerCase().startsWith('multipart/form-data')) {
        reject(new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'Uploads are multipart/form-data with one file field.'));
        return;
      }
      let bb: ReturnType<typeof busboy>;
      try {
        // One byte over the limit: busboy marks a file that reaches its limit exactly as truncated, which refused
        // a file of exactly MEDIA_MAX_BYTES (or exactly the rest of the quota).
        bb = busboy({ headers: ctx.req.headers, limits: uploadLimits({ uploadBytes: limitBytes + 1 }) });
      } catch (e) {
        reject(new GatewayError('VALIDATION_FAILED', `Malformed multipart request: ${(e as Error).message}`));
        return;
      }
      let stored: Promise<UploadInfo> | undefined;
      bb.on('file', (_field, stream, info) => {
        stored = blobs.putStream(key, stream, info.mimeType).then(async (size) => {
          if (stream.truncated || size > limitBytes) {
            await blobs.delete(key).catch(() => undefined);
            throw onTooLarge();
          }
          return { size, mimetype: info.mimeType, fileName: info.filename };
        });
        stored.catch(() => undefined);
      });
      bb.on('error', (e: unknown) => reject(new GatewayError('VALIDATION_FAILED', `Malformed multipart request: ${(e as Error).message}`)));
      bb.on('close', () => {
        if (stored === undefined) reject(new GatewayError('VALIDATION_FAILED', 'The multipart body has no file.'));
        else stored.then(resolve, reject);
      });
      ctx.req.pipe(bb);
    });

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
      description:
        'Optional `Idempotency-Key` header: a retry returns the first result and never sends twice (docs/messaging.md). The 201 response carries `Location: /api/v1/sessions/{id}/messages/{msgId}`. A session owned by another host is sent through that host (the call is forwarded).',
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
        // 404 for an unknown session. A session this host runs has its row (a delete stops it first), so only
        // the others cost the row's SQL read: a send is the hottest call and that read was one query in ~6.
        if ((await manager.ownership(id)).kind !== 'local') await manager.get(id);
        const key = parseIdempotencyKey(ctx.req.headers[IDEMPOTENCY_HEADER]);
        // Another host owns the session: it sends (and handles the Idempotency-Key, whose record is shared).
        if (await forwarded(ctx, id)) return;
        try {
          const out: SendOutcome = key === undefined ? await sender.send(id, body, undefined, ctx.state.reqId) : await sender.sendWithKey(id, body, key, `${SESSIONS}/${id}/messages`, ctx.state.reqId);
          ctx.status = out.status;
          ctx.body = out.body;
          if (out.replayed === true) {
            ctx.set('idempotent-replayed', 'true');
            const sent = sendResponseSchema.safeParse(out.body);
            if (out.status === 201 && sent.success) location(ctx, id, sent.data.id);
          } else location(ctx, id, out.body.id);
        } catch (e) {
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
      params: msgParams,
      responses: { 200: { description: 'The message', schema: storedMessageSchema }, 404: err('No such message (MESSAGE_NOT_FOUND)') },
      handler: async (ctx, { params }) => {
        const row = await store.get(params.id, params.msgId);
        if (row === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `No message ${params.msgId} in session ${params.id}.`, { messageId: params.msgId });
        ctx.body = toApiMessage(row);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/messages`,
      summary: 'Message history, newest first (cursor pagination with `before`)',
      tags: ['messages'],
      auth: READ,
      params: idParams,
      query: schemas.listMessagesQuery,
      responses: {
        200: { description: 'A page of messages', schema: z.object({ data: z.array(storedMessageSchema), next: z.string().nullable() }).meta({ id: 'MessagePage' }) },
        400: err('Invalid query (VALIDATION_FAILED, INVALID_PHONE)'),
        404: err('No such session (SESSION_NOT_FOUND)'),
      },
      handler: async (ctx, { params, query }) => {
        await manager.get(params.id);
        let before: { at: string; id: string } | undefined;
        if (query.before !== undefined) {
          before = decodeBefore(query.before);
          if (before === undefined) throw new GatewayError('VALIDATION_FAILED', 'before must be the `next` cursor of a previous page or an ISO-8601 time.', { before: query.before });
        }
        const page = await store.list(params.id, {
          limit: query.limit,
          ...(query.chat === undefined ? {} : { chat: query.chat.jid }),
          ...(before === undefined ? {} : { before }),
        });
        ctx.body = { data: page.rows.map(toApiMessage), next: page.next };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/messages/:msgId/read`,
      summary: 'Send a read receipt for a received message',
      tags: ['messages'],
      auth: SEND,
      params: msgParams,
      body: schemas.markRead,
      responses: { 200: { description: 'Read receipt sent', schema: okSchema }, 404: err('No such message (MESSAGE_NOT_FOUND)'), 409: err('SESSION_NOT_CONNECTED') },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        const ref = await refOf(params.id, params.msgId);
        await action(params.id, { type: 'read', ref }, ctx.state.reqId);
        ctx.body = { id: params.msgId, ok: true };
      },
    }),
    defineRoute({
      method: 'patch',
      path: `${SESSIONS}/:id/messages/:msgId`,
      summary: "Edit the text of one of this session's own messages",
      tags: ['messages'],
      auth: SEND,
      params: msgParams,
      body: schemas.editMessage,
      responses: { 200: { description: 'Edited', schema: okSchema }, 404: err('No such message (MESSAGE_NOT_FOUND)'), 409: err('Not own message (CONFLICT), SESSION_NOT_CONNECTED') },
      handler: async (ctx, { params, body }) => {
        if (await forwarded(ctx, params.id)) return;
        const ref = await refOf(params.id, params.msgId);
        if (!ref.fromMe) throw new GatewayError('CONFLICT', 'Only messages sent by this session can be edited.', { messageId: params.msgId });
        const r = await action(params.id, { type: 'edit', ref, text: body.text }, ctx.state.reqId);
        // The same representation as an edit received from a phone (store.applyEdit): text or caption, editedAt, editHistory.
        await store.applyEdit(params.id, ownAction(r.id ?? params.msgId, ref.chat, { type: 'edit', edit: { messageId: params.msgId, text: body.text } }));
        ctx.body = { id: r.id, ok: true };
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${SESSIONS}/:id/messages/:msgId`,
      summary: 'Revoke (delete for everyone) a message',
      tags: ['messages'],
      auth: SEND,
      params: msgParams,
      responses: { 200: { description: 'Revoked', schema: okSchema }, 404: err('No such message (MESSAGE_NOT_FOUND)'), 409: err('SESSION_NOT_CONNECTED') },
      handler: async (ctx, { params }) => {
        if (await forwarded(ctx, params.id)) return;
        const ref = await refOf(params.id, params.msgId);
        const r = await action(params.id, { type: 'revoke', ref }, ctx.state.reqId);
        await store.applyRevoke(params.id, ownAction(r.id ?? params.msgId, ref.chat, { type: 'revoke', revoke: { messageId: params.msgId } }));
        ctx.body = { id: r.id, ok: true };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/presence`,
      summary: 'Show typing / recording / online state',
      tags: ['messages'],
      auth: SEND,
      params: idParams,
      body: schemas.presence,
      responses: { 200: { description: 'Sent', schema: okSchema }, 400: err('VALIDATION_FAILED'), 404: err('No such session (SESSION_NOT_FOUND)'), 409: err('SESSION_NOT_CONNECTED') },
      handler: async (ctx, { params, body }) => {
        await manager.get(params.id);
        if (await forwarded(ctx, params.id)) return;
        await action(params.id, { type: 'presence', state: body.state, ...(body.to === undefined ? {} : { to: body.to.jid }) }, ctx.state.reqId);
        ctx.body = { ok: true };
      },
    }),
    defineRoute({
      method: 'get',
      path: `${SESSIONS}/:id/contacts/:phone/exists`,
      summary: 'Whether a phone number has WhatsApp',
      tags: ['messages'],
      auth: READ,
      params: idParams.extend({ phone: schemas.contactExistsParams.shape.phone }),
      responses: {
        200: { description: 'The answer', schema: z.object({ phone: z.string(), exists: z.boolean(), jid: z.string().optional() }).meta({ id: 'ContactExists' }) },
        400: err('INVALID_PHONE'),
        404: err('No such session (SESSION_NOT_FOUND)'),
        409: err('SESSION_NOT_CONNECTED'),
      },
      handler: async (ctx, { params }) => {
        await manager.get(params.id);
        if (await forwarded(ctx, params.id)) return;
        const r = await action(params.id, { type: 'exists', jid: params.phone.jid }, ctx.state.reqId);
        ctx.body = { phone: params.phone.phone ?? params.phone.jid, exists: r.exists === true, ...(r.jid === undefined ? {} : { jid: r.jid }) };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${SESSIONS}/:id/uploads`,
      summary: 'Upload a media file (multipart/form-data, one file) to send later as media {upload: id}',
      tags: ['messages'],
      auth: SEND,
      params: idParams,
      multipart: { fileField: 'file', description: 'One file part (any field name; `file` by convention), streamed to storage; at most the media size limit.' },
      responses: {
        201: {
          description: 'Stored',
          schema: z.object({ upload: z.string(), size: z.number(), mimetype: z.string(), fileName: z.string().optional() }).meta({ id: 'UploadResponse' }),
        },
        400: err('No file, malformed multipart (VALIDATION_FAILED)'),
        404: err('SESSION_NOT_FOUND'),
        413: err('PAYLOAD_TOO_LARGE'),
        415: err('Not multipart (UNSUPPORTED_MEDIA_TYPE)'),
        429: err('The session\'s uploads fill its quota (UPLOAD_QUOTA_EXCEEDED)'),
      },
      handler: async (ctx, { params }) => {
        await manager.get(params.id);
        const upload = `u_${randomUUID().replace(/-/g, '')}`;
        const key = uploadKey(params.id, upload);
        let info: UploadInfo;
        if (uploadQuota === undefined) {
          info = await receiveUpload(ctx, key);
        } else {
          const used = await usedUploadBytes(params.id);
          const room = uploadQuota - used.bytes;
          if (room <= 0) throw quotaExceeded(params.id, used.bytes, uploadQuota);
          // The file may use what is left of the quota (and no more than the upload limit); reserved until stored.
          const limit = Math.min(uploadBytes, room);
          reservedUploads.set(params.id, (reservedUploads.get(params.id) ?? 0) + limit);
          try {
            info = await receiveUpload(ctx, key, limit, () => (limit < uploadBytes ? quotaExceeded(params.id, used.bytes, uploadQuota) : uploadTooLarge({ uploadBytes })));
          } finally {
            const left = (reservedUploads.get(params.id) ?? limit) - limit;
            if (left > 0) reservedUploads.set(params.id, left);
            else reservedUploads.delete(params.id);
          }
        }
        await blobs.put(`${key}.meta`, Buffer.from(JSON.stringify({ mimetype: info.mimetype, fileName: info.fileName, size: info.size })), 'application/json');
        ctx.status = 201;
        ctx.body = { upload, size: info.size, mimetype: info.mimetype, ...(info.fileName === undefined ? {} : { fileName: info.fileName }) };
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
        const media = m.media;
        if (media === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `Message ${params.msgId} has no media.`, { messageId: params.msgId });
        // Computed before any blob stream is opened: nothing below can throw with a stream left open.
        const headers = mediaHeaders(media);
        const key = mediaKey(params.id, params.msgId);
        let stream = await blobs.getStream(key);
        if (stream === null) {
          // Not downloaded yet (lazy, the eager download failed, or, for an own send, the row was stored before the
          // socket's echo brought the media to the blob store): the owning shard fetches it now.
          if (await forwarded(ctx, params.id)) return;
          const ref = await refOf(params.id, params.msgId);
          await action(params.id, { type: 'download', ref, key }, ctx.state.reqId);
          stream = await blobs.getStream(key);
        }
        if (stream === null) throw new GatewayError('MESSAGE_NOT_FOUND', `Message ${params.msgId} has no stored media.`, { messageId: params.msgId });
        try {
          ctx.set('content-type', headers.contentType);
          ctx.set('content-disposition', headers.contentDisposition);
          ctx.body = stream; // from here Koa destroys the stream when the response ends or the client goes away
        } catch (err) {
          stream.destroy();
          throw err;
        }
      },
    }),
  ];
}
