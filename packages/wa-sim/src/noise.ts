// Server (responder) side of WhatsApp's Noise_XX_25519_AESGCM_SHA256 handshake and the transport framing
// that follows it. Mirrors Baileys' Utils/noise-handler (the initiator) step by step.
import { createCipheriv, createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { Curve, NOISE_MODE, proto } from '@whiskeysockets/baileys';
import { newKeyPair } from './keys.ts';
import type { KeyPair } from './types.ts';

const EMPTY = Buffer.alloc(0);

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

const ivFor = (counter: number): Buffer => {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(counter >>> 0, 8);
  return iv;
};

const gcmEncrypt = (key: Uint8Array, counter: number, aad: Uint8Array, plaintext: Uint8Array): Buffer => {
  const c = createCipheriv('aes-256-gcm', key, ivFor(counter));
  c.setAAD(aad);
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
};

const gcmDecrypt = (key: Uint8Array, counter: number, aad: Uint8Array, ciphertext: Uint8Array): Buffer => {
  const d = createDecipheriv('aes-256-gcm', key, ivFor(counter));
  d.setAAD(aad);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
};

/**
 * A broken certificate chain for tests of the client's check: `bad-leaf-signature` (the leaf is not signed by
 * the intermediate), `bad-intermediate-signature` (the intermediate is not signed by the root),
 * `foreign-leaf` (valid signatures, but the leaf certifies another server's static key).
 */
export type NoiseCertFault = 'bad-leaf-signature' | 'bad-intermediate-signature' | 'foreign-leaf';

/** Builds the certificate chain the server presents: root -> intermediate -> leaf (= server static key). */
export const buildCertChain = (root: KeyPair, serverStaticPublic: Uint8Array, fault?: NoiseCertFault): Uint8Array => {
  const intermediate = Curve.generateKeyPair();
  const stranger = Curve.generateKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const interDetails = proto.CertChain.NoiseCertificate.Details.encode({
    serial: 1,
    issuerSerial: 0,
    key: intermediate.public,
    notBefore: now - 86_400,
    notAfter: now + 10 * 365 * 86_400,
  }).finish();
  const leafDetails = proto.CertChain.NoiseCertificate.Details.encode({
    serial: 2,
    issuerSerial: 1,
    key: fault === 'foreign-leaf' ? Curve.generateKeyPair().public : serverStaticPublic,
    notBefore: now - 86_400,
    notAfter: now + 10 * 365 * 86_400,
  }).finish();
  return proto.CertChain.encode({
    intermediate: { details: interDetails, signature: Curve.sign(fault === 'bad-intermediate-signature' ? stranger.private : root.private, interDetails) },
    leaf: { details: leafDetails, signature: Curve.sign(fault === 'bad-leaf-signature' ? stranger.private : intermediate.private, leafDetails) },
  }).finish();
};

export interface HandshakeResult {
  /** The client's static Noise public key (creds.noiseKey.public). */
  readonly clientStatic: Buffer;
  /** Decrypted ClientPayload bytes. */
  readonly payload: Buffer;
  readonly transport: NoiseTransport;
}

/** Responder state for one connection's handshake. */
export class NoiseResponder {
  private hash: Buffer;
  private salt: Buffer;
  private key: Buffer;
  private counter = 0;
  private readonly ephemeral: KeyPair;
  private clientEphemeral: Buffer = EMPTY;

  constructor(header: Uint8Array) {
    const mode = Buffer.from(NOISE_MODE);
    this.hash = mode.length === 32 ? mode : sha256(mode);
    this.salt = this.hash;
    this.key = this.hash;
    this.ephemeral = newKeyPair();
    this.mixHash(header);
  }

  private mixHash(data: Uint8Array): void {
    this.hash = sha256(this.hash, data);
  }

  private mixKey(dh: Uint8Array): void {
    const out = Buffer.from(hkdfSync('sha256', dh, this.salt, EMPTY, 64));
    this.salt = out.subarray(0, 32);
    this.key = out.subarray(32);
    this.counter = 0;
  }

  private encrypt(plaintext: Uint8Array): Buffer {
    const ct = gcmEncrypt(this.key, this.counter++, this.hash, plaintext);
    this.mixHash(ct);
    return ct;
  }

  private decrypt(ciphertext: Uint8Array): Buffer {
    const pt = gcmDecrypt(this.key, this.counter++, this.hash, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /** Handles clientHello; returns the serverHello HandshakeMessage bytes to frame and send. */
  serverHello(clientHelloFrame: Uint8Array, serverStatic: KeyPair, certChain: Uint8Array): Uint8Array {
    const msg = proto.HandshakeMessage.decode(clientHelloFrame);
    const eph = msg.clientHello?.ephemeral;
    if (!eph || eph.length !== 32) throw new Error('clientHello without a 32-byte ephemeral key');
    this.clientEphemeral = Buffer.from(eph);
    this.mixHash(this.clientEphemeral);
    this.mixHash(this.ephemeral.public);
    this.mixKey(Curve.sharedKey(this.ephemeral.private, this.clientEphemeral));
    const encStatic = this.encrypt(serverStatic.public);
    this.mixKey(Curve.sharedKey(serverStatic.private, this.clientEphemeral));
    const encCert = this.encrypt(certChain);
    return proto.HandshakeMessage.encode({
      serverHello: { ephemeral: this.ephemeral.public, static: encStatic, payload: encCert },
    }).finish();
  }

  /** Handles clientFinish; returns the client's static key, its payload and the transport keys. */
  clientFinish(frame: Uint8Array): HandshakeResult {
    const msg = proto.HandshakeMessage.decode(frame);
    const encStatic = msg.clientFinish?.static;
    const encPayload = msg.clientFinish?.payload;
    if (!encStatic || !encPayload) throw new Error('clientFinish without static or payload');
    const clientStatic = this.decrypt(encStatic);
    this.mixKey(Curve.sharedKey(this.ephemeral.private, clientStatic));
    const payload = this.decrypt(encPayload);
    const split = Buffer.from(hkdfSync('sha256', EMPTY, this.salt, EMPTY, 64));
    // the client encrypts with the first half and decrypts with the second
    return { clientStatic, payload, transport: new NoiseTransport(split.subarray(32), split.subarray(0, 32)) };
  }
}

/** Post-handshake AES-GCM transport with independent send/receive counters. */
export class NoiseTransport {
  private readonly encKey: Buffer;
  private readonly decKey: Buffer;
  private writeCounter = 0;
  private readCounter = 0;
  private readonly iv = Buffer.alloc(12);

  constructor(encKey: Buffer, decKey: Buffer) {
    this.encKey = encKey;
    this.decKey = decKey;
  }

  private setIv(c: number): Buffer {
    this.iv.writeUInt32BE(c >>> 0, 8);
    return this.iv;
  }

  /** Encrypts and frames (3-byte length prefix) one payload. */
  frame(plaintext: Uint8Array): Buffer {
    const c = createCipheriv('aes-256-gcm', this.encKey, this.setIv(this.writeCounter++));
    const body = c.update(plaintext);
    const fin = c.final();
    const tag = c.getAuthTag();
    const len = body.length + fin.length + tag.length;
    const out = Buffer.allocUnsafe(3 + len);
    out[0] = (len >>> 16) & 0xff;
    out[1] = (len >>> 8) & 0xff;
    out[2] = len & 0xff;
    body.copy(out, 3);
    fin.copy(out, 3 + body.length);
    tag.copy(out, 3 + body.length + fin.length);
    return out;
  }

  decrypt(ciphertext: Uint8Array): Buffer {
    const d = createDecipheriv('aes-256-gcm', this.decKey, this.setIv(this.readCounter++));
    d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
  }
}

/** Frames a handshake payload (no encryption). */
export const frameRaw = (payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(3 + payload.length);
  out[0] = (payload.length >>> 16) & 0xff;
  out[1] = (payload.length >>> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out.set(payload, 3);
  return out;
};

/**
 * Splits an incoming byte stream into frames. The first chunk of a connection starts with the intro
 * (optional 'ED' routing prefix, then the 4-byte "WA" header), which is returned once via onIntro.
 */
export class FrameReader {
  private buf: Buffer = EMPTY;
  private introDone = false;

  push(data: Buffer, onFrame: (frame: Buffer) => void, onIntro: (header: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    if (!this.introDone) {
      let off = 0;
      if (this.buf[0] === 0x45 && this.buf[1] === 0x44) {
        if (this.buf.length < 7) return;
        const rlen = ((this.buf[4] ?? 0) << 16) | this.buf.readUInt16BE(5);
        off = 7 + rlen;
      }
      if (this.buf.length < off + 4) return;
      onIntro(this.buf.subarray(off, off + 4));
      this.buf = this.buf.subarray(off + 4);
      this.introDone = true;
    }
    while (this.buf.length >= 3) {
      const size = ((this.buf[0] ?? 0) << 16) | ((this.buf[1] ?? 0) << 8) | (this.buf[2] ?? 0);
      if (this.buf.length < size + 3) return;
      const frame = this.buf.subarray(3, size + 3);
      // An empty view would still pin the whole received chunk: an idle socket keeps nothing of its last message.
      this.buf = this.buf.length === size + 3 ? EMPTY : this.buf.subarray(size + 3);
      onFrame(frame);
    }
  }
}
