/**
 * The shard's send path (docs/messaging.md): IPC `message.send` -> the session's SendGovernor ->
 * `buildSendContent` -> `sock.sendMessage(jid, content, {messageId})` -> WhatsApp's server ack.
 * Media bytes come from the blob store (uploads and router-decoded base64) or a bounded URL fetch.
 */
import { groupError } from '../groups/actions.ts';
import { generateMessageIDV2, generateWAMessage, proto } from '@whiskeysockets/baileys';
import type { AnyMessageContent, MiscMessageGenerationOptions, WAMessage, WASocket } from '@whiskeysockets/baileys';
import { GatewayError, bareJid } from '@wagw/shared';
import type { BlobStore, MediaSource, MessageRefWire, MessageSendParams, MessageSendResult, SessionAction, SessionActionResult, WireMessage } from '@wagw/shared';
import { applyPollMentions, buildEditContent, buildRevokeContent, buildSendContent, normalizeInbound } from './content.ts';
import type { ContentDeps, ResolvedMedia } from './content.ts';
import type { BaseLookup } from '@wagw/shared';
import type { BudgetAccount, ByteBudget } from './byte-budget.ts';
import type { Reservation, SendGovernor } from './governor.ts';
import type { RelayedSend, RelayedSends } from './relayed-sends.ts';
import { downloadInboundMedia } from './inbound-media.ts';
import type { InboundMediaPolicy } from './inbound-media.ts';
import { FetchFailure, publicGet } from './public-http.ts';
import type { PublicGetResult } from './public-http.ts';

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
  /** Acks that came with nobody waiting (after a deadline): a relay that outlasted it is still acknowledged. */
  readonly #late = new Map<string, AckResult>();

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

  /** An ack of `id` that came after its waiter gave up, once. */
  takeLate(id: string): AckResult | undefined {
    const r = this.#late.get(id);
    this.#late.delete(id);
    return r;
  }

  /** From the socket's `CB:ack,class:message` listener. */
  onAck(attrs: Record<string, string>): void {
    const id = attrs['id'];
    if (id === undefined) return;
    const w = this.#waiters.get(id);
    if (w === undefined) {
      if (this.#late.size >= 1000) this.#late.delete(this.#late.keys().next().value as string);
      this.#late.set(id, attrs['error'] === undefined ? {} : { error: attrs['error'] });
      return;
    }
    clearTimeout(w.timer);
    this.#waiters.delete(id);
    w.resolve(attrs['error'] === undefined ? {} : { error: attrs['error'] });
  }
}

export interface MediaLimits {
  maxBytes: number;
  fetchTimeoutMs: number;
  /** MEDIA_URL_ALLOW_PRIVATE: media URLs may point at loopback/private addresses (tests, private deployments). */
  allowPrivate?: boolean;
  /** DNS resolution of media hosts (tests inject one); default dns.lookup. */
  lookup?: BaseLookup;
  /** Test hook of the HTTP client: called before each connection attempt. */
  onConnect?: (url: URL) => void;
  /** The address table (tests stand a loopback address in for a public one); default isNonPublicAddress. */
  refusedAddress?: (address: string) => boolean;
}

/**
 * The one answer to a media.url that could not be fetched, whatever the reason (refused address, closed port,
 * timeout, HTTP error, bad redirect): it names the rules and carries no cause, so the send API is no oracle
 * into the network (docs/security.md, "Outbound requests").
 */
export function mediaUrlRefused(limits: MediaLimits): GatewayError {
  return new GatewayError(
    'VALIDATION_FAILED',
    `media.url could not be fetched: it must be a public http(s) URL without credentials that answers 200 within ${limits.fetchTimeoutMs} ms (at most 3 redirects).`,
    { field: 'media.url' },
  );
}

