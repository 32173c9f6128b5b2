/**
 * The shard's send path (docs/messaging.md): IPC `message.send` -> the session's SendGovernor ->
 * `buildSendContent` -> `sock.sendMessage(jid, content, {messageId})` -> WhatsApp's server ack.
 * Media bytes come from the blob store (uploads and router-decoded base64) or a bounded URL fetch.
 */
import { groupError } from '../groups/actions.ts';
import { downloadMediaMessage, generateMessageIDV2, generateWAMessage, proto } from '@whiskeysockets/baileys';
import type { AnyMessageContent, MiscMessageGenerationOptions, WAMessage, WASocket } from '@whiskeysockets/baileys';
import { GatewayError } from '@wagw/shared';
import type { BlobStore, MediaSource, MessageRefWire, MessageSendParams, MessageSendResult, SessionAction, SessionActionResult, WireMessage } from '@wagw/shared';
import { applyPollMentions, buildEditContent, buildRevokeContent, buildSendContent, normalizeInbound } from './content.ts';
import type { ContentDeps, ResolvedMedia } from './content.ts';
import type { SendGovernor } from './governor.ts';

/** Blob key of an upload (multipart or router-decoded base64) of a session. */
export function uploadBlobKey(sessionId: string, uploadId: string): string {
  return `uploads/${sessionId}/${uploadId}`;
}

export interface AckResult {
  error?: string;
}

/** Waits for WhatsApp's `<ack class="message" id=…>` of each sent message. */
export class AckTracker {
  readonly #waiters = new Map<string, { resolve: (r: AckResult) => void; timer: NodeJS.Timeout }>();

  /** Registers before the send; rejects with WA_TIMEOUT after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<AckResult> {
    return new Promise<AckResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new GatewayError('WA_TIMEOUT', 'WhatsApp did not acknowledge the message in time; it may or may not have been sent.', { messageId: id, timeoutMs }));
      }, timeoutMs);
      this.#waiters.set(id, { resolve, timer });
    });
  }

  cancel(id: string): void {
    const w = this.#waiters.get(id);
    if (w === undefined) return;
    clearTimeout(w.timer);
    this.#waiters.delete(id);
  }

  /** From the socket's `CB:ack,class:message` listener. */
  onAck(attrs: Record<string, string>): void {
    const id = attrs['id'];
    if (id === undefined) return;
    const w = this.#waiters.get(id);
    if (w === undefined) return;
    clearTimeout(w.timer);
    this.#waiters.delete(id);
    w.resolve(attrs['error'] === undefined ? {} : { error: attrs['error'] });
  }
}

export interface MediaLimits {
  maxBytes: number;
  fetchTimeoutMs: number;
}

/** Downloads a media URL within the size and time limits; failures are 400s naming the URL. */
export async function fetchMedia(url: string, limits: MediaLimits): Promise<ResolvedMedia> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(limits.fetchTimeoutMs), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new GatewayError('VALIDATION_FAILED', `media.url could not be fetched (${cause}): ${url}`, { url, reason: cause });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new GatewayError('VALIDATION_FAILED', `media.url answered HTTP ${res.status}: ${url}`, { url, status: res.status });
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > limits.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new GatewayError('PAYLOAD_TOO_LARGE', `media.url is larger than ${limits.maxBytes} bytes`, { url, maxBytes: limits.maxBytes });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    if (res.body !== null) {
      for await (const chunk of res.body) {
        size += (chunk as Uint8Array).byteLength;
        if (size > limits.maxBytes) throw new GatewayError('PAYLOAD_TOO_LARGE', `media.url is larger than ${limits.maxBytes} bytes`, { url, maxBytes: limits.maxBytes });
        chunks.push(Buffer.from(chunk as Uint8Array));
      }
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('VALIDATION_FAILED', `media.url download failed (${(err as Error).name}): ${url}`, { url });
  }
  const out: ResolvedMedia = { data: Buffer.concat(chunks) };
  const type = res.headers.get('content-type');
  if (type !== null && type !== '') out.mimetype = type;
  const name = new URL(url).pathname.split('/').at(-1);
  if (name !== undefined && name !== '') out.fileName = decodeURIComponent(name);
  return out;
}

