/**
 * Request schemas of the message routes (`/api/v1/sessions/:id/messages…`, `/presence`, `/contacts/:phone/exists`).
 * The router validates with them and registers them for OpenAPI (zod's `.meta()`, which
 * @asteasolutions/zod-to-openapi v8+ reads); the parsed output crosses IPC as plain JSON to the shard.
 * Phone numbers and JIDs go through `normalizeRecipient`, so `to` comes out as a `Recipient` with its JID.
 * Objects are strict: an unknown field (a typo such as `captoin`) is a 400, never silently dropped.
 */
import { z } from 'zod';
import { GatewayError, isGatewayError } from '../errors.ts';
import { acceptedFormats, normalizeRecipient, type NormalizeOptions, type RecipientKind } from '../phone.ts';

export const MESSAGE_TYPES = ['text', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contact', 'reaction', 'poll'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const MEDIA_MESSAGE_TYPES = ['image', 'video', 'audio', 'document', 'sticker'] as const;
export type MediaMessageType = (typeof MEDIA_MESSAGE_TYPES)[number];

/** WhatsApp's limit on a text message. */
export const TEXT_MAX = 65_536;
export const POLL_OPTIONS_MIN = 2;
export const POLL_OPTIONS_MAX = 12;
export const CONTACTS_MAX = 50;
export const MENTIONS_MAX = 1024;
export const HISTORY_LIMIT_MAX = 100;
export const PRESENCE_STATES = ['composing', 'paused', 'recording', 'available', 'unavailable'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

export interface MessageSchemaOptions {
  /** DEFAULT_COUNTRY from the config. */
  defaultCountry: string;
  /** MEDIA_MAX_BYTES from the config: caps base64 media (decoded size). Default 64 MiB. */
  mediaMaxBytes?: number;
}

/** WhatsApp message ids: `3EB0C431C26A1916E1A0`, `BAE5F2…`, and the like. */
export const messageIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WhatsApp message id (1-128 letters, digits, _ or -)')
  .meta({ description: 'WhatsApp message id', example: '3EB0C431C26A1916E1A0' });

/** A recipient field (phone number or JID) validated by the phone module; outputs `{jid, kind, phone?}`. */
export function recipientSchema(options: NormalizeOptions) {
  const accepted = acceptedFormats(options.allow);
  return z
    .string({ error: 'must be a phone number or JID as a string, e.g. +6287733760363' })
    .transform((value, ctx) => {
      try {
        return normalizeRecipient(value, options);
      } catch (err) {
        const details = isGatewayError(err) ? err.details : undefined;
        // The message is one sentence; the accepted formats travel as data (details of the 400).
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err), input: value, params: { code: 'INVALID_PHONE', reason: details?.['reason'], accepted } });
        return z.NEVER;
      }
    })
    .meta({ description: `Phone number or JID. Accepted: ${accepted.join('; ')}`, example: '+6287733760363' });
}

/** Media by URL (fetched by the gateway), base64, or the id of a multipart upload to `.../uploads`. */
export function mediaSourceSchema(mediaMaxBytes: number) {
  const base64Max = Math.ceil(mediaMaxBytes / 3) * 4;
  return z
    .union([
      z.strictObject({
        url: z
          .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
          .max(4096)
          .meta({ description: 'http(s) URL the gateway downloads: public addresses only (unless MEDIA_URL_ALLOW_PRIVATE), no user:password, at most 3 redirects, MEDIA_MAX_BYTES and MEDIA_FETCH_TIMEOUT_MS; any failure is one 400', example: 'https://example.com/cat.jpg' }),
      }),
      z.strictObject({
        base64: z
          .string()
          .max(base64Max, `must decode to at most ${mediaMaxBytes} bytes`)
          .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be standard base64 without a data: prefix')
          .meta({ description: 'The file as standard base64 (no data: prefix)' }),
      }),
      z.strictObject({
        upload: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be an upload id returned by the upload route')
          .meta({ description: 'Id of a file uploaded to this session before (multipart)' }),
      }),
    ], { error: 'media must be exactly one of {url}, {base64} or {upload}' })
    .meta({ id: 'MediaSource', description: 'Exactly one of url, base64 or upload' });
}

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** '' or exactly one grapheme that is an emoji (pictographic, flag, or keycap). */
export function isSingleEmojiOrEmpty(value: string): boolean {
  if (value === '') return true;
  const parts = [...graphemes.segment(value)];
  return parts.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3/u.test(value) && !/[\p{L}\s]/u.test(value);
}

export type MediaSource = { url: string } | { base64: string } | { upload: string };

