/**
 * Both directions between the API's message shapes and Baileys:
 * - `buildSendContent`: a validated send request -> `AnyMessageContent` + `MiscMessageGenerationOptions` for
 *   `sock.sendMessage(jid, content, options)`. Media bytes come from the injected `resolveMedia` (the blob store
 *   or a bounded URL fetch; they never cross IPC); quoted and reacted-to messages from the injected `findMessage`.
 * - `buildEditContent` / `buildRevokeContent` for PATCH and DELETE of a message.
 * - `normalizeInbound`: a `WAMessage` from `messages.upsert` -> the stored/API shape `NormalizedMessage`.
 */
import type { Readable } from 'node:stream';
import { extractMessageContent, getContentType, normalizeMessageContent, proto, toNumber } from '@whiskeysockets/baileys';
import type { AnyMessageContent, MiscMessageGenerationOptions, WAMessage, WAMessageKey } from '@whiskeysockets/baileys';
import { GatewayError, bareJid, jidToPhone, resolveJid } from '@wagw/shared';
import type { LidResolver, MediaMessageType, MediaSource, MessageMedia, SendMessageRequest, StoredMessageType, WireMessage } from '@wagw/shared';

export interface ResolvedMedia {
  data: Buffer | { stream: Readable };
  /** From the upload's Content-Type or the URL response; the request's own `mimetype` wins. */
  mimetype?: string;
  /** From the multipart upload or the URL path; the request's own `fileName` wins. */
  fileName?: string;
}

export interface ContentDeps {
  /** Bytes of a media source: `{upload}` from the blob store, `{url}` fetched with size and time limits. */
  resolveMedia(source: MediaSource, type: MediaMessageType): Promise<ResolvedMedia>;
  /** A stored message of this session by id (and chat when known); undefined when unknown. */
  findMessage(ref: { id: string; chat?: string }): Promise<WAMessage | undefined>;
}

export interface SendContent {
  content: AnyMessageContent;
  options: MiscMessageGenerationOptions;
  /**
   * Mentions of a poll. Baileys sets `mentions` on the first key of the message it built, which for a poll is
   * `messageContextInfo` (no contextInfo there: they are lost), so the sender sets them on the poll itself
   * with `applyPollMentions` after generating the message.
   */
  pollMentions?: string[];
}

/** Sets a poll's `contextInfo.mentionedJid` (see `SendContent.pollMentions`); false when it is not a poll. */
export function applyPollMentions(message: proto.IMessage, mentions: readonly string[]): boolean {
  const poll = message.pollCreationMessageV3 ?? message.pollCreationMessage ?? message.pollCreationMessageV2;
  if (poll === null || poll === undefined) return false;
  poll.contextInfo = { ...(poll.contextInfo ?? {}), mentionedJid: [...mentions] };
  return true;
}

export interface SendExtras {
  /** Message id to send with (from the Idempotency-Key, so retries carry the same id). */
  messageId?: string;
}

const DEFAULT_MIMETYPE: Record<MediaMessageType, string> = {
  image: 'image/jpeg',
  video: 'video/mp4',
  audio: 'audio/ogg; codecs=opus',
  document: 'application/octet-stream',
  sticker: 'image/webp',
};

function vcardEscape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/[,;]/g, (c) => `\\${c}`);
}

/** vCard 3.0 with the `waid` parameter WhatsApp uses to link the card to an account. */
export function buildVCard(contact: { name: string; phone: { phone?: string; jid: string }; organization?: string; email?: string }): string {
  const e164 = contact.phone.phone ?? `+${contact.phone.jid.split('@')[0] ?? ''}`;
  const waid = e164.slice(1);
  const lines = ['BEGIN:VCARD', 'VERSION:3.0', `FN:${vcardEscape(contact.name)}`, `N:;${vcardEscape(contact.name)};;;`];
  if (contact.organization !== undefined) lines.push(`ORG:${vcardEscape(contact.organization)}`);
  if (contact.email !== undefined) lines.push(`EMAIL;type=INTERNET:${vcardEscape(contact.email)}`);
  lines.push(`TEL;type=CELL;type=VOICE;waid=${waid}:${e164}`, 'END:VCARD');
  return lines.join('\n');
}

