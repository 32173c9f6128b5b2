// WaSimulator: wires the registry, Noise connections, pairing, iq handlers, relay, phones, media, faults
// and stats together, and is the typed in-process control surface. Over 500 lines: it is the simulator's one
// control surface (tests, bench and demo drive it); each protocol part it wires lives in its own file.
import { Agent as HttpsAgent } from 'node:https';
import tls from 'node:tls';
import type { proto } from '@whiskeysockets/baileys';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { Device, Registry } from './accounts.ts';
import type { Account } from './accounts.ts';
import { createAdminHandler } from './admin-http.ts';
import { Connection } from './connection.ts';
import { Faults } from './faults.ts';
import { Groups } from './groups.ts';
import { newKeyPair } from './keys.ts';
import type { ActiveFault, FaultSpec } from './faults.ts';
import { handleIq } from './iq.ts';
import { MediaStore } from './media.ts';
import { buildCertChain } from './noise.ts';
import type { NoiseCertFault } from './noise.ts';
import { children, node, unixNow } from './nodes.ts';
import { Pairing } from './pairing.ts';
import type { Linked } from './pairing.ts';
import { SimPhone, toJid } from './phone.ts';
import { Relay } from './relay.ts';
import { listen } from './server.ts';
import type { Listening } from './server.ts';
import { Stats } from './stats.ts';
import type { StatsSnapshot } from './stats.ts';
import { generateSelfSignedCert } from './tls-cert.ts';
import type { SelfSignedCert } from './tls-cert.ts';
import type { BinaryNode, KeyPair } from './types.ts';

export interface WaSimulatorOptions {
  /** Main port (WebSocket + admin HTTP); 0 = any free port (default). */
  readonly port?: number;
  /** Media HTTPS port; 0 = any free port (default). */
  readonly mediaPort?: number;
  readonly host?: string;
  /** Delay before a receipt reaches the sender (default 300 ms; Baileys v7 folds earlier receipts into a buffered upsert). */
  readonly receiptDelayMs?: number;
  /** pino level when no logger is given (default 'silent'). */
  readonly logLevel?: string;
  readonly logger?: Logger;
  /** Root key that signs the Noise certificate chain (default: generated). */
  readonly rootKeyPair?: KeyPair;
  /** A second login for a device replaces the first with `conflict replaced` (440), as WhatsApp does (default true). */
  readonly replaceOnConcurrentLogin?: boolean;
  /** Simulated phones send delivery receipts automatically (default true). */
  readonly autoDeliveryReceipt?: boolean;
  /** QR refs per pairing attempt (default 6: 60 s + 5 x 20 s in Baileys). */
  readonly qrRefs?: number;
  /** Present a broken Noise certificate chain (tests of the client's check; also settable at run time). */
  readonly noiseCertFault?: NoiseCertFault;
  /** Group metadata queries one device may make per window before WhatsApp's `429 rate-overlimit` (default 30 per 60 s). */
  readonly groupMetadataRateLimit?: { max: number; windowMs: number };
  /** Most participants of a group (default 1024, WhatsApp's limit). */
  readonly groupMaxParticipants?: number;
}

export type KickMode = 'close' | 'terminate' | 'replaced' | 'unlink' | 'restart' | 'timeout' | 'server-error';

export interface DeviceInfo {
  readonly jid: string;
  readonly lid: string;
  readonly number: string;
  readonly device: number;
  readonly kind: 'phone' | 'companion';
  readonly platform: string;
  readonly live: number;
  readonly pending: number;
  readonly preKeys: number;
  readonly removed: boolean;
}

export interface BaileysClientConfig {
  /** Pass as `waWebSocketUrl` to makeWASocket. */
  readonly waWebSocketUrl: string;
  /** Pass as `fetchAgent`: trusts the simulator's media certificate for uploads. */
  readonly fetchAgent: HttpsAgent;
}

export interface SimulatorUrls {
  readonly ws: string;
  readonly admin: string;
  readonly media: string;
}

