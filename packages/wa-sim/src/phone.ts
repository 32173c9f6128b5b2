// A simulated phone: the primary device (device 0) of an account. It holds Signal keys, decrypts what it
// receives, sends real proto.Messages to any account, and records the receipts of what it sent. Over 500 lines:
// one device's protocol state (Signal sessions, sender keys, receipts) read by every method; test-only code.
import { EventEmitter } from 'node:events';
import { deflateSync } from 'node:zlib';
import { encodeWAMessage, generateMessageIDV2, generateWAMessageContent, proto, unpadRandomMax16 } from '@whiskeysockets/baileys';
import type { AnyMessageContent } from '@whiskeysockets/baileys';
import type { Logger } from 'pino';
import { Device } from './accounts.ts';
import type { Account, Registry } from './accounts.ts';
import type { Groups } from './groups.ts';
import type { MediaStore } from './media.ts';
import { beBytes, bytes as nodeBytes, child, childBytes, childrenOf, node, uintBE, unixNow } from './nodes.ts';
import type { MessageRecord, Recipient, Relay } from './relay.ts';
import { SignalPeer } from './signal-peer.ts';
import { encryptPollVote } from './poll.ts';
import type { BinaryNode, ReceiptType } from './types.ts';

export interface ReceivedMessage {
  readonly id: string;
  /** Sender device jid (PN form, with device). */
  readonly from: string;
  /** Chat: the sender's account jid, or the destination for copies of this account's own sends. */
  readonly chat: string;
  /** A copy of a message one of this account's companions sent (deviceSentMessage). */
  readonly fromMe: boolean;
  readonly pushName: string | undefined;
  readonly message: proto.IMessage | undefined;
  /** Decryption error, if any. */
  readonly error: string | undefined;
  readonly timestamp: number;
  /** Receipt types this phone sent back for it. */
  readonly receiptsSent: string[];
  /** Group messages: the group jid (also `chat`); `from` is the sending device. */
  readonly group?: string;
}

/** A `w:gp2` notification a phone got (a change in one of its groups). */
export interface GroupNotice {
  readonly group: string;
  /** The child tag: create, add, remove, promote, demote, subject, description, announcement, locked, ... */
  readonly type: string;
  /** Who made the change. */
  readonly actor: string | undefined;
  /** Participant jids the change is about (add/remove/promote/demote, join requests). */
  readonly participants: string[];
  readonly attrs: Record<string, string>;
  readonly at: number;
}

export interface SentMessage {
  readonly id: string;
  readonly to: string;
  readonly message: proto.IMessage;
  readonly timestamp: number;
  status: 'sent' | ReceiptType;
  readonly receipts: Array<{ type: ReceiptType; from: string; at: number }>;
}

export interface PhonePresence {
  readonly from: string;
  readonly type: string;
  readonly at: number;
}

export interface PhoneDeps {
  readonly registry: Registry;
  readonly relay: Relay;
  readonly groups: Groups;
  readonly media: MediaStore;
  readonly logger: Logger;
  /** Send a delivery receipt automatically for each message received (default true). */
  readonly autoDeliveryReceipt: boolean;
}

/** How many presence/chat-state records a simulated phone keeps (`presences()`): the newest. */
const PRESENCE_LOG_MAX = 1000;

const STATUS_ORDER: Record<SentMessage['status'], number> = { sent: 0, delivered: 1, read: 2, played: 3 };

export const messageTypeOf = (m: proto.IMessage): string => {
  if (m.reactionMessage) return 'reaction';
  if (m.pollCreationMessage || m.pollCreationMessageV2 || m.pollCreationMessageV3 || m.pollUpdateMessage) return 'poll';
  if (m.imageMessage || m.videoMessage || m.audioMessage || m.documentMessage || m.stickerMessage || m.contactMessage || m.locationMessage || m.contactsArrayMessage) return 'media';
  return 'text';
};