async function lookup(deps: ContentDeps, id: string, chat: string | undefined, what: string): Promise<WAMessage> {
  const found = await deps.findMessage(chat === undefined ? { id } : { id, chat });
  if (found === undefined) throw new GatewayError('MESSAGE_NOT_FOUND', `No message ${id}${chat === undefined ? '' : ` in ${chat}`} to ${what}.`, { messageId: id });
  return found;
}

/** A validated send request -> what `sock.sendMessage(req.to.jid, content, options)` takes. */
export async function buildSendContent(req: SendMessageRequest, deps: ContentDeps, extras: SendExtras = {}): Promise<SendContent> {
  const options: MiscMessageGenerationOptions = {};
  if (extras.messageId !== undefined) options.messageId = extras.messageId;
  if (req.type !== 'reaction' && req.quotedId !== undefined) options.quoted = await lookup(deps, req.quotedId, req.to.jid, 'quote');
  // Baileys puts `mentions` into the contextInfo of whatever message it built (its types declare them only on
  // text, image, video and poll), so every type but reactions carries them, as the API accepts them; polls
  // need `pollMentions` (see SendContent).
  const mentions = req.type !== 'reaction' && req.mentions !== undefined && req.mentions.length > 0 ? { mentions: req.mentions } : {};

  switch (req.type) {
    case 'text':
      return { content: { text: req.text, ...mentions }, options };
    case 'image':
    case 'video':
    case 'audio':
    case 'document':
    case 'sticker': {
      const media = await deps.resolveMedia(req.media, req.type);
      const mimetype = req.mimetype ?? media.mimetype ?? DEFAULT_MIMETYPE[req.type];
      const data = media.data;
      let content: AnyMessageContent;
      switch (req.type) {
        case 'image':
          content = { image: data, mimetype, ...(req.caption !== undefined ? { caption: req.caption } : {}), ...mentions };
          break;
        case 'video':
          content = {
            video: data,
            mimetype,
            ...(req.caption !== undefined ? { caption: req.caption } : {}),
            ...(req.gifPlayback === true ? { gifPlayback: true } : {}),
            ...mentions,
          };
          break;
        case 'audio':
          content = { audio: data, mimetype, ptt: req.ptt, ...(req.seconds !== undefined ? { seconds: req.seconds } : {}), ...mentions };
          break;
        case 'document':
          content = {
            document: data,
            mimetype,
            fileName: req.fileName ?? media.fileName ?? 'file',
            ...(req.caption !== undefined ? { caption: req.caption } : {}),
            ...mentions,
          };
          break;
        case 'sticker':
          content = { sticker: data, mimetype, ...mentions };
          break;
      }
      return { content, options };
    }
    case 'location':
      return {
        content: {
          location: {
            degreesLatitude: req.latitude,
            degreesLongitude: req.longitude,
            ...(req.name !== undefined ? { name: req.name } : {}),
            ...(req.address !== undefined ? { address: req.address } : {}),
          },
          ...mentions,
        },
        options,
      };
    case 'contact': {
      const first = req.contacts[0];
      const displayName = req.contacts.length === 1 && first !== undefined ? first.name : `${req.contacts.length} contacts`;
      return {
        content: { contacts: { displayName, contacts: req.contacts.map((c) => ({ displayName: c.name, vcard: buildVCard(c) })) }, ...mentions },
        options,
      };
    }
    case 'reaction': {
      const target = await lookup(deps, req.messageId, req.to.jid, 'react to');
      return { content: { react: { text: req.emoji, key: target.key } }, options };
    }
    case 'poll': {
      const built: SendContent = { content: { poll: { name: req.name, values: req.options, selectableCount: req.selectableCount } }, options };
      if (req.mentions !== undefined && req.mentions.length > 0) built.pollMentions = req.mentions;
      return built;
    }
  }
}

