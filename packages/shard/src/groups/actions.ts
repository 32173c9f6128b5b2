/**
 * IPC `group.action`: group and community operations on a session's Baileys socket (docs/groups.md). WhatsApp's
 * refusals (IQ errors, which Baileys throws as Booms carrying the code) become the gateway's error codes; a
 * change the session makes itself invalidates its cached metadata of that group at once (the notification that
 * follows would too, a moment later).
 */
import type { BinaryNode, GroupMetadata, WASocket } from '@whiskeysockets/baileys';
import { GatewayError, blobKeys, isGatewayError } from '@wagw/shared';
import type { BlobStore, GroupAction, GroupActionResult, GroupInfo, GroupParticipant, ParticipantResult } from '@wagw/shared';
import type { GroupMetadataCache } from './cache.ts';

export interface GroupDeps {
  sessionId: string;
  socket: () => WASocket | undefined;
  connected: () => boolean;
  cache: GroupMetadataCache;
  /** Where the router put a picture upload (`uploads/<session>/<id>`). */
  blobs?: Pick<BlobStore, 'get'>;
}

/** The API shape of Baileys' group metadata. */
export function toGroupInfo(m: GroupMetadata): GroupInfo {
  const participants: GroupParticipant[] = m.participants.map((p) => {
    const role = p.admin === 'superadmin' ? 'superadmin' : p.admin === 'admin' ? 'admin' : 'member';
    const jid = p.phoneNumber ?? p.id;
    const lid = p.lid ?? (p.id.endsWith('@lid') ? p.id : undefined);
    return lid === undefined ? { jid, role } : { jid, role, lid };
  });
  const info: GroupInfo = {
    id: m.id,
    subject: m.subject,
    size: m.size ?? participants.length,
    announce: m.announce === true,
    locked: m.restrict === true,
    memberAddMode: m.memberAddMode === true ? 'all' : 'admins',
    joinApproval: m.joinApprovalMode === true,
    isCommunity: m.isCommunity === true,
    isCommunityAnnounce: m.isCommunityAnnounce === true,
    participants,
    admins: participants.filter((p) => p.role !== 'member').map((p) => p.jid),
  };
  if (m.desc !== undefined && m.desc !== '') info.description = m.desc;
  const owner = m.ownerPn ?? m.owner;
  if (owner !== undefined) info.owner = owner;
  if (typeof m.creation === 'number' && Number.isFinite(m.creation)) info.createdAt = new Date(m.creation * 1000).toISOString();
  if (m.ephemeralDuration !== undefined && m.ephemeralDuration > 0) info.ephemeralSeconds = m.ephemeralDuration;
  if (m.linkedParent !== undefined) info.community = m.linkedParent;
  return info;
}

const PARTICIPANT_ERRORS: Record<number, ParticipantResult['error']> = { 401: 'NOT_ALLOWED', 403: 'NOT_ALLOWED', 404: 'NOT_FOUND', 406: 'NOT_ACCEPTABLE', 409: 'ALREADY_MEMBER' };

function participantResult(jid: string, status: string | undefined): ParticipantResult {
  const code = Number(status ?? '200');
  if (code === 200) return { jid, ok: true, status: 200 };
  return { jid, ok: false, status: code, error: PARTICIPANT_ERRORS[code] ?? 'REFUSED' };
}