/** A provisioned device's keys: the Noise key it logs in with and, optionally, its public Signal keys. */
export interface ProvisionKeys {
  noiseKey: Uint8Array;
  identityKey?: Uint8Array;
  registrationId?: number;
  signedPreKey?: { id: number; public: Uint8Array; signature: Uint8Array };
  preKeys?: readonly { id: number; public: Uint8Array }[];
}

export class WaSimulator {
  readonly registry = new Registry();
  readonly stats = new Stats();
  readonly faults = new Faults();
  readonly logger: Logger;
  readonly media: MediaStore;
  readonly relay: Relay;
  readonly groups: Groups;
  readonly pairing: Pairing;
  readonly urls: SimulatorUrls;
  /** Public key of the root that signs the Noise certificate chain (set Baileys' WA_CERT_DETAILS.PUBLIC_KEY to it). */
  readonly rootPublicKey: Buffer<ArrayBuffer>;
  /** PEM of the media endpoint's self-signed certificate (the CA a client must trust). */
  readonly mediaCaPem: string;
  receiptDelayMs: number;
  /** Present a broken Noise certificate chain to connections opened from now on (tests of the client's check). */
  noiseCertFault: NoiseCertFault | undefined;
  private readonly root: KeyPair;
  private readonly opts: WaSimulatorOptions;
  private readonly serverStatic: KeyPair;
  private readonly certChain: Uint8Array;
  private readonly phonesByAccount = new Map<Account, SimPhone>();
  private readonly conns = new Set<Connection>();
  private readonly presence = new Map<Account, string>();
  private readonly subscribers = new Map<Account, Set<Device>>();
  /** Simulated phones that subscribed to an account's presence (subscribePresence), as a phone does for a chat it opens. */
  private readonly phoneSubscribers = new Map<Account, Set<SimPhone>>();
  private listening: Listening | undefined;
  private closed = false;
  /** While `Date.now()` is before this, the server is "restarting": new sockets are counted, then dropped. */
  private downUntil = 0;
  /** When each WebSocket connection was opened (also those dropped while restarting), oldest first. */
  private readonly attempts: number[] = [];

  private constructor(opts: WaSimulatorOptions, root: KeyPair, cert: SelfSignedCert, logger: Logger) {
    this.opts = opts;
    this.logger = logger;
    this.receiptDelayMs = opts.receiptDelayMs ?? 300;
    this.noiseCertFault = opts.noiseCertFault;
    this.root = root;
    this.rootPublicKey = Buffer.from(root.public);
    this.mediaCaPem = cert.certPem;
    this.serverStatic = newKeyPair();
    this.certChain = buildCertChain(root, this.serverStatic.public);
    this.media = new MediaStore(this.stats, logger);
    this.relay = new Relay({
      registry: this.registry,
      stats: this.stats,
      faults: this.faults,
      logger,
      receiptDelayMs: () => this.receiptDelayMs,
      phones: {
        deliverToPhone: (dev, stanza, sender) => this.phonesByAccount.get(dev.account)?.onStanza(stanza, sender),
        receiptToPhone: (dev, rec, type, from) => this.phonesByAccount.get(dev.account)?.onReceipt(rec, type, from),
        retryToPhone: (dev, rec, from, content) => this.phonesByAccount.get(dev.account)?.onRetry(rec, from, content),
      },
    });
    this.groups = new Groups({
      registry: this.registry,
      stats: this.stats,
      relay: this.relay,
      notifyPhone: (acc, n) => this.phonesByAccount.get(acc)?.onGroupNotification(n),
      storePicture: data => this.media.put(data, '/pps/group'),
      mediaBase: () => this.urls.media,
      ...(opts.groupMetadataRateLimit === undefined ? {} : { metadataRateLimit: opts.groupMetadataRateLimit }),
      ...(opts.groupMaxParticipants === undefined ? {} : { maxParticipants: opts.groupMaxParticipants }),
    });
    this.relay.groups = this.groups;
    this.pairing = new Pairing(this.stats, acc => this.phonesByAccount.get(acc), opts.qrRefs ?? 6, dev => this.announceDevices(dev, 'update'));
    this.urls = { ws: '', admin: '', media: '' };
  }

