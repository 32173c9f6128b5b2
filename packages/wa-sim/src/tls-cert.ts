// A self-signed X.509 certificate built with node:crypto alone (no openssl binary), for the media HTTPS endpoint.
// ECDSA P-256 / SHA-256, subjectAltName covers the simulator's host, 127.0.0.1, ::1 and localhost.
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

export interface SelfSignedCert {
  /** PEM certificate; also the CA a client must trust. */
  readonly certPem: string;
  /** PEM PKCS#8 private key. */
  readonly keyPem: string;
}

const der = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  const len = body.length;
  let head: Buffer;
  if (len < 0x80) head = Buffer.from([tag, len]);
  else if (len < 0x100) head = Buffer.from([tag, 0x81, len]);
  else if (len < 0x10000) head = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  else head = Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.concat([head, body]);
};
const seq = (...parts: Buffer[]): Buffer => der(0x30, ...parts);
const oid = (dotted: string): Buffer => {
  const nums = dotted.split('.').map(Number);
  const first = nums[0] ?? 0;
  const second = nums[1] ?? 0;
  const bytes: number[] = [first * 40 + second];
  for (const n of nums.slice(2)) {
    const stack: number[] = [n & 0x7f];
    let v = Math.floor(n / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(...stack);
  }
  return der(0x06, Buffer.from(bytes));
};
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'));
const genTime = (d: Date): Buffer => {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return der(0x18, Buffer.from(s, 'ascii'));
};
const ipBytes = (ip: string): Buffer => {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand '::'
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
};

/** Generates a fresh self-signed certificate valid for ten years for the given host names / IPs. */
export const generateSelfSignedCert = (hosts: readonly string[]): SelfSignedCert => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(der(0x31, seq(oid('2.5.4.3'), utf8('wa-sim media'))));
  const now = Date.now();
  const validity = seq(genTime(new Date(now - 86_400_000)), genTime(new Date(now + 10 * 365 * 86_400_000)));
  const serial = randomBytes(16);
  // DER INTEGER: positive (top bit clear) and minimal (first byte never 0x00, else OpenSSL fails with
  // 'illegal padding' on 1 certificate in 128).
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  const all = [...new Set(['localhost', '127.0.0.1', '::1', ...hosts])];
  const sanNames = all.map(h => (isIP(h) ? der(0x87, ipBytes(h)) : der(0x82, Buffer.from(h, 'ascii'))));
  const extSan = seq(oid('2.5.29.17'), der(0x04, seq(...sanNames)));
  const extBasic = seq(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, seq(der(0x01, Buffer.from([0xff])))));
  const extKeyUsage = seq(oid('2.5.29.15'), der(0x01, Buffer.from([0xff])), der(0x04, der(0x03, Buffer.from([0x05, 0xa0]))));
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    ecdsaSha256,
    name,
    validity,
    name,
    spki,
    der(0xa3, seq(extBasic, extKeyUsage, extSan)),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const cert = seq(tbs, ecdsaSha256, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = cert.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  const keyPem = createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`, keyPem };
};
