// The libsignal side of a simulated phone: Baileys' own Signal repository over an in-memory key store.
import { randomBytes } from 'node:crypto';
import {
  addTransactionCapability,
  Curve,
  DEFAULT_CONNECTION_CONFIG,
  generateRegistrationId,
  signedKeyPair,
} from '@whiskeysockets/baileys';
import type { AuthenticationCreds, SignalDataSet, SignalDataTypeMap, SignalKeyStore, SignalRepositoryWithLIDStore } from '@whiskeysockets/baileys';
import type { Logger } from 'pino';
import type { KeyPair, PreKeyBundle } from './types.ts';

/** A Map-backed SignalKeyStore (what tests and simulated phones use). */
export const makeMemoryKeyStore = (): SignalKeyStore & { readonly data: Map<string, unknown> } => {
  const data = new Map<string, unknown>();
  return {
    data,
    get<T extends keyof SignalDataTypeMap>(type: T, ids: string[]) {
      const out: { [id: string]: SignalDataTypeMap[T] } = {};
      for (const id of ids) {
        const v = data.get(`${type}:${id}`);
        if (v !== undefined) out[id] = v as SignalDataTypeMap[T];
      }
      return out;
    },
    set(set: SignalDataSet) {
      for (const type in set) {
        const entries = set[type as keyof SignalDataSet];
        if (!entries) continue;
        for (const id in entries) {
          const v: unknown = entries[id];
          if (v === null || v === undefined) data.delete(`${type}:${id}`);
          else data.set(`${type}:${id}`, v);
        }
      }
    },
  };
};

export class SignalPeer {
  readonly creds: AuthenticationCreds;
  readonly repo: SignalRepositoryWithLIDStore;
  private nextPreKeyId = 1;
  private readonly keys: ReturnType<typeof makeMemoryKeyStore>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(identity: KeyPair, logger: Logger) {
    // initAuthCreds() would sign a signed prekey for a fresh identity only to be replaced here (XEdDSA in pure
    // JS, the costliest step of creating a phone); the rest of it is cheap.
    const creds: AuthenticationCreds = {
      noiseKey: Curve.generateKeyPair(),
      pairingEphemeralKeyPair: Curve.generateKeyPair(),
      signedIdentityKey: identity,
      signedPreKey: signedKeyPair(identity, 1),
      registrationId: generateRegistrationId(),
      advSecretKey: randomBytes(32).toString('base64'),
      processedHistoryMessages: [],
      nextPreKeyId: 1,
      firstUnuploadedPreKeyId: 1,
      accountSyncCounter: 0,
      accountSettings: { unarchiveChats: false },
      registered: false,
      pairingCode: undefined,
      lastPropHash: undefined,
      routingInfo: undefined,
      additionalData: undefined,
    };
    this.creds = creds;
    this.keys = makeMemoryKeyStore();
    const quiet = logger.child({ part: 'signal-peer' }, { level: 'error' });
    const keys = addTransactionCapability(this.keys, quiet, { maxCommitRetries: 1, delayBetweenTriesMs: 1 });
    // a phone already knows everybody's LID mapping; it addresses all sessions by the jids it is handed
    this.repo = DEFAULT_CONNECTION_CONFIG.makeSignalRepository({ creds, keys }, quiet, async () => []);
  }

  get registrationId(): number {
    return this.creds.registrationId;
  }

  /** Serializes work on this peer's sessions (libsignal is not re-entrant per address). */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** A fresh bundle with a new one-time prekey, as the server hands out for device 0. */
  bundle(): PreKeyBundle {
    const id = this.nextPreKeyId++;
    const kp = Curve.generateKeyPair();
    void this.keys.set({ 'pre-key': { [String(id)]: kp } });
    const spk = this.creds.signedPreKey;
    return {
      registrationId: this.creds.registrationId,
      identityKey: Buffer.from(this.creds.signedIdentityKey.public),
      signedPreKey: { id: spk.keyId, public: Buffer.from(spk.keyPair.public), signature: Buffer.from(spk.signature) },
      preKey: { id, public: Buffer.from(kp.public) },
    };
  }

  async hasSession(jid: string): Promise<boolean> {
    return (await this.repo.validateSession(jid)).exists;
  }

  async injectSession(jid: string, b: PreKeyBundle): Promise<void> {
    await this.repo.injectE2ESession({
      jid,
      session: {
        registrationId: b.registrationId,
        identityKey: Buffer.concat([Buffer.from([5]), b.identityKey]),
        signedPreKey: { keyId: b.signedPreKey.id, publicKey: Buffer.concat([Buffer.from([5]), b.signedPreKey.public]), signature: b.signedPreKey.signature },
        preKey: b.preKey ? { keyId: b.preKey.id, publicKey: Buffer.concat([Buffer.from([5]), b.preKey.public]) } : undefined,
      },
    });
  }

  /** Drops the session with a device (what a reinstalled or restored phone looks like to its peers). */
  async deleteSession(jid: string): Promise<void> {
    await this.keys.set({ session: { [this.repo.jidToSignalProtocolAddress(jid)]: null } });
  }

  /** Drops every sender key this peer holds for a group (a phone that lost its group state). */
  async deleteSenderKeys(group: string): Promise<number> {
    const ids = [...this.keys.data.keys()].filter(k => k.startsWith(`sender-key:${group}::`)).map(k => k.slice('sender-key:'.length));
    if (ids.length) await this.keys.set({ 'sender-key': Object.fromEntries(ids.map(id => [id, null])) });
    return ids.length;
  }

  async encrypt(jid: string, data: Uint8Array): Promise<{ type: 'pkmsg' | 'msg'; ciphertext: Uint8Array }> {
    return this.repo.encryptMessage({ jid, data });
  }

  async decrypt(jid: string, type: 'pkmsg' | 'msg', ciphertext: Uint8Array): Promise<Uint8Array> {
    return this.repo.decryptMessage({ jid, type, ciphertext });
  }
}