  static async create(opts: WaSimulatorOptions = {}): Promise<WaSimulator> {
    const host = opts.host ?? '127.0.0.1';
    const logger = opts.logger ?? pino({ level: opts.logLevel ?? 'silent', base: { proc: 'wa-sim' } });
    const root = opts.rootKeyPair ?? newKeyPair();
    const cert = generateSelfSignedCert([host]);
    const sim = new WaSimulator(opts, root, cert, logger);
    const mediaPort = await sim.media.listen(host, opts.mediaPort ?? 0, cert);
    const admin = createAdminHandler(sim);
    sim.listening = await listen(host, opts.port ?? 0, ws => sim.accept(ws), admin);
    const h = host.includes(':') ? `[${host}]` : host;
    const urls: SimulatorUrls = {
      ws: `ws://${h}:${sim.listening.port}/ws/chat`,
      admin: `http://${h}:${sim.listening.port}`,
      media: `https://${h}:${mediaPort}`,
    };
    Object.assign(sim.urls, urls);
    logger.info({ urls }, 'wa-sim listening');
    return sim;
  }

  // ---- control surface -------------------------------------------------------------------------------

  /** Creates an account with its simulated phone (device 0). */
  createPhone(opts: { number?: string; name?: string; lid?: string } = {}): SimPhone {
    const account = this.registry.createAccount(opts);
    const phone = new SimPhone(account, {
      registry: this.registry,
      relay: this.relay,
      groups: this.groups,
      media: this.media,
      logger: this.logger,
      autoDeliveryReceipt: this.opts.autoDeliveryReceipt ?? true,
    });
    this.phonesByAccount.set(account, phone);
    return phone;
  }

  phone(numberOrJid: string): SimPhone | undefined {
    const r = this.registry.resolve(numberOrJid);
    return r ? this.phonesByAccount.get(r.account) : undefined;
  }

  phones(): SimPhone[] {
    return [...this.phonesByAccount.values()];
  }

  private phoneArg(p: SimPhone | string): SimPhone {
    const phone = typeof p === 'string' ? this.phone(p) : p;
    if (!phone) throw new Error(`unknown phone ${String(p)}`);
    return phone;
  }

  /** The phone scans the QR string a Baileys socket emitted (`connection.update` -> qr). */
  scanQr(phone: SimPhone | string, qr: string): Promise<Linked> {
    return this.pairing.scanQr(this.phoneArg(phone).account, qr);
  }

  /** The phone enters the pairing code a socket got from `requestPairingCode(number)`. */
  enterPairingCode(phone: SimPhone | string, code: string): Promise<Linked> {
    return this.pairing.enterPairingCode(this.phoneArg(phone).account, code);
  }

  /**
   * Creates a linked companion directly, without pairing (for raw protocol clients such as the benchmark's):
   * the client logs in with `username = phone number`, `device = id` and this Noise static key.
   */
  /**
   * Links a companion device without pairing (benches, raw clients). With the device's public Signal keys
   * (identity, registration id, signed prekey, one-time prekeys), the simulator holds what a real server holds
   * for a device that uploaded its keys when it paired, so its first login from stored state uploads nothing
   * (Baileys uploads only when the server reports at most MIN_PREKEY_COUNT prekeys). Without them the device
   * gets placeholder keys and uploads on its first login.
   */
  provisionDevice(phone: SimPhone | string, keys: ProvisionKeys): { jid: string; lid: string; device: number } {
    const p = this.phoneArg(phone);
    const { id, keyIndex } = p.account.allocateDevice();
    const identity = keys.identityKey ? Buffer.from(keys.identityKey) : newKeyPair().public;
    const signedPreKey = keys.signedPreKey
      ? { id: keys.signedPreKey.id, public: Buffer.from(keys.signedPreKey.public), signature: Buffer.from(keys.signedPreKey.signature) }
      : { id: 1, public: newKeyPair().public, signature: Buffer.alloc(64) };
    const device = new Device(p.account, id, 'companion', { identityKey: identity, registrationId: keys.registrationId ?? 1, signedPreKey }, keyIndex);
    device.noiseKey = Buffer.from(keys.noiseKey);
    device.platform = 'provisioned';
    if (keys.preKeys) device.preKeys = keys.preKeys.map(k => ({ id: k.id, public: Buffer.from(k.public) }));
    p.account.devices.set(id, device);
    return { jid: device.pnJid, lid: device.lidJid, device: id };
  }

