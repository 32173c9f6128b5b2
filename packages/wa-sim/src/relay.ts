// Message relay: server ack, fan-out of encrypted payloads to every addressed device, the per-device queue of
// unacknowledged stanzas (delivered again, marked offline, at the next login), and receipts back to senders.
import type { Logger } from 'pino';
import type { Account, Device, PendingStanza, Registry } from './accounts.ts';
import type { Connection } from './connection.ts';
import type { Faults } from './faults.ts';
import { GroupIqError } from './groups.ts';
import type { Groups } from './groups.ts';
import { child, childrenOf, node, unixNow } from './nodes.ts';
import type { Stats } from './stats.ts';
import type { BinaryNode, ReceiptType } from './types.ts';

/** What the relay remembers about a message, to route its receipts. */
export interface MessageRecord {
  readonly id: string;
  readonly sender: Device;
  /** The jid the sender addressed (user level); receipts reach the sender `from` it. */
  readonly chatJid: string;
  readonly recipient: Account;
  readonly forwarded: Set<ReceiptType>;
  /** A group message: receipts reach the sender `from` the group with the reader as `participant`. */
  readonly group?: boolean;
}

/** One device's payload of an outgoing message. */
export interface Recipient {
  readonly device: Device;
  readonly content: BinaryNode[];
}

export interface PhoneSink {
  /** A stanza addressed to a simulated phone (device 0). */
  deliverToPhone(device: Device, stanza: BinaryNode, sender: Device): void;
  /** A receipt for a message the phone sent. */
  receiptToPhone(device: Device, record: MessageRecord, type: ReceiptType, from: Device): void;
  /** A retry receipt (`<receipt type="retry">`) for a message the phone sent: `from` could not decrypt it. */
  retryToPhone(device: Device, record: MessageRecord, from: Device, content: BinaryNode[]): void;
}

export interface RelayOptions {
  readonly registry: Registry;
  readonly stats: Stats;
  readonly faults: Faults;
  readonly logger: Logger;
  readonly receiptDelayMs: () => number;
  readonly phones: PhoneSink;
  /** Records kept for receipt routing (oldest dropped beyond this). */
  readonly maxRecords?: number;
}

const RECEIPT_TYPES: Record<string, ReceiptType | undefined> = {
  '': 'delivered',
  inactive: 'delivered',
  read: 'read',
  'read-self': 'read',
  played: 'played',
  'played-self': 'played',
};

export class Relay {
  private readonly o: RelayOptions;
  private readonly records = new Map<string, MessageRecord>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly maxRecords: number;
  /** Set by the simulator once its groups exist (messages to `@g.us`). */
  groups: Groups | undefined;

  constructor(o: RelayOptions) {
    this.o = o;
    this.maxRecords = o.maxRecords ?? 200_000;
  }

  record(id: string): MessageRecord | undefined {
    return this.records.get(id);
  }

  /** Queues a stanza for a device and sends it to its live sockets; kept until acknowledged. */
  deliver(dev: Device, p: PendingStanza): void {
    dev.pending.set(p.key, p);
    for (const conn of dev.conns) {
      conn.send(p.build(false));
      p.deliveries++;
    }
  }

  /** At login: everything not yet acknowledged, marked offline. Returns how many. */
  flushOffline(dev: Device, conn: Connection): number {
    let n = 0;
    for (const p of dev.pending.values()) {
      conn.send(p.build(true));
      p.deliveries++;
      n++;
    }
    this.o.stats.offlineDelivered += n;
    return n;
  }