const mediaTypeOf = (m: proto.IMessage): string | undefined => {
  if (m.imageMessage) return 'image';
  if (m.videoMessage) return m.videoMessage.gifPlayback ? 'gif' : 'video';
  if (m.audioMessage) return m.audioMessage.ptt ? 'ptt' : 'audio';
  if (m.documentMessage) return 'document';
  if (m.stickerMessage) return 'sticker';
  if (m.contactMessage) return 'vcard';
  return undefined;
};

/** Normalizes `+1 555 0001`, `15550001` or a jid to a jid. */
export const toJid = (to: string): string => (to.includes('@') ? to : `${to.replace(/[^0-9]/g, '')}@s.whatsapp.net`);

export class SimPhone {
  readonly account: Account;
  readonly device: Device;
  /** Created on first use: its signed prekey costs an XEdDSA signature, and bulk-provisioned phones never talk. */
  private peerInstance: SignalPeer | undefined;
  private readonly deps: PhoneDeps;
  private readonly inbox: ReceivedMessage[] = [];
  private readonly outbox = new Map<string, SentMessage>();
  private readonly presenceLog: PhonePresence[] = [];
  private readonly groupLog: GroupNotice[] = [];
  /** `${group}|${device jid}`: devices this phone gave its sender key for the group. */
  private readonly senderKeySent = new Set<string>();
  private readonly events = new EventEmitter();

  constructor(account: Account, deps: PhoneDeps) {
    this.account = account;
    this.deps = deps;
    this.device = new Device(account, 0, 'phone', {
      identityKey: account.accountKey.public,
      registrationId: 0,
      signedPreKey: { id: 0, public: Buffer.alloc(0), signature: Buffer.alloc(0) },
    }, 0);
    // The phone's Signal keys live in its peer: bundles come from there (bundleSource), so these two fields are
    // read through the peer too, creating it on first read.
    Object.defineProperties(this.device, {
      registrationId: { get: () => this.peer.registrationId, set: () => undefined },
      signedPreKey: {
        get: () => {
          const spk = this.peer.creds.signedPreKey;
          return { id: spk.keyId, public: Buffer.from(spk.keyPair.public), signature: Buffer.from(spk.signature) };
        },
        set: () => undefined,
      },
    });
    this.device.bundleSource = () => this.peer.bundle();
    account.devices.set(0, this.device);
    this.events.setMaxListeners(0);
  }

  private get peer(): SignalPeer {
    return (this.peerInstance ??= new SignalPeer(this.account.accountKey, this.deps.logger));
  }

  get number(): string {
    return this.account.number;
  }

  get jid(): string {
    return this.account.pnJid;
  }

  get lidJid(): string {
    return this.account.lidJid;
  }

  get name(): string {
    return this.account.name;
  }

  /** Linked companion devices of this account (the gateway's sessions). */
  linkedDevices(): Device[] {
    return this.account.activeDevices().filter(d => d.kind === 'companion');
  }

  received(): readonly ReceivedMessage[] {
    return this.inbox;
  }

  sent(): readonly SentMessage[] {
    return [...this.outbox.values()];
  }

  sentMessage(id: string): SentMessage | undefined {
    return this.outbox.get(id);
  }

  presences(): readonly PhonePresence[] {
    return this.presenceLog;
  }

  sendText(to: string, text: string): Promise<SentMessage> {
    return this.sendMessage(to, { conversation: text });
  }

  /** `w:gp2` notifications this phone received. */
  groupNotices(): readonly GroupNotice[] {
    return this.groupLog;
  }

  /** Resolves with the first group notification matching the predicate (already received ones count). */
  waitForGroupNotice(pred: (n: GroupNotice) => boolean, timeoutMs = 15_000): Promise<GroupNotice> {
    return this.waitFor('group', () => this.groupLog.find(pred), timeoutMs, 'group notification');
  }