const mimetype = z
  .string()
  .max(255)
  .regex(/^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+"-]+)*$/, 'must be a MIME type such as image/jpeg')
  .meta({ example: 'image/jpeg' });
const caption = z.string().max(TEXT_MAX).meta({ description: 'Text shown under the media' });

/** Builds every schema of the message routes for one configuration (default country, media limit). */
export function createMessageSchemas(options: MessageSchemaOptions) {
  const mediaMaxBytes = options.mediaMaxBytes ?? 64 * 1024 ** 2;
  const to = recipientSchema({ defaultCountry: options.defaultCountry });
  const userOnly = recipientSchema({ defaultCountry: options.defaultCountry, allow: ['user'] });
  const mentionable = recipientSchema({ defaultCountry: options.defaultCountry, allow: ['user', 'lid'] satisfies RecipientKind[] });
  const media = mediaSourceSchema(mediaMaxBytes);

  const common = {
    to,
    quotedId: messageIdSchema.optional().meta({ description: 'Id of a message in the same chat to quote (reply to)' }),
    mentions: z
      .array(mentionable.transform((r) => r.jid))
      .max(MENTIONS_MAX)
      .optional()
      .meta({ description: 'Users mentioned in the text or caption (phone numbers or JIDs); write @<digits> in the text' }),
  };

  const text = z
    .strictObject({
      type: z.literal('text'),
      ...common,
      text: z.string().min(1, 'must not be empty').max(TEXT_MAX, `must be at most ${TEXT_MAX} characters`),
    })
    .meta({ id: 'SendTextMessage', example: { to: '+6287733760363', type: 'text', text: 'Hello' } });

  const image = z
    .strictObject({ type: z.literal('image'), ...common, media, caption: caption.optional(), mimetype: mimetype.optional() })
    .meta({ id: 'SendImageMessage', example: { to: '087733760363', type: 'image', media: { url: 'https://example.com/cat.jpg' }, caption: 'A cat' } });

  const video = z
    .strictObject({
      type: z.literal('video'),
      ...common,
      media,
      caption: caption.optional(),
      mimetype: mimetype.optional(),
      gifPlayback: z.boolean().optional().meta({ description: 'Play as a looping GIF' }),
    })
    .meta({ id: 'SendVideoMessage', example: { to: '087733760363', type: 'video', media: { upload: 'u_7f3a9c' } } });

  const audio = z
    .strictObject({
      type: z.literal('audio'),
      ...common,
      media,
      ptt: z.boolean().default(true).meta({ description: 'Send as a voice note (default); false sends an audio file' }),
      mimetype: mimetype.optional().meta({ description: 'Default audio/ogg; codecs=opus (what voice notes need)' }),
      seconds: z.number().int().min(0).max(86_400).optional(),
    })
    .meta({ id: 'SendAudioMessage', example: { to: '087733760363', type: 'audio', media: { url: 'https://example.com/note.ogg' } } });

  const document = z
    .strictObject({
      type: z.literal('document'),
      ...common,
      media,
      fileName: z.string().min(1).max(255).regex(/^[^/\\\0]+$/, 'must be a file name without path separators').optional(),
      mimetype: mimetype.optional().meta({ description: 'Default application/octet-stream' }),
      caption: caption.optional(),
    })
    .meta({ id: 'SendDocumentMessage', example: { to: '087733760363', type: 'document', media: { url: 'https://example.com/a.pdf' }, fileName: 'a.pdf', mimetype: 'application/pdf' } });

  const sticker = z
    .strictObject({ type: z.literal('sticker'), ...common, media, mimetype: mimetype.optional().meta({ description: 'Default image/webp' }) })
    .meta({ id: 'SendStickerMessage', example: { to: '087733760363', type: 'sticker', media: { upload: 'u_7f3a9c' } } });

  const location = z
    .strictObject({
      type: z.literal('location'),
      ...common,
      latitude: z.number().min(-90).max(90),
      longitude: z.number().min(-180).max(180),
      name: z.string().max(1000).optional(),
      address: z.string().max(1000).optional(),
    })
    .meta({ id: 'SendLocationMessage', example: { to: '087733760363', type: 'location', latitude: -6.2, longitude: 106.816666, name: 'Monas' } });

  const contact = z
    .strictObject({
      type: z.literal('contact'),
      ...common,
      contacts: z
        .array(
          z.strictObject({
            name: z.string().trim().min(1, 'must not be empty').max(256),
            phone: userOnly,
            organization: z.string().max(256).optional(),
            email: z.email().max(256).optional(),
          }),
        )
        .min(1, 'must hold at least one contact')
        .max(CONTACTS_MAX),
    })
    .meta({ id: 'SendContactMessage', example: { to: '087733760363', type: 'contact', contacts: [{ name: 'Budi', phone: '+6281234567890' }] } });

  const reaction = z
    .strictObject({
      type: z.literal('reaction'),
      to,
      messageId: messageIdSchema,
      emoji: z
        .string()
        .max(32)
        .refine(isSingleEmojiOrEmpty, 'must be one emoji, or empty to remove the reaction')
        .meta({ description: 'One emoji; empty string removes the reaction', example: '👍' }),
    })
    .meta({ id: 'SendReactionMessage', example: { to: '087733760363', type: 'reaction', messageId: '3EB0C431C26A1916E1A0', emoji: '👍' } });

  const poll = z
    .strictObject({
      type: z.literal('poll'),
      ...common,
      name: z.string().trim().min(1, 'must not be empty').max(255),
      options: z
        .array(z.string().trim().min(1, 'must not be empty').max(100))
        .min(POLL_OPTIONS_MIN, `must have at least ${POLL_OPTIONS_MIN} options`)
        .max(POLL_OPTIONS_MAX, `must have at most ${POLL_OPTIONS_MAX} options`)
        .refine((o) => new Set(o).size === o.length, 'options must be unique'),
      selectableCount: z.number().int().min(0).default(1).meta({ description: 'How many options a voter may pick; 0 = any number' }),
    })
    .superRefine((v, ctx) => {
      if (v.selectableCount > v.options.length) {
        ctx.addIssue({ code: 'custom', path: ['selectableCount'], message: `must be at most the number of options (${v.options.length})` });
      }
    })
    .meta({ id: 'SendPollMessage', example: { to: '087733760363', type: 'poll', name: 'Lunch?', options: ['Rice', 'Noodles'], selectableCount: 1 } });

  const sendMessage = z
    .discriminatedUnion('type', [text, image, video, audio, document, sticker, location, contact, reaction, poll], {
      error: (iss) => (iss.code === 'invalid_union' ? `type must be one of ${MESSAGE_TYPES.join(', ')}` : undefined),
    })
    .meta({ id: 'SendMessageRequest', description: 'Body of POST /api/v1/sessions/{id}/messages, keyed by type' });

  const listMessagesQuery = z
    .strictObject({
      chat: to.optional().meta({ description: 'Only this chat (phone number or JID)' }),
      before: z
        .string()
        .min(1)
        .max(256)
        .optional()
        .meta({ description: 'Cursor: the `next` value of the previous page, or an ISO-8601 time (messages strictly older)' }),
      limit: z.coerce.number().int().min(1).max(HISTORY_LIMIT_MAX).default(50),
    })
    .meta({ id: 'ListMessagesQuery' });

  const messageParams = z.strictObject({ msgId: messageIdSchema }).meta({ id: 'MessageParams' });

  const markRead = z.strictObject({}).meta({ id: 'MarkReadRequest', description: 'No fields; the message is found by id' });

  const editMessage = z
    .strictObject({ text: z.string().min(1, 'must not be empty').max(TEXT_MAX, `must be at most ${TEXT_MAX} characters`) })
    .meta({ id: 'EditMessageRequest', example: { text: 'Corrected text' } });

  const presence = z
    .strictObject({
      to: to.optional().meta({ description: 'Chat the state is shown in; required for composing, paused and recording' }),
      state: z.enum(PRESENCE_STATES, { error: `state must be one of ${PRESENCE_STATES.join(', ')}` }),
    })
    .superRefine((v, ctx) => {
      if (v.to === undefined && (v.state === 'composing' || v.state === 'paused' || v.state === 'recording')) {
        ctx.addIssue({ code: 'custom', path: ['to'], message: `is required for state ${v.state}` });
      }
    })
    .meta({ id: 'PresenceRequest', example: { to: '087733760363', state: 'composing' } });

  const contactExistsParams = z.strictObject({ phone: userOnly }).meta({ id: 'ContactExistsParams' });

  return { sendMessage, text, image, video, audio, document, sticker, location, contact, reaction, poll, listMessagesQuery, messageParams, markRead, editMessage, presence, contactExistsParams };
}

export type MessageSchemas = ReturnType<typeof createMessageSchemas>;
export type SendMessageRequest = z.output<MessageSchemas['sendMessage']>;
export type SendMessageInput = z.input<MessageSchemas['sendMessage']>;
export type MediaSendRequest = Extract<SendMessageRequest, { type: MediaMessageType }>;
export type ListMessagesQuery = z.output<MessageSchemas['listMessagesQuery']>;
export type EditMessageRequest = z.output<MessageSchemas['editMessage']>;
export type PresenceRequest = z.output<MessageSchemas['presence']>;
export type ContactExistsParams = z.output<MessageSchemas['contactExistsParams']>;

export function isMediaSend(req: SendMessageRequest): req is MediaSendRequest {
  return (MEDIA_MESSAGE_TYPES as readonly string[]).includes(req.type);
}

export interface ValidationIssue {
  /** Dotted path of the field (`contacts.0.phone`), empty for the body itself. */
  path: string;
  message: string;
}

/**
 * A ZodError as the API's 400: `VALIDATION_FAILED` naming each field, with `details.issues`; `INVALID_PHONE`
 * (same details plus `accepted`) when every issue is a recipient that is not a phone number or JID.
 */
export function validationError(error: z.ZodError, what = 'request'): GatewayError {
  const issues: ValidationIssue[] = error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
  }));
  const summary = issues
    .slice(0, 5)
    .map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`))
    .join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  const phoneOnly = error.issues.every((i) => i.code === 'custom' && i.params?.['code'] === 'INVALID_PHONE');
  return phoneOnly
    ? new GatewayError('INVALID_PHONE', `Invalid ${what}: ${summary}${more}`, { issues, accepted: acceptedFormats() })
    : new GatewayError('VALIDATION_FAILED', `Invalid ${what}: ${summary}${more}`, { issues });
}

/** Parses with `schema` or throws `validationError`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw validationError(result.error, what);
  return result.data;
}
