// Accounts (a phone number, a LID, a name, an account key) and their devices: device 0 is the simulated
// phone, devices >= 1 are linked companions (the gateway's Baileys sessions).
import { randomInt } from 'node:crypto';
import { Curve, proto } from '@whiskeysockets/baileys';
import type { Connection } from './connection.ts';
import { newKeyPair } from './keys.ts';
import type { BinaryNode, KeyPair, PreKeyBundle } from './types.ts';

export interface PendingStanza {
  /** Ack key: `${class}:${id}` (class: message | receipt | notification). */
  readonly key: string;
  /** Builds the stanza; offline=true on redelivery at login. */
  readonly build: (offline: boolean) => BinaryNode;
  /** Called once the device acknowledged it (its receipt / ack arrived). */
  readonly onAck?: (ackNode: BinaryNode) => void;
  deliveries: number;
}

export class Device {
  readonly account: Account;
  readonly id: number;
  readonly kind: 'phone' | 'companion';
  noiseKey: Buffer | undefined;
  identityKey: Buffer;
  registrationId: number;
  signedPreKey: { id: number; public: Buffer; signature: Buffer };
  /** One-time prekeys uploaded by the client and not handed out yet. */
  preKeys: Array<{ id: number; public: Buffer }> = [];
  keyIndex: number;
  platform = 'unknown';
  removed = false;
  linkedAt = Date.now();
  /** Stanzas delivered (or to deliver) and not yet acknowledged, in order. */
  readonly pending = new Map<string, PendingStanza>();
  /** Authenticated, open connections (more than one = a violation the counters record). */
  readonly conns = new Set<Connection>();
  /** v7 history-sync bootstrap message still to deliver after the offline marker (until acked). */
  bootstrap: { id: string; node: BinaryNode } | undefined;
  /** Set by simulated phones to hand out their own bundles. */
  bundleSource: (() => PreKeyBundle) | undefined;

  constructor(account: Account, id: number, kind: 'phone' | 'companion', keys: { identityKey: Buffer; registrationId: number; signedPreKey: { id: number; public: Buffer; signature: Buffer } }, keyIndex: number) {
    this.account = account;
    this.id = id;
    this.kind = kind;
    this.identityKey = keys.identityKey;
    this.registrationId = keys.registrationId;
    this.signedPreKey = keys.signedPreKey;
    this.keyIndex = keyIndex;
  }

  get pnJid(): string {
    return this.id ? `${this.account.number}:${this.id}@s.whatsapp.net` : `${this.account.number}@s.whatsapp.net`;
  }

  get lidJid(): string {
    return this.id ? `${this.account.lid}:${this.id}@lid` : `${this.account.lid}@lid`;
  }

  get online(): boolean {
    return this.conns.size > 0;
  }

  /** Hands out a bundle; a companion's one-time prekey is consumed (as the real server does). */
  takeBundle(): PreKeyBundle {
    if (this.bundleSource) return this.bundleSource();
    return {
      registrationId: this.registrationId,
      identityKey: this.identityKey,
      signedPreKey: this.signedPreKey,
      preKey: this.preKeys.shift(),
    };
  }
}

export class Account {
  readonly number: string;
  readonly lid: string;
  name: string;
  /** The account (ADV) signing key; also the phone's Signal identity key. */
  readonly accountKey: KeyPair;
  readonly rawId: number;
  readonly devices = new Map<number, Device>();
  private nextDeviceId = 2;
  private nextKeyIndex = 1;
  private keyIndexCache: { at: number; bytes: Buffer } | undefined;

  constructor(number: string, lid: string, name: string, accountKey: KeyPair) {
    this.number = number;
    this.lid = lid;
    this.name = name;
    this.accountKey = accountKey;
    this.rawId = randomInt(1, 2 ** 31);
  }

  get pnJid(): string {
    return `${this.number}@s.whatsapp.net`;
  }

