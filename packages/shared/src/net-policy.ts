/**
 * The one address policy for everything the gateway fetches from a URL somebody else chose: session webhook
 * URLs (router), media URLs of a send and inbound media (shard). Change it here only (docs/security.md,
 * "Outbound requests").
 *
 * An IPv6 address is read into its 16 bytes before it is judged, so every spelling of one address gets one
 * answer: `::ffff:7f00:1`, `::ffff:127.0.0.1` and `0:0:0:0:0:ffff:7f00:1` are the same loopback address.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';

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
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d (some stacks route it to IPv4)
  ['::ffff:0:0:0', 96], // IPv4-translated (RFC 2765): never a public destination
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

/** The 8 groups of an IPv6 address (any spelling, embedded dotted IPv4 included); undefined if it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  if (net.isIPv6(address) === false) return undefined;
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(Math.max(fill, 0)).fill('0'), ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** Whether an IP address is anything but a public unicast address (true for a string that is not an IP). */
export function isNonPublicAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked4.check(address, 'ipv4');
  if (family !== 6) return true;
  const g = ipv6Groups(address);
  if (g === undefined) return true;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0);
  // IPv4-mapped ::ffff:a.b.c.d is the IPv4 address itself; NAT64 64:ff9b::/96 reaches it through a gateway.
  if (zeros(0, 5) && g[5] === 0xffff) return blocked4.check(v4(g[6] ?? 0, g[7] ?? 0), 'ipv4');
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return blocked4.check(v4(g[6] ?? 0, g[7] ?? 0), 'ipv4');
  const canonical = g.map((x) => x.toString(16)).join(':');
  return blocked6.check(canonical, 'ipv6');
}

/** A host that names this machine without being an IP literal. */
export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

/** The error a refused destination carries (`code` below); its message names the host, never an address. */
export const ADDRESS_REFUSED = 'ADDRESS_REFUSED';

export function addressRefused(message: string): Error {
  return Object.assign(new Error(message), { code: ADDRESS_REFUSED });
}

/** Node's dns.lookup with `all: true`, the default a public-only lookup resolves through. */
export type BaseLookup = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: { address: string; family: number }[]) => void) => void;

const systemLookup: BaseLookup = (hostname, callback) => dns.lookup(hostname, { all: true, verbatim: true }, callback);

/**
 * A `lookup` for net/http/https that resolves through `base` (tests inject one) and fails, before any
 * connection, when any address of the name is non-public (one bad address is enough: a resolver could
 * answer differently at connect time). `hint` goes into the refusal message (which setting allows it);
 * `refused` is the address table (tests stand a loopback address in for a public one with it).
 */
export function publicOnlyLookup(base: BaseLookup = systemLookup, hint = '', refused: (address: string) => boolean = isNonPublicAddress): LookupFunction {
  return (hostname, options, callback) => {
    base(hostname, (err, found) => {
      if (err !== null) {
        callback(err, '', 0);
        return;
      }
      const list = options.family === 4 || options.family === 6 ? found.filter((a) => a.family === options.family) : found;
      if (list.some((a) => refused(a.address))) {
        callback(addressRefused(`${hostname} resolves to a non-public address${hint}`), '', 0);
        return;
      }
      if (options.all === true) {
        callback(null, list);
        return;
      }
      const first = list[0];
      if (first === undefined) callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * Throws ADDRESS_REFUSED for a URL whose host is an IP literal that is not public, or a loopback name
 * (Node skips `lookup` for IP literals, so they are judged here, before the request).
 */
export function assertPublicUrlHost(url: URL, hint = '', refused: (address: string) => boolean = isNonPublicAddress): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isLoopbackName(host)) throw addressRefused(`${host} is a loopback name${hint}`);
  if (net.isIP(host) !== 0 && refused(host)) throw addressRefused(`${host} is a non-public address${hint}`);
}
