/**
 * Signed forwarding between routers (issue #10 item 7). A call for a session another host owns is proxied to
 * that host (api/forward.ts). Unsigned, it arrived from the forwarding router's address: every forwarded call of
 * one router shared one per-IP bucket on the owner (cluster-wide with Redis), and each was counted twice per
 * principal. With CLUSTER_SECRET the forwarder signs method, URL, a timestamp, its host id, the client address and
 * the body's SHA-256; the owner checks the signature (at most FORWARD_VALIDITY_MS old, each signature accepted
 * once) and does not count the call again: the forwarding router already did, against the real client.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '@wagw/shared';

export const FORWARD_HEADERS = {
  by: 'x-wagw-forwarded-by',
  clientIp: 'x-wagw-forwarded-for',
  bodySha256: 'x-wagw-forward-body-sha256',
  signature: 'x-wagw-forward-signature',
} as const;

/** How old a signature may be (and how far in the future, for clock skew between hosts). */
export const FORWARD_VALIDITY_MS = 30_000;

const SEEN_MAX = 100_000;

/** A verified forwarded call, on `ctx.state.forwarded`. */
export interface ForwardedCall {
  by: string;
  clientIp: string;
  /** The SHA-256 (hex) the body must have; the route layer checks it when it reads the body. */
  bodySha256: string;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function mac(secret: string, method: string, url: string, at: number, by: string, clientIp: string, bodySha256: string): Buffer {
  return createHmac('sha256', secret).update(['wagw-forward/v1', method.toUpperCase(), url, String(at), by, clientIp, bodySha256].join('\n'), 'utf8').digest();
}

/** The headers a forwarded call carries: who forwards, for which client, the body digest and the signature. */
export function signForwarded(secret: string, call: { method: string; url: string; by: string; clientIp: string; body: string }, at = Date.now()): Record<string, string> {
  const bodySha256 = sha256Hex(call.body);
  return {
    [FORWARD_HEADERS.by]: call.by,
    [FORWARD_HEADERS.clientIp]: call.clientIp,
    [FORWARD_HEADERS.bodySha256]: bodySha256,
    [FORWARD_HEADERS.signature]: `t=${at},v1=${mac(secret, call.method, call.url, at, call.by, call.clientIp, bodySha256).toString('base64url')}`,
  };
}

const invalid = (why: string): GatewayError => new GatewayError('FORWARD_SIGNATURE_INVALID', `Forwarded call refused: ${why}.`);

/** Checks forwarded calls on the owner; remembers the signatures it accepted for the validity window. */
export class ForwardVerifier {
  readonly #secret: string;
  /** Accepted signatures -> when; insertion ordered, pruned past 2x the validity, capped (every cache has a cap). */
  readonly #seen = new Map<string, number>();

  constructor(secret: string) {
    this.#secret = secret;
  }

  /**
   * Null when the request carries no forward signature (an ordinary call); the verified call when it does;
   * throws FORWARD_SIGNATURE_INVALID for a malformed, stale, replayed or wrong one.
   */
  verify(method: string, url: string, get: (header: string) => string, now = Date.now()): ForwardedCall | null {
    const signature = get(FORWARD_HEADERS.signature);
    if (signature === '') return null;
    const m = /^t=(\d{1,15}),v1=([A-Za-z0-9_-]{43})$/.exec(signature);
    const by = get(FORWARD_HEADERS.by);
    const clientIp = get(FORWARD_HEADERS.clientIp);
    const bodySha256 = get(FORWARD_HEADERS.bodySha256);
    if (m === null || by === '' || clientIp === '' || !/^[0-9a-f]{64}$/.test(bodySha256)) throw invalid('malformed signature headers');
    const at = Number(m[1]);
    if (Math.abs(now - at) > FORWARD_VALIDITY_MS) throw invalid(`the signature is older than ${FORWARD_VALIDITY_MS / 1000} s or from the future`);
    const expected = mac(this.#secret, method, url, at, by, clientIp, bodySha256);
    const given = Buffer.from(m[2] ?? '', 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid('the signature does not match (is CLUSTER_SECRET the same on every router?)');
    const key = m[2] ?? '';
    for (const [k, t] of this.#seen) {
      if (now - t <= 2 * FORWARD_VALIDITY_MS && this.#seen.size < SEEN_MAX) break; // insertion order: the rest are younger
      this.#seen.delete(k);
    }
    if (this.#seen.has(key)) throw invalid('this signature was used already');
    this.#seen.set(key, now);
    return { by, clientIp, bodySha256 };
  }
}

/** The route layer's body check of a verified forwarded call. */
export function assertForwardedBody(call: ForwardedCall | undefined, raw: Buffer | string): void {
  if (call !== undefined && sha256Hex(raw) !== call.bodySha256) throw invalid('the body does not match its signed digest');
}
