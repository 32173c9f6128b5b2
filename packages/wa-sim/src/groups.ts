// Groups and communities as WhatsApp runs them (`w:g2` IQs, `w:gp2` notifications): create, metadata, participants
// add/remove/promote/demote, subject/description/settings, invite codes with join approval, ephemeral timers,
// leave, communities (parent group, announcement sub-group, link/unlink). Group messages are fanned out by the
// relay (relayGroup): one `skmsg` for everybody plus the per-device sender-key distributions. Over 500 lines: one
// protocol area (the `w:g2` IQs and their notifications) over one group table; test-only code.
//
// Groups here use phone-number addressing (`addressing_mode="pn"`): participants are `N@s.whatsapp.net` and a
// message's `participant` is the sender's device jid, which is also the sender-key name Baileys uses.
import { randomBytes } from 'node:crypto';
import type { Account, Device, Registry } from './accounts.ts';
import { bytes as bytesOf, child, childrenOf, node, text, unixNow } from './nodes.ts';
import type { Relay } from './relay.ts';
import type { Stats } from './stats.ts';
import type { BinaryNode } from './types.ts';

export type GroupRole = 'member' | 'admin' | 'superadmin';

export interface Group {
  readonly id: string;
  readonly jid: string;
  subject: string;
  subjectOwner: Account;
  subjectTime: string;
  readonly creation: string;
  readonly creator: Account;
  description: { id: string; text: string; owner: Account; t: string } | undefined;
  readonly participants: Map<Account, GroupRole>;
  announce: boolean;
  locked: boolean;
  memberAddMode: 'admin_add' | 'all_member_add';
  joinApproval: boolean;
  inviteCode: string;
  ephemeral: number;
  /** Join requests waiting for an admin (invite code with approval on). */
  readonly requests: Map<Account, string>;
  /** A community (parent group). */
  readonly isCommunity: boolean;
  /** The community's announcement group (`default_sub_group`). */
  readonly isCommunityAnnounce: boolean;
  linkedParent: Group | undefined;
  readonly subGroups: Set<Group>;
  /** The group picture (JPEG bytes as the client sent them) and its id. */
  picture: { id: string; data: Buffer; directPath: string } | undefined;
}

export interface GroupsOptions {
  readonly registry: Registry;
  readonly stats: Stats;
  readonly relay: Relay;
  /** A `w:gp2` notification for a simulated phone. */
  readonly notifyPhone: (account: Account, notification: BinaryNode) => void;
  /** Metadata queries (`<query request="interactive"/>`) one device may make per window before `429 rate-overlimit`. */
  readonly metadataRateLimit?: { max: number; windowMs: number };
  /** Most participants a group may have (the real limit is 1024). */
  readonly maxParticipants?: number;
  /** Stores a group picture on the media endpoint; returns its direct path (served over HTTPS). */
  readonly storePicture?: (data: Buffer) => string;
  /** `https://host:port` of the media endpoint (picture URLs). */
  readonly mediaBase?: () => string;
}

/** An IQ refusal: becomes `<iq type="error"><error code text/></iq>` (Baileys throws a Boom with `data = code`). */
export class GroupIqError extends Error {
  readonly code: number;
  constructor(code: number, text: string) {
    super(text);
    this.code = code;
  }
}

const PARTICIPANT_ACTIONS = new Set(['add', 'remove', 'promote', 'demote']);

export class Groups {
  private readonly o: GroupsOptions;
  private readonly byId = new Map<string, Group>();
  private readonly byCode = new Map<string, Group>();
  private readonly metadataWindows = new Map<string, { start: number; count: number }>();
  private nextId = 120363000000000001n;
  private nextNotification = 1;
  /** Metadata queries a device may make per window (changeable at run time; a change starts new windows). */
  private limit: { max: number; windowMs: number };

  constructor(o: GroupsOptions) {
    this.o = o;
    this.limit = o.metadataRateLimit ?? { max: 30, windowMs: 60_000 };
  }