  /** `<message>` from a logged-in client. */
  onClientMessage(conn: Connection, msg: BinaryNode): void {
    const sender = conn.device;
    if (!sender) return;
    const { id, to } = msg.attrs;
    this.o.stats.messagesIn++;
    if (!id || !to) return;
    const t = unixNow();
    const refused = this.o.faults.sendError(sender.pnJid, sender.account.number);
    if (refused !== undefined) {
      this.o.stats.messagesRejected++;
      conn.send(node('ack', { class: 'message', id, from: to, t, error: String(refused) }));
      return;
    }
    if (to.endsWith('@g.us')) {
      this.onClientGroupMessage(conn, sender, msg, id, to, t);
      return;
    }
    const target = this.o.registry.resolve(to);
    if (!target) {
      this.o.stats.messagesRejected++;
      // groups, newsletters, status and unknown users are not simulated
      conn.send(node('ack', { class: 'message', id, from: to, t, error: to.endsWith('@g.us') ? '501' : '404' }));
      return;
    }
    const recipients: Recipient[] = [];
    const participants = child(msg, 'participants');
    if (participants) {
      for (const p of childrenOf(participants, 'to')) {
        const dev = p.attrs.jid ? this.o.registry.device(p.attrs.jid) : undefined;
        if (dev) recipients.push({ device: dev, content: Array.isArray(p.content) ? p.content : [] });
      }
    } else {
      // a single <enc> addressed to one device (retry resend, peer message to the own phone)
      const dev = target.account.devices.get(target.device ?? 0);
      const encs = childrenOf(msg, 'enc');
      if (dev && !dev.removed && encs.length) recipients.push({ device: dev, content: encs });
    }
    conn.send(node('ack', { class: 'message', id, from: to, t }));
    const extra: BinaryNode[] = [];
    const di = child(msg, 'device-identity');
    if (di) extra.push(di);
    for (const m of childrenOf(msg, 'meta')) extra.push(m);
    const chatJid = target.device === undefined ? to : target.lid ? target.account.lidJid : target.account.pnJid;
    this.relay(sender, { id, chatJid, lid: target.lid, type: msg.attrs.type ?? 'text', edit: msg.attrs.edit, category: msg.attrs.category, recipient: target.account, t }, recipients, extra);
  }

  /**
   * A client's group message: the sender must be a member (and an admin in announcement mode). The `skmsg` goes
   * to every member device, each with the sender-key distribution addressed to it in `<participants>`, if any. A
   * retry resend (`participant` set) goes to that one device only.
   */
  private onClientGroupMessage(conn: Connection, sender: Device, msg: BinaryNode, id: string, to: string, t: string): void {
    const g = this.groups?.get(to);
    try {
      if (!g) throw new GroupIqError(404, 'item-not-found');
      this.groups?.checkPost(g, sender.account);
    } catch (err) {
      this.o.stats.messagesRejected++;
      conn.send(node('ack', { class: 'message', id, from: to, t, error: String(err instanceof GroupIqError ? err.code : 500) }));
      return;
    }
    const perDevice = new Map<Device, BinaryNode[]>();
    for (const p of childrenOf(child(msg, 'participants'), 'to')) {
      const dev = p.attrs.jid ? this.o.registry.device(p.attrs.jid) : undefined;
      if (dev && Array.isArray(p.content)) perDevice.set(dev, p.content);
    }
    const shared = childrenOf(msg, 'enc');
    const only = msg.attrs.participant ? this.o.registry.device(msg.attrs.participant) : undefined;
    conn.send(node('ack', { class: 'message', id, from: to, t }));
    const extra: BinaryNode[] = [];
    const di = child(msg, 'device-identity');
    if (di) extra.push(di);
    const members = only ? [only.account] : (this.groups?.members(g) ?? []);
    this.relayGroup(sender, { id, groupJid: g.jid, type: msg.attrs.type ?? 'text', edit: msg.attrs.edit, t }, members, perDevice, shared, extra, only);
  }