/** PATCH /messages/:msgId -> `{text, edit: key}`; only this session's own messages can be edited. */
export async function buildEditContent(msgId: string, text: string, deps: ContentDeps, chat?: string): Promise<{ jid: string; content: AnyMessageContent }> {
  const target = await lookup(deps, msgId, chat, 'edit');
  if (target.key.fromMe !== true) throw new GatewayError('CONFLICT', 'Only messages sent by this session can be edited.', { messageId: msgId });
  return { jid: target.key.remoteJid ?? '', content: { text, edit: target.key } };
}

/** DELETE /messages/:msgId -> `{delete: key}` (for everyone; others' messages only as a group admin). */
export async function buildRevokeContent(msgId: string, deps: ContentDeps, chat?: string): Promise<{ jid: string; content: AnyMessageContent }> {
  const target = await lookup(deps, msgId, chat, 'revoke');
  return { jid: target.key.remoteJid ?? '', content: { delete: target.key } };
}

// ---------------------------------------------------------------------------------------------------------
// Inbound: WAMessage -> NormalizedMessage

/**
 * The normalised shapes are the stored-message schema of `@wagw/shared` (`api/stored-message.ts`), which the API
 * serves and documents: a field added there is one this normaliser must fill, and the reverse.
 */
export type InboundType = StoredMessageType;
export type NormalizedMedia = MessageMedia;
export type NormalizedMessage = WireMessage;

const MEDIA_PROTO_KEYS = {
  imageMessage: 'image',
  videoMessage: 'video',
  ptvMessage: 'video',
  audioMessage: 'audio',
  documentMessage: 'document',
  stickerMessage: 'sticker',
} as const satisfies Partial<Record<keyof proto.IMessage, MediaMessageType>>;

const hex = (b: Uint8Array | null | undefined): string | undefined => (b === null || b === undefined || b.length === 0 ? undefined : Buffer.from(b).toString('hex'));
const num = (v: number | Long | null | undefined): number | undefined => (v === null || v === undefined ? undefined : toNumber(v));
const str = (v: string | null | undefined): string | undefined => (v === null || v === undefined || v === '' ? undefined : v);
type Long = Parameters<typeof toNumber>[0] & object;

function phoneFromVCard(vcard: string): string | undefined {
  const waid = /waid=(\d{6,15})/.exec(vcard);
  if (waid !== null) return `+${waid[1] as string}`;
  const tel = /^TEL[^:]*:(\+?[\d\s-]{6,24})$/m.exec(vcard);
  return tel === null ? undefined : (tel[1] as string).replace(/[\s-]/g, '');
}

function contextOf(content: proto.IMessage, type: keyof proto.IMessage | undefined): proto.IContextInfo | undefined {
  if (type === undefined) return undefined;
  const inner = content[type] as { contextInfo?: proto.IContextInfo | null } | null | undefined;
  return inner !== null && typeof inner === 'object' && 'contextInfo' in inner ? (inner.contextInfo ?? undefined) : undefined;
}

