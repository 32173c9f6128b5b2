// Linking a companion to a phone: QR (the phone "scans" the string the socket emitted) and 8-character
// pairing codes, both ending in pair-success -> pair-device-sign (verified) -> 515 restart.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Curve, proto } from '@whiskeysockets/baileys';
import { Device } from './accounts.ts';
import { newKeyPair } from './keys.ts';
import type { Account } from './accounts.ts';
import type { Connection, Registration } from './connection.ts';
import { child, childBytes, node, unixNow } from './nodes.ts';
import type { SimPhone } from './phone.ts';
import type { Stats } from './stats.ts';
import type { BinaryNode } from './types.ts';

const pbkdf2Async = promisify(pbkdf2);
const ACCOUNT_SIG_PREFIX = Buffer.from([6, 0]);
const DEVICE_SIG_PREFIX = Buffer.from([6, 1]);
const S_WHATSAPP_NET = 's.whatsapp.net';

interface CodePairing {
  readonly conn: Connection;
  readonly ref: string;
  readonly wrappedCompanionEphemeral: Buffer;
  primaryEphemeral?: { public: Buffer; private: Buffer };
  companionEphemeral?: Buffer;
  account?: Account;
  finish?: (n: BinaryNode) => void;
}

export interface Linked {
  readonly device: Device;
  readonly jid: string;
  readonly lid: string;
}

const parseQr = (qr: string): { ref: string; noise: Buffer; identity: Buffer; adv: Buffer } => {
  const hash = qr.includes('#') ? qr.slice(qr.indexOf('#') + 1) : qr;
  const [ref, noise, identity, adv] = hash.split(',');
  if (!ref || !noise || !identity || !adv) throw new Error('not a WhatsApp linking QR string');
  return { ref, noise: Buffer.from(noise, 'base64'), identity: Buffer.from(identity, 'base64'), adv: Buffer.from(adv, 'base64') };
};

const codeKey = async (code: string, salt: Buffer): Promise<Buffer> => pbkdf2Async(code, salt, 2 << 16, 32, 'sha256');

export class Pairing {
  private readonly byRef = new Map<string, Connection>();
  private readonly codeByNumber = new Map<string, CodePairing>();
  private readonly codeWaiters = new Map<string, Set<() => void>>();
  private readonly stats: Stats;
  private readonly phoneOf: (account: Account) => SimPhone | undefined;
  private readonly refsPerQr: number;
  private readonly onLinked: (device: Device) => void;

  constructor(stats: Stats, phoneOf: (account: Account) => SimPhone | undefined, refsPerQr: number, onLinked: (device: Device) => void) {
    this.stats = stats;
    this.phoneOf = phoneOf;
    this.refsPerQr = refsPerQr;
    this.onLinked = onLinked;
  }

  /** A client without creds connected: ask it to show QR codes. */
  startRegistration(conn: Connection, payload: proto.ClientPayload, clientStatic: Buffer): void {
    const dp = payload.devicePairingData;
    if (!dp?.eIdent || !dp.eSkeyVal || !dp.eSkeySig || !dp.eRegid || !dp.eSkeyId) {
      conn.failure(400);
      return;
    }
    let platform = 'web';
    try {
      if (dp.deviceProps) platform = proto.DeviceProps.decode(dp.deviceProps).os ?? platform;
    } catch {
      // keep the default
    }
    conn.registration = {
      noiseKey: clientStatic,
      identityKey: Buffer.from(dp.eIdent),
      registrationId: Buffer.from(dp.eRegid).readUInt32BE(0),
      signedPreKey: { id: Buffer.from(dp.eSkeyId).readUIntBE(0, 3), public: Buffer.from(dp.eSkeyVal), signature: Buffer.from(dp.eSkeySig) },
      platform,
    };
    const refs: BinaryNode[] = [];
    for (let i = 0; i < this.refsPerQr; i++) {
      const ref = `2@${randomBytes(24).toString('base64')}`;
      this.byRef.set(ref, conn);
      refs.push(node('ref', {}, Buffer.from(ref)));
    }
    conn.send(node('iq', { from: S_WHATSAPP_NET, type: 'set', id: `pair-${conn.id}`, xmlns: 'md' }, [node('pair-device', {}, refs)]));
  }

  /** Forget refs / codes of a closed registration socket. */
  connectionClosed(conn: Connection): void {
    for (const [ref, c] of this.byRef) if (c === conn) this.byRef.delete(ref);
    for (const [num, p] of this.codeByNumber) if (p.conn === conn) this.codeByNumber.delete(num);
  }