  get lidJid(): string {
    return `${this.lid}@lid`;
  }

  allocateDevice(): { id: number; keyIndex: number } {
    this.keyIndexCache = undefined;
    return { id: this.nextDeviceId++, keyIndex: this.nextKeyIndex++ };
  }

  /** Devices a sender must encrypt for (not removed), device 0 first. */
  activeDevices(): Device[] {
    return [...this.devices.values()].filter(d => !d.removed).sort((a, b) => a.id - b.id);
  }

  get online(): boolean {
    for (const d of this.devices.values()) if (d.online) return true;
    return false;
  }

  /** ADVSignedKeyIndexList for usync `<key-index-list>`, signed with the account key. */
  signedKeyIndexList(): { ts: number; bytes: Buffer } {
    if (!this.keyIndexCache) {
      const at = Math.floor(Date.now() / 1000);
      const details = proto.ADVKeyIndexList.encode({
        rawId: this.rawId,
        timestamp: at,
        currentIndex: this.nextKeyIndex - 1,
        validIndexes: this.activeDevices().filter(d => d.id).map(d => d.keyIndex),
      }).finish();
      const bytes = Buffer.from(proto.ADVSignedKeyIndexList.encode({ details, accountSignature: Curve.sign(this.accountKey.private, details) }).finish());
      this.keyIndexCache = { at, bytes };
    }
    return { ts: this.keyIndexCache.at, bytes: this.keyIndexCache.bytes };
  }

  invalidateKeyIndex(): void {
    this.keyIndexCache = undefined;
  }
}

export interface ResolvedJid {
  readonly account: Account;
  readonly device: number | undefined;
  readonly lid: boolean;
}

export class Registry {
  private readonly byNumber = new Map<string, Account>();
  private readonly byLid = new Map<string, Account>();
  private nextNumber = 15550000001;
  private nextLid = 100000000000001;

  createAccount(opts: { number?: string; name?: string; lid?: string }): Account {
    let number = opts.number?.replace(/[^0-9]/g, '');
    if (!number) {
      do number = String(this.nextNumber++);
      while (this.byNumber.has(number));
    }
    if (this.byNumber.has(number)) throw new Error(`account ${number} already exists`);
    let lid = opts.lid?.replace(/[^0-9]/g, '');
    if (!lid) {
      do lid = String(this.nextLid++);
      while (this.byLid.has(lid));
    }
    const acc = new Account(number, lid, opts.name ?? `Phone ${number}`, newKeyPair());
    this.byNumber.set(number, acc);
    this.byLid.set(lid, acc);
    return acc;
  }

  byPhone(number: string): Account | undefined {
    return this.byNumber.get(number.replace(/[^0-9]/g, ''));
  }

  accounts(): Account[] {
    return [...this.byNumber.values()];
  }

  /** Resolves `123@s.whatsapp.net`, `123:4@s.whatsapp.net`, `456:4@lid`, or a bare number. */
  resolve(jid: string): ResolvedJid | undefined {
    const at = jid.indexOf('@');
    const server = at >= 0 ? jid.slice(at + 1) : 's.whatsapp.net';
    const userPart = at >= 0 ? jid.slice(0, at) : jid;
    const [userAgent = '', dev] = userPart.split(':');
    const user = userAgent.split('_')[0] ?? '';
    const device = dev === undefined ? undefined : Number(dev);
    if (server === 'lid') {
      const account = this.byLid.get(user);
      return account ? { account, device, lid: true } : undefined;
    }
    if (server !== 's.whatsapp.net' && server !== 'c.us') return undefined;
    const account = this.byNumber.get(user.replace(/^\+/, ''));
    return account ? { account, device, lid: false } : undefined;
  }

  device(jid: string): Device | undefined {
    const r = this.resolve(jid);
    if (!r) return undefined;
    const d = r.account.devices.get(r.device ?? 0);
    return d && !d.removed ? d : undefined;
  }
}
