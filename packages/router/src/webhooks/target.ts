/**
 * Webhook target URLs: syntax checks for a session's `webhookUrl` (scheme, no credentials) and the
 * private-address guard applied when connecting (after DNS, so a public name that resolves to 10.0.0.1 is
 * refused too). The backend URL is the operator's and is never subject to the guard.
 */
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { ADDRESS_REFUSED, GatewayError, assertPublicUrlHost, isNonPublicAddress, publicOnlyLookup as sharedPublicOnlyLookup } from '@wagw/shared';

/**
 * True for loopback, private, link-local, CGNAT, multicast, reserved and documentation addresses (IPv4-mapped,
 * IPv4-compatible and NAT64 IPv6 too): the shared table of security/addresses.ts. False for a non-IP string.
 */
export function isPrivateAddress(address: string): boolean {
  return net.isIP(address) !== 0 && isNonPublicAddress(address);
}

/** Error code carried by a refused target (a permanent failure: the row goes dead at once). */
export const TARGET_FORBIDDEN = 'WEBHOOK_TARGET_FORBIDDEN';

const HINT = ' (private addresses need WEBHOOK_ALLOW_PRIVATE_TARGETS=true)';

/** The shared policy's refusal (net-policy.ts) as this module's TARGET_FORBIDDEN. */
function recode(err: unknown): unknown {
  if ((err as { code?: unknown } | null)?.code === ADDRESS_REFUSED) Object.assign(err as object, { code: TARGET_FORBIDDEN });
  return err;
}

const sharedLookup = sharedPublicOnlyLookup(undefined, HINT);

/** A `lookup` for http.Agent that refuses names resolving to private addresses (the shared net policy). */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  sharedLookup(hostname, options, ((err: NodeJS.ErrnoException | null, ...rest: unknown[]) => {
    (callback as (...args: unknown[]) => void)(err === null ? null : recode(err), ...rest);
  }) as Parameters<LookupFunction>[2]);
};

/** Checks a literal-IP host before connecting (Node skips `lookup` for IP literals). */
export function assertPublicHost(url: URL): void {
  try {
    assertPublicUrlHost(url, HINT);
  } catch (err) {
    throw recode(err);
  }
}

export interface WebhookUrlPolicy {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS. */
  allowPrivateTargets: boolean;
  /** Whether webhooks can be signed at all (WEBHOOK_SECRET set). */
  signingConfigured: boolean;
}

/**
 * Validates a session's `webhookUrl` for the API (session creation): http(s) only, no user:password, at most
 * 2048 characters, a literal private address or `localhost` refused unless allowed, and refused altogether
 * when no WEBHOOK_SECRET is configured (unsigned webhooks are never sent). Throws VALIDATION_FAILED naming the
 * problem; returns the normalised URL. Names that resolve to private addresses are refused at delivery time.
 */
export function validateWebhookUrl(value: string, policy: WebhookUrlPolicy): string {
  const fail = (message: string): never => {
    throw new GatewayError('VALIDATION_FAILED', `webhookUrl: ${message}`, { field: 'webhookUrl' });
  };
  if (!policy.signingConfigured) fail('webhooks need WEBHOOK_SECRET to be configured on the gateway');
  if (value.length > 2048) fail('must be at most 2048 characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('must use http or https');
  if (url.username !== '' || url.password !== '') fail('must not contain credentials');
  if (url.hash !== '') fail('must not contain a fragment');
  if (!policy.allowPrivateTargets) {
    try {
      assertPublicHost(url);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  return url.toString();
}
