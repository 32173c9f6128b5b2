/**
 * Response headers of a stored media file (GET …/messages/:msgId/media). The mimetype and file name come from
 * the message a WhatsApp contact sent, so neither is trusted: the type must be a valid media type (else
 * application/octet-stream), only allow-listed image/audio/video types are served inline (an HTML or SVG file
 * would otherwise run as a page of the gateway's origin), and the name goes into Content-Disposition as an
 * ASCII fallback plus its UTF-8 form (RFC 6266, RFC 8187/5987), since Node refuses non-Latin-1 header values.
 */

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\[\\x20-\\x7e])*"';
/** `type/subtype` with optional `; name=value` parameters (RFC 9110 media-type), e.g. `audio/ogg; codecs=opus`. */
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*)$`);

/** Types a browser may render inline: plain images, audio and video (no SVG, no HTML, no XML). */
const INLINE_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'audio/ogg',
  'audio/mpeg',
  'audio/mp4',
  'audio/aac',
  'audio/amr',
  'audio/wav',
  'audio/webm',
  'video/mp4',
  'video/3gpp',
  'video/webm',
  'video/quicktime',
]);

/** Longest file name put in the header (characters of the original); longer names are cut. */
const MAX_NAME = 200;

export interface MediaHeaders {
  contentType: string;
  contentDisposition: string;
}

/** The validated Content-Type (type and subtype lower-cased), or application/octet-stream. */
export function safeContentType(mimetype: unknown): string {
  if (typeof mimetype !== 'string' || mimetype.length > 255) return 'application/octet-stream';
  const m = MEDIA_TYPE.exec(mimetype.trim());
  if (m === null) return 'application/octet-stream';
  return `${(m[1] ?? '').toLowerCase()}/${(m[2] ?? '').toLowerCase()}${m[3] ?? ''}`;
}

/** RFC 8187 value-chars: percent-encoded UTF-8 of everything but attr-char. */
function encodeExtValue(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `inline` for an allow-listed type, else `attachment`; with a file name, `filename="<ascii>"` (every character
 * outside printable ASCII, and `"`, `\`, `%`, replaced by `_`) and `filename*=UTF-8''<percent-encoded>`.
 */
export function contentDisposition(contentType: string, fileName: unknown): string {
  const essence = contentType.split(';')[0]?.trim() ?? '';
  const kind = INLINE_TYPES.has(essence) ? 'inline' : 'attachment';
  if (typeof fileName !== 'string') return kind;
  // Control characters go first; a lone surrogate would make encodeURIComponent throw, so it becomes U+FFFD.
  const wellFormed = fileName.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  const name = [...wellFormed.replace(/[\x00-\x1f\x7f]/g, '')].slice(0, MAX_NAME).join('').trim();
  if (name === '') return kind;
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/gu, '_');
  return ascii === name ? `${kind}; filename="${ascii}"` : `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeExtValue(name)}`;
}

export function mediaHeaders(media: { mimetype?: unknown; fileName?: unknown }): MediaHeaders {
  const contentType = safeContentType(media.mimetype);
  return { contentType, contentDisposition: contentDisposition(contentType, media.fileName) };
}
