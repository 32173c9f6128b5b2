/**
 * Webhook target URL policy: http or https, no credentials in the URL, and, unless
 * WEBHOOK_ALLOW_PRIVATE_TARGETS=true, every address the host resolves to must be public (no loopback,
 * private, link-local, CGNAT, multicast, reserved or unspecified IPv4/IPv6, IPv4-mapped IPv6 included).
 * The dispatcher should re-check at delivery time (DNS can change; see docs/security.md).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';
import { GatewayError } from '@wagw/shared';
import { isNonPublicAddress } from './addresses.ts';

export { isNonPublicAddress } from './addresses.ts';

export interface WebhookUrlOptions {
  allowPrivate: boolean;
  /** DNS resolution (tests); default dns.lookup with all: true. */
  lookup?: (hostname: string) => Promise<{ address: string; family: number }[]>;
}

function refuse(message: string, details: Record<string, unknown> = {}): GatewayError {
  return new GatewayError('VALIDATION_FAILED', message, { field: 'webhookUrl', ...details });
}

/**
 * Validates a webhook target URL; resolves to the normalised URL or throws VALIDATION_FAILED (400) naming the
 * rule it broke. The host is resolved (all addresses) and every address must be public unless allowPrivate.
 */
export async function validateWebhookUrl(input: string, options: WebhookUrlOptions): Promise<URL> {
  if (typeof input !== 'string' || input.length === 0 || input.length > 2048) throw refuse('The webhook URL must be 1-2048 characters.');
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw refuse('The webhook URL is not a valid absolute URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('The webhook URL must use http or https.', { scheme: url.protocol.slice(0, -1) });
  if (url.username !== '' || url.password !== '') throw refuse('The webhook URL must not contain credentials; webhooks are signed instead.');
  if (url.hash !== '') url.hash = '';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw refuse('The webhook URL has no host.');
  if (options.allowPrivate) return url;

  let addresses: string[];
  if (net.isIP(host) !== 0) addresses = [host];
  else {
    if (host === 'localhost' || host.endsWith('.localhost')) throw refuse('The webhook URL points to this machine.', { host });
    try {
      const lookup = options.lookup ?? ((h: string) => dnsLookup(h, { all: true, verbatim: true }));
      addresses = (await lookup(host)).map((a) => a.address);
    } catch {
      throw refuse(`The webhook host "${host.slice(0, 253)}" does not resolve.`, { host: host.slice(0, 253) });
    }
    if (addresses.length === 0) throw refuse(`The webhook host "${host.slice(0, 253)}" does not resolve.`, { host: host.slice(0, 253) });
  }
  const bad = addresses.filter(isNonPublicAddress);
  if (bad.length > 0) {
    throw refuse('The webhook URL resolves to a loopback, private, link-local or otherwise non-public address (WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it).', {
      host: host.slice(0, 253),
      addresses: bad.slice(0, 8),
    });
  }
  return url;
}