/** The last path segment of a URL as a file name; a malformed %-escape is kept as written, never a 500. */
export function fileNameOf(url: URL): string | undefined {
  const name = url.pathname.split('/').at(-1);
  if (name === undefined || name === '') return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/**
 * Downloads a media URL through the public-only client (public-http.ts) within the size and time limits;
 * `onBytes` counts the bytes against the shard's budget. Any failure is `mediaUrlRefused`, except a body
 * over MEDIA_MAX_BYTES (413) and the budget's own QUEUE_FULL.
 */
export async function fetchMedia(input: string, limits: MediaLimits, onBytes?: (bytes: number) => void): Promise<ResolvedMedia> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw mediaUrlRefused(limits);
  }
  let got: PublicGetResult;
  try {
    got = await publicGet(url, {
      maxBytes: limits.maxBytes,
      timeoutMs: limits.fetchTimeoutMs,
      allowPrivate: limits.allowPrivate === true,
      ...(limits.lookup === undefined ? {} : { lookup: limits.lookup }),
      ...(limits.onConnect === undefined ? {} : { onConnect: limits.onConnect }),
      ...(limits.refusedAddress === undefined ? {} : { refusedAddress: limits.refusedAddress }),
      ...(onBytes === undefined ? {} : { onBytes }),
    });
  } catch (err) {
    if (err instanceof FetchFailure && err.reason === 'too-large') throw new GatewayError('PAYLOAD_TOO_LARGE', `media.url is larger than ${limits.maxBytes} bytes`, { field: 'media.url', maxBytes: limits.maxBytes });
    if ((err as { code?: unknown }).code === 'QUEUE_FULL') throw err;
    throw mediaUrlRefused(limits);
  }
  const out: ResolvedMedia = { data: got.data };
  if (got.contentType !== undefined) out.mimetype = got.contentType;
  const name = fileNameOf(url);
  if (name !== undefined) out.fileName = name;
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
  /** The shard's budget of media bytes held by sends (MEDIA_DOWNLOAD_BUDGET_BYTES); absent: unbounded. */
  mediaBudget?: ByteBudget;
  /** How a stored message's media is downloaded (lazy GET of …/media), as inbound media on arrival. */
  inboundMedia?: InboundMediaPolicy;
  ackTimeoutMs: number;
  /** Told the message id before the send goes out (the runner then drops Baileys' echo of it). */
  noteSent?: (messageId: string) => void;
  /**
   * Stores the sent message through the router's `message.received` (the one writer of its row), queued right
   * after the relay and before WhatsApp's ack, so no receipt of it reaches the router first; the send answers
   * only after it committed. Absent (actions, tests): nothing is stored by the send.
   */
  storeSent?: (sock: WASocket, sent: WAMessage) => Promise<void>;
  /** The shard's keyed sends (relayed-sends.ts): a session relays a message id once. Absent: no such check. */
  relayed?: RelayedSends;
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
  const { messageId } = params;
  const relayed = deps.relayed;
  if (messageId === undefined || relayed === undefined) return await freshSend(params, deps);
  // A retry under the same key (same derived id): never a second relay (relayed-sends.ts).
  const key = `${deps.sessionId}/${messageId}`;
  for (let earlier = relayed.get(key); earlier !== undefined; earlier = relayed.get(key)) {
    try {
      return await earlier.result;
    } catch (err) {
      if (earlier.acked === undefined) {
        // Ended before WhatsApp acknowledged it: forgotten by now, unless another retry already took over.
        if (relayed.get(key) === earlier) throw err;
        continue;
      }
      if (relayed.get(key) !== earlier) continue;
      // Relayed and acknowledged; only its row write failed: store it again, joined by any further retry.
      const acked = earlier.acked;
      earlier.result = restore(acked.sent, acked.waitMs, messageId, params, deps);
      earlier.result.catch(() => undefined);
      return await earlier.result;
    }
  }
  const started: { entry?: RelayedSend } = {};
  const attempt = freshSend(params, deps, (sent, waitMs) => {
    if (started.entry !== undefined) started.entry.acked = { sent, waitMs };
  });
  const entry = relayed.begin(key, attempt);
  started.entry = entry;
  attempt.catch(() => {
    if (entry.acked === undefined) relayed.forget(key, entry);
  });
  return await attempt;
}

