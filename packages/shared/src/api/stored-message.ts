/**
 * The one schema of a message as it is stored and served (docs/messaging.md, "Content types"):
 * - `wireMessageSchema` / `WireMessage`: what the shard's normaliser (`normalizeInbound`) and its send build and
 *   report over IPC: the common fields plus the ones of its `type`;
 * - `storedContentSchema` / `StoredContent`: a row's `content`: that plus what the router writes into it
 *   (reactions, poll votes and tally, edit and revoke state, `mediaStored`);
 * - `storedMessageSchema` / `StoredMessage`: the content with the row's status, as the API serves it (the
 *   `messages` webhook and SSE carry the content as it was stored).
 * The router registers `storedMessageSchema` for OpenAPI (`Message`); both sides type their objects with these,
 * so a field added here is a field the shard must produce and the API documents.
 */
import { z } from 'zod';
import { MEDIA_MESSAGE_TYPES, MESSAGE_TYPES } from './messages.ts';

/** Every stored `type`: the send types, and edit, revoke, poll-vote, unsupported (received only). */
export const STORED_MESSAGE_TYPES = [...MESSAGE_TYPES, 'edit', 'revoke', 'poll-vote', 'unsupported'] as const;
export type StoredMessageType = (typeof STORED_MESSAGE_TYPES)[number];

export function isStoredMessageType(value: unknown): value is StoredMessageType {
  return typeof value === 'string' && (STORED_MESSAGE_TYPES as readonly string[]).includes(value);
}

export const messageMediaSchema = z
  .object({
    kind: z.enum(MEDIA_MESSAGE_TYPES),
    mimetype: z.string().optional(),
    fileName: z.string().optional(),
    size: z.number().optional(),
    sha256: z.string().optional().meta({ description: 'hex SHA-256 of the file' }),
    seconds: z.number().optional(),
    width: z.number().optional(),
    height: z.number().optional(),
    ptt: z.boolean().optional().meta({ description: 'audio: a voice note' }),
    gifPlayback: z.boolean().optional(),
    animated: z.boolean().optional(),
  })
  .meta({ id: 'MessageMedia', description: 'The file is at GET …/messages/:msgId/media' });
export type MessageMedia = z.output<typeof messageMediaSchema>;

const pollSchema = z.object({ name: z.string(), options: z.array(z.string()), selectableCount: z.number() });

/** The content of a message as the shard reports it (`message.received`, `message.send`'s result). */
export const wireMessageSchema = z.object({
  id: z.string(),
  chat: z.string().meta({ description: 'Chat JID; the phone-number JID when a LID mapping is known' }),
  chatPhone: z.string().optional(),
  chatLid: z.string().optional().meta({ description: 'The chat\'s LID when `chat` is its phone-number JID' }),
  from: z.string().meta({ description: 'The author: this session\'s account for its own messages, else the sender (the member in a group)' }),
  participant: z.string().optional().meta({ description: 'A member\'s group message: its author, as `from`' }),
  fromPhone: z.string().optional(),
  fromLid: z.string().optional(),
  fromMe: z.boolean(),
  pushName: z.string().optional(),
  timestamp: z.string(),
  type: z.enum(STORED_MESSAGE_TYPES).meta({ description: 'A send type, or edit, revoke, poll-vote, unsupported (received only)' }),
  contentType: z.string().optional().meta({ description: 'The proto field of the content (`conversation`, `imageMessage`, …); names what an `unsupported` message was' }),
  text: z.string().optional(),
  caption: z.string().optional(),
  media: messageMediaSchema.optional(),
  location: z.object({ latitude: z.number(), longitude: z.number(), name: z.string().optional(), address: z.string().optional() }).optional(),
  contacts: z.array(z.object({ name: z.string(), vcard: z.string(), phone: z.string().optional() })).optional(),
  reaction: z
    .object({ messageId: z.string(), emoji: z.string(), removed: z.boolean() })
    .optional()
    .meta({ description: 'type reaction: the message reacted to and the emoji ("" = removed)' }),
  poll: pollSchema.optional(),
  pollVote: z
    .object({ pollId: z.string(), options: z.array(z.string()).optional() })
    .optional()
    .meta({ description: 'type poll-vote: the poll, and the options selected when the vote could be decoded ([] = vote taken back)' }),
  quotedId: z.string().optional(),
  mentions: z.array(z.string()).optional(),
  edit: z
    .object({ messageId: z.string(), text: z.string().optional(), applied: z.boolean().optional() })
    .optional()
    .meta({ description: 'type edit: the message edited, its new text, and whether the stored target was changed (same chat, same author)' }),
  revoke: z
    .object({ messageId: z.string(), applied: z.boolean().optional() })
    .optional()
    .meta({ description: 'type revoke: the message deleted for everyone, and whether the stored target was marked revoked' }),
  viewOnce: z.boolean().optional(),
});
export type WireMessage = z.output<typeof wireMessageSchema>;

/**
 * A row's `content` (jsonb): the shard's content plus what the router wrote into it since. Loose at the top: a row
 * keeps the content its writer stored, so a field a later version drops or an earlier one added is served as
 * stored rather than hidden.
 */
export const storedContentSchema = wireMessageSchema
  .extend({
    mediaStored: z.boolean().optional().meta({ description: 'The media file is in the gateway\'s storage (downloaded on arrival)' }),
    reactions: z
      .array(z.object({ from: z.string(), fromMe: z.boolean(), emoji: z.string(), at: z.string() }))
      .optional()
      .meta({ description: 'Current reactions to this message, one per reactor' }),
    poll: pollSchema
      .extend({
        votes: z
          .array(z.object({ from: z.string(), fromMe: z.boolean(), options: z.array(z.string()), at: z.string() }))
          .optional()
          .meta({ description: 'The current vote of each voter (decoded votes only)' }),
        tally: z
          .array(z.object({ option: z.string(), count: z.number() }))
          .optional()
          .meta({ description: 'Voters per option, in the poll order' }),
      })
      .optional(),
    edited: z.boolean().optional().meta({ description: 'The text or caption was edited (by PATCH, or by its author on the phone)' }),
    editedAt: z.string().optional().meta({ description: 'Time of the edit that set the current text or caption' }),
    editHistory: z
      .array(z.object({ text: z.string(), at: z.string() }))
      .optional()
      .meta({ description: 'Earlier versions of the text or caption, oldest first; `at` is when that version was written' }),
    revoked: z.boolean().optional().meta({ description: 'Deleted for everyone (by DELETE, or by its author on the phone)' }),
    revokedAt: z.string().optional(),
  })
  .loose();
export type StoredContent = z.output<typeof storedContentSchema>;

/** A stored message as the API serves it: its content with the row's status. */
export const storedMessageSchema = storedContentSchema
  .extend({
    status: z.string().meta({ description: 'received, or the send\'s progress: pending, sent, delivered, read, played, failed' }),
  })
  .loose()
  .meta({ id: 'Message' });
export type StoredMessage = z.output<typeof storedMessageSchema>;