  get metadataRateLimit(): { max: number; windowMs: number } {
    return this.limit;
  }

  set metadataRateLimit(limit: { max: number; windowMs: number }) {
    this.limit = limit;
    this.metadataWindows.clear();
  }

  get maxParticipants(): number {
    return this.o.maxParticipants ?? 1024;
  }

  get(jid: string): Group | undefined {
    return this.byId.get(jid.split('@')[0] ?? '');
  }

  list(): Group[] {
    return [...this.byId.values()];
  }

  /** The accounts of a group (what a sender fans out to). */
  members(g: Group): Account[] {
    return [...g.participants.keys()];
  }

  isMember(g: Group, acc: Account): boolean {
    return g.participants.has(acc);
  }

  isAdmin(g: Group, acc: Account): boolean {
    const r = g.participants.get(acc);
    return r === 'admin' || r === 'superadmin';
  }

  // ---- actions (shared by the IQ handler and by simulated phones) ---------------------------------------------

  create(actor: Account, subject: string, members: readonly Account[], opts: { community?: boolean; description?: string; parent?: Group; announceSub?: boolean } = {}): Group {
    if (!subject.trim()) throw new GroupIqError(400, 'bad-request');
    if (members.length + 1 > this.maxParticipants) throw new GroupIqError(406, 'not-acceptable');
    const id = String(this.nextId++);
    const t = unixNow();
    const g: Group = {
      id,
      jid: `${id}@g.us`,
      subject,
      subjectOwner: actor,
      subjectTime: t,
      creation: t,
      creator: actor,
      description: opts.description ? { id: randomBytes(6).toString('hex').toUpperCase(), text: opts.description, owner: actor, t } : undefined,
      participants: new Map([[actor, 'superadmin']]),
      announce: opts.announceSub === true,
      locked: false,
      memberAddMode: 'admin_add',
      joinApproval: opts.community === true,
      inviteCode: newCode(),
      ephemeral: 0,
      requests: new Map(),
      isCommunity: opts.community === true,
      isCommunityAnnounce: opts.announceSub === true,
      linkedParent: opts.parent,
      subGroups: new Set(),
      picture: undefined,
    };
    for (const m of members) if (m !== actor) g.participants.set(m, 'member');
    this.byId.set(id, g);
    this.byCode.set(g.inviteCode, g);
    if (opts.parent) opts.parent.subGroups.add(g);
    this.o.stats.groupsCreated++;
    this.notify(g, actor, node('create', {}, [this.groupNode(g)]), this.members(g).filter(a => a !== actor));
    return g;
  }

  /** Creates a community with its announcement group (as `create_general_chat` asks). */
  createCommunity(actor: Account, subject: string, description: string): Group {
    const c = this.create(actor, subject, [], { community: true, description });
    this.create(actor, subject, [], { parent: c, announceSub: true });
    return c;
  }

  participantsAction(g: Group, actor: Account, action: 'add' | 'remove' | 'promote' | 'demote', targets: readonly string[]): Array<{ jid: string; error?: string }> {
    this.requireMember(g, actor);
    const selfRemove = action === 'remove' && targets.length === 1 && this.o.registry.resolve(targets[0] ?? '')?.account === actor;
    if (!(action === 'add' && g.memberAddMode === 'all_member_add') && !selfRemove) this.requireAdmin(g, actor);
    const out: Array<{ jid: string; error?: string }> = [];
    const changed: Account[] = [];
    for (const jid of targets) {
      const acc = this.o.registry.resolve(jid)?.account;
      if (!acc) {
        out.push({ jid, error: '404' });
        continue;
      }
      const role = g.participants.get(acc);
      if (action === 'add') {
        if (role) out.push({ jid, error: '409' });
        else if (g.participants.size >= this.maxParticipants) out.push({ jid, error: '406' });
        else {
          g.participants.set(acc, 'member');
          g.requests.delete(acc);
          changed.push(acc);
          out.push({ jid: acc.pnJid });
        }
        continue;
      }
      if (!role) {
        out.push({ jid, error: '404' });
        continue;
      }
      if (action === 'remove') {
        if (role === 'superadmin' && acc !== actor) {
          out.push({ jid, error: '406' });
          continue;
        }
        g.participants.delete(acc);
      } else if (action === 'promote') g.participants.set(acc, role === 'superadmin' ? 'superadmin' : 'admin');
      else if (role !== 'superadmin') g.participants.set(acc, 'member');
      changed.push(acc);
      out.push({ jid: acc.pnJid });
    }
    if (changed.length) {
      const content = node(action, {}, changed.map(a => participantNode(a)));
      // the removed hear of it too
      const audience = new Set([...this.members(g), ...(action === 'remove' ? changed : [])]);
      this.notify(g, actor, content, [...audience]);
    }
    return out;
  }