  /**
   * Sends to a group as a WhatsApp phone does: one `skmsg` encrypted with this phone's sender key for the group,
   * plus, for each member device that does not have that key yet, the key's distribution message Signal-encrypted
   * for that device. Refused (throws) when this phone may not post (not a member, announcement mode).
   */
  async sendGroupMessage(groupJid: string, message: proto.IMessage, opts: { id?: string } = {}): Promise<SentMessage> {
    const g = this.deps.groups.get(groupJid);
    if (!g) throw new Error(`unknown group ${groupJid}`);
    this.deps.groups.checkPost(g, this.account);
    const id = opts.id ?? generateMessageIDV2(this.jid);
    const mediatype = mediaTypeOf(message);
    const perDevice = new Map<Device, BinaryNode[]>();
    const members = this.deps.groups.members(g);
    const skmsg = await this.peer.serial(async () => {
      const { ciphertext, senderKeyDistributionMessage } = await this.peer.repo.encryptGroupMessage({ group: g.jid, meId: this.jid, data: encodeWAMessage(message) });
      const skdm = encodeWAMessage({ senderKeyDistributionMessage: { groupId: g.jid, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage } });
      for (const acc of members) {
        for (const d of acc.activeDevices()) {
          if (d === this.device || this.senderKeySent.has(`${g.jid}|${d.pnJid}`)) continue;
          perDevice.set(d, [await this.encFor(d, skdm, mediatype)]);
          this.senderKeySent.add(`${g.jid}|${d.pnJid}`);
        }
      }
      return node('enc', { v: '2', type: 'skmsg', mediatype }, ciphertext);
    });
    const sent: SentMessage = { id, to: g.jid, message, timestamp: Date.now(), status: 'sent', receipts: [] };
    this.outbox.set(id, sent);
    this.deps.relay.relayGroup(this.device, { id, groupJid: g.jid, type: messageTypeOf(message), t: unixNow() }, members, perDevice, [skmsg]);
    return sent;
  }

  sendGroupText(groupJid: string, text: string): Promise<SentMessage> {
    return this.sendGroupMessage(groupJid, { conversation: text });
  }

  /** Builds content the way a Baileys client would and sends it to a group. */
  async sendGroupContent(groupJid: string, content: AnyMessageContent): Promise<SentMessage> {
    const message = await generateWAMessageContent(content, {
      upload: this.deps.media.upload,
      logger: this.deps.logger,
    } as Parameters<typeof generateWAMessageContent>[1]);
    return this.sendGroupMessage(groupJid, message);
  }

  /** Votes on a poll in a group (see votePoll); `poll.creatorJid` is the bare jid of the poll's author. */
  voteGroupPoll(groupJid: string, poll: { id: string; creatorJid: string; message: proto.IMessage }, options: readonly string[]): Promise<SentMessage> {
    const secret = poll.message.messageContextInfo?.messageSecret;
    if (!secret || secret.length === 0) throw new Error(`poll ${poll.id} has no messageSecret`);
    const vote = encryptPollVote({ pollId: poll.id, secret, creatorJid: poll.creatorJid, voterJid: this.jid, options });
    const fromMe = poll.creatorJid === this.jid;
    const key = fromMe ? { remoteJid: groupJid, fromMe, id: poll.id } : { remoteJid: groupJid, fromMe, id: poll.id, participant: poll.creatorJid };
    return this.sendGroupMessage(groupJid, { pollUpdateMessage: { pollCreationMessageKey: key, vote, senderTimestampMs: Date.now() } });
  }

  /** Creates a group owned by this phone (members: phone numbers or jids); they are notified. Returns its jid. */
  createGroup(subject: string, members: readonly string[]): string {
    const accounts = members.map(m => {
      const r = this.deps.registry.resolve(toJid(m));
      if (!r) throw new Error(`unknown member ${m}`);
      return r.account;
    });
    return this.deps.groups.create(this.account, subject, accounts).jid;
  }

