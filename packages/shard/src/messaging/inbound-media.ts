/**
 * Inbound media download (eager on arrival, or lazily on the first GET of …/media), replacing Baileys'
 * `downloadMediaMessage`, which takes the host from the message's own `url` (chosen by the sender), follows
 * it with no size cap and cannot be aborted. Here:
 *
 * - The URL is built, not taken: `https://<host><directPath>`, where the host is one of WhatsApp's media
 *   hosts (`*.whatsapp.net`, port 443) named by the message's `url` (or `mmg.whatsapp.net`), and `directPath`
 *   starts with one `/` and holds no `@` or `\`. Only in simulator mode (WA_ROOT_PUBLIC_KEY set) is the
 *   simulator's media host (WA_MEDIA_HOST, exact host:port) allowed as well, and only it may be loopback.
 * - The ciphertext comes through the public-only client (public-http.ts): no redirects, one deadline, the
 *   bytes counted on the stream and the request destroyed past the declared size (plus padding and MAC) or
 *   MEDIA_MAX_BYTES, whichever is smaller.
 * - The MAC is checked before anything is decrypted (a wrong key or a substituted file is refused).
 */
import crypto from 'node:crypto';
import { extractMessageContent, getContentType, getMediaKeys } from '@whiskeysockets/baileys';
import type { MediaType, WAMessage } from '@whiskeysockets/baileys';
import type { BaseLookup } from '@wagw/shared';
import { FetchFailure, publicGet } from './public-http.ts';

export interface InboundMediaPolicy {
  maxBytes: number;
  timeoutMs: number;
  /** WA_MEDIA_HOST when the simulator is configured: its `host:port`, allowed besides WhatsApp's hosts. */
  simulatorHost?: string;
  /** DNS resolution (tests); default dns.lookup. */
  lookup?: BaseLookup;
  /** Test hook of the HTTP client: called before each connection attempt. */
  onConnect?: (url: URL) => void;
}

const DEFAULT_HOST = 'mmg.whatsapp.net';
/** AES-CBC padding (at most one block) and the 10-byte MAC around the plaintext. */
const OVERHEAD = 16 + 10;

function isWhatsAppHost(url: URL): boolean {
  return url.protocol === 'https:' && url.port === '' && /^(?:[a-z0-9-]+\.)*whatsapp\.net$/.test(url.hostname);
}

/**
 * The URL to download a media message's ciphertext from, under the rules above; throws a FetchFailure
 * ('refused') naming the rule it broke.
 */
export function inboundMediaUrl(media: { url?: string | null; directPath?: string | null }, policy: Pick<InboundMediaPolicy, 'simulatorHost'>): URL {
  let host: string | undefined;
  if (media.url !== undefined && media.url !== null && media.url !== '') {
    let given: URL;
    try {
      given = new URL(media.url);
    } catch {
      throw new FetchFailure('refused', 'the media url is not a URL');
    }
    if (isWhatsAppHost(given) || (policy.simulatorHost !== undefined && given.protocol === 'https:' && given.host === policy.simulatorHost)) host = given.host;
    else throw new FetchFailure('refused', 'the media url is not on a WhatsApp media host');
    if (media.directPath === undefined || media.directPath === null || media.directPath === '') {
      if (given.username !== '' || given.password !== '') throw new FetchFailure('refused', 'the media url has credentials');
      return new URL(`https://${host}${given.pathname}${given.search}`);
    }
  }
  const path = media.directPath;
  if (path === undefined || path === null || path === '') throw new FetchFailure('refused', 'the message has no media path');
  if (!path.startsWith('/') || path.startsWith('//') || /[@\\\s]/.test(path)) throw new FetchFailure('refused', 'the media path is malformed');
  const url = new URL(`https://${host ?? policy.simulatorHost ?? DEFAULT_HOST}${path}`);
  if (url.host !== (host ?? policy.simulatorHost ?? DEFAULT_HOST)) throw new FetchFailure('refused', 'the media path is malformed');
  return url;
}

interface MediaFields {
  url?: string | null;
  directPath?: string | null;
  mediaKey?: Uint8Array | null;
  fileLength?: number | { toNumber(): number } | null;
  thumbnailDirectPath?: string | null;
}

/** Downloads and decrypts the media of `message`. Throws FetchFailure (or a decrypt error) when it cannot. */
export async function downloadInboundMedia(message: WAMessage, policy: InboundMediaPolicy): Promise<Buffer> {
  const content = extractMessageContent(message.message);
  const contentType = content === undefined || content === null ? undefined : getContentType(content);
  if (content === undefined || content === null || contentType === undefined) throw new FetchFailure('refused', 'not a media message');
  const media = (content as Record<string, unknown>)[contentType] as MediaFields | null | undefined;
  if (media === null || media === undefined || typeof media !== 'object' || media.mediaKey === null || media.mediaKey === undefined) throw new FetchFailure('refused', 'not a media message');
  let mediaType = contentType.replace('Message', '') as MediaType;
  let source: { url?: string | null; directPath?: string | null } = media;
  if (!('url' in media) && typeof media.thumbnailDirectPath === 'string') {
    source = { directPath: media.thumbnailDirectPath };
    mediaType = 'thumbnail-link';
  }
  const url = inboundMediaUrl(source, policy);
  const declared = media.fileLength === null || media.fileLength === undefined ? 0 : Number(media.fileLength);
  const cap = (declared > 0 ? Math.min(declared, policy.maxBytes) : policy.maxBytes) + OVERHEAD;
  const got = await publicGet(url, {
    maxBytes: cap,
    timeoutMs: policy.timeoutMs,
    httpsOnly: true,
    maxRedirects: 0,
    // Only the simulator's own host (simulator mode) may be a loopback address.
    allowPrivate: policy.simulatorHost !== undefined && url.host === policy.simulatorHost,
    headers: { origin: 'https://web.whatsapp.com' },
    ...(policy.lookup === undefined ? {} : { lookup: policy.lookup }),
    ...(policy.onConnect === undefined ? {} : { onConnect: policy.onConnect }),
  });
  const keys = await getMediaKeys(media.mediaKey, mediaType);
  const enc = got.data;
  if (enc.length <= 10) throw new FetchFailure('failed', 'the media file is empty');
  const body = enc.subarray(0, enc.length - 10);
  if (keys.macKey === undefined) throw new FetchFailure('failed', 'no MAC key for this media type');
  const mac = crypto.createHmac('sha256', keys.macKey).update(keys.iv).update(body).digest().subarray(0, 10);
  if (!crypto.timingSafeEqual(mac, enc.subarray(enc.length - 10))) throw new FetchFailure('failed', 'the media file does not match its key');
  const decipher = crypto.createDecipheriv('aes-256-cbc', keys.cipherKey, keys.iv);
  const plain = Buffer.concat([decipher.update(body), decipher.final()]);
  if (plain.length > policy.maxBytes) throw new FetchFailure('too-large', `larger than ${policy.maxBytes} bytes`);
  return plain;
}
