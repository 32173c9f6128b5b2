/**
 * Groups and communities (docs/groups.md): the operations the router asks a session's shard for (IPC
 * `group.action`), the group shape the API returns, and the `group-update` events a shard reports (IPC request
 * `group.updated`, stored as webhooks in the outbox and published on SSE).
 */

/** WhatsApp's limit of participants in one group (creator included). */
export const GROUP_MAX_PARTICIPANTS = 1024;

export type GroupRole = 'member' | 'admin' | 'superadmin';
export type ParticipantsAction = 'add' | 'remove' | 'promote' | 'demote';

export interface GroupParticipant {
  jid: string;
  role: GroupRole;
  lid?: string;
}

/** A group (or community) as the API returns it. */
export interface GroupInfo {
  id: string;
  subject: string;
  description?: string;
  owner?: string;
  /** ISO-8601 */
  createdAt?: string;
  size: number;
  /** Only admins may send. */
  announce: boolean;
  /** Only admins may edit the subject, description and ephemeral timer. */
  locked: boolean;
  /** Who may add participants. */
  memberAddMode: 'admins' | 'all';
  /** Joining by invite code needs an admin's approval. */
  joinApproval: boolean;
  /** Disappearing messages timer, seconds (absent: off). */
  ephemeralSeconds?: number;
  isCommunity: boolean;
  /** The announcement group of a community. */
  isCommunityAnnounce: boolean;
  /** The community this group is linked to. */
  community?: string;
  participants: GroupParticipant[];
  /** The admins and the owner (superadmin), for convenience. */
  admins: string[];
}

export interface GroupSettings {
  announce?: boolean;
  locked?: boolean;
  memberAddMode?: 'admins' | 'all';
  joinApproval?: boolean;
}

/** One participant's outcome of a participants or join-request action (WhatsApp answers per participant). */
export interface ParticipantResult {
  jid: string;
  ok: boolean;
  /** WhatsApp's code when refused: 403 (privacy / not allowed), 404 (not on WhatsApp / no request), 409 (already a member), 406 (group full / not allowed). */
  status: number;
  error?: 'NOT_ALLOWED' | 'NOT_FOUND' | 'ALREADY_MEMBER' | 'NOT_ACCEPTABLE' | 'REFUSED';
}

/** Operations on a session's groups (IPC `group.action`). JIDs are validated by the router (`@g.us`, user JIDs). */
export type GroupAction =
  | { type: 'list' }
  | { type: 'get'; group: string }
  | { type: 'create'; subject: string; participants: string[] }
  | { type: 'subject'; group: string; subject: string }
  | { type: 'description'; group: string; description: string }
  | { type: 'settings'; group: string; settings: GroupSettings }
  | { type: 'participants'; group: string; action: ParticipantsAction; participants: string[] }
  | { type: 'invite-code'; group: string }
  | { type: 'revoke-invite'; group: string }
  | { type: 'join'; code: string }
  | { type: 'requests'; group: string }
  | { type: 'requests-action'; group: string; action: 'approve' | 'reject'; participants: string[] }
  | { type: 'leave'; group: string }
  | { type: 'ephemeral'; group: string; seconds: number }
  /** `upload`: id of the image the router stored under `uploads/<session>/<upload>` (no bytes over IPC); absent: remove. */
  | { type: 'picture'; group: string; upload?: string }
  | { type: 'picture-url'; group: string }
  | { type: 'community-create'; subject: string; description: string }
  | { type: 'community-link'; community: string; group: string }
  | { type: 'community-unlink'; community: string; group: string }
  | { type: 'community-groups'; community: string };

export interface GroupJoinRequest {
  jid: string;
  /** ISO-8601 */
  requestedAt?: string;
  method?: string;
}

export interface LinkedGroup {
  id: string;
  subject: string;
  size?: number;
}

export interface GroupActionResult {
  group?: GroupInfo;
  groups?: GroupInfo[];
  results?: ParticipantResult[];
  code?: string;
  /** join: the group joined, or asked to join. */
  jid?: string;
  /** join: an admin must approve the request first. */
  pending?: boolean;
  requests?: GroupJoinRequest[];
  linked?: LinkedGroup[];
  /** picture-url: where WhatsApp serves the group picture (absent: none). */
  url?: string;
}

/** What happened in a group, reported by the shard from WhatsApp's group notifications. */
export interface GroupUpdateWire {
  /** WhatsApp's notification id (stable across re-deliveries: the webhook id derives from it). */
  id: string;
  group: string;
  kind: 'created' | 'participants' | 'settings' | 'join-request';
  /** participants: add, remove, promote, demote, leave; join-request: created, revoked, rejected. */
  action?: string;
  participants?: string[];
  /** Who made the change (absent when WhatsApp does not say). */
  author?: string;
  /** settings / created: what changed. */
  changes?: GroupSettings & { subject?: string; description?: string; ephemeralSeconds?: number; inviteCodeChanged?: boolean; picture?: 'set' | 'removed' };
  /** This session itself was added to or removed from the group. */
  me?: 'added' | 'removed';
  /** ISO-8601 */
  at: string;
}