  /** The phone scans a QR string emitted by a Baileys socket. Resolves once the device is linked. */
  async scanQr(account: Account, qr: string): Promise<Linked> {
    const { ref, noise, identity, adv } = parseQr(qr);
    const conn = this.byRef.get(ref);
    if (!conn || conn.closed || !conn.registration) throw new Error('QR expired or unknown (no waiting socket has this ref)');
    const reg = conn.registration;
    if (!reg.noiseKey.equals(noise) || !reg.identityKey.equals(identity)) throw new Error('QR keys do not match the waiting socket');
    return this.complete(conn, reg, account, adv);
  }

  /** `link_code_companion_reg` iq from a client (companion_hello / companion_finish). */
  onLinkCodeIq(conn: Connection, iq: BinaryNode, reg: BinaryNode): void {
    const stage = reg.attrs.stage;
    const jid = reg.attrs.jid ?? '';
    const number = jid.split('@')[0]?.split(':')[0] ?? '';
    if (stage === 'companion_hello') {
      const wrapped = childBytes(reg, 'link_code_pairing_wrapped_companion_ephemeral_pub');
      if (!wrapped || wrapped.length < 80) {
        conn.send(node('iq', { type: 'error', id: iq.attrs.id, from: S_WHATSAPP_NET }, [node('error', { code: '400', text: 'bad-request' })]));
        return;
      }
      const ref = randomBytes(16).toString('base64');
      this.codeByNumber.set(number, { conn, ref, wrappedCompanionEphemeral: wrapped });
      for (const w of this.codeWaiters.get(number) ?? []) w();
      this.codeWaiters.delete(number);
      conn.send(node('iq', { type: 'result', id: iq.attrs.id, from: S_WHATSAPP_NET }, [
        node('link_code_companion_reg', {}, [node('link_code_pairing_ref', {}, Buffer.from(ref))]),
      ]));
      return;
    }
    if (stage === 'companion_finish') {
      const p = this.codeByNumber.get(number);
      if (!p?.finish) {
        conn.send(node('iq', { type: 'error', id: iq.attrs.id, from: S_WHATSAPP_NET }, [node('error', { code: '404', text: 'item-not-found' })]));
        return;
      }
      p.finish(iq);
    }
  }

