/**
 * Webhook target URL policy: http or https, no credentials in the URL, and, unless
 * WEBHOOK_ALLOW_PRIVATE_TARGETS=true, every address the host resolves to must be public (no loopback,
 * private, link-local, CGNAT, multicast, reserved or unspecified IPv4/IPv6, IPv4-mapped IPv6 included).
 * The dispatcher should re-check at delivery time (DNS can change; see docs/security.md).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';
import { GatewayError } from '@wagw/shared';

export interface WebhookUrlOptions {
  allowPrivate: boolean;
  /** DNS resolution (tests); default dns.lookup with all: true. */
  lookup?: (hostname: string) => Promise<{ address: string; family: number }[]>;
}

const blocked4 = new net.BlockList();
for (const [net4, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked4.addSubnet(net4, prefix, 'ipv4');
}
const blocked6 = new net.BlockList();
for (const [net6, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds any IPv4)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked6.addSubnet(net6, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1] !== undefined) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] !== undefined && hex[2] !== undefined) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** Whether an IP address is anything but a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked4.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return blocked4.check(v4, 'ipv4') || !/^(::ffff:|64:ff9b::)/i.test(address);
    return blocked6.check(address, 'ipv6');
  }
  return true; // not an IP at all
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