  /** Fans a group message out to every device of `members` but the sender's own. */
  relayGroup(
    sender: Device,
    m: { id: string; groupJid: string; type: string; edit?: string | undefined; t: string },
    members: readonly Account[],
    perDevice: ReadonlyMap<Device, BinaryNode[]>,
    shared: readonly BinaryNode[],
    extra: readonly BinaryNode[] = [],
    only?: Device,
  ): MessageRecord {
    this.o.stats.groupMessages++;
    const record: MessageRecord = { id: m.id, sender, chatJid: m.groupJid, recipient: sender.account, forwarded: new Set(), group: true };
    this.remember(record);
    const attrs: Record<string, string | undefined> = {
      from: m.groupJid,
      participant: sender.pnJid,
      participant_lid: sender.lidJid,
      addressing_mode: 'pn',
      id: m.id,
      t: m.t,
      type: m.type,
      notify: sender.account.name,
      edit: m.edit,
    };
    for (const acc of members) {
      for (const dev of acc.activeDevices()) {
        if (dev === sender || (only && dev !== only)) continue;
        const own = perDevice.get(dev) ?? [];
        const hasPk = own.some(c => c.attrs.type === 'pkmsg');
        const content = [...own, ...shared, ...(hasPk ? extra : [])];
        if (!content.length) continue;
        this.o.stats.messagesRelayed++;
        if (dev.kind === 'phone') {
          this.o.phones.deliverToPhone(dev, node('message', attrs, content), sender);
          continue;
        }
        const frozen = { ...attrs };
        this.deliver(dev, { key: `message:${m.id}`, deliveries: 0, build: offline => node('message', offline ? { ...frozen, offline: '1' } : frozen, content) });
      }
    }
    return record;
  }

  /** Fans one message out; shared by client sends and simulated phones. */
  relay(
    sender: Device,
    m: { id: string; chatJid: string; lid: boolean; type: string; edit?: string | undefined; category?: string | undefined; recipient: Account; t: string },
    recipients: readonly Recipient[],
    extra: readonly BinaryNode[] = [],
  ): MessageRecord {
    const record: MessageRecord = { id: m.id, sender, chatJid: m.chatJid, recipient: m.recipient, forwarded: new Set() };
    this.remember(record);
    const from = m.lid ? sender.lidJid : sender.pnJid;
    for (const r of recipients) {
      const own = r.device.account === sender.account;
      const hasPk = r.content.some(c => c.attrs.type === 'pkmsg');
      const content = hasPk ? [...r.content, ...extra] : [...r.content, ...extra.filter(e => e.tag !== 'device-identity')];
      const attrs: Record<string, string | undefined> = {
        from,
        id: m.id,
        t: m.t,
        type: m.type,
        notify: sender.account.name,
        edit: m.edit,
        category: m.category,
      };
      if (own) attrs.recipient = m.chatJid;
      else if (m.lid) attrs.sender_pn = sender.account.pnJid;
      else attrs.sender_lid = sender.account.lidJid;
      this.o.stats.messagesRelayed++;
      if (r.device.kind === 'phone') {
        this.o.phones.deliverToPhone(r.device, node('message', attrs, content), sender);
        continue;
      }
      const frozen = { ...attrs };
      this.deliver(r.device, {
        key: `message:${m.id}`,
        deliveries: 0,
        build: offline => node('message', offline ? { ...frozen, offline: '1' } : frozen, content),
      });
    }
    return record;
  }

  private remember(r: MessageRecord): void {
    this.records.set(r.id, r);
    if (this.records.size > this.maxRecords) {
      const oldest = this.records.keys().next();
      if (!oldest.done) this.records.delete(oldest.value);
    }
  }

  /** `<receipt>` from a client: acknowledges the message and is forwarded (delayed) to the sender. */
  onClientReceipt(conn: Connection, r: BinaryNode): void {
    const dev = conn.device;
    if (!dev) return;
    const id = r.attrs.id;
    if (!id) return;
    const ids = [id, ...childrenOf(child(r, 'list'), 'item').map(i => i.attrs.id).filter((x): x is string => !!x)];
    conn.send(node('ack', { class: 'receipt', id, from: r.attrs.to, type: r.attrs.type }));
    this.receiptFrom(dev, ids, r.attrs.type ?? '', Array.isArray(r.content) ? r.content : []);
  }

