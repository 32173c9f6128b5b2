/**
 * The shard's one HTTP client for URLs somebody else chose (a send's `media.url`, an inbound message's media):
 * GET only, public addresses only, bounded in time and bytes, and really aborted.
 *
 * - Every hop is checked before it connects: scheme, no `user:pass@`, an IP-literal or loopback-name host
 *   refused at once, and a name resolved through `publicOnlyLookup` (net-policy.ts), which fails the connect
 *   when any address of the name is non-public. Redirects are followed by hand (at most 3), each hop checked.
 * - One deadline covers connect, headers and body; past it, or past `maxBytes` counted on the stream (a
 *   Content-Length is not trusted), the request is destroyed, so the socket closes and nothing more is read.
 * - Failures are a `FetchFailure` whose `reason` is coarse and whose message carries no low-level cause:
 *   callers answer one uniform error, so a caller cannot tell open, closed and filtered ports apart.
 *
 * node:http(s) rather than undici's fetch: its `lookup` option is the connect hook, and the workspace has no
 * undici package (Node's bundled one exposes no Agent); the webhook transport uses the same mechanism.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { ADDRESS_REFUSED, assertPublicUrlHost, publicOnlyLookup } from '@wagw/shared';
import type { BaseLookup } from '@wagw/shared';

export type FetchFailureReason = 'refused' | 'failed' | 'too-large';

/** A fetch that did not produce a body: `refused` (policy), `failed` (network, status, timeout), `too-large`. */
export class FetchFailure extends Error {
  readonly reason: FetchFailureReason;
  constructor(reason: FetchFailureReason, message: string) {
    super(message);
    this.name = 'FetchFailure';
    this.reason = reason;
  }
}

export interface PublicGetOptions {
  maxBytes: number;
  /** Deadline of the whole fetch, redirects and body included. */
  timeoutMs: number;
  /** MEDIA_URL_ALLOW_PRIVATE: skip the address checks (never the scheme, credential and redirect rules). */
  allowPrivate: boolean;
  httpsOnly?: boolean;
  maxRedirects?: number;
  /** Further check of every hop (inbound media: the host allow-list); throw to refuse. */
  checkUrl?: (url: URL) => void;
  /** DNS resolution (tests map names to addresses with it); default dns.lookup. */
  lookup?: BaseLookup;
  /** Told each chunk's size before it is kept; an error it throws aborts the fetch and is rethrown as is. */
  onBytes?: (bytes: number) => void;
  headers?: Record<string, string>;
  /** Test hook: called just before a connection is attempted (a test fails if a refused URL reaches it). */
  onConnect?: (url: URL) => void;
  /** The address table (default isNonPublicAddress); tests stand a loopback address in for a public one. */
  refusedAddress?: (address: string) => boolean;
}

export interface PublicGetResult {
  data: Buffer;
  contentType: string | undefined;
  /** The URL that answered (after redirects). */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function lookupFor(options: PublicGetOptions): LookupFunction | undefined {
  if (!options.allowPrivate) return publicOnlyLookup(options.lookup, '', options.refusedAddress);
  const base = options.lookup;
  if (base === undefined) return undefined;
  return (hostname, opts, callback) =>
    base(hostname, (err, list) => {
      if (err !== null) callback(err, '', 0);
      else if (opts.all === true) callback(null, list);
      else if (list[0] === undefined) callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), '', 0);
      else callback(null, list[0].address, list[0].family);
    });
}

function checkHop(url: URL, options: PublicGetOptions): void {
  if (url.protocol !== 'https:' && (options.httpsOnly === true || url.protocol !== 'http:')) throw new FetchFailure('refused', `scheme ${url.protocol} is not allowed`);
  if (url.username !== '' || url.password !== '') throw new FetchFailure('refused', 'URLs with credentials are not allowed');
  if (!options.allowPrivate) {
    try {
      assertPublicUrlHost(url, '', options.refusedAddress);
    } catch (err) {
      throw new FetchFailure('refused', (err as Error).message);
    }
  }
  options.checkUrl?.(url);
}

/** GETs `input` under the rules above. Rejects with FetchFailure (or what `onBytes`/`checkUrl` threw). */
export async function publicGet(input: string | URL, options: PublicGetOptions): Promise<PublicGetResult> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new FetchFailure('refused', 'not an absolute URL');
  }
  const maxRedirects = options.maxRedirects ?? 3;
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const lookup = lookupFor(options);
  for (let hop = 0; ; hop++) {
    checkHop(url, options);
    const answer = await getOnce(url, options, lookup, deadline);
    if (answer.kind === 'done') return answer.result;
    if (hop >= maxRedirects) throw new FetchFailure('failed', `more than ${maxRedirects} redirects`);
    try {
      url = new URL(answer.location, url);
    } catch {
      throw new FetchFailure('failed', 'a redirect to an invalid URL');
    }
  }
}

type Answer = { kind: 'done'; result: PublicGetResult } | { kind: 'redirect'; location: string };

function getOnce(url: URL, options: PublicGetOptions, lookup: LookupFunction | undefined, deadline: AbortSignal): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    if (deadline.aborted) {
      reject(new FetchFailure('failed', 'timed out'));
      return;
    }
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      deadline.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (err: Error): void => {
      req.destroy();
      finish(() => reject(err));
    };
    const onAbort = (): void => fail(new FetchFailure('failed', 'timed out'));
    options.onConnect?.(url);
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'wagw-media/1', accept: '*/*', ...options.headers },
      ...(lookup === undefined ? {} : { lookup }),
    });
    deadline.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The lookup's refusal surfaces here; everything else is one coarse "failed" with no cause in it.
      if (err.code === ADDRESS_REFUSED) fail(new FetchFailure('refused', err.message));
      else fail(new FetchFailure('failed', 'the request failed'));
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        const location = res.headers.location;
        res.destroy();
        req.destroy();
        if (location === undefined) finish(() => reject(new FetchFailure('failed', `HTTP ${status} without a Location`)));
        else finish(() => resolve({ kind: 'redirect', location }));
        return;
      }
      if (status !== 200) {
        fail(new FetchFailure('failed', `HTTP ${status}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > options.maxBytes) {
        fail(new FetchFailure('too-large', `larger than ${options.maxBytes} bytes`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        size += chunk.byteLength;
        if (size > options.maxBytes) {
          fail(new FetchFailure('too-large', `larger than ${options.maxBytes} bytes`));
          return;
        }
        try {
          options.onBytes?.(chunk.byteLength);
        } catch (err) {
          fail(err as Error);
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', () => fail(new FetchFailure('failed', 'the response was cut off')));
      res.on('aborted', () => fail(new FetchFailure('failed', 'the response was cut off')));
      res.on('end', () => {
        if (!res.complete) {
          fail(new FetchFailure('failed', 'the response was cut off'));
          return;
        }
        const type = res.headers['content-type'];
        finish(() => resolve({ kind: 'done', result: { data: Buffer.concat(chunks, size), contentType: type === undefined || type === '' ? undefined : type, url } }));
      });
    });
    req.end();
  });
}
