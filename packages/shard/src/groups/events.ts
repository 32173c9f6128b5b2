/**
 * `group-update` events from WhatsApp's group notifications. Baileys turns each `w:gp2` notification into a
 * stub message (`messageStubType` GROUP_*, key id = the notification id) on `messages.upsert`; this reads
 * them (and the group's ephemeral-setting protocol message) into `GroupUpdateWire`s and hands them to the
 * router (IPC request `group.updated`), which stores each once as a webhook in the outbox and publishes it on
 * SSE. The notification id makes the event id: a notification WhatsApp delivers again yields the same id.
 */
import { WAMessageStubType, proto } from '@whiskeysockets/baileys';
import type { WAMessage } from '@whiskeysockets/baileys';
import type { GroupUpdateWire, Logger } from '@wagw/shared';
import type { ShardRequester } from '../messaging/inbound.ts';

const T = WAMessageStubType;

const PARTICIPANT_STUBS: Partial<Record<number, string>> = {
  [T.GROUP_PARTICIPANT_ADD]: 'add',
  [T.GROUP_PARTICIPANT_INVITE]: 'add',
  [T.GROUP_PARTICIPANT_ADD_REQUEST_JOIN]: 'add',
  [T.GROUP_PARTICIPANT_REMOVE]: 'remove',
  [T.GROUP_PARTICIPANT_LEAVE]: 'leave',
  [T.GROUP_PARTICIPANT_PROMOTE]: 'promote',
  [T.GROUP_PARTICIPANT_DEMOTE]: 'demote',
};

/** Bare user JID of a participant stub parameter (`{"id": …, "phoneNumber": …}` JSON, or a plain JID). */
function participantJid(param: string): string {
  try {
    const p = JSON.parse(param) as { id?: string; phoneNumber?: string; pn?: string; lid?: string };
    return bare(p.phoneNumber ?? p.pn ?? p.id ?? p.lid ?? '');
  } catch {
    return bare(param);
  }
}

function bare(jid: string): string {
  const at = jid.indexOf('@');
  if (at < 0) return jid;
  return `${jid.slice(0, at).split(':')[0] ?? ''}${jid.slice(at)}`;
}

/** The group update a stub message stands for; undefined for anything else. `me`: this session's user JIDs. */
export function groupUpdateOf(m: WAMessage, me: readonly string[]): GroupUpdateWire | undefined {
  const group = m.key.remoteJid ?? '';
  if (!group.endsWith('@g.us') || !m.key.id) return undefined;
  const ts = Number(m.messageTimestamp ?? 0);
  const at = new Date((Number.isFinite(ts) && ts > 0 ? ts : Date.now() / 1000) * 1000).toISOString();
  const authorRaw = m.key.participantAlt ?? m.key.participant ?? m.participant ?? undefined;
  const base = { id: m.key.id, group, at, ...(authorRaw ? { author: bare(authorRaw) } : {}) };
  const params: string[] = (m.messageStubParameters ?? []).map(String);
  const stub = m.messageStubType ?? undefined;
  const proto0 = m.message?.protocolMessage;
  if (stub === undefined || stub === null) {
    if (proto0?.type === proto.Message.ProtocolMessage.Type.EPHEMERAL_SETTING) {
      return { ...base, kind: 'settings', changes: { ephemeralSeconds: Number(proto0.ephemeralExpiration ?? 0) } };
    }
    return undefined;
  }
  const action = PARTICIPANT_STUBS[stub];
  if (action !== undefined) {
    const participants = params.map(participantJid).filter((j) => j !== '');
    const update: GroupUpdateWire = { ...base, kind: 'participants', action, participants };
    const mine = participants.some((p) => me.includes(p));
    if (mine && action === 'add') update.me = 'added';
    if (mine && (action === 'remove' || action === 'leave')) update.me = 'removed';
    return update;
  }
  const on = params[0] === 'on' || params[0] === 'true';
  switch (stub) {
    case T.GROUP_CREATE:
      return { ...base, kind: 'created', changes: params[0] === undefined ? {} : { subject: params[0] }, me: 'added' };
    case T.GROUP_CHANGE_SUBJECT:
      return { ...base, kind: 'settings', changes: { subject: params[0] ?? '' } };
    case T.GROUP_CHANGE_DESCRIPTION:
      return { ...base, kind: 'settings', changes: { description: params[0] ?? '' } };
    case T.GROUP_CHANGE_ANNOUNCE:
      return { ...base, kind: 'settings', changes: { announce: on } };
    case T.GROUP_CHANGE_RESTRICT:
      return { ...base, kind: 'settings', changes: { locked: on } };
    case T.GROUP_CHANGE_ICON:
      return { ...base, kind: 'settings', changes: { picture: params[0] === undefined ? 'removed' : 'set' } };
    case T.GROUP_CHANGE_INVITE_LINK:
      // the code itself is a secret of the admins; the event only says it changed
      return { ...base, kind: 'settings', changes: { inviteCodeChanged: true } };
    case T.GROUP_MEMBER_ADD_MODE:
      return { ...base, kind: 'settings', changes: { memberAddMode: params[0] === 'all_member_add' ? 'all' : 'admins' } };
    case T.GROUP_MEMBERSHIP_JOIN_APPROVAL_MODE:
      return { ...base, kind: 'settings', changes: { joinApproval: on } };
    case T.GROUP_MEMBERSHIP_JOIN_APPROVAL_REQUEST_NON_ADMIN_ADD: {
      const who = params[0] === undefined ? '' : participantOfRequest(params[0]);
      return { ...base, kind: 'join-request', action: params[1] ?? 'created', participants: who === '' ? [] : [who] };
    }
    default:
      return undefined;
  }
}

function participantOfRequest(param: string): string {
  try {
    const p = JSON.parse(param) as { lid?: string; pn?: string };
    return bare(p.pn ?? p.lid ?? '');
  } catch {
    return '';
  }
}

/**
 * Hands group updates to the router in order, retrying while it is unreachable (bounded: a notification's
 * ack does not wait for this, so an update that cannot be stored after the retries is logged and dropped).
 */
export interface GroupEventOptions {
  sessionId: string;
  epoch: number;
  request: ShardRequester;
  logger: Logger;
}

export class GroupEventForwarder {
  readonly #o: GroupEventOptions;
  #chain: Promise<void> = Promise.resolve();

  constructor(options: GroupEventOptions) {
    this.#o = options;
  }

  push(updates: GroupUpdateWire[]): void {
    if (updates.length === 0) return;
    this.#chain = this.#chain.then(() => this.#send(updates));
  }

  async #send(updates: GroupUpdateWire[]): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        await this.#o.request({ kind: 'group.updated', sessionId: this.#o.sessionId, epoch: this.#o.epoch, updates });
        return;
      } catch (err) {
        if (attempt === 5) {
          this.#o.logger.error({ err, count: updates.length }, 'group updates could not be stored');
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /** Resolves once everything pushed so far was handed over (tests, planned stops). */
  async drain(): Promise<void> {
    await this.#chain;
  }
}