  devices(): DeviceInfo[] {
    const out: DeviceInfo[] = [];
    for (const acc of this.registry.accounts()) {
      for (const d of acc.devices.values()) {
        out.push({ jid: d.pnJid, lid: d.lidJid, number: acc.number, device: d.id, kind: d.kind, platform: d.platform, live: d.conns.size, pending: d.pending.size, preKeys: d.preKeys.length, removed: d.removed });
      }
    }
    return out;
  }

  /**
   * Disconnects a companion device's sockets: 'close' (WebSocket close, 428), 'terminate' (TCP drop, 428),
   * 'replaced' (`conflict replaced`, 440), 'unlink' (device removed, 401 and re-login refused), 'restart' (515),
   * 'timeout' (stream error 408, connection lost), 'server-error' (stream error 500).
   * Returns how many sockets were affected.
   */
  kickDevice(jid: string, mode: KickMode = 'close'): number {
    const dev = this.registry.resolve(jid);
    const device = dev?.account.devices.get(dev.device ?? -1);
    if (!device || device.kind !== 'companion') throw new Error(`no companion device ${jid}`);
    const conns = [...device.conns];
    if (mode === 'unlink') {
      this.unlink(device, 'server', true);
      return conns.length;
    }
    for (const c of conns) {
      if (mode === 'close') c.close();
      else if (mode === 'terminate') c.terminate();
      else if (mode === 'replaced') c.streamError({}, [node('conflict', { type: 'replaced' })]);
      else if (mode === 'timeout') c.streamError({ code: '408' });
      else if (mode === 'server-error') c.streamError({ code: '500' });
      else c.streamError({ code: '515' });
    }
    return conns.length;
  }

  /** Removes a linked device (the phone's "log out this device"). */
  unlink(device: Device, reason: string, notifyClient: boolean): void {
    if (device.removed) return;
    device.removed = true;
    device.pending.clear();
    device.bootstrap = undefined;
    device.account.invalidateKeyIndex();
    this.logger.info({ device: device.pnJid, reason }, 'device unlinked');
    this.announceDevices(device, 'remove');
    for (const c of device.conns) {
      if (notifyClient) c.streamError({ code: '401' }, [node('conflict', { type: 'device_removed' })]);
      else c.closeSoon();
    }
  }

  /**
   * Tells every connected companion that an account's device list changed (Baileys drops its cached device
   * list on 'update' and deletes sessions on 'remove'), as WhatsApp does for linked / unlinked devices.
   */
  private announceDevices(device: Device, tag: 'update' | 'remove'): void {
    const acc = device.account;
    const content = [node(tag, { device_hash: `2:${acc.rawId.toString(36)}${Date.now().toString(36)}` }, [node('device', { jid: device.pnJid }), node('device', { jid: device.lidJid })])];
    let n = 0;
    for (const c of this.conns) {
      if (!c.device || c.device === device) continue;
      c.send(node('notification', { from: acc.pnJid, type: 'devices', id: `dev-${acc.number}-${Date.now()}-${n++}`, t: unixNow() }, content));
    }
  }

  injectFault(spec: FaultSpec): number {
    return this.faults.add(spec);
  }

  clearFault(id?: number): void {
    if (id === undefined) this.faults.clear();
    else this.faults.remove(id);
  }

  activeFaults(): ActiveFault[] {
    return this.faults.list();
  }

  snapshot(): StatsSnapshot {
    let linked = 0;
    for (const acc of this.registry.accounts()) for (const d of acc.devices.values()) if (d.kind === 'companion' && !d.removed) linked++;
    return this.stats.snapshot({ accounts: this.registry.accounts().length, linkedDevices: linked, pendingUnacked: this.relay.pendingCount() });
  }

  /** Options a Baileys client needs for this simulator (spread into makeWASocket's config). */
  baileysConfig(): BaileysClientConfig {
    return { waWebSocketUrl: this.urls.ws, fetchAgent: new HttpsAgent({ ca: this.mediaCaPem, keepAlive: false }) };
  }