/** The WhatsApp code of a Baileys error: IQ errors carry it as `data`, metadata errors as the Boom status. */
function waCode(err: unknown): number | undefined {
  const e = err as { data?: unknown; output?: { statusCode?: unknown } } | undefined;
  if (typeof e?.data === 'number') return e.data;
  const data = e?.data as { attrs?: { code?: unknown } } | undefined;
  if (typeof data?.attrs?.code === 'string') return Number(data.attrs.code);
  const status = e?.output?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** WhatsApp's refusal -> the gateway's error (what the API answers). */
export function groupError(err: unknown, what: string): GatewayError {
  if (isGatewayError(err)) return err;
  const code = waCode(err);
  const text = (err as Error | undefined)?.message ?? String(err);
  switch (code) {
    case 401:
      return new GatewayError('NOT_GROUP_MEMBER', `The session is not a member of ${what}.`, { whatsapp: code });
    case 403:
      return new GatewayError('NOT_GROUP_ADMIN', `Only an admin of ${what} may do this.`, { whatsapp: code });
    case 404:
      return new GatewayError('GROUP_NOT_FOUND', `${what} does not exist or is not visible to this session.`, { whatsapp: code });
    case 409:
      return new GatewayError('CONFLICT', `WhatsApp refused: ${text} (${what}).`, { whatsapp: code });
    case 429:
      return new GatewayError('WA_RATE_LIMITED', `WhatsApp rate-limited the request (${what}).`, { whatsapp: code });
    case 408:
      return new GatewayError('WA_TIMEOUT', `WhatsApp did not answer in time (${what}).`);
    default:
      if (/connection closed|not open|closed/i.test(text)) return new GatewayError('SESSION_NOT_CONNECTED', `The session socket closed: ${text}`);
      if (code !== undefined && code >= 400 && code < 500) return new GatewayError('GROUP_REQUEST_REFUSED', `WhatsApp refused the request (${what}): ${text}.`, { whatsapp: code });
      return new GatewayError('INTERNAL', `Group request failed (${what}).`, undefined, { cause: err });
  }
}

export async function runGroupAction(action: GroupAction, deps: GroupDeps): Promise<GroupActionResult> {
  const sock = deps.socket();
  if (sock === undefined || !deps.connected()) throw new GatewayError('SESSION_NOT_CONNECTED', `Session ${deps.sessionId} is not connected.`);
  const target = 'group' in action ? `group ${action.group}` : 'community' in action ? `community ${action.community}` : action.type === 'join' ? 'the invite code' : 'the group';
  try {
    return await run(action, sock, deps);
  } catch (err) {
    throw groupError(err, target);
  }
}

async function run(action: GroupAction, sock: WASocket, deps: GroupDeps): Promise<GroupActionResult> {
  const cache = deps.cache;
  /** Fresh metadata (also refreshes the cache: an explicit GET is when a caller wants the current state). */
  const fresh = async (jid: string): Promise<GroupMetadata> => {
    cache.invalidate(jid);
    return await cache.getOrFetch(jid, (j) => sock.groupMetadata(j));
  };
  switch (action.type) {
    case 'list': {
      const all = await sock.groupFetchAllParticipating();
      return { groups: Object.values(all).map(toGroupInfo) };
    }
    case 'get':
      return { group: toGroupInfo(await fresh(action.group)) };
    case 'create': {
      const meta = await sock.groupCreate(action.subject, action.participants);
      cache.set(meta.id, meta);
      return { group: toGroupInfo(meta) };
    }
    case 'subject':
      await sock.groupUpdateSubject(action.group, action.subject);
      return { group: toGroupInfo(await fresh(action.group)) };
    case 'description':
      await sock.groupUpdateDescription(action.group, action.description === '' ? undefined : action.description);
      return { group: toGroupInfo(await fresh(action.group)) };
    case 'settings': {
      const s = action.settings;
      if (s.announce !== undefined) await sock.groupSettingUpdate(action.group, s.announce ? 'announcement' : 'not_announcement');
      if (s.locked !== undefined) await sock.groupSettingUpdate(action.group, s.locked ? 'locked' : 'unlocked');
      if (s.memberAddMode !== undefined) await sock.groupMemberAddMode(action.group, s.memberAddMode === 'all' ? 'all_member_add' : 'admin_add');
      if (s.joinApproval !== undefined) await sock.groupJoinApprovalMode(action.group, s.joinApproval ? 'on' : 'off');
      return { group: toGroupInfo(await fresh(action.group)) };
    }
    case 'ephemeral':
      await sock.groupToggleEphemeral(action.group, action.seconds);
      return { group: toGroupInfo(await fresh(action.group)) };
    case 'picture': {
      if (action.upload === undefined) {
        await sock.removeProfilePicture(action.group);
        return {};
      }
      const data = await deps.blobs?.get(blobKeys.upload(deps.sessionId, action.upload));
      if (data === null || data === undefined) throw new GatewayError('VALIDATION_FAILED', 'The picture upload is gone.');
      try {
        // Baileys resizes it to a 640x640 JPEG (sharp) before it goes to WhatsApp
        await sock.updateProfilePicture(action.group, data);
      } catch (err) {
        if (waCode(err) === undefined && !/closed/i.test((err as Error).message)) throw new GatewayError('VALIDATION_FAILED', `The picture is not an image that can be converted: ${(err as Error).message}`);
        throw err;
      }
      return {};
    }
    case 'picture-url': {
      try {
        const url = await sock.profilePictureUrl(action.group, 'image');
        return url === undefined ? {} : { url };
      } catch (err) {
        // no picture is WhatsApp's 404 for this query, not an unknown group
        if (waCode(err) === 404) return {};
        throw err;
      }
    }
    case 'participants': {
      const res = await sock.groupParticipantsUpdate(action.group, action.participants, action.action);
      cache.invalidate(action.group);
      return { results: res.map((r) => participantResult(r.jid ?? '', r.status)) };
    }
    case 'invite-code': {
      const code = await sock.groupInviteCode(action.group);
      if (code === undefined) throw new GatewayError('GROUP_REQUEST_REFUSED', 'WhatsApp returned no invite code.');
      return { code };
    }
    case 'revoke-invite': {
      const code = await sock.groupRevokeInvite(action.group);
      if (code === undefined) throw new GatewayError('GROUP_REQUEST_REFUSED', 'WhatsApp returned no invite code.');
      return { code };
    }
    case 'join': {
      const r = await sock.query({ tag: 'iq', attrs: { type: 'set', xmlns: 'w:g2', to: '@g.us' }, content: [{ tag: 'invite', attrs: { code: action.code } }] });
      // Baileys' groupAcceptInvite reads only `<group jid>`; a group that wants approval answers with the request.
      const children: BinaryNode[] = Array.isArray(r.content) ? r.content : [];
      const joined = children.find((c) => c.tag === 'group');
      const request = children.find((c) => c.tag === 'membership_approval_request');
      const jid = joined?.attrs['jid'] ?? request?.attrs['jid'];
      return jid === undefined ? { pending: request !== undefined } : { jid, pending: request !== undefined };
    }
    case 'requests': {
      const list = await sock.groupRequestParticipantsList(action.group);
      return {
        requests: list.map((r) => {
          const attrs = r as Record<string, string | undefined>;
          const t = Number(attrs['request_time']);
          const out: { jid: string; requestedAt?: string; method?: string } = { jid: attrs['phone_number'] ?? attrs['jid'] ?? '' };
          if (Number.isFinite(t) && t > 0) out.requestedAt = new Date(t * 1000).toISOString();
          if (attrs['request_method'] !== undefined) out.method = attrs['request_method'];
          return out;
        }),
      };
    }
    case 'requests-action': {
      const res = await sock.groupRequestParticipantsUpdate(action.group, action.participants, action.action);
      cache.invalidate(action.group);
      return { results: res.map((r) => participantResult(r.jid ?? '', r.status)) };
    }
    case 'leave':
      await sock.groupLeave(action.group);
      cache.invalidate(action.group);
      return {};
    case 'community-create': {
      const meta = await sock.communityCreate(action.subject, action.description);
      if (meta === null || meta === undefined) throw new GatewayError('GROUP_REQUEST_REFUSED', 'WhatsApp returned no community.');
      return { group: toGroupInfo(meta as GroupMetadata) };
    }
    case 'community-link':
      await sock.communityLinkGroup(action.group, action.community);
      cache.invalidate(action.group);
      return { group: toGroupInfo(await fresh(action.group)) };
    case 'community-unlink':
      await sock.communityUnlinkGroup(action.group, action.community);
      cache.invalidate(action.group);
      return {};
    case 'community-groups': {
      const r = await sock.communityFetchLinkedGroups(action.community);
      return { linked: r.linkedGroups.filter((g) => g.id !== undefined).map((g) => ({ id: g.id as string, subject: g.subject, ...(g.size === undefined ? {} : { size: g.size }) })) };
    }
  }
}