/** Stores the row of a message relayed and acknowledged earlier, then answers as its send would have. */
async function restore(sent: WAMessage, waitMs: number, messageId: string, params: MessageSendParams, deps: SendDeps): Promise<MessageSendResult> {
  const sock = deps.socket();
  if (sock === undefined || !deps.connected()) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected; message ${messageId} was sent and its row is stored once it is.`);
  await deps.storeSent?.(sock, sent);
  return await sendResult(sent, waitMs, messageId, params, deps);
}

async function sendResult(sent: WAMessage, waitMs: number, messageId: string, params: MessageSendParams, deps: SendDeps): Promise<MessageSendResult> {
  const normalized = await normalizeInbound(sent, undefined, deps.socket()?.user);
  const ownJid = deps.socket()?.user?.id;
  const jid = params.request.to.jid;
  const message: WireMessage = normalized ?? { id: messageId, chat: jid, from: ownJid === undefined ? '' : bareJid(ownJid), fromMe: true, timestamp: new Date().toISOString(), type: params.request.type };
  return { id: messageId, status: 'sent' as const, message, waitMs };
}

/** `onAcked`: WhatsApp acknowledged the relay (before the row is stored). */
async function freshSend(params: MessageSendParams, deps: SendDeps, onAcked?: (sent: WAMessage, waitMs: number) => void): Promise<MessageSendResult> {
  if (!deps.connected() || deps.socket() === undefined) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
  // Admitted first (queue depth), then the media is fetched, counted against the shard's byte budget until
  // the send finished: a full queue or a spent budget refuses before any more bytes are buffered.
  const reservation = deps.governor.reserve();
  const account = deps.mediaBudget?.open();
  try {
    return await admittedSend(params, deps, reservation, account, onAcked);
  } finally {
    reservation.release();
    account?.release();
  }
}

async function admittedSend(
  params: MessageSendParams,
  deps: SendDeps,
  reservation: Reservation,
  account: BudgetAccount | undefined,
  onAcked?: (sent: WAMessage, waitMs: number) => void,
): Promise<MessageSendResult> {
  const refs = params.refs ?? [];
  const contentDeps: ContentDeps = {
    resolveMedia: async (source: MediaSource) => {
      if ('url' in source) return await fetchMedia(source.url, deps.media, account === undefined ? undefined : (n) => account.take(n));
      if ('upload' in source) {
        const data = await deps.blobs.get(uploadBlobKey(deps.sessionId, source.upload));
        if (data === null) throw new GatewayError('VALIDATION_FAILED', `media.upload ${source.upload} is unknown (uploads are per session).`, { upload: source.upload });
        account?.take(data.byteLength);
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
  const { sent, waitMs, stored } = await governedSend(deps, jid, built.content, built.options, messageId, built.pollMentions, reservation);
  onAcked?.(sent, waitMs);
  // Outside the governor: the recipient's spacing does not wait for the router's commit.
  await stored;
  return await sendResult(sent, waitMs, messageId, params, deps);
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
  reservation?: Reservation,
): Promise<{ sent: WAMessage; waitMs: number; stored: Promise<void> | undefined }> {
  const queuedAt = Date.now();
  return await deps.governor.submit(jid, async () => {
    const waitMs = Date.now() - queuedAt;
    const sock = deps.socket();
    if (sock === undefined || !deps.connected()) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
    const ack = deps.acks.wait(messageId, deps.ackTimeoutMs);
    // Observed at once: the ack's deadline runs while Baileys still encrypts and relays (an auth-state read can
    // wait out a blob-store outage), and a rejection with no handler yet is an unhandled rejection (a fatal log
    // line in the shard). `await ack` below still receives it.
    ack.catch(() => undefined);
    let sent: WAMessage | undefined;
    try {
      sent = pollMentions === undefined ? await sock.sendMessage(jid, content, { ...options, messageId }) : await sendPollWithMentions(sock, jid, content, options, messageId, pollMentions);
    } catch (err) {
      deps.acks.cancel(messageId);
      const message = (err as Error).message;
      if (/connection closed|not open|closed/i.test(message)) throw new GatewayError('SESSION_NOT_CONNECTED', `The session socket closed during the send: ${message}`);
      // a group send fetches the group's metadata first (on a cache miss): WhatsApp's refusal of that query
      if (jid.endsWith('@g.us')) throw groupError(err, `group ${jid}`);
      throw err;
    }
    if (sent === undefined) {
      throw new GatewayError('INTERNAL', 'Baileys returned no message.');
    }
    // Relayed: stored now (the row is written whatever the ack says; a refusal marks it failed).
    const stored = deps.storeSent?.(sock, sent);
    stored?.catch(() => undefined);
    let result: AckResult;
    try {
      result = await ack;
    } catch (err) {
      // The deadline ran while Baileys was still relaying (an auth-state read or commit waiting out a blob-store
      // outage). The message did leave: wait for its ack from the relay on (it may have come already), rather
      // than answer a timeout whose retry would send it again (blob-outage.test.ts, "sent once").
      if ((err as { code?: unknown }).code !== 'WA_TIMEOUT') throw err;
      result = deps.acks.takeLate(messageId) ?? (await deps.acks.wait(messageId, deps.ackTimeoutMs));
    }
    if (result.error !== undefined) throw ackError(result.error, messageId, jid);
    return { sent, waitMs, stored };
  }, reservation);
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
      let data: Buffer;
      try {
        data = await downloadInboundMedia(refToMessage(action.ref), deps.inboundMedia ?? { maxBytes: deps.media.maxBytes, timeoutMs: deps.media.fetchTimeoutMs });
      } catch (err) {
        // Refused (not a WhatsApp media host, too large), expired or undecryptable: the media is unavailable, a 404.
        sock.logger.warn({ err, messageId: action.ref.id }, 'media download failed');
        throw new GatewayError('MESSAGE_NOT_FOUND', `The media of message ${action.ref.id} is unavailable (it could not be downloaded from WhatsApp).`, { messageId: action.ref.id });
      }
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