  setSubject(g: Group, actor: Account, subject: string): void {
    this.requireInfoEditor(g, actor);
    if (!subject.trim()) throw new GroupIqError(400, 'bad-request');
    g.subject = subject;
    g.subjectOwner = actor;
    g.subjectTime = unixNow();
    this.notify(g, actor, node('subject', { subject, s_o: actor.pnJid, s_t: g.subjectTime }));
  }

  setDescription(g: Group, actor: Account, description: string | undefined): void {
    this.requireInfoEditor(g, actor);
    const id = randomBytes(6).toString('hex').toUpperCase();
    g.description = description ? { id, text: description, owner: actor, t: unixNow() } : undefined;
    this.notify(g, actor, description ? node('description', { id }, [node('body', {}, Buffer.from(description, 'utf8'))]) : node('description', { id, delete: 'true' }));
  }

  setting(g: Group, actor: Account, tag: string, content?: BinaryNode): void {
    this.requireAdmin(g, actor);
    switch (tag) {
      case 'announcement':
      case 'not_announcement':
        g.announce = tag === 'announcement';
        break;
      case 'locked':
      case 'unlocked':
        g.locked = tag === 'locked';
        break;
      case 'member_add_mode': {
        const mode = text(content);
        if (mode !== 'admin_add' && mode !== 'all_member_add') throw new GroupIqError(400, 'bad-request');
        g.memberAddMode = mode;
        this.notify(g, actor, node('member_add_mode', {}, mode));
        return;
      }
      case 'membership_approval_mode': {
        const state = child(content, 'group_join')?.attrs.state;
        if (state !== 'on' && state !== 'off') throw new GroupIqError(400, 'bad-request');
        g.joinApproval = state === 'on';
        this.notify(g, actor, node('membership_approval_mode', {}, [node('group_join', { state })]));
        return;
      }
      default:
        throw new GroupIqError(400, 'bad-request');
    }
    this.notify(g, actor, node(tag));
  }

  setEphemeral(g: Group, actor: Account, expiration: number): void {
    if (g.locked) this.requireAdmin(g, actor);
    else this.requireMember(g, actor);
    g.ephemeral = expiration;
    this.notify(g, actor, expiration > 0 ? node('ephemeral', { expiration: String(expiration) }) : node('not_ephemeral'));
  }

  leave(g: Group, actor: Account): void {
    this.requireMember(g, actor);
    g.participants.delete(actor);
    if (![...g.participants.values()].some(r => r !== 'member')) {
      // the last admin left: WhatsApp promotes somebody
      const next = g.participants.keys().next();
      if (!next.done) g.participants.set(next.value, 'admin');
    }
    this.notify(g, actor, node('remove', {}, [participantNode(actor)]), [...this.members(g), actor]);
  }

  inviteCode(g: Group, actor: Account): string {
    this.requireAdmin(g, actor);
    return g.inviteCode;
  }