export interface SendDeps {
  sessionId: string;
  socket: () => WASocket | undefined;
  connected: () => boolean;
  acks: AckTracker;
  governor: SendGovernor;
  blobs: BlobStore;
  media: MediaLimits;
  ackTimeoutMs: number;
  /** Told the message id before the send goes out (the runner tags Baileys' echo with the request id). */
  noteSent?: (messageId: string) => void;
}

function refToMessage(ref: MessageRefWire): WAMessage {
  const key = ref.participant === undefined ? { remoteJid: ref.chat, id: ref.id, fromMe: ref.fromMe } : { remoteJid: ref.chat, id: ref.id, fromMe: ref.fromMe, participant: ref.participant };
  const message = ref.raw === undefined ? proto.Message.create({ conversation: '' }) : proto.Message.decode(Buffer.from(ref.raw, 'base64'));
  return { key, message };
}

/** Maps an error ack code to the API's error. */
function ackError(code: string, id: string, jid: string): GatewayError {
  // a group send: not a member (401), announcement mode and not an admin (403), no such group (404)
  if (jid.endsWith('@g.us') && (code === '401' || code === '403' || code === '404')) {
    const e = groupError({ data: Number(code) }, `group ${jid}`);
    return new GatewayError(e.code, e.message, { messageId: id, waError: code });
  }
  if (code === '429' || code === '463' || code === '479') {
    return new GatewayError('WA_RATE_LIMITED', `WhatsApp refused the message (error ${code}).`, { messageId: id, waError: code });
  }
  return new GatewayError('CONFLICT', `WhatsApp refused the message (error ${code}).`, { messageId: id, waError: code });
}

export async function sendOne(params: MessageSendParams, deps: SendDeps): Promise<MessageSendResult> {
  if (!deps.connected() || deps.socket() === undefined) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
  const refs = params.refs ?? [];
  const contentDeps: ContentDeps = {
    resolveMedia: async (source: MediaSource) => {
      if ('url' in source) return await fetchMedia(source.url, deps.media);
      if ('upload' in source) {
        const data = await deps.blobs.get(uploadBlobKey(deps.sessionId, source.upload));
        if (data === null) throw new GatewayError('VALIDATION_FAILED', `media.upload ${source.upload} is unknown (uploads are per session).`, { upload: source.upload });
        const out: ResolvedMedia = { data };
        const meta = await deps.blobs.get(`${uploadBlobKey(deps.sessionId, source.upload)}.meta`).catch(() => null);
        if (meta !== null) {
          const m = JSON.parse(meta.toString('utf8')) as { mimetype?: string; fileName?: string };
          if (typeof m.mimetype === 'string' && m.mimetype !== 'application/octet-stream') out.mimetype = m.mimetype;
          if (typeof m.fileName === 'string') out.fileName = m.fileName;
        }
        return out;
      }
      throw new GatewayError('VALIDATION_FAILED', 'base64 media must be stored by the router before the send.');
    },
    findMessage: async (ref) => {
      const found = refs.find((r) => r.id === ref.id && (ref.chat === undefined || r.chat === ref.chat));
      return found === undefined ? undefined : refToMessage(found);
    },
  };
  const sock0 = deps.socket();
  const messageId = params.messageId ?? generateMessageIDV2(sock0?.user?.id);
  deps.noteSent?.(messageId);
  const built = await buildSendContent(params.request, contentDeps, { messageId });
  const jid = params.request.to.jid;
  const { sent, waitMs } = await governedSend(deps, jid, built.content, built.options, messageId, built.pollMentions);
  const normalized = await normalizeInbound(sent);
  const message = (normalized ?? { id: messageId, chat: jid, from: '', fromMe: true, timestamp: new Date().toISOString(), type: params.request.type }) as unknown as WireMessage;
  return { id: messageId, status: 'sent' as const, message, raw: rawOf(sent), waitMs };
}

function rawOf(sent: WAMessage): string {
  return sent.message === null || sent.message === undefined ? '' : Buffer.from(proto.Message.encode(sent.message).finish()).toString('base64');
}