  /** Adds, removes, promotes or demotes members of a group as this phone (it must be allowed to). */
  groupParticipants(groupJid: string, action: 'add' | 'remove' | 'promote' | 'demote', members: readonly string[]): Array<{ jid: string; error?: string }> {
    const g = this.deps.groups.get(groupJid);
    if (!g) throw new Error(`unknown group ${groupJid}`);
    return this.deps.groups.participantsAction(g, this.account, action, members.map(toJid));
  }

  /** Changes the subject of a group as this phone. */
  setGroupSubject(groupJid: string, subject: string): void {
    const g = this.deps.groups.get(groupJid);
    if (!g) throw new Error(`unknown group ${groupJid}`);
    this.deps.groups.setSubject(g, this.account, subject);
  }

  /** Joins a group by its invite code; `pending` when an admin must approve first. */
  joinGroupByCode(code: string): { group: string; pending: boolean } {
    const r = this.deps.groups.joinByCode(this.account, code);
    return { group: r.group.jid, pending: r.pending };
  }

  /** Called by the groups: a `w:gp2` notification for this phone. */
  onGroupNotification(stanza: BinaryNode): void {
    const content = Array.isArray(stanza.content) ? stanza.content[0] : undefined;
    if (!content) return;
    const participants = childrenOf(content, 'participant').map(p => p.attrs.jid ?? '');
    const type = stanza.attrs.type === 'picture' ? (content.tag === 'set' ? 'picture' : 'picture-removed') : content.tag;
    this.groupLog.push({ group: stanza.attrs.from ?? '', type, actor: stanza.attrs.participant, participants, attrs: content.attrs, at: Date.now() });
    this.events.emit('group');
  }

  /** Builds content the way a Baileys client would (media is encrypted and stored in the simulator). */
  async sendContent(to: string, content: AnyMessageContent): Promise<SentMessage> {
    const message = await generateWAMessageContent(content, {
      upload: this.deps.media.upload,
      logger: this.deps.logger,
    } as Parameters<typeof generateWAMessageContent>[1]);
    return this.sendMessage(to, message);
  }

  /** Sends a real proto.Message, Signal-encrypted for every device of the recipient (and DSM copies for ours). */
  async sendMessage(to: string, message: proto.IMessage, opts: { id?: string } = {}): Promise<SentMessage> {
    const target = this.deps.registry.resolve(toJid(to));
    if (!target) throw new Error(`unknown recipient ${to}`);
    const chatJid = target.lid ? target.account.lidJid : target.account.pnJid;
    const id = opts.id ?? generateMessageIDV2(this.jid);
    const mediatype = mediaTypeOf(message);
    const recipients: Recipient[] = [];
    await this.peer.serial(async () => {
      const plain = encodeWAMessage(message);
      for (const d of target.account.activeDevices()) {
        if (d === this.device) continue;
        recipients.push({ device: d, content: [await this.encFor(d, plain, mediatype)] });
      }
      if (target.account !== this.account) {
        const dsm = encodeWAMessage({ deviceSentMessage: { destinationJid: chatJid, message } });
        for (const d of this.linkedDevices()) recipients.push({ device: d, content: [await this.encFor(d, dsm, mediatype)] });
      }
    });
    const sent: SentMessage = { id, to: chatJid, message, timestamp: Date.now(), status: 'sent', receipts: [] };
    this.outbox.set(id, sent);
    this.deps.relay.relay(this.device, { id, chatJid, lid: target.lid, type: messageTypeOf(message), recipient: target.account, t: unixNow() }, recipients);
    return sent;
  }

  /**
   * Votes on a poll in the chat with `to` (a `pollUpdateMessage`, encrypted as WhatsApp clients do: poll.ts).
   * `poll` is the poll creation message this phone sent or received (its messageSecret is needed) and the bare
   * JID of its creator; `options` are option names ([] takes the vote back).
   */
  votePoll(to: string, poll: { id: string; creatorJid: string; message: proto.IMessage }, options: readonly string[]): Promise<SentMessage> {
    const secret = poll.message.messageContextInfo?.messageSecret;
    if (!secret || secret.length === 0) throw new Error(`poll ${poll.id} has no messageSecret`);
    const chat = this.deps.registry.resolve(toJid(to));
    if (!chat) throw new Error(`unknown recipient ${to}`);
    const vote = encryptPollVote({ pollId: poll.id, secret, creatorJid: poll.creatorJid, voterJid: this.jid, options });
    const key = { remoteJid: chat.account.pnJid, fromMe: poll.creatorJid === this.jid, id: poll.id };
    return this.sendMessage(to, { pollUpdateMessage: { pollCreationMessageKey: key, vote, senderTimestampMs: Date.now() } });
  }