  revokeInvite(g: Group, actor: Account): string {
    this.requireAdmin(g, actor);
    this.byCode.delete(g.inviteCode);
    g.inviteCode = newCode();
    this.byCode.set(g.inviteCode, g);
    this.notify(g, actor, node('invite', { code: g.inviteCode }));
    return g.inviteCode;
  }

  /** Join by invite code: a member at once, or a pending request when the group wants approval. */
  joinByCode(actor: Account, code: string): { group: Group; pending: boolean } {
    const g = this.byCode.get(code);
    if (!g) throw new GroupIqError(404, 'item-not-found');
    if (g.participants.has(actor)) throw new GroupIqError(409, 'conflict');
    if (g.participants.size >= this.maxParticipants) throw new GroupIqError(406, 'not-acceptable');
    if (g.joinApproval) {
      if (!g.requests.has(actor)) {
        g.requests.set(actor, unixNow());
        const admins = this.members(g).filter(a => this.isAdmin(g, a));
        this.notify(g, actor, node('created_membership_requests', { request_method: 'invite_link' }, [participantNode(actor)]), admins);
      }
      return { group: g, pending: true };
    }
    g.participants.set(actor, 'member');
    this.notify(g, actor, node('add', { reason: 'invite' }, [participantNode(actor)]));
    return { group: g, pending: false };
  }

  requestsAction(g: Group, actor: Account, action: 'approve' | 'reject', targets: readonly string[]): Array<{ jid: string; error?: string }> {
    this.requireAdmin(g, actor);
    const out: Array<{ jid: string; error?: string }> = [];
    for (const jid of targets) {
      const acc = this.o.registry.resolve(jid)?.account;
      if (!acc || !g.requests.has(acc)) {
        out.push({ jid, error: '404' });
        continue;
      }
      g.requests.delete(acc);
      out.push({ jid: acc.pnJid });
      if (action === 'approve') {
        g.participants.set(acc, 'member');
        this.notify(g, actor, node('add', { reason: 'approval' }, [participantNode(acc)]));
      } else {
        const admins = this.members(g).filter(a => this.isAdmin(g, a));
        this.notify(g, actor, node('revoked_membership_requests', {}, [participantNode(acc)]), [...admins, acc]);
      }
    }
    return out;
  }

  link(parent: Group, actor: Account, sub: Group): void {
    if (!parent.isCommunity) throw new GroupIqError(400, 'bad-request');
    this.requireAdmin(parent, actor);
    this.requireAdmin(sub, actor);
    if (sub.isCommunity || (sub.linkedParent && sub.linkedParent !== parent)) throw new GroupIqError(409, 'conflict');
    sub.linkedParent = parent;
    parent.subGroups.add(sub);
    this.notify(parent, actor, node('links', {}, [node('link', { link_type: 'sub_group' }, [node('group', { jid: sub.jid, subject: sub.subject })])]));
  }

  unlink(parent: Group, actor: Account, sub: Group): void {
    this.requireAdmin(parent, actor);
    if (sub.linkedParent !== parent || sub.isCommunityAnnounce) throw new GroupIqError(404, 'item-not-found');
    sub.linkedParent = undefined;
    parent.subGroups.delete(sub);
    this.notify(parent, actor, node('unlink', { unlink_type: 'sub_group' }, [node('group', { jid: sub.jid })]));
  }

  /** Sets (or with no data removes) the group picture; members get a `picture` notification. */
  setPicture(g: Group, actor: Account, data: Buffer | undefined): void {
    this.requireInfoEditor(g, actor);
    if (data && data.length === 0) throw new GroupIqError(400, 'bad-request');
    const id = String(Math.floor(Date.now() / 1000)) + String(this.nextNotification);
    g.picture = data ? { id, data, directPath: this.o.storePicture?.(data) ?? `/pps/${id}` } : undefined;
    const content = data ? node('set', { jid: g.jid, id, author: actor.pnJid }) : node('delete', { jid: g.jid, author: actor.pnJid });
    this.notify(g, actor, content, this.members(g), 'picture');
  }