  /**
   * Adds the media certificate to this process's default CAs (Node >= 22.19 / 24.5), so Baileys' media
   * downloads (global fetch) and uploads trust it without per-call agents. Test/simulator mode only.
   */
  trustMediaCertificate(): void {
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), this.mediaCaPem]);
  }

  /**
   * A server restart as clients see it: every socket dropped at once (TCP, no stream error), and for `downMs`
   * every new connection dropped right after it opened (each one still counted in `connectionAttempts`, which is
   * how a test sees a reconnect storm). Returns how many sockets were dropped.
   */
  restart(downMs: number): number {
    this.downUntil = Date.now() + downMs;
    const conns = [...this.conns];
    for (const c of conns) c.terminate();
    return conns.length;
  }

  /** Times (ms since the epoch) at which WebSocket connections were opened, oldest first (the last 50-100k). */
  connectionAttempts(since = 0): number[] {
    return this.attempts.filter((at) => at >= since);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.relay.close();
    for (const c of this.conns) c.terminate();
    await this.listening?.close();
    await this.media.close();
  }

  // ---- connections ------------------------------------------------------------------------------------

  private accept(ws: WebSocket): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    if (this.attempts.length >= 100_000) this.attempts.splice(0, 50_000);
    this.attempts.push(Date.now());
    if (Date.now() < this.downUntil) {
      ws.terminate();
      return;
    }
    this.stats.socketOpened();
    const conn = new Connection(ws, {
      serverStatic: this.serverStatic,
      certChain: this.noiseCertFault === undefined ? this.certChain : buildCertChain(this.root, this.serverStatic.public, this.noiseCertFault),
      logger: this.logger,
      latencyFor: c => this.faults.latency(c.device?.pnJid, c.device?.account.number),
      onAuth: (c, clientStatic, payload) => this.onAuth(c, clientStatic, payload),
      onNode: (c, n) => this.onNode(c, n),
      onClose: c => this.onClose(c),
      onSupersededFrame: c => this.stats.supersededFrame(c.device?.pnJid ?? `conn#${c.id}`),
    });
    this.conns.add(conn);
  }

  private onAuth(conn: Connection, clientStatic: Buffer, payload: proto.ClientPayload): void {
    const username = payload.username === null || payload.username === undefined ? '' : String(payload.username);
    if (!username || username === '0') {
      this.pairing.startRegistration(conn, payload, clientStatic);
      return;
    }
    const acc = this.registry.byPhone(username);
    const dev = acc?.devices.get(payload.device ?? 0);
    if (!dev || dev.removed || dev.kind !== 'companion' || !dev.noiseKey?.equals(clientStatic)) {
      this.stats.loginFailures++;
      this.logger.info({ username, device: payload.device }, 'login refused (unknown or stale credentials)');
      conn.failure(401);
      return;
    }
    this.login(conn, dev);
  }

  private login(conn: Connection, dev: Device): void {
    const replace = this.opts.replaceOnConcurrentLogin ?? true;
    const previous = [...dev.conns];
    conn.device = dev;
    dev.conns.add(conn);
    this.stats.logins++;
    this.stats.socketsAuthenticated++;
    this.stats.setLive(dev.pnJid, dev.conns.size, true);
    if (replace) {
      for (const old of previous) {
        old.superseded = true;
        old.streamError({}, [node('conflict', { type: 'replaced' })]);
      }
    }
    conn.send(node('success', { t: unixNow(), lid: dev.lidJid, location: 'wa-sim', creation: String(Math.floor(dev.linkedAt / 1000)), props: '1' }));
    const n = this.relay.flushOffline(dev, conn);
    conn.send(node('ib', {}, [node('offline', { count: String(n) })]));
    if (dev.bootstrap) conn.send(dev.bootstrap.node);
  }

  private onClose(conn: Connection): void {
    this.conns.delete(conn);
    this.stats.socketsOpen--;
    this.pairing.connectionClosed(conn);
    const dev = conn.device;
    if (!dev || !dev.conns.delete(conn)) return;
    this.stats.socketsAuthenticated--;
    this.stats.setLive(dev.pnJid, dev.conns.size, false);
    for (const subs of this.subscribers.values()) subs.delete(dev);
    if (!dev.account.online && this.presence.get(dev.account) === 'available') this.setPresence(dev.account, 'unavailable');
  }

  private onNode(conn: Connection, n: BinaryNode): void {
    switch (n.tag) {
      case 'iq':
        // results / errors nobody waits for (e.g. the ack of pair-device) need no answer
        if (n.attrs.type === 'result' || n.attrs.type === 'error') return;
        handleIq(this, conn, n);
        return;
      case 'message':
        this.relay.onClientMessage(conn, n);
        return;
      case 'receipt':
        this.relay.onClientReceipt(conn, n);
        return;
      case 'ack':
        this.relay.onClientAck(conn, n);
        return;
      case 'presence':
        this.onPresence(conn, n);
        return;
      case 'chatstate':
        this.onChatstate(conn, n);
        return;
      default:
        // ib (unified_session, offline_batch), call, ... are accepted silently
        return;
    }
  }

  // ---- presence ------------------------------------------------------------------------------------------

  private onPresence(conn: Connection, n: BinaryNode): void {
    const dev = conn.device;
    if (!dev) return;
    const { type, to } = n.attrs;
    if (type === 'subscribe' && to) {
      const target = this.registry.resolve(to)?.account;
      if (!target) return;
      let subs = this.subscribers.get(target);
      if (!subs) this.subscribers.set(target, (subs = new Set()));
      subs.add(dev);
      conn.send(node('presence', { from: to, type: this.presence.get(target) === 'available' ? 'available' : 'unavailable', last: unixNow() }));
      return;
    }
    if (type === 'available' || type === 'unavailable') this.setPresence(dev.account, type);
  }

  /** Sets an account's presence (also used by simulated phones) and tells subscribers. */
  setPresence(account: Account, type: 'available' | 'unavailable'): void {
    this.presence.set(account, type);
    for (const sub of this.subscribers.get(account) ?? []) {
      const attrs = { from: account.pnJid, type, last: type === 'unavailable' ? unixNow() : undefined };
      for (const c of sub.conns) c.send(node('presence', attrs));
    }
    // Only subscribers hear it, as on WhatsApp. (Every simulated phone used to: a login's presence then cost one
    // record per phone of the simulator, N x N over N logins, and bench/scale's simulator ran out of heap at 2,500.)
    for (const phone of this.phoneSubscribers.get(account) ?? []) phone.onPresence(account.pnJid, type);
  }

  /** A simulated phone subscribes to another account's presence (its `presences()` then records it). */
  subscribePresence(phone: SimPhone, to: string): void {
    const target = this.registry.resolve(toJid(to))?.account;
    if (!target) throw new Error(`unknown account ${to}`);
    let subs = this.phoneSubscribers.get(target);
    if (!subs) this.phoneSubscribers.set(target, (subs = new Set()));
    subs.add(phone);
  }

  private onChatstate(conn: Connection, n: BinaryNode): void {
    const dev = conn.device;
    const to = n.attrs.to;
    if (!dev || !to) return;
    const target = this.registry.resolve(to);
    if (!target) return;
    const state = children(n)[0];
    if (!state) return;
    const from = target.lid ? dev.account.lidJid : dev.account.pnJid;
    for (const d of target.account.activeDevices()) {
      if (d.kind === 'phone') this.phonesByAccount.get(d.account)?.onPresence(dev.account.pnJid, state.attrs.media === 'audio' ? 'recording' : state.tag);
      else for (const c of d.conns) c.send(node('chatstate', { from }, [state]));
    }
  }

  /** Sends a chat state (composing / paused / recording) from a phone to another account. */
  phoneChatstate(phone: SimPhone, to: string, state: 'composing' | 'paused' | 'recording'): void {
    const target = this.registry.resolve(to.includes('@') ? to : `${to}@s.whatsapp.net`);
    if (!target) throw new Error(`unknown recipient ${to}`);
    const content = state === 'recording' ? node('composing', { media: 'audio' }) : node(state);
    const from = target.lid ? phone.lidJid : phone.jid;
    for (const d of target.account.activeDevices()) for (const c of d.conns) c.send(node('chatstate', { from }, [content]));
  }
}