  /**
   * Sends a message this phone sent before again, with the same id (a phone's retry after a lost ack): newly
   * encrypted, so the recipient decrypts it and sees a duplicate id. The receipts start over.
   */
  resend(id: string): Promise<SentMessage> {
    const prev = this.outbox.get(id);
    if (!prev) throw new Error(`phone ${this.number}: no sent message ${id} to resend`);
    return this.sendMessage(prev.to, prev.message, { id });
  }

  private async encFor(d: Device, plain: Uint8Array, mediatype: string | undefined): Promise<BinaryNode> {
    if (!(await this.peer.hasSession(d.pnJid))) await this.peer.injectSession(d.pnJid, d.takeBundle());
    const { type, ciphertext } = await this.peer.encrypt(d.pnJid, plain);
    return node('enc', { v: '2', type, mediatype }, ciphertext);
  }

  /** Encrypts the v7 history-sync bootstrap (an empty inline INITIAL_BOOTSTRAP) for a newly linked device. */
  async prepareBootstrap(companion: Device): Promise<void> {
    const payload = deflateSync(proto.HistorySync.encode({ syncType: proto.HistorySync.HistorySyncType.INITIAL_BOOTSTRAP, conversations: [], progress: 100 }).finish());
    const msg: proto.IMessage = {
      protocolMessage: {
        type: proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION,
        historySyncNotification: {
          syncType: proto.HistorySync.HistorySyncType.INITIAL_BOOTSTRAP,
          initialHistBootstrapInlinePayload: payload,
          chunkOrder: 0,
          progress: 100,
        },
      },
    };
    const id = generateMessageIDV2(this.jid);
    const enc = await this.peer.serial(() => this.encFor(companion, encodeWAMessage(msg), undefined));
    companion.bootstrap = {
      id,
      node: node('message', { from: this.jid, id, t: unixNow(), type: 'text', category: 'peer', notify: this.name }, [enc]),
    };
  }

  /** Sends read receipts for received messages (to their senders). */
  markRead(ids: string | readonly string[]): void {
    this.receipt(typeof ids === 'string' ? [ids] : ids, 'read');
  }

  markPlayed(ids: string | readonly string[]): void {
    this.receipt(typeof ids === 'string' ? [ids] : ids, 'played');
  }

  private receipt(ids: readonly string[], type: string): void {
    for (const id of ids) this.inbox.find(m => m.id === id)?.receiptsSent.push(type);
    this.deps.relay.receiptFrom(this.device, ids, type);
  }

  /** Decrypts the media of a received (or sent) media message from the simulator's store. */
  downloadMedia(message: proto.IMessage): Promise<Buffer> {
    return this.deps.media.decryptFromMessage(message);
  }

  /** Resolves with the first received message matching the predicate (already received ones count). */
  waitForMessage(pred: (m: ReceivedMessage) => boolean, timeoutMs = 15_000): Promise<ReceivedMessage> {
    return this.waitFor('message', () => this.inbox.find(pred), timeoutMs, 'message');
  }

  /** Resolves once a message this phone sent reached at least the given status. */
  waitForStatus(id: string, status: ReceiptType, timeoutMs = 15_000): Promise<SentMessage> {
    return this.waitFor('receipt', () => {
      const s = this.outbox.get(id);
      return s && STATUS_ORDER[s.status] >= STATUS_ORDER[status] ? s : undefined;
    }, timeoutMs, `${status} receipt for ${id}`);
  }