  /** The phone's user types the 8-character code shown by the companion. Resolves once linked. */
  async enterPairingCode(account: Account, code: string, waitMs = 10_000): Promise<Linked> {
    if (!this.codeByNumber.get(account.number)) {
      // requestPairingCode() resolves before its companion_hello reaches us: wait for it briefly
      await new Promise<void>(resolve => {
        let set = this.codeWaiters.get(account.number);
        if (!set) this.codeWaiters.set(account.number, (set = new Set()));
        const done = (): void => {
          clearTimeout(timer);
          set.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        timer.unref();
        set.add(done);
      });
    }
    const p = this.codeByNumber.get(account.number);
    if (!p || p.conn.closed || !p.conn.registration) throw new Error(`no socket is waiting for a pairing code for ${account.number}`);
    const normalized = code.replace(/[-\s]/g, '');
    const w = p.wrappedCompanionEphemeral;
    const key1 = await codeKey(normalized, w.subarray(0, 32));
    const dec = createDecipheriv('aes-256-ctr', key1, w.subarray(32, 48));
    p.companionEphemeral = Buffer.concat([dec.update(w.subarray(48, 80)), dec.final()]);
    const eph = newKeyPair();
    p.primaryEphemeral = eph;
    p.account = account;
    const salt = randomBytes(32);
    const iv = randomBytes(16);
    const key2 = await codeKey(normalized, salt);
    const enc = createCipheriv('aes-256-ctr', key2, iv);
    const wrappedPrimary = Buffer.concat([salt, iv, enc.update(eph.public), enc.final()]);
    const finished = new Promise<BinaryNode>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('companion_finish not received')), 30_000);
      timer.unref();
      p.finish = n => {
        clearTimeout(timer);
        resolve(n);
      };
    });
    p.conn.send(node('notification', { from: S_WHATSAPP_NET, id: `lc-${p.conn.id}-${Date.now()}`, type: 'link_code_companion_reg', t: unixNow() }, [
      node('link_code_companion_reg', {}, [
        node('link_code_pairing_ref', {}, Buffer.from(p.ref)),
        node('primary_identity_pub', {}, account.accountKey.public),
        node('link_code_pairing_wrapped_primary_ephemeral_pub', {}, wrappedPrimary),
      ]),
    ]));
    const iq = await finished;
    const reg = child(iq, 'link_code_companion_reg');
    const bundle = childBytes(reg, 'link_code_pairing_wrapped_key_bundle');
    const companionIdentity = childBytes(reg, 'companion_identity_public');
    const registration = p.conn.registration;
    const fail = (msg: string): never => {
      p.conn.send(node('iq', { type: 'error', id: iq.attrs.id, from: S_WHATSAPP_NET }, [node('error', { code: '400', text: 'bad-request' })]));
      this.codeByNumber.delete(account.number);
      throw new Error(msg);
    };
    if (!bundle || !companionIdentity || !registration) return fail('companion_finish without key bundle');
    const shared = Curve.sharedKey(eph.private, p.companionEphemeral);
    const bundleKey = Buffer.from(hkdfSync('sha256', shared, bundle.subarray(0, 32), 'link_code_pairing_key_bundle_encryption_key', 32));
    let plain: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', bundleKey, bundle.subarray(32, 44));
      d.setAuthTag(bundle.subarray(bundle.length - 16));
      plain = Buffer.concat([d.update(bundle.subarray(44, bundle.length - 16)), d.final()]);
    } catch {
      return fail('pairing code mismatch (key bundle did not decrypt)');
    }
    const ident = plain.subarray(0, 32);
    const primary = plain.subarray(32, 64);
    const random = plain.subarray(64, 96);
    if (!ident.equals(companionIdentity) || !ident.equals(registration.identityKey) || !primary.equals(account.accountKey.public)) {
      return fail('key bundle identities do not match');
    }
    const identityShared = Curve.sharedKey(account.accountKey.private, ident);
    const adv = Buffer.from(hkdfSync('sha256', Buffer.concat([shared, identityShared, random]), Buffer.alloc(0), 'adv_secret', 32));
    p.conn.send(node('iq', { type: 'result', id: iq.attrs.id, from: S_WHATSAPP_NET }));
    this.codeByNumber.delete(account.number);
    return this.complete(p.conn, registration, account, adv);
  }

  /** pair-success -> verified pair-device-sign -> device created -> 515. */
  private async complete(conn: Connection, reg: Registration, account: Account, advSecret: Buffer): Promise<Linked> {
    for (const [ref, c] of this.byRef) if (c === conn) this.byRef.delete(ref);
    const { id, keyIndex } = account.allocateDevice();
    const details = proto.ADVDeviceIdentity.encode({ rawId: account.rawId, timestamp: Math.floor(Date.now() / 1000), keyIndex }).finish();
    const accountSignature = Curve.sign(account.accountKey.private, Buffer.concat([ACCOUNT_SIG_PREFIX, details, reg.identityKey]));
    const signed = proto.ADVSignedDeviceIdentity.encode({ details, accountSignatureKey: account.accountKey.public, accountSignature }).finish();
    const hmac = createHmac('sha256', advSecret).update(signed).digest();
    const identityHmac = proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish();
    const pnJid = `${account.number}:${id}@s.whatsapp.net`;
    const lidJid = `${account.lid}:${id}@lid`;
    const reply = await conn.query(node('iq', { from: S_WHATSAPP_NET, type: 'set', id: `ps-${conn.id}`, t: unixNow() }, [
      node('pair-success', {}, [
        node('device-identity', {}, identityHmac),
        node('platform', { name: 'android' }),
        node('device', { jid: pnJid, lid: lidJid }),
      ]),
    ]));
    const signNode = child(child(reply, 'pair-device-sign'), 'device-identity');
    const signBytes = signNode?.content instanceof Uint8Array ? signNode.content : undefined;
    if (!reply || reply.attrs.type !== 'result' || !signBytes) throw new Error('companion did not answer pair-success with pair-device-sign');
    const back = proto.ADVSignedDeviceIdentity.decode(signBytes);
    const deviceMsg = Buffer.concat([DEVICE_SIG_PREFIX, Buffer.from(back.details ?? []), reg.identityKey, account.accountKey.public]);
    if (!back.deviceSignature || !Curve.verify(reg.identityKey, deviceMsg, back.deviceSignature)) {
      conn.failure(401);
      throw new Error('pair-device-sign signature is invalid');
    }
    const device = new Device(account, id, 'companion', { identityKey: reg.identityKey, registrationId: reg.registrationId, signedPreKey: reg.signedPreKey }, keyIndex);
    device.noiseKey = reg.noiseKey;
    device.platform = reg.platform;
    account.devices.set(id, device);
    account.invalidateKeyIndex();
    this.stats.pairings++;
    this.onLinked(device);
    await this.phoneOf(account)?.prepareBootstrap(device);
    // the real service makes the client reconnect with its new credentials
    conn.streamError({ code: '515' });
    return { device, jid: pnJid, lid: lidJid };
  }
}