/**
 * A poll with mentions: generated like `sock.sendMessage` does, the mentions set on the poll's own contextInfo
 * (`applyPollMentions`), relayed with the `<meta polltype="creation">` node sendMessage adds for polls.
 */
async function sendPollWithMentions(sock: WASocket, jid: string, content: AnyMessageContent, options: MiscMessageGenerationOptions, messageId: string, mentions: readonly string[]): Promise<WAMessage> {
  const full = await generateWAMessage(jid, content, { ...options, messageId, userJid: sock.user?.id ?? '', upload: sock.waUploadToServer, logger: sock.logger });
  if (full.message === null || full.message === undefined || !applyPollMentions(full.message, mentions)) throw new GatewayError('INTERNAL', 'Baileys built no poll.');
  await sock.relayMessage(jid, full.message, { messageId, additionalNodes: [{ tag: 'meta', attrs: { polltype: 'creation' } }] });
  return full;
}

/** One send through the governor, resolved on WhatsApp's server ack. */
async function governedSend(
  deps: SendDeps,
  jid: string,
  content: AnyMessageContent,
  options: MiscMessageGenerationOptions,
  messageId: string,
  pollMentions?: readonly string[],
): Promise<{ sent: WAMessage; waitMs: number }> {
  const queuedAt = Date.now();
  return await deps.governor.submit(jid, async () => {
    const waitMs = Date.now() - queuedAt;
    const sock = deps.socket();
    if (sock === undefined || !deps.connected()) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
    const ack = deps.acks.wait(messageId, deps.ackTimeoutMs);
    let sent: WAMessage | undefined;
    try {
      sent = pollMentions === undefined ? await sock.sendMessage(jid, content, { ...options, messageId }) : await sendPollWithMentions(sock, jid, content, options, messageId, pollMentions);
    } catch (err) {
      deps.acks.cancel(messageId);
      ack.catch(() => undefined);
      const message = (err as Error).message;
      if (/connection closed|not open|closed/i.test(message)) throw new GatewayError('SESSION_NOT_CONNECTED', `The session socket closed during the send: ${message}`);
      // a group send fetches the group's metadata first (on a cache miss): WhatsApp's refusal of that query
      if (jid.endsWith('@g.us')) throw groupError(err, `group ${jid}`);
      throw err;
    }
    const result = await ack;
    if (result.error !== undefined) throw ackError(result.error, messageId, jid);
    if (sent === undefined) throw new GatewayError('INTERNAL', 'Baileys returned no message.');
    return { sent, waitMs };
  });
}

/** IPC `session.action`: read receipts, edit, revoke, presence, number lookup. */
export async function runAction(action: SessionAction, deps: SendDeps): Promise<SessionActionResult> {
  const sock = deps.socket();
  if (sock === undefined || !deps.connected()) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
  const one = (ref: MessageRefWire) => ({
    resolveMedia: () => Promise.reject(new GatewayError('VALIDATION_FAILED', 'no media here')),
    findMessage: async () => refToMessage(ref),
  });
  switch (action.type) {
    case 'read': {
      const m = refToMessage(action.ref);
      await sock.readMessages([m.key]);
      return {};
    }
    case 'edit':
    case 'revoke': {
      const built = action.type === 'edit' ? await buildEditContent(action.ref.id, action.text, one(action.ref)) : await buildRevokeContent(action.ref.id, one(action.ref));
      const id = generateMessageIDV2(sock.user?.id);
      const { sent } = await governedSend(deps, built.jid, built.content, {}, id);
      return { id, raw: rawOf(sent) };
    }
    case 'presence':
      await sock.sendPresenceUpdate(action.state, action.to);
      return {};
    case 'download': {
      if (action.ref.raw === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `Message ${action.ref.id} has no stored content.`);
      const data = await downloadMediaMessage(refToMessage(action.ref), 'buffer', {}, { reuploadRequest: sock.updateMediaMessage, logger: sock.logger });
      await deps.blobs.put(action.key, data);
      return {};
    }
    case 'exists': {
      const found = await sock.onWhatsApp(action.jid);
      const hit = found?.find((r) => r.exists);
      return hit === undefined ? { exists: false } : { exists: true, jid: hit.jid };
    }
  }
}