  /** `w:profile:picture` with a group `target`: get the picture URL, set or remove it. */
  handlePictureIq(dev: Device, iq: BinaryNode): BinaryNode {
    try {
      const g = this.get(iq.attrs.target ?? '');
      if (!g) throw new GroupIqError(404, 'item-not-found');
      const pic = child(iq, 'picture');
      if (iq.attrs.type === 'get') {
        this.requireMember(g, dev.account);
        if (!g.picture) throw new GroupIqError(404, 'item-not-found');
        const url = `${this.o.mediaBase?.() ?? 'https://127.0.0.1'}${g.picture.directPath}`;
        return result(iq, [node('picture', { id: g.picture.id, type: pic?.attrs.type ?? 'image', url, direct_path: g.picture.directPath })]);
      }
      const data = pic ? (bytesOf(pic) ?? Buffer.alloc(0)) : undefined;
      this.setPicture(g, dev.account, data);
      return result(iq, []);
    } catch (err) {
      if (err instanceof GroupIqError) return node('iq', { type: 'error', id: iq.attrs.id, from: 's.whatsapp.net' }, [node('error', { code: String(err.code), text: err.message })]);
      throw err;
    }
  }

  /** A member may post: not in announcement mode, or an admin. Throws 403 / 401 otherwise. */
  checkPost(g: Group, sender: Account): void {
    this.requireMember(g, sender);
    if (g.announce && !this.isAdmin(g, sender)) throw new GroupIqError(403, 'forbidden');
  }

  // ---- the `w:g2` IQ --------------------------------------------------------------------------------------------

  /** Answers one `w:g2` IQ of a logged-in device; refusals become IQ errors. */
  handleIq(dev: Device, iq: BinaryNode): BinaryNode {
    try {
      return result(iq, this.iq(dev, iq));
    } catch (err) {
      if (err instanceof GroupIqError) return node('iq', { type: 'error', id: iq.attrs.id, from: iq.attrs.to ?? 'g.us' }, [node('error', { code: String(err.code), text: err.message })]);
      throw err;
    }
  }