  private waitFor<T>(event: string, check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const onEvent = (): void => {
        const v = check();
        if (v === undefined) return;
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`phone ${this.number}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off(event, onEvent);
      };
      this.events.on(event, onEvent);
    });
  }

  /** Called by the relay: a stanza addressed to this phone. */
  onStanza(stanza: BinaryNode, sender: Device): void {
    void this.peer.serial(async () => {
      const id = stanza.attrs.id ?? '';
      let message: proto.IMessage | undefined;
      let error: string | undefined;
      const group = stanza.attrs.from?.endsWith('@g.us') ? stanza.attrs.from : undefined;
      const author = stanza.attrs.participant ?? sender.pnJid;
      for (const enc of childrenOf(stanza, 'enc')) {
        const type = enc.attrs.type;
        const ct = nodeBytes(enc);
        if (!ct || (type !== 'pkmsg' && type !== 'msg' && type !== 'skmsg') || (type === 'skmsg' && !group)) {
          error = `unsupported enc type ${type ?? '?'}`;
          continue;
        }
        try {
          const plain = type === 'skmsg' && group ? await this.peer.repo.decryptGroupMessage({ group, authorJid: author, msg: ct }) : await this.peer.decrypt(sender.pnJid, type as 'pkmsg' | 'msg', ct);
          const decoded = proto.Message.decode(unpadRandomMax16(plain));
          const skdm = decoded.senderKeyDistributionMessage;
          if (skdm?.groupId && skdm.axolotlSenderKeyDistributionMessage) {
            await this.peer.repo.processSenderKeyDistributionMessage({ item: skdm, authorJid: author });
          }
          // the distribution message travels beside the content; keep the content
          if (!skdm || !message) message = message ? Object.assign(message, decoded) : decoded;
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
        }
      }
      const fromMe = sender.account === this.account;
      let chat = group ?? sender.account.pnJid;
      if (message?.deviceSentMessage) {
        chat = message.deviceSentMessage.destinationJid ?? chat;
        message = message.deviceSentMessage.message ?? undefined;
      }
      const rec: ReceivedMessage = { id, from: sender.pnJid, chat, fromMe, pushName: stanza.attrs.notify, message, error, timestamp: Date.now(), receiptsSent: [], ...(group ? { group } : {}) };
      this.inbox.push(rec);
      if (error) {
        this.deps.logger.warn({ id, from: sender.pnJid, error }, 'phone failed to decrypt');
        if (sender.kind === 'companion') this.sendRetry(id, stanza.attrs.t ?? unixNow());
      }
      if (!error) {
        if (fromMe) this.deps.relay.receiptFrom(this.device, [id], 'sender');
        else if (this.deps.autoDeliveryReceipt) {
          rec.receiptsSent.push('delivered');
          this.deps.relay.receiptFrom(this.device, [id], '');
        }
      }
      this.events.emit('message');
    });
  }

  /** Called by the relay: a receipt for a message this phone sent. */
  onReceipt(record: MessageRecord, type: ReceiptType, from: Device): void {
    const s = this.outbox.get(record.id);
    if (!s) return;
    s.receipts.push({ type, from: from.pnJid, at: Date.now() });
    if (STATUS_ORDER[type] > STATUS_ORDER[s.status]) s.status = type;
    this.events.emit('receipt');
  }

  /**
   * A retry receipt from a device that could not decrypt a message this phone sent (its session state is
   * behind or gone, e.g. a gateway shard killed after its ratchet advanced): like a real phone, encrypt the
   * same message again for that device alone and send it with the same id. A receipt carrying `<keys>` (the
   * device's fresh prekey bundle, sent from the second retry on) replaces the session first.
   */
  onRetry(record: MessageRecord, from: Device, content: BinaryNode[]): void {
    const sent = this.outbox.get(record.id);
    if (!sent) return;
    const retry = content.find(c => c.tag === 'retry');
    const keys = content.find(c => c.tag === 'keys');
    void this.peer
      .serial(async () => {
        if (keys) {
          const skey = child(keys, 'skey');
          const key = child(keys, 'key');
          const identity = childBytes(keys, 'identity');
          const skeyId = childBytes(skey, 'id');
          const skeyValue = childBytes(skey, 'value');
          const signature = childBytes(skey, 'signature');
          if (identity && skeyId && skeyValue && signature) {
            const keyId = childBytes(key, 'id');
            const keyValue = childBytes(key, 'value');
            await this.peer.injectSession(from.pnJid, {
              registrationId: uintBE(nodeBytes(content.find(c => c.tag === 'registration'))),
              identityKey: identity,
              signedPreKey: { id: uintBE(skeyId), public: skeyValue, signature },
              preKey: keyId && keyValue ? { id: uintBE(keyId), public: keyValue } : undefined,
            });
          }
        }
        const own = from.account === this.account;
        const plain = own ? encodeWAMessage({ deviceSentMessage: { destinationJid: sent.to, message: sent.message } }) : encodeWAMessage(sent.message);
        return this.encFor(from, plain, mediaTypeOf(sent.message));
      })
      .then(enc => {
        const target = this.deps.registry.resolve(sent.to);
        if (!target) return;
        this.retriesAnswered++;
        this.deps.logger.debug({ id: record.id, to: from.pnJid, count: retry?.attrs.count, keys: keys !== undefined }, 'phone re-sends a message after a retry receipt');
        this.deps.relay.relay(
          this.device,
          { id: record.id, chatJid: sent.to, lid: target.lid, type: messageTypeOf(sent.message), recipient: target.account, t: unixNow() },
          [{ device: from, content: [enc] }],
        );
      })
      .catch((err: unknown) => this.deps.logger.warn({ id: record.id, err }, 'phone could not answer a retry receipt'));
  }

  /** Retry receipts this phone answered by encrypting a message again. */
  retriesAnswered = 0;

  /**
   * While true, the retry receipts this phone would send for messages it could not decrypt are held back
   * (`releaseRetries` sends them): lets a test restart the sender first, so the re-send must come from the
   * sender's store (Baileys' `getMessage`) rather than its in-memory cache of recent messages.
   */
  holdRetries = false;
  private readonly heldRetries: Array<() => void> = [];
  private readonly retryCounts = new Map<string, number>();

  /** Sends the held retry receipts; returns how many. */
  releaseRetries(): number {
    const held = this.heldRetries.splice(0);
    for (const send of held) send();
    return held.length;
  }

  /** Forgets the sender keys of a group's members: their next group message fails to decrypt and gets a retry receipt. */
  forgetGroupSenderKeys(groupJid: string): Promise<number> {
    return this.peer.serial(() => this.peer.deleteSenderKeys(groupJid));
  }

  /** Forgets the Signal session with a device: its next message fails to decrypt and gets a retry receipt. */
  forgetSession(jid: string): Promise<void> {
    return this.peer.serial(() => this.peer.deleteSession(jid));
  }

  /** A retry receipt for a message from a companion that failed to decrypt, as WhatsApp phones send. */
  private sendRetry(id: string, t: string): void {
    const count = (this.retryCounts.get(id) ?? 0) + 1;
    this.retryCounts.set(id, count);
    const send = (): void =>
      this.deps.relay.receiptFrom(this.device, [id], 'retry', [
        node('retry', { count: String(count), id, t, v: '1' }),
        node('registration', {}, beBytes(this.peer.registrationId, 4)),
      ]);
    if (this.holdRetries) this.heldRetries.push(send);
    else send();
  }

  onPresence(from: string, type: string): void {
    // A test's view of what the phone saw, not a store: the newest PRESENCE_LOG_MAX only.
    if (this.presenceLog.length >= PRESENCE_LOG_MAX) this.presenceLog.splice(0, this.presenceLog.length - PRESENCE_LOG_MAX + 1);
    this.presenceLog.push({ from, type, at: Date.now() });
  }
}
