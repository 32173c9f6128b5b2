/**
 * Request schemas of the group and community routes (`/api/v1/sessions/:id/groups…`, `/communities…`;
 * docs/groups.md). Participants accept the same phone formats and user JIDs as a message's `to`.
 */
import { z } from 'zod';
import { GROUP_MAX_PARTICIPANTS } from '../groups.ts';
import { recipientSchema } from './messages.ts';

/** WhatsApp's limits: subject 100 characters, description 2048. */
export const GROUP_SUBJECT_MAX = 100;
export const GROUP_DESCRIPTION_MAX = 2048;
/** The disappearing-message timers WhatsApp offers (0 = off): 24 hours, 7 days, 90 days. */
/** Largest group picture accepted (before it is resized to 640x640 JPEG). */
export const GROUP_PICTURE_MAX_BYTES = 5 * 1024 * 1024;
export const EPHEMERAL_SECONDS = [0, 86_400, 604_800, 7_776_000] as const;

const GROUP_JID = /^\d{5,40}(-\d{1,20})?@g\.us$/;

/** A group JID (`120363…@g.us`), or its id alone (`120363…`). */
export const groupJidSchema = z
  .string({ error: 'must be a group JID like 120363012345678901@g.us' })
  .trim()
  .transform((v) => (v.includes('@') ? v.toLowerCase() : `${v}@g.us`))
  .refine((v) => GROUP_JID.test(v), { message: 'must be a group JID like 120363012345678901@g.us (or its digits alone)' })
  .meta({ description: 'Group JID, or its id alone', example: '120363012345678901@g.us' });

const subjectSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(GROUP_SUBJECT_MAX, `must be at most ${GROUP_SUBJECT_MAX} characters`);

const inviteCodeSchema = z
  .string()
  .trim()
  .transform((v) => v.replace(/^https:\/\/chat\.whatsapp\.com\//, ''))
  .refine((v) => /^[A-Za-z0-9_-]{6,64}$/.test(v), { message: 'must be an invite code (6-64 letters, digits, _ or -) or a https://chat.whatsapp.com/ link' })
  .meta({ description: 'Invite code, or the https://chat.whatsapp.com/<code> link', example: 'HXg2bE8rK0pA1b2C3d4E5f' });

export interface GroupSchemaOptions {
  /** DEFAULT_COUNTRY from the config. */
  defaultCountry: string;
}

export function createGroupSchemas(options: GroupSchemaOptions) {
  const user = recipientSchema({ defaultCountry: options.defaultCountry, allow: ['user', 'lid'] });
  const participants = (max: number) =>
    z
      .array(user)
      .min(1, 'must name at least one participant')
      .max(max, `must name at most ${max} participants (a group holds ${GROUP_MAX_PARTICIPANTS} with its creator)`)
      .meta({ description: 'Phone numbers or user JIDs' });

  const createGroup = z
    .strictObject({
      subject: subjectSchema,
      participants: participants(GROUP_MAX_PARTICIPANTS - 1),
    })
    .meta({ id: 'CreateGroupRequest', example: { subject: 'Team', participants: ['+6281234567890', '6281234567891@s.whatsapp.net'] } });

  const settings = z
    .strictObject({
      announce: z.boolean().optional().meta({ description: 'Only admins may send' }),
      locked: z.boolean().optional().meta({ description: 'Only admins may edit subject, description and the ephemeral timer' }),
      memberAddMode: z.enum(['admins', 'all']).optional().meta({ description: 'Who may add participants' }),
      joinApproval: z.boolean().optional().meta({ description: 'Joining by invite code needs an admin\'s approval' }),
    })
    .meta({ id: 'GroupSettings' });

  const updateGroup = z
    .strictObject({
      subject: subjectSchema.optional(),
      description: z.string().max(GROUP_DESCRIPTION_MAX, `must be at most ${GROUP_DESCRIPTION_MAX} characters`).optional().meta({ description: '"" removes it' }),
      settings: settings.optional(),
      ephemeralSeconds: z
        .number()
        .int()
        .refine((v) => (EPHEMERAL_SECONDS as readonly number[]).includes(v), { message: `must be one of ${EPHEMERAL_SECONDS.join(', ')}` })
        .optional()
        .meta({ description: 'Disappearing messages: 0 (off), 86400, 604800 or 7776000 seconds' }),
    })
    .refine((b) => b.subject !== undefined || b.description !== undefined || b.settings !== undefined || b.ephemeralSeconds !== undefined, {
      message: 'must change at least one of subject, description, settings, ephemeralSeconds',
    })
    .meta({ id: 'UpdateGroupRequest', example: { subject: 'Team 2', settings: { announce: true } } });

  const participantsAction = z
    .strictObject({
      action: z.enum(['add', 'remove', 'promote', 'demote']),
      participants: participants(GROUP_MAX_PARTICIPANTS),
    })
    .meta({ id: 'GroupParticipantsRequest', example: { action: 'add', participants: ['+6281234567890'] } });

  const requestsAction = z
    .strictObject({
      action: z.enum(['approve', 'reject']),
      participants: participants(GROUP_MAX_PARTICIPANTS),
    })
    .meta({ id: 'GroupJoinRequestsAction', example: { action: 'approve', participants: ['+6281234567890'] } });

  const join = z.strictObject({ code: inviteCodeSchema }).meta({ id: 'JoinGroupRequest' });

  const createCommunity = z
    .strictObject({
      subject: subjectSchema,
      description: z.string().max(GROUP_DESCRIPTION_MAX).optional(),
    })
    .meta({ id: 'CreateCommunityRequest', example: { subject: 'Neighbours', description: 'Everything about our street' } });

  const picture = z
    .strictObject({
      base64: z
        .string()
        .max(Math.ceil(GROUP_PICTURE_MAX_BYTES / 3) * 4, `must decode to at most ${GROUP_PICTURE_MAX_BYTES} bytes`)
        .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be standard base64 without a data: prefix')
        .meta({ description: 'A JPEG or PNG image as base64; WhatsApp gets it resized to 640x640 JPEG' }),
    })
    .meta({ id: 'GroupPictureRequest' });

  return { picture, createGroup, updateGroup, participantsAction, requestsAction, join, createCommunity };
}

export type GroupSchemas = ReturnType<typeof createGroupSchemas>;