  private iq(dev: Device, iq: BinaryNode): BinaryNode[] {
    const actor = dev.account;
    const to = iq.attrs.to ?? '';
    const type = iq.attrs.type;
    const first = Array.isArray(iq.content) ? iq.content[0] : undefined;
    if (!first) throw new GroupIqError(400, 'bad-request');
    if (to === '@g.us' || to === 'g.us') {
      if (type === 'get' && first.tag === 'participating') {
        const mine = this.list().filter(g => g.participants.has(actor));
        return [node('groups', {}, mine.map(g => this.groupNode(g)))];
      }
      if (type === 'set' && first.tag === 'create') {
        const members = childrenOf(first, 'participant').map(p => this.o.registry.resolve(p.attrs.jid ?? '')?.account);
        if (members.some(m => !m)) throw new GroupIqError(400, 'bad-request');
        const accounts = members as Account[];
        const parentJid = child(first, 'linked_parent')?.attrs.jid;
        const subject = first.attrs.subject ?? '';
        if (child(first, 'parent')) {
          const body = text(child(child(first, 'description'), 'body')) ?? '';
          return [this.groupNode(this.createCommunity(actor, subject, body))];
        }
        let parent: Group | undefined;
        if (parentJid) {
          parent = this.get(parentJid);
          if (!parent?.isCommunity) throw new GroupIqError(404, 'item-not-found');
          this.requireAdmin(parent, actor);
        }
        return [this.groupNode(this.create(actor, subject, accounts, parent ? { parent } : {}))];
      }
      if (type === 'set' && first.tag === 'leave') {
        for (const gn of [...childrenOf(first, 'group'), ...childrenOf(first, 'community')]) {
          const g = this.get(gn.attrs.id ?? '');
          if (!g) throw new GroupIqError(404, 'item-not-found');
          this.leave(g, actor);
        }
        return [node('leave', {})];
      }
      if (first.tag === 'invite' && first.attrs.code) {
        if (type === 'get') {
          const g = this.byCode.get(first.attrs.code);
          if (!g) throw new GroupIqError(404, 'item-not-found');
          return [this.groupNode(g)];
        }
        const { group, pending } = this.joinByCode(actor, first.attrs.code);
        return pending ? [node('membership_approval_request', { jid: group.jid })] : [node('group', { jid: group.jid })];
      }
      throw new GroupIqError(400, 'bad-request');
    }
    const g = this.get(to);
    if (!g) throw new GroupIqError(404, 'item-not-found');
    if (type === 'get') {
      switch (first.tag) {
        case 'query':
          this.countMetadata(dev);
          this.requireMember(g, actor);
          return [this.groupNode(g)];
        case 'invite':
          return [node('invite', { code: this.inviteCode(g, actor) })];
        case 'membership_approval_requests':
          this.requireAdmin(g, actor);
          return [node('membership_approval_requests', {}, [...g.requests].map(([a, t]) => node('membership_approval_request', { jid: a.pnJid, request_time: t, request_method: 'invite_link' })))];
        case 'sub_groups':
          this.requireMember(g, actor);
          return [node('sub_groups', {}, [...g.subGroups].map(s => node('group', { id: s.id, subject: s.subject, creation: s.creation, creator: s.creator.pnJid, size: String(s.participants.size) })))];
        default:
          throw new GroupIqError(400, 'bad-request');
      }
    }
    if (PARTICIPANT_ACTIONS.has(first.tag)) {
      const action = first.tag as 'add' | 'remove' | 'promote' | 'demote';
      const targets = childrenOf(first, 'participant').map(p => p.attrs.jid ?? '');
      const res = this.participantsAction(g, actor, action, targets);
      return [node(action, {}, res.map(r => node('participant', { jid: r.jid, error: r.error })))];
    }
    switch (first.tag) {
      case 'subject':
        this.setSubject(g, actor, text(first) ?? '');
        return [];
      case 'description':
        this.setDescription(g, actor, first.attrs.delete === 'true' ? undefined : text(child(first, 'body')));
        return [];
      case 'announcement':
      case 'not_announcement':
      case 'locked':
      case 'unlocked':
      case 'member_add_mode':
      case 'membership_approval_mode':
        this.setting(g, actor, first.tag, first);
        return [];
      case 'ephemeral':
      case 'not_ephemeral': {
        const exp = first.tag === 'ephemeral' ? Number(first.attrs.expiration) : 0;
        if (!Number.isInteger(exp) || exp < 0) throw new GroupIqError(400, 'bad-request');
        this.setEphemeral(g, actor, exp);
        return [];
      }
      case 'invite':
        return [node('invite', { code: this.revokeInvite(g, actor) })];
      case 'membership_requests_action': {
        const act = Array.isArray(first.content) ? first.content[0] : undefined;
        if (!act || (act.tag !== 'approve' && act.tag !== 'reject')) throw new GroupIqError(400, 'bad-request');
        const res = this.requestsAction(g, actor, act.tag, childrenOf(act, 'participant').map(p => p.attrs.jid ?? ''));
        return [node('membership_requests_action', {}, [node(act.tag, {}, res.map(r => node('participant', { jid: r.jid, error: r.error })))])];
      }
      case 'links': {
        const sub = this.get(child(child(first, 'link'), 'group')?.attrs.jid ?? '');
        if (!sub) throw new GroupIqError(404, 'item-not-found');
        this.link(g, actor, sub);
        return [];
      }
      case 'unlink': {
        const sub = this.get(child(first, 'group')?.attrs.jid ?? '');
        if (!sub) throw new GroupIqError(404, 'item-not-found');
        this.unlink(g, actor, sub);
        return [];
      }
      default:
        throw new GroupIqError(400, 'bad-request');
    }
  }