/** Fills type-specific fields from one (already unwrapped) content. */
function describe(content: proto.IMessage, out: NormalizedMessage): void {
  const type = getContentType(content);
  out.contentType = type;
  const ctx = contextOf(content, type);
  if (ctx !== undefined) {
    if (str(ctx.stanzaId) !== undefined) out.quotedId = ctx.stanzaId as string;
    if (ctx.mentionedJid !== null && ctx.mentionedJid !== undefined && ctx.mentionedJid.length > 0) out.mentions = ctx.mentionedJid.map(bareJid);
  }
  if (type === undefined) return;
  if (type === 'conversation' || type === 'extendedTextMessage') {
    out.type = 'text';
    out.text = content.conversation ?? content.extendedTextMessage?.text ?? '';
    return;
  }
  if (type in MEDIA_PROTO_KEYS) {
    const kind = MEDIA_PROTO_KEYS[type as keyof typeof MEDIA_PROTO_KEYS];
    const m = content[type as keyof typeof MEDIA_PROTO_KEYS] as proto.Message.IImageMessage &
      proto.Message.IVideoMessage &
      proto.Message.IAudioMessage &
      proto.Message.IDocumentMessage &
      proto.Message.IStickerMessage;
    out.type = kind;
    const media: NormalizedMedia = { kind };
    const set = <K extends keyof NormalizedMedia>(k: K, v: NormalizedMedia[K] | undefined) => {
      if (v !== undefined) media[k] = v;
    };
    set('mimetype', str(m.mimetype));
    set('fileName', str(m.fileName));
    set('size', num(m.fileLength));
    set('sha256', hex(m.fileSha256));
    set('seconds', m.seconds ?? undefined);
    set('width', m.width ?? undefined);
    set('height', m.height ?? undefined);
    if (kind === 'audio') media.ptt = m.ptt === true;
    if (kind === 'video' && m.gifPlayback === true) media.gifPlayback = true;
    if (kind === 'sticker' && m.isAnimated === true) media.animated = true;
    out.media = media;
    if (str(m.caption) !== undefined) out.caption = m.caption as string;
    return;
  }
  switch (type) {
    case 'locationMessage':
    case 'liveLocationMessage': {
      const l = content.locationMessage ?? content.liveLocationMessage ?? {};
      out.type = 'location';
      out.location = { latitude: l.degreesLatitude ?? 0, longitude: l.degreesLongitude ?? 0 };
      const named = content.locationMessage;
      if (str(named?.name) !== undefined) out.location.name = named?.name as string;
      if (str(named?.address) !== undefined) out.location.address = named?.address as string;
      return;
    }
    case 'contactMessage':
    case 'contactsArrayMessage': {
      const list = content.contactMessage !== null && content.contactMessage !== undefined ? [content.contactMessage] : (content.contactsArrayMessage?.contacts ?? []);
      out.type = 'contact';
      out.contacts = list.map((c) => {
        const vcard = c.vcard ?? '';
        const phone = phoneFromVCard(vcard);
        return phone === undefined ? { name: c.displayName ?? '', vcard } : { name: c.displayName ?? '', vcard, phone };
      });
      return;
    }
    case 'reactionMessage': {
      const r = content.reactionMessage;
      const emoji = r?.text ?? '';
      out.type = 'reaction';
      out.reaction = { messageId: r?.key?.id ?? '', emoji, removed: emoji === '' };
      return;
    }
    case 'pollCreationMessage':
    case 'pollCreationMessageV2':
    case 'pollCreationMessageV3': {
      const p = content.pollCreationMessage ?? content.pollCreationMessageV2 ?? content.pollCreationMessageV3 ?? {};
      out.type = 'poll';
      out.poll = { name: p.name ?? '', options: (p.options ?? []).map((o) => o.optionName ?? ''), selectableCount: p.selectableOptionsCount ?? 0 };
      const pctx = p.contextInfo;
      if (pctx?.mentionedJid !== null && pctx?.mentionedJid !== undefined && pctx.mentionedJid.length > 0) out.mentions = pctx.mentionedJid.map(bareJid);
      return;
    }
    case 'pollUpdateMessage':
      out.type = 'poll-vote';
      out.pollVote = { pollId: content.pollUpdateMessage?.pollCreationMessageKey?.id ?? '' };
      return;
    case 'protocolMessage': {
      const pm = content.protocolMessage;
      const target = pm?.key?.id ?? '';
      if (pm?.type === proto.Message.ProtocolMessage.Type.REVOKE) {
        out.type = 'revoke';
        out.revoke = { messageId: target };
        return;
      }
      if (pm?.type === proto.Message.ProtocolMessage.Type.MESSAGE_EDIT) {
        out.type = 'edit';
        const edited = normalizeMessageContent(pm.editedMessage);
        const text = edited === undefined ? undefined : (edited.conversation ?? edited.extendedTextMessage?.text ?? edited.imageMessage?.caption ?? edited.videoMessage?.caption ?? edited.documentMessage?.caption);
        out.edit = text === null || text === undefined ? { messageId: target } : { messageId: target, text };
        return;
      }
      return;
    }
    default:
      return;
  }
}