  /** A device (client or simulated phone) acknowledges / reports on messages it received. */
  receiptFrom(dev: Device, ids: readonly string[], type: string, content: BinaryNode[] = []): void {
    this.o.stats.receiptsIn++;
    for (const id of ids) {
      const p = dev.pending.get(`message:${id}`);
      if (p) {
        dev.pending.delete(p.key);
        p.onAck?.(node('receipt', { id, type }));
      }
      if (dev.bootstrap?.id === id) dev.bootstrap = undefined;
      const rec = this.records.get(id);
      if (!rec || rec.sender.account === dev.account) continue;
      if (type === 'retry') {
        this.forwardRetry(rec, dev, content);
        continue;
      }
      const kind = RECEIPT_TYPES[type];
      if (!kind || rec.forwarded.has(kind)) continue;
      rec.forwarded.add(kind);
      this.later(() => this.forwardReceipt(rec, kind, dev));
    }
  }

  private later(fn: () => void): void {
    const delay = this.o.receiptDelayMs();
    if (delay <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, delay);
    this.timers.add(timer);
  }

  private forwardReceipt(rec: MessageRecord, kind: ReceiptType, from: Device): void {
    const t = unixNow();
    const typeAttr = kind === 'delivered' ? undefined : kind;
    for (const dev of rec.sender.account.activeDevices()) {
      this.o.stats.receiptsForwarded++;
      if (dev.kind === 'phone') {
        this.o.phones.receiptToPhone(dev, rec, kind, from);
        continue;
      }
      const attrs = { from: rec.chatJid, participant: rec.group ? from.pnJid : undefined, id: rec.id, t, type: typeAttr };
      this.deliver(dev, {
        key: `receipt:${rec.id}:${typeAttr ?? ''}`,
        deliveries: 0,
        build: offline => node('receipt', offline ? { ...attrs, offline: '1' } : attrs),
      });
    }
  }

  private forwardRetry(rec: MessageRecord, from: Device, content: BinaryNode[]): void {
    const dev = rec.sender;
    if (dev.removed) return;
    if (dev.kind === 'phone') {
      this.o.stats.retriesToPhones++;
      this.o.phones.retryToPhone(dev, rec, from, content);
      return;
    }
    const attrs = rec.group
      ? { from: rec.chatJid, participant: from.pnJid, id: rec.id, t: unixNow(), type: 'retry' }
      : { from: rec.chatJid.endsWith('@lid') ? from.lidJid : from.pnJid, id: rec.id, t: unixNow(), type: 'retry' };
    this.deliver(dev, { key: `receipt:${rec.id}:retry`, deliveries: 0, build: offline => node('receipt', offline ? { ...attrs, offline: '1' } : attrs, content) });
  }

  /** `<ack>` from a client: drops what it acknowledged from its queue. */
  onClientAck(conn: Connection, a: BinaryNode): void {
    const dev = conn.device;
    if (!dev) return;
    const cls = a.attrs.class;
    const id = a.attrs.id;
    if (!cls || !id) return;
    this.o.stats.acksIn++;
    let key = `${cls}:${id}`;
    if (cls === 'receipt') key = `receipt:${id}:${a.attrs.type ?? ''}`;
    if (cls === 'message' && a.attrs.error) this.o.stats.nacksIn++;
    const p = dev.pending.get(key);
    if (p) {
      dev.pending.delete(key);
      p.onAck?.(a);
    }
    if (cls === 'message' && dev.bootstrap?.id === id) dev.bootstrap = undefined;
  }

  pendingCount(): number {
    let n = 0;
    for (const acc of this.o.registry.accounts()) for (const d of acc.devices.values()) n += d.pending.size;
    return n;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