  /** Counts a metadata query; beyond the rate limit it is refused like WhatsApp does (429 rate-overlimit). */
  private countMetadata(dev: Device): void {
    this.o.stats.groupMetadataQueries++;
    const limit = this.limit;
    const now = Date.now();
    let w = this.metadataWindows.get(dev.pnJid);
    if (!w || now - w.start >= limit.windowMs) this.metadataWindows.set(dev.pnJid, (w = { start: now, count: 0 }));
    w.count++;
    if (w.count > limit.max) {
      this.o.stats.groupMetadataRateLimited++;
      throw new GroupIqError(429, 'rate-overlimit');
    }
  }

  private requireMember(g: Group, acc: Account): void {
    if (!g.participants.has(acc)) throw new GroupIqError(401, 'not-authorized');
  }

  private requireAdmin(g: Group, acc: Account): void {
    this.requireMember(g, acc);
    if (!this.isAdmin(g, acc)) throw new GroupIqError(403, 'forbidden');
  }

  private requireInfoEditor(g: Group, acc: Account): void {
    if (g.locked) this.requireAdmin(g, acc);
    else this.requireMember(g, acc);
  }

  /** The `<group>` node of metadata answers and `create` notifications. */
  groupNode(g: Group): BinaryNode {
    const content: BinaryNode[] = [...g.participants].map(([a, role]) => participantNode(a, role === 'member' ? undefined : role));
    if (g.description) content.push(node('description', { id: g.description.id, participant: g.description.owner.pnJid, t: g.description.t }, [node('body', {}, Buffer.from(g.description.text, 'utf8'))]));
    if (g.announce) content.push(node('announcement'));
    if (g.locked) content.push(node('locked'));
    if (g.ephemeral > 0) content.push(node('ephemeral', { expiration: String(g.ephemeral) }));
    content.push(node('member_add_mode', {}, g.memberAddMode));
    if (g.joinApproval) content.push(node('membership_approval_mode', {}, [node('group_join', { state: 'on' })]));
    if (g.isCommunity) content.push(node('parent', { default_membership_approval_mode: 'request_required' }));
    if (g.linkedParent) content.push(node('linked_parent', { jid: g.linkedParent.jid }));
    if (g.isCommunityAnnounce) content.push(node('default_sub_group'));
    return node(
      'group',
      {
        id: g.id,
        creator: g.creator.pnJid,
        creation: g.creation,
        subject: g.subject,
        s_t: g.subjectTime,
        s_o: g.subjectOwner.pnJid,
        size: String(g.participants.size),
        addressing_mode: 'pn',
      },
      content,
    );
  }

  /** Sends a `w:gp2` notification about `g` to every device of the audience (default: the members). */
  private notify(g: Group, actor: Account, content: BinaryNode, audience: readonly Account[] = this.members(g), type = 'w:gp2'): void {
    const id = `gp2-${this.nextNotification++}`;
    const attrs = { from: g.jid, type, id, t: unixNow(), participant: actor.pnJid, participant_lid: actor.lidJid, addressing_mode: 'pn', notify: actor.name };
    const stanza = node('notification', attrs, [content]);
    this.o.stats.groupNotifications++;
    for (const acc of audience) {
      for (const dev of acc.activeDevices()) {
        if (dev.kind === 'phone') {
          this.o.notifyPhone(acc, stanza);
          continue;
        }
        this.o.relay.deliver(dev, { key: `notification:${id}`, deliveries: 0, build: offline => node('notification', offline ? { ...attrs, offline: '1' } : attrs, [content]) });
      }
    }
  }
}

const participantNode = (a: Account, type?: GroupRole): BinaryNode => node('participant', { jid: a.pnJid, lid: a.lidJid, type });

const result = (iq: BinaryNode, content: BinaryNode[]): BinaryNode =>
  node('iq', { type: 'result', id: iq.attrs.id, from: iq.attrs.to ?? 'g.us' }, content.length ? content : undefined);

const newCode = (): string => randomBytes(16).toString('base64url').slice(0, 22);