/**
 * A Baileys `WAMessage` (from `messages.upsert`) -> the normalized shape stored in PostgreSQL and sent on the
 * `messages` webhook/SSE. LIDs are replaced by phone-number JIDs when `key.*Alt` or the resolver knows them
 * (the LID stays in `chatLid`/`fromLid`). Returns undefined for messages without content (stubs, key
 * distribution), which are not stored. `own` is the session's account (`sock.user`): an own message's `from`
 * is that account (its phone JID, `fromPhone`, `fromLid`), never the chat it was sent to nor a group's JID.
 */
export async function normalizeInbound(msg: WAMessage, resolver?: LidResolver, own?: OwnAccount): Promise<NormalizedMessage | undefined> {
  const raw = msg.message;
  if (raw === null || raw === undefined) return undefined;
  const content = normalizeMessageContent(raw);
  const extracted = extractMessageContent(content) ?? content;
  if (extracted === undefined) return undefined;
  const type = getContentType(extracted);
  if (type === undefined || type === 'senderKeyDistributionMessage' || type === 'messageContextInfo') return undefined;
  const key = msg.key;
  const remote = key.remoteJid ?? '';
  const isGroup = remote.endsWith('@g.us') || remote.endsWith('@broadcast');
  const chat = await resolveSide(remote, key.remoteJidAlt, resolver);
  const self = key.fromMe === true && own !== undefined ? await ownSide(own, resolver) : undefined;
  const author = self ?? (isGroup ? await resolveSide(key.participant ?? remote, key.participantAlt, resolver) : chat);
  const ts = num(msg.messageTimestamp as number | Long | null | undefined) ?? 0;
  const out: NormalizedMessage = {
    id: key.id ?? '',
    chat: chat.jid,
    from: author.jid,
    fromMe: key.fromMe === true,
    timestamp: new Date(ts * 1000).toISOString(),
    type: 'unsupported',
  };
  if (chat.phone !== undefined) out.chatPhone = chat.phone;
  if (chat.lid !== undefined) out.chatLid = chat.lid;
  if (isGroup && key.fromMe !== true) out.participant = author.jid;
  if (author.phone !== undefined) out.fromPhone = author.phone;
  if (author.lid !== undefined) out.fromLid = author.lid;
  if (str(msg.pushName) !== undefined) out.pushName = msg.pushName as string;
  if (raw.viewOnceMessage != null || raw.viewOnceMessageV2 != null || raw.viewOnceMessageV2Extension != null) out.viewOnce = true;
  describe(extracted, out);
  return out;
}

/** The session's own account as Baileys has it on the socket (`sock.user`): `id` with a device part, `lid`. */
export interface OwnAccount {
  id?: string | null;
  lid?: string | null;
}

async function ownSide(own: OwnAccount, resolver: LidResolver | undefined): Promise<{ jid: string; phone?: string; lid?: string } | undefined> {
  if (typeof own.id !== 'string' || own.id === '') return undefined;
  const side = await resolveJid(own.id, resolver);
  return typeof own.lid === 'string' && own.lid !== '' && side.lid === undefined ? { ...side, lid: bareJid(own.lid) } : side;
}

async function resolveSide(jid: string, alt: string | undefined, resolver: LidResolver | undefined): Promise<{ jid: string; phone?: string; lid?: string }> {
  const resolved = await resolveJid(jid, resolver);
  if (resolved.lid !== undefined && resolved.phone === undefined && alt !== undefined) {
    const phone = jidToPhone(alt);
    if (phone !== undefined) return { jid: bareJid(alt), phone, lid: resolved.lid };
  }
  return resolved;
}

/** The key Baileys needs to quote/react/edit/read a stored message, for callers that hold only ids. */
export function messageKey(remoteJid: string, id: string, fromMe: boolean, participant?: string): WAMessageKey {
  return participant === undefined ? { remoteJid, id, fromMe } : { remoteJid, id, fromMe, participant };
}
